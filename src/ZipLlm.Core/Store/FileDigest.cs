using System.IO.Hashing;
using System.Security.Cryptography;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Store;

/// <summary>
/// The hashes of one file, taken as its bytes stream past in order: SHA-256, the file's identity (and the
/// id the Hugging Face hub lists for it), and XXH3-128, a check about twenty times cheaper that restore uses
/// by default. Either may be left out. Not thread-safe.
/// </summary>
internal sealed class FileDigest : IDisposable
{
    private readonly IncrementalHash? _sha256;
    private readonly XxHash128? _xxh128;
    private long _length;

    /// <summary>Starts a digest taking the hashes asked for.</summary>
    /// <exception cref="ArgumentException">Neither hash is asked for.</exception>
    public FileDigest(bool sha256, bool xxh128)
    {
        if (!sha256 && !xxh128)
        {
            throw new ArgumentException("A digest needs at least one hash.");
        }
        _sha256 = sha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        _xxh128 = xxh128 ? new XxHash128() : null;
    }

    /// <summary>Bytes appended so far.</summary>
    public long Length => _length;

    /// <summary>
    /// A digest to check a restored <paramref name="file"/>: XXH3-128 when the manifest recorded it and
    /// <paramref name="sha256"/> is not set, else SHA-256 (manifests written before XXH3-128 was recorded).
    /// </summary>
    public static FileDigest ForCheck(StoredFile file, bool sha256) => new(sha256: sha256 || file.Xxh128 is null, xxh128: !sha256 && file.Xxh128 is not null);

    /// <summary>Hashes the next bytes of the file.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        _sha256?.AppendData(bytes);
        _xxh128?.Append(bytes);
        _length += bytes.Length;
    }

    /// <summary>SHA-256 of the bytes appended so far.</summary>
    /// <exception cref="InvalidOperationException">This digest does not take SHA-256.</exception>
    public ContentHash Sha256() =>
        ContentHash.FromDigest((_sha256 ?? throw new InvalidOperationException("This digest does not take SHA-256.")).GetCurrentHash());

    /// <summary>XXH3-128 of the bytes appended so far, as 32 lowercase hex characters.</summary>
    /// <exception cref="InvalidOperationException">This digest does not take XXH3-128.</exception>
    public string Xxh128() =>
        Convert.ToHexStringLower((_xxh128 ?? throw new InvalidOperationException("This digest does not take XXH3-128.")).GetCurrentHash());

    /// <summary>Whether <paramref name="hex"/> has the form of an XXH3-128 digest: 32 lowercase hex characters.</summary>
    public static bool IsXxh128(string? hex) => ContentHash.IsLowerHex(hex, 32);

    /// <summary>
    /// Checks the bytes appended against what <paramref name="file"/> recorded at ingest: its size, and
    /// every hash this digest took.
    /// </summary>
    /// <exception cref="InvalidDataException">The length or a hash differs: the store is damaged.</exception>
    public void Check(ModelId modelId, StoredFile file)
    {
        if (Mismatch(file) is { } problem)
        {
            throw new InvalidDataException($"{modelId}: {file.Path} does not match the hash recorded at ingest ({problem}); the store is damaged.");
        }
    }

    /// <summary>How the bytes appended differ from what <paramref name="file"/> recorded at ingest, or null when they match.</summary>
    public string? Mismatch(StoredFile file)
    {
        if (_length != file.Size)
        {
            return $"{_length} bytes, expected {file.Size}";
        }
        if (_sha256 is not null && Sha256() is var sha && sha != file.Sha256)
        {
            return $"SHA-256 {sha.Hex[..12]}..., expected {file.Sha256.Hex[..12]}...";
        }
        if (_xxh128 is not null && Xxh128() is var xxh && xxh != file.Xxh128)
        {
            return $"XXH3-128 {xxh[..12]}..., expected {file.Xxh128?[..Math.Min(12, file.Xxh128.Length)]}...";
        }
        return null;
    }

    /// <inheritdoc/>
    public void Dispose() => _sha256?.Dispose();
}
