using System.Text;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Store.Catalog;

/// <summary>One record of a segment: a model's entry, or that the model at a key is gone.</summary>
/// <param name="Key">The manifest's key.</param>
/// <param name="Entry">The model's entry, or null: removed.</param>
internal readonly record struct CatalogRecord(string Key, CatalogEntry? Entry);

/// <summary>
/// A catalog segment: immutable records, named by the SHA-256 of its bytes (<c>seg-HEX</c>), so a reader checks it
/// whole before trusting a record and two writers of the same records write the same file. All integers
/// little-endian; strings a 7-bit-encoded length and UTF-8:
/// <code>
/// "ZLCS" | u8 version (1) | u32 record count
/// record:  u8 kind (1 entry, 2 removed) | string key
///          entry: string version | string id | u8 role | string base ("" none) | i32 depth | i32 files
///                 | i64 original bytes | i64 added bytes | i64 stored-at UTC ticks | i16 its offset in minutes
///                 | u8 chunks present [i64 difference, i64 xor, i64 solo] | u8 revision present [string]
///                 | u8 sketch present [32 bytes] | u32 n, n × 32 bytes file SHA-256 | u32 n, n × 32 bytes objects
///                 | u32 n, n bytes lineage summary
/// "ZLCE"
/// </code>
/// Later records of a key replace earlier ones, in a segment and across the segments of a root.
/// </summary>
internal static class CatalogSegment
{
    /// <summary>How a segment's file name begins.</summary>
    public const string NamePrefix = "seg-";

    private static ReadOnlySpan<byte> Magic => "ZLCS"u8;
    private static ReadOnlySpan<byte> EndMagic => "ZLCE"u8;
    private const byte Version = 1;
    private const byte EntryKind = 1;
    private const byte RemovedKind = 2;

    // A sanity cap per list, far above any model's (a model of 100,000 tensors needs about that many objects).
    private const int MaxListLength = 1 << 24;

