namespace ZipLlm.Serve;

/// <summary>
/// What the hub protocol needs of a store, and no more: the seam between the HTTP layer and the engine. The server
/// maps every route onto these three calls; <see cref="ZipLlmHubStore"/> implements them over <see cref="ZipLlmStore"/>,
/// tests over a fake.
/// </summary>
public interface IHubStore
{
    /// <summary>Every model the store holds now, ordered by id.</summary>
    /// <exception cref="IOException">The store cannot be read.</exception>
    ValueTask<IReadOnlyList<HubModel>> ListModelsAsync(CancellationToken cancellationToken);

    /// <summary>The model <paramref name="id"/> (<c>org/name</c>, compared exactly), or null when the store does not hold it.</summary>
    /// <exception cref="IOException">The store cannot be read.</exception>
    ValueTask<HubModel?> FindModelAsync(string id, CancellationToken cancellationToken);

    /// <summary>Opens <paramref name="file"/> of <paramref name="model"/> for reading at any offset.</summary>
    /// <exception cref="FileNotFoundException">The model or the file is no longer stored.</exception>
    /// <exception cref="IOException">Its stored bytes cannot be read back (<see cref="StoreDamageException"/> among them).</exception>
    ValueTask<IHubFileReader> OpenFileAsync(HubModel model, HubFile file, CancellationToken cancellationToken);
}

/// <summary>Reads one stored file at any offset; one reader serves one response, one read at a time.</summary>
public interface IHubFileReader : IAsyncDisposable
{
    /// <summary>
    /// Reads from <paramref name="offset"/> into <paramref name="destination"/>; returns how many bytes were read, at
    /// least one unless the offset is at or past the file's end (0).
    /// </summary>
    /// <exception cref="IOException">A chunk fails its checksum or cannot be read: never wrong bytes.</exception>
    ValueTask<int> ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken);
}

/// <summary>A stored model as the hub shows it.</summary>
/// <param name="Id">Its id, <c>org/name</c>.</param>
/// <param name="Commit">Its commit: the recorded hub revision, else a stable id derived from its files (40 lowercase hex digits).</param>
/// <param name="LastModified">When it was stored.</param>
/// <param name="Files">Its files, ordered by path.</param>
public sealed record HubModel(string Id, string Commit, DateTimeOffset LastModified, IReadOnlyList<HubFile> Files)
{
    /// <summary>The organisation: what comes before the <c>/</c> of <see cref="Id"/>.</summary>
    public string Author => Id[..Id.IndexOf('/', StringComparison.Ordinal)];

    /// <summary>The file at <paramref name="path"/> exactly, or null.</summary>
    public HubFile? FindFile(string path)
    {
        foreach (HubFile file in Files)
        {
            if (string.Equals(file.Path, path, StringComparison.Ordinal))
            {
                return file;
            }
        }
        return null;
    }
}

/// <summary>A file of a stored model.</summary>
/// <param name="Path">Its path in the model folder, <c>/</c>-separated.</param>
/// <param name="Size">Its length in bytes.</param>
/// <param name="Sha256">The lowercase hex SHA-256 of its bytes.</param>
/// <param name="IsSafetensors">Whether it is a safetensors file.</param>
public sealed record HubFile(string Path, long Size, string Sha256, bool IsSafetensors)
{
    /// <summary>Files from this size up are LFS files on the hub whatever their name (its 10 MB rule).</summary>
    public const long LfsThreshold = 10L * 1000 * 1000;

    /// <summary>
    /// Whether the hub would keep it in LFS: safetensors files and every file of 10 MB or more. The hub names an LFS
    /// file by its SHA-256 (ETag, <c>lfs.oid</c>), any other by its git blob id.
    /// </summary>
    public bool IsLfs => IsSafetensors || Size >= LfsThreshold;
}
