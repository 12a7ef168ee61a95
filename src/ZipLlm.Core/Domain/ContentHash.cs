using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ZipLlm.Domain;

/// <summary>A SHA-256 content address: the name of an object in the store. In JSON, 64 lowercase hex digits.</summary>
[JsonConverter(typeof(ContentHashJsonConverter))]
internal readonly record struct ContentHash
{
    /// <summary>Bytes in a SHA-256 digest.</summary>
    public const int Size = 32;

    private readonly string _hex;

    private ContentHash(string hex) => _hex = hex;

    /// <summary>The digest as 64 lowercase hex characters.</summary>
    public string Hex => _hex ?? throw new InvalidOperationException("Default ContentHash has no value.");

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
        if (!IsLowerHex(hex, 2 * Size))
        {
            return false;
        }
        hash = new ContentHash(hex);
        return true;
    }

    /// <summary>Whether <paramref name="text"/> is exactly <paramref name="length"/> lowercase hex digits.</summary>
    internal static bool IsLowerHex([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? text, int length) =>
        text is not null && text.Length == length && text.All(c => char.IsAsciiDigit(c) || char.IsAsciiHexDigitLower(c));

    /// <summary>The raw 32 digest bytes.</summary>
    public byte[] ToBytes() => Convert.FromHexString(Hex);

    /// <inheritdoc/>
    public override string ToString() => _hex ?? "";
}

/// <summary>Reads and writes a <see cref="ContentHash"/> as its hex string; anything else is malformed JSON.</summary>
internal sealed class ContentHashJsonConverter : JsonConverter<ContentHash>
{
    /// <inheritdoc/>
    public override ContentHash Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string? text = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return ContentHash.TryParse(text, out ContentHash hash) ? hash : throw new JsonException($"\"{text}\" is not a SHA-256 hex digest.");
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, ContentHash value, JsonSerializerOptions options) => writer.WriteStringValue(value.Hex);
}
