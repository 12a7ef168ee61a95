using System.Globalization;
using System.Runtime.CompilerServices;
using ZipLlm.Codecs;

namespace ZipLlm.Tests.Codecs;

public class ChunkBufferPoolTests
{
    private const int HugePage = 2 << 20;

    private readonly ChunkBufferPool _pool = new();

    [Theory]
    [InlineData(0, 4096)]
    [InlineData(1, 4096)]
    [InlineData(4096, 4096)]
    [InlineData(4097, 8192)]
    [InlineData(1_000_000, 1 << 20)]
    [InlineData(4 << 20, 4 << 20)]
    [InlineData((4 << 20) + 1, 8 << 20)]
    public void Rent_GivesThePowerOfTwoAtOrAboveTheLength(int asked, int expected)
    {
        ChunkBuffer buffer = _pool.Rent(asked);
        try
        {
            Assert.Equal(expected, buffer.Length);
            Assert.Equal(expected, buffer.AsSpan().Length);
        }
        finally
        {
            _pool.Return(buffer);
        }
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(ChunkBufferPool.MaxLength + 1)]
    [InlineData(int.MaxValue)]
    public void Rent_OutsideTheRange_Throws(int asked) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => _pool.Rent(asked));

    [Fact]
    public void AsSpan_OutsideTheBuffer_Throws()
    {
        ChunkBuffer buffer = _pool.Rent(4096);
        try
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => buffer.AsSpan(4090, 7));
            Assert.Throws<ArgumentOutOfRangeException>(() => buffer.AsSpan(-1, 1));
            Assert.Throws<ArgumentOutOfRangeException>(() => buffer.AsSpan(4097));
            Assert.Equal(6, buffer.AsSpan(4090, 6).Length);
        }
        finally
        {
            _pool.Return(buffer);
        }
    }

    [Fact]
    public void BuffersRentedAtOnce_NeverOverlap()
    {
        int[] sizes = [1, 100, 4096, 70_000, 1 << 20, (2 << 20) + 3, 4 << 20, 4 << 20];
        ChunkBuffer[] rented = [.. sizes.Select(_pool.Rent)];
        try
        {
            for (int i = 0; i < rented.Length; i++)
            {
                rented[i].AsSpan().Fill((byte)(i + 1));
            }
            for (int i = 0; i < rented.Length; i++)
            {
                Assert.Equal(-1, rented[i].AsSpan().IndexOfAnyExcept((byte)(i + 1)));
            }
        }
        finally
        {
            foreach (ChunkBuffer buffer in rented)
            {
                _pool.Return(buffer);
            }
        }
    }

    [Fact]
    public void ReturnedBuffer_IsRentedAgain()
    {
        // A pool of this test's own: its free list holds what this test returned.
        ChunkBuffer first = _pool.Rent(ChunkBufferPool.MaxLength);
        _pool.Return(first);
        ChunkBuffer second = _pool.Rent(ChunkBufferPool.MaxLength);
        _pool.Return(second);
        Assert.Same(first, second);
    }

    [Fact]
    public void BufferDroppedWithoutReturn_IsCollected()
    {
        // Nothing static holds a buffer: one dropped (work abandoned on a failure) goes with the garbage, as does a pool.
        WeakReference dropped = DropOne(_pool);
        WeakReference pool = DropPoolWithABufferInIt();
        for (int i = 0; i < 3 && (dropped.IsAlive || pool.IsAlive); i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(dropped.IsAlive, "a dropped buffer is still held");
        Assert.False(pool.IsAlive, "a dropped pool is still held");
    }

    [Fact]
    public void TwoPools_NeverHandOutEachOthersBuffers()
    {
        var other = new ChunkBufferPool();
        ChunkBuffer mine = _pool.Rent(ChunkBufferPool.MaxLength);
        _pool.Return(mine);

        ChunkBuffer theirs = other.Rent(ChunkBufferPool.MaxLength);

        Assert.NotSame(mine, theirs);
        Assert.Same(mine, _pool.Rent(ChunkBufferPool.MaxLength));
    }

    [Fact]
    public void Return_BufferOfASizeNoPoolRents_Throws() =>
        Assert.Throws<ArgumentException>(() => _pool.Return(new ChunkBuffer(new byte[100], 0, 100)));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference DropOne(ChunkBufferPool pool) => new(pool.Rent(ChunkBufferPool.MaxLength));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference DropPoolWithABufferInIt()
    {
        var pool = new ChunkBufferPool();
        pool.Return(pool.Rent(1 << 20));
        return new WeakReference(pool);
    }

    private static unsafe nint Address(ChunkBuffer buffer)
    {
        fixed (byte* start = buffer.AsSpan())
        {
            return (nint)start;
        }
    }

    [Fact]
    public unsafe void LargeBuffers_StartOnAHugePageBoundary()
    {
        foreach (int size in new[] { (1 << 20) - 5, 1 << 20, 2 << 20, 3 << 20, 4 << 20, 16 << 20 })
        {
            ChunkBuffer buffer = _pool.Rent(size);
            try
            {
                fixed (byte* start = buffer.AsSpan())
                {
                    Assert.Equal(0, (long)start % HugePage);
                }
            }
            finally
            {
                _pool.Return(buffer);
            }
        }
    }

    [Fact]
    public unsafe void LargeBuffer_IsBackedByHugePages_WhereTheKernelAllowsThem()
    {
        const string setting = "/sys/kernel/mm/transparent_hugepage/enabled";
        if (!OperatingSystem.IsLinux() || !File.Exists(setting) || File.ReadAllText(setting).Contains("[never]", StringComparison.Ordinal))
        {
            return; // no transparent huge pages on this system: the advice is ignored, and the buffers work as before
        }
        ChunkBuffer buffer = _pool.Rent(ChunkBufferPool.MaxLength);
        try
        {
            Span<byte> span = buffer.AsSpan(0, 2 * HugePage);
            span.Fill(0x5A);
            fixed (byte* start = span)
            {
                Assert.True(AnonHugePagesKilobytes((ulong)start) >= 2048,
                    $"the mapping holding the buffer at 0x{(ulong)start:x} has no huge page ({setting}: {File.ReadAllText(setting).Trim()})");
            }
        }
        finally
        {
            _pool.Return(buffer);
        }
    }

    [Fact]
    public void ManyThreads_NeverShareARentedBuffer()
    {
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, worker =>
        {
            for (int round = 0; round < 200; round++)
            {
                ChunkBuffer buffer = _pool.Rent(8192 + round % 3 * 4096);
                Span<byte> span = buffer.AsSpan(0, 8192);
                span.Fill((byte)worker);
                Thread.SpinWait(50);
                Assert.Equal(-1, span.IndexOfAnyExcept((byte)worker));
                _pool.Return(buffer);
            }
        });
    }

    /// <summary>The AnonHugePages of the mapping in /proc/self/smaps that holds <paramref name="address"/>.</summary>
    private static long AnonHugePagesKilobytes(ulong address)
    {
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong from)
                && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong to))
            {
                inside = address >= from && address < to;
            }
            else if (inside && line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }
}
