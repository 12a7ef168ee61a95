using System.Text.Json;
using System.Text.Json.Serialization;
using ZipLlm.Safetensors;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Store;

/// <summary>How a file of a model is stored.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<StoredFileKind>))]
internal enum StoredFileKind
{
    /// <summary>The whole file is one object.</summary>
    Blob,
    /// <summary>A safetensors file: its header is one object and each tensor another.</summary>
    Safetensors,
}

/// <summary>How a tensor was stored when its model was ingested; informational.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TensorEncoding>))]
internal enum TensorEncoding
{
    /// <summary>Encoded on its own.</summary>
    [JsonStringEnumMemberName("solo")]
    Solo,

    /// <summary>Encoded as a delta against a base tensor.</summary>
    [JsonStringEnumMemberName("delta")]
    Delta,

    /// <summary>Already in the store: deduplicated.</summary>
    [JsonStringEnumMemberName("dedup")]
    Dedup,
}

/// <summary>One tensor of a stored safetensors file, in data order.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Its dtype as the header writes it.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Object">SHA-256 of its bytes: the object holding it.</param>
/// <param name="Encoding">Solo, delta, or dedup (already stored); informational.</param>
/// <param name="Bases">
/// When the object is a delta: the objects it is decoded against, its own base first, then that base's base, and
/// so on to a solo object. Recorded so that what a model needs follows from its file entries alone.
/// </param>
internal sealed record StoredTensor(string Name, string DType, long[] Shape, ContentHash Object, TensorEncoding Encoding, ContentHash[]? Bases = null)
{
    /// <summary>The number of elements its shape holds.</summary>
    /// <exception cref="OverflowException">The shape's product does not fit 64 bits.</exception>
    public long ElementCount()
    {
        long elements = 1;
        foreach (long d in Shape)
        {
            elements = checked(elements * d);
        }
        return elements;
    }

    /// <summary>The bytes its dtype and shape make; null for a dtype this build does not know, or a size past 64 bits.</summary>
    public long? ByteLength()
    {
        try
        {
            return DTypes.TryParse(System.Text.Encoding.UTF8.GetBytes(DType), out DType dtype) && dtype.ByteCount(ElementCount()) is >= 0 and var bytes
                ? bytes
                : null;
        }
        catch (OverflowException)
        {
            return null;
        }
    }
}

/// <summary>One file of a stored model.</summary>
/// <param name="Path">Path inside the model folder, with '/' separators.</param>
/// <param name="Size">Byte length.</param>
/// <param name="Sha256">SHA-256 of the whole file: its identity (re-uploads are found by it); <c>verify</c> checks it.</param>
/// <param name="Kind">Blob or safetensors.</param>
/// <param name="Object">For a blob: the object holding the file. For safetensors: the object holding the header.</param>
/// <param name="Tensors">For safetensors: the tensors in data order.</param>
/// <param name="Xxh128">
/// XXH3-128 of the whole file, which restore checks (SHA-256 with <c>--sha256</c>); absent from manifests
/// written before it was recorded, whose files restore checks by SHA-256.
/// </param>
internal sealed record StoredFile(string Path, long Size, ContentHash Sha256, StoredFileKind Kind, ContentHash Object, StoredTensor[]? Tensors, string? Xxh128 = null);

