using Microsoft.Win32.SafeHandles;
using ZipLlm.IO;

namespace ZipLlm.Safetensors;

/// <summary>
/// An open safetensors file: its validated header and positional, thread-safe reads of tensor
/// bytes. Nothing beyond the header is read until asked for, so memory does not grow with the file.
/// </summary>
internal sealed class SafetensorsFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly FileVersion _version;

    private SafetensorsFile(string path, SafeFileHandle handle, SafetensorsHeader header, long length, FileVersion version)
    {
        Path = path;
        _handle = handle;
        Header = header;
        Length = length;
        _version = version;
    }

    /// <summary>The file's path, as given to <see cref="Open"/>.</summary>
    public string Path { get; }

    /// <summary>The validated header.</summary>
    public SafetensorsHeader Header { get; }

    /// <summary>The file's byte length.</summary>
    public long Length { get; }

    /// <summary>Opens <paramref name="path"/> and validates its header against the file's length.</summary>
    /// <exception cref="InvalidDataException">The header is malformed.</exception>
    /// <exception cref="EndOfStreamException">The file is truncated.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static SafetensorsFile Open(string path)
    {
        SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            // Taken before the header is read, so any change from here on is seen by ThrowIfChanged.
            var version = FileVersion.Of(handle, path);
            long length = RandomAccess.GetLength(handle);
            var header = SafetensorsHeader.Read(new HandleReader(handle), length, path);
            return new SafetensorsFile(path, handle, header, length, version);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads <paramref name="destination"/>.Length bytes of <paramref name="tensor"/> starting
    /// <paramref name="offsetInTensor"/> bytes into it. Safe to call from several threads at once.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the tensor, or the tensor outside this file's data section.</exception>
    /// <exception cref="EndOfStreamException">The file shrank since it was opened.</exception>
    public void ReadTensor(TensorInfo tensor, long offsetInTensor, Span<byte> destination)
    {
        // Compared without adding, so a huge offset cannot overflow past the check.
        ArgumentOutOfRangeException.ThrowIfNegative(offsetInTensor);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offsetInTensor, tensor.Length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(destination.Length, tensor.Length - offsetInTensor, nameof(destination));
        ReadData(checked(tensor.Begin + offsetInTensor), destination);
    }

    /// <summary>Reads bytes of the data section at <paramref name="dataOffset"/> (relative to the end of the header).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the data section.</exception>
    /// <exception cref="EndOfStreamException">The file ends before the range does.</exception>
    public void ReadData(long dataOffset, Span<byte> destination)
    {
        // A negative offset would read the header; one past the data section, bytes appended since Open.
        ArgumentOutOfRangeException.ThrowIfNegative(dataOffset);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(dataOffset, Header.DataLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(destination.Length, Header.DataLength - dataOffset, nameof(destination));
        PositionalRead.ReadExactly(_handle, destination, checked(Header.DataOffset + dataOffset), Path);
    }

    /// <summary>Throws when the file changed (written, truncated, grown or replaced) since it was opened.</summary>
    /// <exception cref="FileChangedException">It changed.</exception>
    internal void ThrowIfChanged() => _version.ThrowIfChanged(_handle, Path, Path);

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();

    /// <summary>A forward-only stream over a handle it does not own (a FileStream would close the handle).</summary>
    private sealed class HandleReader(SafeFileHandle handle) : Stream
    {
        private long _position;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n = RandomAccess.Read(handle, buffer, _position);
            _position += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
