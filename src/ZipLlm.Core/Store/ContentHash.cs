using System.Security.Cryptography;

namespace ZipLlm.Store;

/// <summary>A SHA-256 content address: the name of an object in the store.</summary>
public readonly record struct ContentHash
{
    /// <summary>Bytes in a SHA-256 digest.</summary>
    public const int Size = 32;

    private readonly string _hex;

    private ContentHash(string hex) => _hex = hex;

    /// <summary>The digest as 64 lowercase hex characters.</summary>
    public string Hex => _hex ?? throw new InvalidOperationException("Default ContentHash has no value.");

    /// <summary>Whether this holds a value (default instances do not).</summary>
    public bool HasValue => _hex is not null;

    /// <summary>The address of <paramref name="digest"/>.</summary>
    /// <exception cref="ArgumentException">The digest is not 32 bytes.</exception>
    public static ContentHash FromDigest(ReadOnlySpan<byte> digest)
    {
        if (digest.Length != Size)
        {
            throw new ArgumentException($"A SHA-256 digest is {Size} bytes, not {digest.Length}.", nameof(digest));
        }
        return new ContentHash(Convert.ToHexStringLower(digest));
    }

    /// <summary>The SHA-256 of <paramref name="bytes"/>.</summary>
    public static ContentHash Of(ReadOnlySpan<byte> bytes) => FromDigest(SHA256.HashData(bytes));

    /// <summary>Parses 64 hex characters.</summary>
    /// <exception cref="InvalidDataException">The text is not a SHA-256 hex digest.</exception>
    public static ContentHash Parse(string hex)
    {
        if (!TryParse(hex, out ContentHash hash))
        {
            throw new InvalidDataException($"\"{hex}\" is not a SHA-256 hex digest.");
        }
        return hash;
    }

    /// <summary>Parses 64 hex characters, or returns <see langword="false"/>.</summary>
    public static bool TryParse(string? hex, out ContentHash hash)
    {
        hash = default;
        if (hex is null || hex.Length != 2 * Size)
        {
            return false;
        }
        foreach (char c in hex)
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }
        hash = new ContentHash(hex);
        return true;
    }

    /// <summary>The raw 32 digest bytes.</summary>
    public byte[] ToBytes() => Convert.FromHexString(Hex);

    /// <inheritdoc/>
    public override string ToString() => _hex ?? "";
}
