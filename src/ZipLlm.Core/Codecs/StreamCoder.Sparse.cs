using System.Buffers.Binary;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Codecs.Zstd;

namespace ZipLlm.Codecs;

// Sparse streams: a bitmap of the non-zero bytes and the bytes themselves, zstd-ed together.
internal sealed partial class StreamCoder
{
    /// <summary>Writes [non-zero count][zstd(bitmap, non-zero bytes)]; returns its length.</summary>
    private int CompressSparse(ReadOnlySpan<byte> stream, int level, Span<byte> destination)
    {
        Span<byte> scratch = SparseScratch();
        int bitmapLength = SparseBytes.BitmapLength(stream.Length);
        int count = SparseBytes.Compact(stream, scratch[..bitmapLength], scratch[bitmapLength..]);
        ReadOnlySpan<byte> parts = scratch[..(bitmapLength + count)];
        if (4 + ZstdContext.CompressBound(parts.Length) > destination.Length)
        {
            return int.MaxValue; // cannot happen for a 90%-zero stream; plain zstd then
        }
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)count);
        return 4 + _zstd.Compress(parts, destination[4..], level);
    }

    private void DecompressSparse(ReadOnlySpan<byte> stored, Span<byte> destination)
    {
        if (stored.Length < 4)
        {
            throw new InvalidDataException("sparse stream shorter than its count.");
        }
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(stored);
        if (count > (uint)destination.Length)
        {
            throw new InvalidDataException($"sparse stream claims {count} non-zero bytes in {destination.Length}.");
        }
        Span<byte> scratch = SparseScratch();
        int bitmapLength = SparseBytes.BitmapLength(destination.Length);
        _zstd.DecompressExact(stored[4..], scratch[..(bitmapLength + (int)count)]);
        SparseBytes.Expand(scratch[..bitmapLength], scratch[bitmapLength..], (int)count, destination);
    }

    /// <summary>Room for a chunk's bitmap and all its bytes, plus the kernels' slack.</summary>
    private Span<byte> SparseScratch() =>
        _sparse.Get(SparseBytes.BitmapLength(_options.ChunkSize) + _options.ChunkSize + SparseBytes.Slack);
}
