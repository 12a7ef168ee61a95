using Microsoft.Win32.SafeHandles;
using ZipLlm.IO;

namespace ZipLlm.Config;

/// <summary>
/// Reads the small files a user hands the tool (<c>config.json</c>, a model list, <c>base_ft.json</c>, a cache's ref)
/// as hostile input: only a regular file (a link to one is followed), opened without blocking on a FIFO, and never
/// more than its cap plus one byte read, whatever size it reports (<c>/proc</c> files say 0, a file may grow).
/// </summary>
internal static class InputFile
{
    private const int ChunkSize = 64 << 10;

    /// <summary>The whole of <paramref name="fullPath"/>, at most <paramref name="maxBytes"/> bytes.</summary>
    /// <param name="fullPath">The absolute path.</param>
    /// <param name="maxBytes">The most it may hold.</param>
    /// <param name="what">What the file is, for messages: <c>config file</c>, <c>model list</c>.</param>
    /// <exception cref="FileNotFoundException">Nothing is there: "PATH: WHAT not found."</exception>
    /// <exception cref="InvalidDataException">It is a folder, a FIFO, a socket or a device, or holds more than <paramref name="maxBytes"/>.</exception>
    /// <exception cref="IOException">It cannot be opened or read.</exception>
    /// <exception cref="UnauthorizedAccessException">It may not be read.</exception>
    public static byte[] ReadAll(string fullPath, int maxBytes, string what)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        SafeFileHandle handle;
        try
        {
            handle = Posix.OpenRegularFileForReading(fullPath, fullPath, followLink: true);
        }
        catch (FileNotFoundException ex)
        {
            throw new FileNotFoundException($"{fullPath}: {what} not found.", fullPath, ex);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{fullPath}: {what} is a {Posix.Describe(Posix.Stat(fullPath).Kind)}, not a regular file.", ex);
        }
        using (handle)
        {
            byte[] buffer = new byte[Math.Min(maxBytes + 1L, ChunkSize)];
            int length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > maxBytes)
                    {
                        throw new InvalidDataException($"{fullPath}: {what} is larger than {maxBytes} bytes.");
                    }
                    Array.Resize(ref buffer, (int)Math.Min(maxBytes + 1L, (long)buffer.Length * 2));
                }
                int read = RandomAccess.Read(handle, buffer.AsSpan(length), length);
                if (read == 0)
                {
                    return buffer.AsSpan(0, length).ToArray();
                }
                length += read;
            }
        }
    }

    /// <summary>
    /// <paramref name="bytes"/> without a leading UTF-8 byte order mark, which editors on Windows save and JSON readers
    /// accept (RFC 8259 lets a parser ignore it; System.Text.Json's span parser does not).
    /// </summary>
    public static ReadOnlyMemory<byte> WithoutByteOrderMark(ReadOnlyMemory<byte> bytes) =>
        bytes.Span.StartsWith("\uFEFF"u8) ? bytes[3..] : bytes;
}
