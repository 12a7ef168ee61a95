using System.Buffers;
using System.Buffers.Binary;
using ZipLlm.Codecs.Zstd;

namespace ZipLlm.Tools.BitxFileTool;

/// <summary>
/// Reads a file of zstd frames one whole frame at a time, without decoding it. The buffer holds at most
/// about two of the largest frames the caller allows, so memory stays bounded whatever the file holds;
/// every malformed, oversized or truncated frame is an <see cref="InvalidDataException"/>.
/// </summary>
internal sealed class ZstdFrameReader : IDisposable
{
    // zstd's compress bound already counts the frame header, block headers and checksum; the slack tolerates
    // frames from other encoders (streaming ones may add an empty last block).
    private const int FrameSlack = 64;

    private readonly Stream _stream;
    private readonly string _name;
    private byte[] _buffer;
    private int _start, _end;
    private long _position;
    private bool _endOfFile;

    public ZstdFrameReader(Stream stream, string name)
    {
        _stream = stream;
        _name = name;
        _buffer = ArrayPool<byte>.Shared.Rent(4096);
    }

    /// <summary>Offset in the file of the next unread byte.</summary>
    public long Position => _position;

    /// <summary>Largest frame a zstd compressor makes from <paramref name="contentSize"/> bytes.</summary>
    public static int MaxFrameSize(int contentSize) => checked(ZstdContext.CompressBound(contentSize) + FrameSlack);

    /// <summary>Reads a skippable frame of the given magic holding exactly <paramref name="payloadSize"/> bytes.</summary>
    /// <returns>The payload, valid until the next read.</returns>
    public ReadOnlySpan<byte> ReadSkippableFrame(uint magic, int payloadSize, string what)
    {
        long at = _position;
        int frameSize = BitxFormat.SkippableFrameHeaderSize + payloadSize;
        if (Fill(frameSize) < BitxFormat.SkippableFrameHeaderSize)
        {
            throw new InvalidDataException($"{_name}: file is truncated: it ends at byte {at} where the {what} was expected.");
        }
        ReadOnlySpan<byte> frame = _buffer.AsSpan(_start, _end - _start);
        uint found = BinaryPrimitives.ReadUInt32LittleEndian(frame);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(frame[4..]);
        if (found != magic || size != payloadSize)
        {
            throw new InvalidDataException($"{_name}: no {what} at byte {at} (found magic 0x{found:X8}, size {size}); not a BitX file, or it is corrupt.");
        }
        if (frame.Length < frameSize)
        {
            throw new InvalidDataException($"{_name}: file is truncated inside the {what} at byte {at}.");
        }
        Advance(frameSize);
        return frame.Slice(BitxFormat.SkippableFrameHeaderSize, payloadSize);
    }

    /// <summary>
    /// Reads one standard zstd frame whose header must declare exactly <paramref name="contentSize"/> bytes
    /// of content, and which must be no larger than zstd makes of so many bytes.
    /// </summary>
    /// <returns>The whole frame, valid until the next read.</returns>
    public ReadOnlySpan<byte> ReadZstdFrame(int contentSize, string what)
    {
        long at = _position;
        int maxFrame = MaxFrameSize(contentSize);
        int available = Fill(BitxFormat.MaxZstdFrameHeaderSize);
        if (available < 4)
        {
            throw new InvalidDataException($"{_name}: file is truncated: it ends at byte {at} where {what} was expected.");
        }
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start));
        if (magic != BitxFormat.ZstdFrameMagic)
        {
            throw new InvalidDataException($"{_name}: {what} at byte {at} is not a zstd frame (magic 0x{magic:X8}).");
        }
        ulong declared = ZstdContext.FrameContentSize(_buffer.AsSpan(_start, available));
        if (declared != (ulong)contentSize)
        {
            string found = declared switch
            {
                ZstdContext.ContentSizeUnknown => "no content size",
                ZstdContext.ContentSizeError => "a malformed or truncated frame header",
                _ => $"{declared} bytes",
            };
            throw new InvalidDataException($"{_name}: {what} at byte {at} declares {found} where {contentSize} are expected.");
        }

        // Read ahead so a whole frame of the largest legal size fits; a frame still incomplete then is corrupt or truncated.
        available = Fill(maxFrame);
        if (!ZstdContext.TryGetFrameCompressedSize(_buffer.AsSpan(_start, available), out long size))
        {
            string problem = available < maxFrame ? "truncated or corrupt" : "corrupt (larger than any frame of its size)";
            throw new InvalidDataException($"{_name}: {what} at byte {at} is {problem}.");
        }
        if (size > maxFrame)
        {
            throw new InvalidDataException($"{_name}: {what} at byte {at} spans {size} bytes, more than any frame of {contentSize} bytes.");
        }
        ReadOnlySpan<byte> frame = _buffer.AsSpan(_start, (int)size);
        Advance((int)size);
        return frame;
    }

    /// <summary>Whether every byte of the file has been read.</summary>
    public bool AtEnd() => Fill(1) == 0;

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }

    private void Advance(int count)
    {
        _start += count;
        _position += count;
    }

    /// <summary>Buffers at least <paramref name="minimum"/> bytes, or all that is left; returns how many are buffered.</summary>
    private int Fill(int minimum)
    {
        if (_end - _start >= minimum || _endOfFile)
        {
            return _end - _start;
        }
        if (_buffer.Length < minimum)
        {
            // Room for two frames, so the next one is usually read ahead without moving bytes.
            byte[] larger = ArrayPool<byte>.Shared.Rent(checked(2 * minimum));
            _buffer.AsSpan(_start, _end - _start).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
            _end -= _start;
            _start = 0;
        }
        else if (_buffer.Length - _start < minimum)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }
        while (_end - _start < minimum)
        {
            int n = _stream.Read(_buffer, _end, _buffer.Length - _end);
            if (n == 0)
            {
                _endOfFile = true;
                break;
            }
            _end += n;
        }
        return _end - _start;
    }
}
