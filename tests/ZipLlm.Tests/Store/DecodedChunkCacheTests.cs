using ZipLlm.Domain;
using ZipLlm.Store;

namespace ZipLlm.Tests.Store;

/// <summary>The decoded-chunk cache: bounded in bytes, least recently used out first, and never a chunk under another's name.</summary>
public class DecodedChunkCacheTests
{
    private static readonly ContentHash A = ContentHash.Of("a"u8);
    private static readonly ContentHash B = ContentHash.Of("b"u8);

    [Fact]
    public void TryGet_ChunksAdded_GivesEachUnderItsObjectAndIndexOnly()
    {
        var cache = new DecodedChunkCache(100);
        cache.Add(A, 0, [1, 2]);
        cache.Add(A, 1, [3]);
        cache.Add(B, 0, [4]);

        Assert.True(cache.TryGet(A, 0, out byte[] a0));
        Assert.Equal([1, 2], a0);
        Assert.True(cache.TryGet(A, 1, out byte[] a1));
        Assert.Equal([3], a1);
        Assert.True(cache.TryGet(B, 0, out byte[] b0));
        Assert.Equal([4], b0);
        Assert.False(cache.TryGet(B, 1, out _));
        Assert.Equal((3, 1), cache.Counts);
        Assert.Equal(4, cache.Bytes);
    }

    [Fact]
    public void Add_PastCapacity_EvictsTheLeastRecentlyUsedAndStaysWithinIt()
    {
        var cache = new DecodedChunkCache(30);
        cache.Add(A, 0, new byte[10]);
        cache.Add(A, 1, new byte[10]);
        cache.Add(A, 2, new byte[10]);
        Assert.True(cache.TryGet(A, 0, out _)); // used: chunk 1 is now the oldest

        cache.Add(A, 3, new byte[15]);

        Assert.True(cache.TryGet(A, 0, out _));
        Assert.False(cache.TryGet(A, 1, out _));
        Assert.False(cache.TryGet(A, 2, out _));
        Assert.True(cache.TryGet(A, 3, out _));
        Assert.Equal(25, cache.Bytes);
    }

    [Fact]
    public void Add_ChunkLargerThanTheCacheOrCapacityZero_KeepsNothing()
    {
        var small = new DecodedChunkCache(8);
        small.Add(A, 0, new byte[9]);
        var none = new DecodedChunkCache(0);
        none.Add(A, 0, new byte[1]);

        Assert.False(small.TryGet(A, 0, out _));
        Assert.False(none.TryGet(A, 0, out _));
        Assert.Equal(0, small.Bytes + none.Bytes);
    }

    [Fact]
    public void Add_SameChunkTwice_KeepsTheFirstAndCountsItOnce()
    {
        var cache = new DecodedChunkCache(100);
        cache.Add(A, 0, [1]);
        cache.Add(A, 0, [9]);

        Assert.True(cache.TryGet(A, 0, out byte[] kept));
        Assert.Equal([1], kept);
        Assert.Equal(1, cache.Bytes);
    }
}
