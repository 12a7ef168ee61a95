using System.Numerics;
using ZipLlm.IO;

namespace ZipLlm.Codecs;

/// <summary>
/// A buffer of a <see cref="ChunkBufferPool"/>: pinned managed memory of a fixed length, rented and returned. A span
/// over it keeps its memory alive, so no span can outlive it; a buffer its renter drops without returning it (work
/// abandoned on a failure or a cancellation) is simply collected.
/// </summary>
internal sealed class ChunkBuffer
{
    private readonly byte[] _memory;
    private readonly int _start;

    internal ChunkBuffer(byte[] memory, int start, int length)
    {
        _memory = memory;
        _start = start;
        Length = length;
    }

    /// <summary>Its length in bytes: at least what was asked for when it was rented.</summary>
    public int Length { get; }

    /// <summary>The whole buffer.</summary>
    public Span<byte> AsSpan() => _memory.AsSpan(_start, Length);

    /// <summary>The buffer from <paramref name="start"/> to its end.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the buffer.</exception>
    public Span<byte> AsSpan(int start) => AsSpan().Slice(start);

    /// <summary><paramref name="length"/> bytes from <paramref name="start"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the buffer.</exception>
    public Span<byte> AsSpan(int start, int length) => AsSpan().Slice(start, length);
}

/// <summary>
/// The chunk-sized buffers of one owner (a session's workers, a standalone tool's run): power-of-two sizes, each
/// returned buffer free for any thread of the owner, so the peak follows the buffers in flight at once, which the
/// thread count bounds. Nothing is static: the pool and every buffer in it go with their owner.
/// <para>
/// Buffers of 1 MiB and more are aligned to 2 MiB and, on Linux, advised to transparent huge pages: a restore touches
/// each fresh buffer once, and in 4 KiB pages that was one page fault per 4 KiB, some 20,000 a restore, about a third of
/// its system time in a virtual machine (restore of a 267 MB finetune: 0.43 -> 0.25 s with huge pages). The memory is
/// pinned (the pinned object heap), so the alignment and the advice hold for its life.
/// </para>
/// </summary>
internal sealed class ChunkBufferPool
{
    /// <summary>The largest buffer: a chunk of the largest chunk size together with its worst-case encoding.</summary>
    public const int MaxLength = 2 * EncodedTensorFormat.MaxChunkSize;

    private const int MinBucketBits = 12; // 4 KiB
    private const int HugePage = 2 << 20;

    private readonly Stack<ChunkBuffer>[] _buckets =
        [.. Enumerable.Range(0, BitOperations.Log2(MaxLength) - MinBucketBits + 1).Select(_ => new Stack<ChunkBuffer>())];

    /// <summary>A buffer of at least <paramref name="minimumLength"/> bytes, holding whatever its last user left in it.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minimumLength"/> is negative or above <see cref="MaxLength"/>.</exception>
    public ChunkBuffer Rent(int minimumLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minimumLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minimumLength, MaxLength);
        int bucket = Bucket(minimumLength);
        Stack<ChunkBuffer> free = _buckets[bucket];
        lock (free)
        {
            if (free.TryPop(out ChunkBuffer? buffer))
            {
                return buffer;
            }
        }
        return Allocate(1 << (bucket + MinBucketBits));
    }

    /// <summary>Gives <paramref name="buffer"/> back; its user must not touch it again.</summary>
    /// <exception cref="ArgumentException">The buffer is not of a size this pool rents.</exception>
    public void Return(ChunkBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if (!BitOperations.IsPow2(buffer.Length) || buffer.Length < 1 << MinBucketBits || buffer.Length > MaxLength)
        {
            throw new ArgumentException($"A buffer of {buffer.Length} bytes is not one a chunk pool rents.", nameof(buffer));
        }
        Stack<ChunkBuffer> free = _buckets[Bucket(buffer.Length)];
        lock (free)
        {
            free.Push(buffer);
        }
    }

    private static int Bucket(int length) =>
        Math.Max(0, BitOperations.Log2(BitOperations.RoundUpToPowerOf2((uint)Math.Max(length, 1))) - MinBucketBits);

    private static unsafe ChunkBuffer Allocate(int length)
    {
        if (length < HugePage / 2)
        {
            byte[] small = GC.AllocateUninitializedArray<byte>(length, pinned: true);
            return new ChunkBuffer(small, 0, length);
        }
        // A buffer of 1 MiB (most encoded chunks of a 4 MiB chunk) takes a whole huge page, half of it never used;
        // the slack before the first 2 MiB boundary is never touched, so it costs address space, not memory.
        int mapped = Math.Max(length, HugePage);
        byte[] memory = GC.AllocateUninitializedArray<byte>(mapped + HugePage, pinned: true);
        fixed (byte* first = memory)
        {
            int start = (int)((HugePage - ((nuint)first % HugePage)) % HugePage);
            // Only a hint: where the kernel says no (huge pages off, another system), the buffer is in small pages.
            Posix.AdviseHugePages(first + start, mapped);
            return new ChunkBuffer(memory, start, length);
        }
    }
}
