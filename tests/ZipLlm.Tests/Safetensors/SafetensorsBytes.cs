using System.Text;
using ZipLlm.Safetensors;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Safetensors;

/// <summary>
/// Builds safetensors files by hand, byte by byte, without the code under test: an 8-byte
/// little-endian header length, the header bytes, then the data bytes.
/// </summary>
internal static class SafetensorsBytes
{
    /// <summary>A distinctive file name, so tests can check that every error message names the file.</summary>
    public const string FileName = "model-00003-of-00007.safetensors";

    /// <summary>Bits per element of every dtype, written out independently of <see cref="DTypes.BitSize"/>.</summary>
    public static readonly IReadOnlyDictionary<string, int> BitsByName = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["BOOL"] = 8,
        ["F4"] = 4,
        ["F6_E2M3"] = 6,
        ["F6_E3M2"] = 6,
        ["U8"] = 8,
        ["I8"] = 8,
        ["F8_E5M2"] = 8,
        ["F8_E4M3"] = 8,
        ["F8_E8M0"] = 8,
        ["I16"] = 16,
        ["U16"] = 16,
        ["F16"] = 16,
        ["BF16"] = 16,
        ["I32"] = 32,
        ["U32"] = 32,
        ["F32"] = 32,
        ["F64"] = 64,
        ["I64"] = 64,
        ["U64"] = 64,
        ["C64"] = 64,
    };

    /// <summary>The 8-byte little-endian length prefix, least significant byte first.</summary>
    public static byte[] Prefix(ulong headerLength)
    {
        var prefix = new byte[8];
        for (int i = 0; i < 8; i++)
        {
            prefix[i] = (byte)(headerLength >> (8 * i));
        }
        return prefix;
    }

    /// <summary>Prefix with the header's true length, then the header, then the data.</summary>
    public static byte[] File(byte[] header, byte[] data) => [.. Prefix((ulong)header.Length), .. header, .. data];

    /// <summary>Prefix, UTF-8 header JSON, then <paramref name="dataLength"/> bytes of a recognisable pattern.</summary>
    public static byte[] File(string headerJson, long dataLength) => File(Encoding.UTF8.GetBytes(headerJson), Data(dataLength));

    /// <summary>Bytes 1, 2, 3 ... (wrapping), so misplaced reads show up.</summary>
    public static byte[] Data(long length)
    {
        var data = new byte[length];
        for (long i = 0; i < length; i++)
        {
            data[i] = (byte)(i * 7 + 1);
        }
        return data;
    }

    /// <summary>One tensor entry as a JSON member, in the key order the reference writer uses.</summary>
    public static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    /// <summary>Reads the header of an in-memory file the way callers do.</summary>
    public static SafetensorsHeader Read(byte[] file) => SafetensorsHeader.Read(new MemoryStream(file, writable: false), file.Length, FileName);

    /// <summary>
    /// Asserts the file is refused with exactly <typeparamref name="TException"/>, and that the message
    /// names the file and holds every one of <paramref name="words"/> (case-insensitive).
    /// </summary>
    public static TException AssertRefused<TException>(byte[] file, params string[] words) where TException : Exception
    {
        TException ex = Assert.Throws<TException>(() => Read(file));
        Assert.Contains(FileName, ex.Message, StringComparison.Ordinal);
        foreach (string word in words)
        {
            Assert.Contains(word, ex.Message, StringComparison.OrdinalIgnoreCase);
        }
        return ex;
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="name"/> in <paramref name="dir"/> and returns the full path.</summary>
    public static string WriteTemp(TempDir dir, string name, ReadOnlySpan<byte> bytes)
    {
        string path = dir.Combine(name);
        using (var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(bytes);
        }
        return path;
    }

    /// <summary>Writes a header and data back out the way a restorer does.</summary>
    public static byte[] Rewrite(SafetensorsHeader header, ReadOnlySpan<byte> data)
    {
        using var stream = new MemoryStream();
        header.WriteTo(stream);
        stream.Write(data);
        return stream.ToArray();
    }
}