/// <summary>
/// A stored model: written last and atomically, after all its objects, so a model is in the store
/// exactly when its manifest is. From format 2 on it checks itself: <see cref="Checksum"/> is the SHA-256 of
/// its canonical JSON without that field, and what it needs is derived from its file entries.
/// </summary>
/// <param name="Format">Manifest format version (<see cref="CurrentFormat"/> when written by this build).</param>
/// <param name="Id">The model id (<c>org/name</c>), as written in the model list.</param>
/// <param name="Role">Base, finetune or standalone.</param>
/// <param name="BaseId">A finetune's base, when it was paired with one.</param>
/// <param name="Files">Every file of the model folder.</param>
/// <param name="Objects">Format 1 only: the objects the model needs. Format 2 derives them from <paramref name="Files"/>.</param>
/// <param name="OriginalBytes">Sum of the files' sizes.</param>
/// <param name="AddedBytes">Bytes of objects this model added to the store when it was ingested.</param>
/// <param name="StoredAt">When the model was stored (UTC).</param>
/// <param name="Checksum">Format 2: <c>sha256:</c> and the hex SHA-256 of the manifest's canonical JSON without this field.</param>
/// <param name="Chunks">How many chunks of the tensors this model added were coded by each transform (absent before codec format 3).</param>
/// <param name="Sketch">
/// The object holding the model's lineage sketch (<see cref="Lineage.ModelSketch"/>): samples of its tensors that later
/// models are scored against when compress looks for their base. Absent before lineage detection; such models are
/// sketched from their objects when needed.
/// </param>
/// <param name="Revision">The hub commit the model's files were, when known (a Hugging Face cache snapshot, or what setup downloaded); absent otherwise, and in older manifests.</param>
internal sealed record Manifest(
    int Format,
    ModelId Id,
    ModelRoleKind Role,
    ModelId? BaseId,
    StoredFile[] Files,
    ContentHash[]? Objects,
    long OriginalBytes,
    long AddedBytes,
    DateTimeOffset StoredAt,
    string? Checksum = null,
    ChunkCounts? Chunks = null,
    ContentHash? Sketch = null,
    string? Revision = null)
{
    /// <summary>The manifest format this build writes: self-checking, with delta bases recorded per tensor.</summary>
    public const int CurrentFormat = 2;

    /// <summary>The oldest manifest format this build reads (an object list, no checksum).</summary>
    public const int OldestReadableFormat = 1;

    private const string ChecksumPrefix = "sha256:";

    /// <summary>
    /// Each model's role as the store holds it now, of <paramref name="all"/> the stored models: a finetune when it was
    /// stored against a base, a base when it was stored as one or another model is stored against it, standalone
    /// otherwise (so a base that lineage detection found, stored before its finetunes, reads as one).
    /// </summary>
    public static Dictionary<ModelId, ModelRoleKind> RolesAmong(IReadOnlyCollection<Manifest> all)
    {
        var bases = all.Select(m => m.BaseId).OfType<ModelId>().ToHashSet();
        return all.ToDictionary(m => m.Id, m => RoleAmong(m.Role, m.BaseId, bases.Contains(m.Id)));
    }

    /// <summary>A model's role as the store holds it now: stored with <paramref name="role"/> and <paramref name="baseId"/>, and whether some stored model is against it.</summary>
    internal static ModelRoleKind RoleAmong(ModelRoleKind role, ModelId? baseId, bool isSomeonesBase) =>
        baseId is not null ? ModelRoleKind.Finetune
        : role == ModelRoleKind.Base || isSomeonesBase ? ModelRoleKind.Base
        : ModelRoleKind.Standalone;

    /// <summary>The model's depth: the longest chain of bases any of its tensors is decoded through (0 for none).</summary>
    public int Depth() => Files.SelectMany(f => f.Tensors ?? []).Select(t => t.Bases?.Length ?? 0).DefaultIfEmpty(0).Max();

    /// <summary>A format-2 manifest of these contents, its checksum filled in.</summary>
    public static Manifest Create(ModelId id, ModelRoleKind role, ModelId? baseId, StoredFile[] files, long originalBytes, long addedBytes, DateTimeOffset storedAt,
        ChunkCounts? chunks = null, ContentHash? sketch = null, string? revision = null) =>
        new Manifest(CurrentFormat, id, role, baseId, files, null, originalBytes, addedBytes, storedAt, null, chunks, sketch, revision).Sealed();

    /// <summary>This manifest with its checksum computed afresh over its contents.</summary>
    internal Manifest Sealed() => this with { Checksum = ComputeChecksum() };

    /// <summary>
    /// Every object the model needs: each file's object, each tensor's object and the bases its delta is decoded
    /// against, and its lineage sketch (format 1: also the object list it recorded).
    /// </summary>
    public IReadOnlySet<ContentHash> NeededObjects()
    {
        var needed = new HashSet<ContentHash>();
        if (Sketch is { } sketch)
        {
            needed.Add(sketch);
        }
        foreach (StoredFile file in Files)
        {
            needed.Add(file.Object);
            foreach (StoredTensor tensor in file.Tensors ?? [])
            {
                needed.Add(tensor.Object);
                needed.UnionWith(tensor.Bases ?? []);
            }
        }
        needed.UnionWith(Objects ?? []);
        return needed;
    }

    /// <summary>Serializes the manifest as JSON.</summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, ManifestJsonContext.Default.Manifest);

    /// <summary>
    /// The bytes to commit: the JSON of this manifest, proven to read back through <see cref="Parse"/> as the very
    /// same manifest, so the store never holds a manifest its own parser would refuse.
    /// </summary>
    /// <exception cref="InvalidDataException">The manifest would not read back as written.</exception>
    public byte[] ToCheckedJson(string source)
    {
        byte[] json = ToJson();
        try
        {
            // Parse itself requires the bytes to be exactly those this manifest serializes to.
            Parse(json, source);
        }
        catch (Exception ex) when (ex is InvalidDataException or NotSupportedException)
        {
            throw new InvalidDataException($"{source}: the manifest of {Id} would not read back as written; nothing was committed: {ex.Message}", ex);
        }
        return json;
    }

    /// <summary>
    /// Whether <paramref name="checksum"/> is the checksum of <paramref name="json"/>, bytes this build wrote for a
    /// manifest (so indented as it indents, the checksum a top-level field): the SHA-256 of the same bytes with the
    /// checksum's member cut out, which is the JSON of the manifest without it. A string in JSON holds no raw newline,
    /// so the member's text, a newline and two spaces before its name, occurs once.
    /// </summary>
    private static bool ChecksumMatches(ReadOnlySpan<byte> json, string checksum)
    {
        byte[] member = System.Text.Encoding.UTF8.GetBytes($"\n  \"checksum\": \"{checksum}\"");
        int at = json.IndexOf(member);
        if (at < 0 || !checksum.StartsWith(ChecksumPrefix, StringComparison.Ordinal))
        {
            return false;
        }
        // The member and the comma that joins it to its neighbour go: the one after it, or, when it is last, the one before.
        int end = at + member.Length;
        int start = at;
        if (end < json.Length && json[end] == (byte)',')
        {
            end++;
        }
        else if (start > 0 && json[start - 1] == (byte)',')
        {
            start--;
        }
        else
        {
            return false;
        }
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        sha.AppendData(json[..start]);
        sha.AppendData(json[end..]);
        Span<byte> digest = stackalloc byte[32];
        sha.GetHashAndReset(digest);
        return ContentHash.FromDigest(digest).Hex == checksum[ChecksumPrefix.Length..];
    }

    private string ComputeChecksum() =>
        ChecksumPrefix + ContentHash.Of(JsonSerializer.SerializeToUtf8Bytes(this with { Checksum = null }, ManifestJsonContext.Default.Manifest)).Hex;

    /// <summary>Parses and validates a manifest, and checks its checksum.</summary>
    /// <exception cref="InvalidDataException">The JSON is malformed, names something invalid, or does not match its checksum.</exception>
    /// <exception cref="NotSupportedException">The manifest is of a newer format.</exception>
    public static Manifest Parse(ReadOnlySpan<byte> json, string source)
    {
        Manifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(json, ManifestJsonContext.Default.Manifest);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{source}: manifest is not valid JSON: {ex.Message}", ex);
        }
        // A missing id reads as default(ModelId); one that is there was parsed, and so checked, by its converter.
        if (manifest is null || manifest.Files is null || manifest.Id.IsDefault)
        {
            throw new InvalidDataException($"{source}: manifest is missing required fields.");
        }
        if (manifest.Format is < OldestReadableFormat or > CurrentFormat)
        {
            throw new NotSupportedException($"{source}: manifest format {manifest.Format} is not supported (this build reads {OldestReadableFormat} to {CurrentFormat}).");
        }
        if (manifest.Format >= 2)
        {
            // Checked before anything else is trusted: a changed name, a dropped entry or an edited id all show here.
            if (manifest.Checksum is null || manifest.Objects is not null)
            {
                throw new InvalidDataException($"{source}: manifest of format {manifest.Format} has no checksum or has an object list; it was not written by zipllm.");
            }
            // The checksum covers the contents; the bytes must also be the very ones written, so that a field this
            // build does not know, or any other addition the parser would skip, cannot ride along unchecked. One
            // serialization proves both: the bytes are this build's JSON of the manifest, so its JSON without the
            // checksum is those bytes without the checksum's line, which is what the checksum was taken over.
            if (!manifest.ToJson().AsSpan().SequenceEqual(json) || !ChecksumMatches(json, manifest.Checksum))
            {
                throw new InvalidDataException($"{source}: manifest does not match its checksum; it was changed after it was written.");
            }
        }
        else if (manifest.Objects is null || manifest.Checksum is not null)
        {
            throw new InvalidDataException($"{source}: manifest of format 1 lacks its object list or carries a checksum.");
        }
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (StoredFile file in manifest.Files)
        {
            // A hash the JSON lacks reads as the default value, which names nothing.
            if (file is null || !StoredPaths.IsSafe(file.Path) || file.Size < 0 || file.Sha256 == default || file.Object == default
                || (file.Xxh128 is not null && !FileDigest.IsXxh128(file.Xxh128)))
            {
                throw new InvalidDataException($"{source}: manifest has an invalid file entry \"{file?.Path}\".");
            }
            if (!paths.Add(file.Path))
            {
                throw new InvalidDataException($"{source}: manifest lists \"{file.Path}\" twice.");
            }
            if ((file.Kind == StoredFileKind.Safetensors) != (file.Tensors is not null)
                || (file.Tensors ?? []).Any(t => t is null || t.Name is null || t.Object == default || (t.Bases?.Length ?? 0) > ObjectStore.MaxDeltaDepth))
            {
                throw new InvalidDataException($"{source}: manifest has an invalid tensor list for \"{file.Path}\".");
            }
        }
        // A file and a folder of one name cannot both exist: "a" and "a/b" together would not restore.
        foreach (string path in paths)
        {
            for (int slash = path.IndexOf('/'); slash >= 0; slash = path.IndexOf('/', slash + 1))
            {
                if (paths.Contains(path[..slash]))
                {
                    throw new InvalidDataException($"{source}: manifest lists \"{path[..slash]}\" both as a file and as a folder.");
                }
            }
        }
        return manifest;
    }
}

