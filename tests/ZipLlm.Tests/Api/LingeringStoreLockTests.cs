using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Api;

public class LingeringStoreLockTests
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(50);

    /// <summary>A lock that counts how often it is taken and released.</summary>
    private sealed class CountingLock
    {
        private int _taken, _released;

        public int Taken => Volatile.Read(ref _taken);

        public int Released => Volatile.Read(ref _released);

        public int Held => Taken - Released;

        public Action<CancellationToken>? Before { get; init; }

        public IDisposable Take(CancellationToken cancellationToken)
        {
            Before?.Invoke(cancellationToken);
            Interlocked.Increment(ref _taken);
            return new Release(() => Interlocked.Increment(ref _released));
        }

        private sealed class Release(Action onRelease) : IDisposable
        {
            private int _done;

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _done, 1) == 0)
                {
                    onRelease();
                }
            }
        }
    }

    private static void WaitUntil(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the condition never held");
            Thread.Sleep(5);
        }
    }

    [Fact]
    public void Enter_ReadAfterRead_TakesTheLockOnceAndKeepsItsEpoch()
    {
        var counting = new CountingLock();
        using var reads = new LingeringStoreLock(counting.Take, TimeSpan.FromMinutes(1));

        long epoch = -1;
        for (int i = 0; i < 5; i++)
        {
            using (reads.Enter(CancellationToken.None))
            {
                epoch = i == 0 ? reads.Epoch : epoch;
                Assert.Equal(epoch, reads.Epoch);
            }
        }

        Assert.Equal((1, 1), (counting.Taken, counting.Held));
    }

    [Fact]
    public void Enter_NoReadForTheLinger_ReleasesAndTheNextReadTakesItInANewEpoch()
    {
        var counting = new CountingLock();
        var time = new FakeTimeProvider();
        using var reads = new LingeringStoreLock(counting.Take, Short, time);
        long first;
        using (reads.Enter(CancellationToken.None))
        {
            first = reads.Epoch;
        }

        time.Advance(Short - TimeSpan.FromTicks(1));
        Assert.Equal(1, counting.Held);
        time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(0, counting.Held);
        using (reads.Enter(CancellationToken.None))
        {
            Assert.NotEqual(first, reads.Epoch);
            Assert.Equal((2, 1), (counting.Taken, counting.Held));
        }
    }

    [Fact]
    public void Enter_OverlappingReads_ShareOneLockHeldUntilTheLastEnds()
    {
        var counting = new CountingLock();
        var time = new FakeTimeProvider();
        using var reads = new LingeringStoreLock(counting.Take, Short, time);
        IDisposable first = reads.Enter(CancellationToken.None);
        IDisposable second = reads.Enter(CancellationToken.None);
        first.Dispose();
        first.Dispose(); // twice is once

        time.Advance(Short * 4); // long past the linger: the second read still holds it
        Assert.Equal((1, 1), (counting.Taken, counting.Held));
        second.Dispose();
        time.Advance(Short);
        Assert.Equal((1, 0), (counting.Taken, counting.Held));
    }

    [Fact]
    public void Enter_FromManyThreads_NeverHoldsTheLockTwice()
    {
        var counting = new CountingLock();
        using var reads = new LingeringStoreLock(counting.Take, TimeSpan.FromMilliseconds(1));
        int mostHeld = 0;
        Parallel.For(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
        {
            using (reads.Enter(CancellationToken.None))
            {
                int held = counting.Held;
                InterlockedMax(ref mostHeld, held);
                Assert.True(held >= 1, "a read ran without the lock");
            }
        });
        // A lock released by the timer may overlap the next one taken for an instant, never more.
        Assert.InRange(mostHeld, 1, 2);
        WaitUntil(() => counting.Held == 0);
    }

    [Fact]
    public void Dispose_WhileAReadHoldsIt_ReleasesAtOnceAndRefusesNewReads()
    {
        var counting = new CountingLock();
        var reads = new LingeringStoreLock(counting.Take, TimeSpan.FromMinutes(1));
        IDisposable use = reads.Enter(CancellationToken.None);

        reads.Dispose();

        Assert.Equal(0, counting.Held);
        Assert.Throws<ObjectDisposedException>(() => reads.Enter(CancellationToken.None));
        use.Dispose(); // after the store: harmless
        reads.Dispose();
    }

    [Fact]
    public async Task Enter_WhileAnotherWaitsToTakeIt_IsCancellable()
    {
        using var release = new ManualResetEventSlim();
        using var entered = new ManualResetEventSlim();
        var counting = new CountingLock
        {
            Before = _ =>
            {
                entered.Set();
                release.Wait(TimeSpan.FromSeconds(30)); // as a gc's exclusive lock keeps readers waiting
            },
        };
        using var reads = new LingeringStoreLock(counting.Take, Short);
        Task<IDisposable> waiting = Task.Run(() => reads.Enter(CancellationToken.None));
        Assert.True(entered.Wait(TimeSpan.FromSeconds(10)));
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => reads.Enter(cancel.Token));
        release.Set();
        (await waiting).Dispose();
        Assert.Equal(1, counting.Taken);
    }

    /// <summary>A lease that the test can lose, as a bucket's lease is lost when it is not renewed in time or broken.</summary>
    private sealed class LosableLease : ILosableLock
    {
        public bool IsLost { get; set; }

        /// <summary>Broken by another process, which this holder has not noticed yet: only asking the store tells.</summary>
        public bool BrokenUnseen { get; set; }

        public bool Disposed { get; private set; }

        public bool ConfirmHeld()
        {
            IsLost |= BrokenUnseen;
            return !IsLost;
        }

        public void Dispose() => Disposed = true;
    }

    /// <summary>A reader lock over <see cref="LosableLease"/>s (each one taken is added to <paramref name="leases"/>), entered and left once in epoch <paramref name="first"/>.</summary>
    private static LingeringStoreLock LosableReads(List<LosableLease> leases, out long first)
    {
        var reads = new LingeringStoreLock(_ =>
        {
            var lease = new LosableLease();
            leases.Add(lease);
            return lease;
        }, TimeSpan.FromMinutes(1), new FakeTimeProvider());
        using (reads.Enter(CancellationToken.None))
        {
            first = reads.Epoch;
        }
        return reads;
    }

    [Fact]
    public void Enter_LeaseLostWhileHeld_NextReadLetsItGoAndTakesTheLockAgainInANewEpoch()
    {
        var leases = new List<LosableLease>();
        using LingeringStoreLock reads = LosableReads(leases, out long first);
        Assert.False(reads.WasLost(first));

        leases[0].IsLost = true; // broken by another process while this one was paused
        Assert.True(reads.WasLost(first));
        using (reads.Enter(CancellationToken.None))
        {
            // What was read under the lost lease (cached manifests) belongs to an epoch that has ended.
            Assert.NotEqual(first, reads.Epoch);
            Assert.False(reads.WasLost(reads.Epoch));
        }

        Assert.Equal(2, leases.Count);
        Assert.True(leases[0].Disposed);
        Assert.False(leases[1].Disposed);
        Assert.True(reads.WasLost(first));
    }

    [Fact]
    public void WasLost_LeaseBrokenWhileThisProcessCannotTell_AsksTheStoreAndEndsTheEpoch()
    {
        var leases = new List<LosableLease>();
        using LingeringStoreLock reads = LosableReads(leases, out long first);

        // Broken by another process while this one was paused; no renewal has failed yet, the clock says nothing.
        leases[0].BrokenUnseen = true;
        Assert.False(leases[0].IsLost);
        Assert.True(reads.WasLost(first)); // a read that met something missing asks, and is told
        using (reads.Enter(CancellationToken.None))
        {
            Assert.NotEqual(first, reads.Epoch);
        }
        Assert.True(leases[0].Disposed);
        Assert.Equal(2, leases.Count);
    }

    [Fact]
    public async Task Enter_S3LeaseBrokenByAnotherMachine_IsSeenLostAndTakenAgain()
    {
        string url = RgwGateway.NewStoreUrl();
        using S3Backend backend = RgwGateway.Shared.Backend(url, leaseDuration: TimeSpan.FromSeconds(2));
        ModelStore store = ModelStore.Open(backend, create: true);
        using var reads = new LingeringStoreLock(token => store.LockStore(exclusive: false, token), TimeSpan.FromMinutes(1));
        long first;
        using (reads.Enter(CancellationToken.None))
        {
            first = reads.Epoch;
        }
        // Another machine took the reader for dead and broke its lease: it writes over it, and the next renewal's If-Match fails.
        using (Amazon.S3.IAmazonS3 client = RgwGateway.Shared.Client())
        {
            S3Location location = S3Location.Parse(url);
            var listed = await client.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request { BucketName = location.Bucket, Prefix = location.LockPrefix("store") });
            string lease = Assert.Single(listed.S3Objects ?? []).Key;
            await client.PutObjectAsync(new Amazon.S3.Model.PutObjectRequest { BucketName = location.Bucket, Key = lease, ContentBody = "broken other-machine 1\n" });
        }

        WaitUntil(() => reads.WasLost(first));
        using (reads.Enter(CancellationToken.None))
        {
            Assert.NotEqual(first, reads.Epoch);
            Assert.False(reads.WasLost(reads.Epoch));
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
