using System.Buffers.Binary;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Store.Catalog;

/// <summary>A SHA-256 as four words: a catalog keeps hundreds of thousands, where a <see cref="ContentHash"/> holds its hex text.</summary>
internal readonly record struct HashKey(ulong A, ulong B, ulong C, ulong D)
{
    /// <summary>The key of a 32-byte digest.</summary>
    public static HashKey Of(ReadOnlySpan<byte> digest) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(digest), BinaryPrimitives.ReadUInt64LittleEndian(digest[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(digest[16..]), BinaryPrimitives.ReadUInt64LittleEndian(digest[24..]));

    /// <summary>The key of <paramref name="hash"/>.</summary>
    public static HashKey Of(ContentHash hash) => Of(hash.ToBytes());

    /// <summary>The digest's bytes.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, A);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], B);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], C);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], D);
    }

    /// <summary>The hash as the rest of the engine names it.</summary>
    public ContentHash ToContentHash()
    {
        Span<byte> digest = stackalloc byte[ContentHash.Size];
        WriteTo(digest);
        return ContentHash.FromDigest(digest);
    }
}

/// <summary>
/// What the catalog knows of one stored model: what <c>list</c> shows, what lineage ranks candidates by, the files
/// dedup finds again, and the objects remove and gc weigh. Built from the model's manifest, which stays the truth;
/// <see cref="Version"/> is the manifest's version when it was read, so a changed manifest is seen without reading it.
/// </summary>
/// <param name="Key">The manifest's key (<c>org/name.json</c>).</param>
/// <param name="Version">The manifest's version token, as the backend's listing gives it.</param>
/// <param name="Id">The model.</param>
/// <param name="Role">The role it was stored with.</param>
/// <param name="BaseId">Its base, when stored against one.</param>
/// <param name="Depth">The longest chain of bases its deltas are decoded through.</param>
/// <param name="FileCount">Its files.</param>
/// <param name="OriginalBytes">Its files' bytes.</param>
/// <param name="AddedBytes">Bytes its new objects took when it was stored.</param>
/// <param name="StoredAt">When it was stored.</param>
/// <param name="Chunks">How its new chunks were coded, when recorded.</param>
/// <param name="Revision">The hub commit of its files, when known.</param>
/// <param name="Sketch">The object holding its lineage sketch, when recorded.</param>
/// <param name="FileHashes">Each file's SHA-256.</param>
/// <param name="Objects">Every object it needs (<see cref="Manifest.NeededObjects"/>); null when the catalog was read without them.</param>
/// <param name="Summary">Its lineage summary (what the lineage index ranks candidates by), empty when none was made.</param>
internal sealed record CatalogEntry(
    string Key,
    string Version,
    ModelId Id,
    ModelRoleKind Role,
    ModelId? BaseId,
    int Depth,
    int FileCount,
    long OriginalBytes,
    long AddedBytes,
    DateTimeOffset StoredAt,
    ChunkCounts? Chunks,
    string? Revision,
    ContentHash? Sketch,
    HashKey[] FileHashes,
    HashKey[]? Objects,
    byte[] Summary)
{
    /// <summary>The entry of <paramref name="manifest"/>, read at <paramref name="key"/> in <paramref name="version"/>.</summary>
    public static CatalogEntry Of(string key, string version, Manifest manifest, byte[]? summary) => new(
        key, version, manifest.Id, manifest.Role, manifest.BaseId, manifest.Depth(), manifest.Files.Length, manifest.OriginalBytes,
        manifest.AddedBytes, manifest.StoredAt, manifest.Chunks, manifest.Revision, manifest.Sketch,
        [.. manifest.Files.Select(f => HashKey.Of(f.Sha256))], [.. manifest.NeededObjects().Select(HashKey.Of)], summary ?? []);

    /// <summary>Each entry's role as the store holds it now (as <see cref="Manifest.RolesAmong"/> says of manifests).</summary>
    public static Dictionary<ModelId, ModelRoleKind> RolesAmong(IReadOnlyCollection<CatalogEntry> all)
    {
        var bases = all.Select(m => m.BaseId).OfType<ModelId>().ToHashSet();
        return all.ToDictionary(m => m.Id, m => Manifest.RoleAmong(m.Role, m.BaseId, bases.Contains(m.Id)));
    }
}
