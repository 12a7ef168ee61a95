using System.Numerics;
using System.Runtime.InteropServices;
using ZipLlm.IO;

namespace ZipLlm.Codecs;

/// <summary>
/// A buffer of <see cref="ChunkBuffers"/>: native memory of a fixed length, rented and returned, never freed (the pool
/// keeps it for the next rent), so a span over it can never outlive its memory.
/// </summary>
internal sealed unsafe class ChunkBuffer
{
    private readonly byte* _start;

    internal ChunkBuffer(byte* start, int length)
    {
        _start = start;
        Length = length;
    }

    /// <summary>Its length in bytes: at least what was asked for when it was rented.</summary>
    public int Length { get; }

    /// <summary>The whole buffer.</summary>
    public Span<byte> AsSpan() => new(_start, Length);

    /// <summary>The buffer from <paramref name="start"/> to its end.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the buffer.</exception>
    public Span<byte> AsSpan(int start) => AsSpan().Slice(start);

    /// <summary><paramref name="length"/> bytes from <paramref name="start"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the buffer.</exception>
    public Span<byte> AsSpan(int start, int length) => AsSpan().Slice(start, length);

    /// <summary>
    /// A buffer its renter dropped without returning it goes back to the pool once nothing refers to it: work abandoned
    /// on a failure or a cancellation (results no consumer will take) must not lose its memory for the process's life,
    /// as a library's long-running host would see. Its memory is never freed, so nothing can read freed memory either.
    /// </summary>
    ~ChunkBuffer()
    {
        GC.ReRegisterForFinalize(this);
        ChunkBuffers.Return(this);
    }
}

/// <summary>
/// The pool every chunk-sized buffer of the codecs comes from: power-of-two sizes, each returned buffer free for any
/// thread, so the peak follows the buffers in flight at once, which the thread count bounds (a per-thread pool stranded
/// buffers on threads a longer run touched, and peak memory crept up with the model's size).
/// <para>
/// Buffers of 1 MiB and more are aligned to 2 MiB and, on Linux, advised to transparent huge pages: a restore touches
/// each fresh buffer once, and in 4 KiB pages that was one page fault per 4 KiB, some 20,000 a restore, about a third of
/// its system time in a virtual machine (restore of a 267 MB finetune: 0.43 -> 0.25 s with huge pages).
/// </para>
/// </summary>
internal static class ChunkBuffers
{
    /// <summary>The largest buffer: a chunk of the largest chunk size together with its worst-case encoding.</summary>
    public const int MaxLength = 2 * EncodedTensorFormat.MaxChunkSize;

    private const int MinBucketBits = 12; // 4 KiB
    private const int HugePage = 2 << 20;

    private static readonly Stack<ChunkBuffer>[] s_buckets =
        [.. Enumerable.Range(0, BitOperations.Log2(MaxLength) - MinBucketBits + 1).Select(_ => new Stack<ChunkBuffer>())];

    /// <summary>A buffer of at least <paramref name="minimumLength"/> bytes, holding whatever its last user left in it.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minimumLength"/> is negative or above <see cref="MaxLength"/>.</exception>
    public static ChunkBuffer Rent(int minimumLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minimumLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minimumLength, MaxLength);
        int bucket = Bucket(minimumLength);
        Stack<ChunkBuffer> free = s_buckets[bucket];
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
    public static void Return(ChunkBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        Stack<ChunkBuffer> free = s_buckets[Bucket(buffer.Length)];
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
            return new ChunkBuffer((byte*)NativeMemory.AlignedAlloc((nuint)length, 64), length);
        }
        // A buffer of 1 MiB (most encoded chunks of a 4 MiB chunk) takes a whole huge page, half of it never used.
        int mapped = Math.Max(length, HugePage);
        byte* start = (byte*)NativeMemory.AlignedAlloc((nuint)mapped, HugePage);
        // Only a hint: where the kernel says no (huge pages off, another system), the buffer is in small pages.
        Posix.AdviseHugePages(start, mapped);
        return new ChunkBuffer(start, length);
    }
}
