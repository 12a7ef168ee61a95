using Microsoft.Win32.SafeHandles;

namespace ZipLlm.IO;

/// <summary>Positional reads that fill the whole buffer; safe to call from several threads on one handle.</summary>
internal static class PositionalRead
{
    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes at <paramref name="position"/>.</summary>
    /// <param name="file">The open file.</param>
    /// <param name="destination">Where to put the bytes.</param>
    /// <param name="position">Offset in the file.</param>
    /// <param name="name">Named in the error (a path or an object name).</param>
    /// <exception cref="EndOfStreamException">The file ends first (it shrank, or it is truncated).</exception>
    public static void ReadExactly(SafeFileHandle file, Span<byte> destination, long position, string name)
    {
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(file, destination, position);
            if (n == 0)
            {
                throw new EndOfStreamException($"{name}: file ended at byte {position}; it is truncated or changed while being read.");
            }
            destination = destination[n..];
            position += n;
        }
    }
}
