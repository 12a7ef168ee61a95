using ZipLlm.Domain;

namespace ZipLlm;

/// <summary>
/// The store cannot give back what a manifest promises: an object is missing, is not a regular file, is
/// truncated or corrupt, or a file decodes to bytes that do not match the hash recorded at ingest.
/// It names what it knows of the model, the file and the object, so one failure is enough to find the damage.
/// An <see cref="IOException"/> (<see cref="InvalidDataException"/> is sealed): the bytes the store gives back
/// are wrong, whatever the underlying failure was, which is kept as the inner exception.
/// </summary>
public sealed class StoreDamageException : IOException
{
    /// <summary>Creates the exception; the message is built from the parts known.</summary>
    /// <param name="modelId">The model being read, when known.</param>
    /// <param name="filePath">The file of the model being read, when known.</param>
    /// <param name="objectHash">The damaged object, when one is to blame.</param>
    /// <param name="problem">What is wrong, without the names above.</param>
    /// <param name="innerException">The failure that revealed it.</param>
    internal StoreDamageException(ModelId? modelId, string? filePath, ContentHash? objectHash, string problem, Exception? innerException = null)
        : base(Compose(modelId, filePath, objectHash, problem), innerException)
    {
        Model = modelId;
        FilePath = filePath;
        Object = objectHash;
        Problem = problem;
    }

    /// <summary>The model being read, <c>org/name</c>, when known.</summary>
    public string? ModelId => Model?.ToString();

    /// <summary>The file of the model being read, when known.</summary>
    public string? FilePath { get; }

    /// <summary>The damaged object's name (the SHA-256 of its bytes, in lower-case hex), when one is to blame.</summary>
    public string? ObjectHash => Object?.Hex;

    /// <summary>What is wrong, without the names.</summary>
    public string Problem { get; }

    /// <summary>The model being read, when known.</summary>
    internal ModelId? Model { get; }

    /// <summary>The damaged object, when one is to blame.</summary>
    internal ContentHash? Object { get; }

    /// <summary>The same damage, seen while reading <paramref name="filePath"/> of <paramref name="modelId"/>.</summary>
    internal StoreDamageException InFile(ModelId modelId, string filePath) =>
        Model is null ? new StoreDamageException(modelId, filePath, Object, Problem, this) : this;

    /// <summary>
    /// Whether <paramref name="ex"/> says that stored bytes could not be read back as written: missing, not a
    /// regular file, truncated, malformed or of an unsupported format. Other I/O failures (permissions, no file
    /// handles left) are not damage: the store may be fine.
    /// </summary>
    internal static bool IsDamage(Exception ex) =>
        ex is InvalidDataException or EndOfStreamException or FileNotFoundException or DirectoryNotFoundException or NotSupportedException;

    private static string Compose(ModelId? modelId, string? filePath, ContentHash? objectHash, string problem)
    {
        string where = string.Join(": ", new[] { modelId?.ToString(), filePath, objectHash is { } hash ? $"object {hash.Hex}" : null }.Where(s => s is not null));
        return where.Length == 0 ? $"{problem}; the store is damaged." : $"{where}: {problem}; the store is damaged.";
    }
}