/// <summary>Rules for paths of files inside a model folder as the store records them.</summary>
internal static class StoredPaths
{
    /// <summary>
    /// Whether <paramref name="path"/> is relative, uses '/' separators, and never leaves the folder (no empty,
    /// '.' or '..' segments): a manifest may have been tampered with. A backslash is an ordinary character of a
    /// name on Unix, and a separator only where the system says so (Windows), where it is refused.
    /// </summary>
    public static bool IsSafe(string? path)
    {
        if (string.IsNullOrEmpty(path) || path.Contains('\0') || path.StartsWith('/')
            || (path.Contains('\\') && (Path.DirectorySeparatorChar == '\\' || Path.AltDirectorySeparatorChar == '\\')))
        {
            return false;
        }
        foreach (string segment in path.Split('/'))
        {
            if (segment is "" or "." or "..")
            {
                return false;
            }
        }
        return true;
    }
}

/// <summary>How many chunks a model's new tensor objects took each way (<see cref="Codecs.ChunkTransform"/>).</summary>
/// <param name="OrderedDifference">Coded as the ordered difference against the base.</param>
/// <param name="Xor">Coded as BitX's XOR against the base, its streams coded alone or in the base exponent's context.</param>
/// <param name="Solo">Coded alone (every chunk of a solo tensor, and a delta's chunks where that was smaller).</param>
internal sealed record ChunkCounts(long OrderedDifference, long Xor, long Solo)
{
    /// <summary>The counts of <paramref name="counts"/>.</summary>
    public static ChunkCounts Of(Codecs.TransformCounts counts) => new(counts.OrderedDifference, counts.Xor + counts.ContextXor, counts.Solo);

    /// <inheritdoc/>
    public override string ToString() => $"{OrderedDifference} difference, {Xor} XOR, {Solo} solo";
}

/// <summary>
/// Manifest JSON, generated at build time: every verb reads manifests first, and reflection-based
/// serialization cost about a tenth of a second of start-up in a process that lives about one second.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    MaxDepth = 16,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(Manifest))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;