    /// <summary>The segment's bytes and its name.</summary>
    public static (string Name, byte[] Bytes) Write(IReadOnlyCollection<CatalogRecord> records)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(Version);
            writer.Write((uint)records.Count);
            Span<byte> digest = stackalloc byte[ContentHash.Size];
            foreach (CatalogRecord record in records)
            {
                writer.Write(record.Entry is null ? RemovedKind : EntryKind);
                writer.Write(record.Key);
                if (record.Entry is not { } e)
                {
                    continue;
                }
                if (e.Objects is null)
                {
                    throw new InvalidOperationException("A catalog entry read without its objects cannot be written.");
                }
                writer.Write(e.Version);
                writer.Write(e.Id.ToString());
                writer.Write((byte)e.Role);
                writer.Write(e.BaseId?.ToString() ?? "");
                writer.Write(e.Depth);
                writer.Write(e.FileCount);
                writer.Write(e.OriginalBytes);
                writer.Write(e.AddedBytes);
                writer.Write(e.StoredAt.UtcTicks);
                writer.Write((short)e.StoredAt.Offset.TotalMinutes);
                writer.Write(e.Chunks is not null);
                if (e.Chunks is { } c)
                {
                    writer.Write(c.OrderedDifference);
                    writer.Write(c.Xor);
                    writer.Write(c.Solo);
                }
                writer.Write(e.Revision is not null);
                if (e.Revision is { } revision)
                {
                    writer.Write(revision);
                }
                writer.Write(e.Sketch is not null);
                if (e.Sketch is { } sketch)
                {
                    writer.Write(sketch.ToBytes());
                }
                foreach (HashKey[] list in new[] { e.FileHashes, e.Objects })
                {
                    writer.Write((uint)list.Length);
                    foreach (HashKey hash in list)
                    {
                        hash.WriteTo(digest);
                        writer.Write(digest);
                    }
                }
                writer.Write((uint)e.Summary.Length);
                writer.Write(e.Summary);
            }
            writer.Write(EndMagic);
        }
        byte[] bytes = buffer.ToArray();
        return (NamePrefix + ContentHash.Of(bytes).Hex, bytes);
    }

    /// <summary>
    /// The records of the segment <paramref name="name"/>, checked against its name first. With
    /// <paramref name="withObjects"/> unset, entries are read without their object lists (what compress and list need).
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not the segment the name says, or are malformed.</exception>
    public static List<CatalogRecord> Read(string name, byte[] bytes, bool withObjects)
    {
        if (name != NamePrefix + ContentHash.Of(bytes).Hex)
        {
            throw new InvalidDataException($"catalog segment {name} does not hold the bytes it is named for");
        }
        try
        {
            return ReadChecked(bytes, withObjects);
        }
        catch (Exception ex) when (ex is EndOfStreamException or FormatException or ArgumentException or OverflowException or DecoderFallbackException)
        {
            throw new InvalidDataException($"catalog segment {name} is malformed: {ex.Message}", ex);
        }
    }

    private static List<CatalogRecord> ReadChecked(byte[] bytes, bool withObjects)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes, writable: false), new UTF8Encoding(false, throwOnInvalidBytes: true));
        if (!reader.ReadBytes(4).AsSpan().SequenceEqual(Magic) || reader.ReadByte() != Version)
        {
            throw new InvalidDataException("not a catalog segment of version 1");
        }
        uint count = reader.ReadUInt32();
        if (count > bytes.Length)
        {
            throw new InvalidDataException($"{count} records in {bytes.Length} bytes");
        }
        var records = new List<CatalogRecord>((int)count);
        for (uint i = 0; i < count; i++)
        {
            byte kind = reader.ReadByte();
            string key = reader.ReadString();
            if (kind == RemovedKind)
            {
                records.Add(new CatalogRecord(key, null));
                continue;
            }
            if (kind != EntryKind)
            {
                throw new InvalidDataException($"record kind {kind}");
            }
            string version = reader.ReadString();
            ModelId id = ModelId.Parse(reader.ReadString());
            var role = (ModelRoleKind)reader.ReadByte();
            if (!Enum.IsDefined(role))
            {
                throw new InvalidDataException($"role {(int)role}");
            }
            string baseText = reader.ReadString();
            ModelId? baseId = baseText.Length == 0 ? null : ModelId.Parse(baseText);
            int depth = reader.ReadInt32();
            int files = reader.ReadInt32();
            long original = reader.ReadInt64(), added = reader.ReadInt64();
            long ticks = reader.ReadInt64();
            short offset = reader.ReadInt16();
            var storedAt = new DateTimeOffset(ticks, TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(offset));
            ChunkCounts? chunks = reader.ReadBoolean() ? new ChunkCounts(reader.ReadInt64(), reader.ReadInt64(), reader.ReadInt64()) : null;
            string? revision = reader.ReadBoolean() ? reader.ReadString() : null;
            ContentHash? sketch = reader.ReadBoolean() ? ContentHash.FromDigest(reader.ReadBytes(ContentHash.Size)) : null;
            HashKey[] fileHashes = ReadHashes(reader, keep: true)!;
            HashKey[]? objects = ReadHashes(reader, withObjects);
            byte[] summary = reader.ReadBytes(CheckedLength(reader));
            records.Add(new CatalogRecord(key, new CatalogEntry(key, version, id, role, baseId, depth, files, original, added, storedAt,
                chunks, revision, sketch, fileHashes, objects, summary)));
        }
        if (!reader.ReadBytes(4).AsSpan().SequenceEqual(EndMagic) || reader.BaseStream.Position != bytes.Length)
        {
            throw new InvalidDataException("no end marker where the records end");
        }
        return records;
    }

    private static int CheckedLength(BinaryReader reader)
    {
        uint length = reader.ReadUInt32();
        if (length > MaxListLength || length > reader.BaseStream.Length - reader.BaseStream.Position)
        {
            throw new EndOfStreamException($"a list of {length} past the segment's end");
        }
        return (int)length;
    }

    private static HashKey[]? ReadHashes(BinaryReader reader, bool keep)
    {
        uint count = reader.ReadUInt32();
        if (count > MaxListLength || (long)count * ContentHash.Size > reader.BaseStream.Length - reader.BaseStream.Position)
        {
            throw new EndOfStreamException($"{count} hashes past the segment's end");
        }
        if (!keep)
        {
            reader.BaseStream.Seek((long)count * ContentHash.Size, SeekOrigin.Current);
            return null;
        }
        var hashes = new HashKey[count];
        Span<byte> digest = stackalloc byte[ContentHash.Size];
        for (int i = 0; i < hashes.Length; i++)
        {
            reader.BaseStream.ReadExactly(digest);
            hashes[i] = HashKey.Of(digest);
        }
        return hashes;
    }
}
