using System.Diagnostics;

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
        using var reads = new LingeringStoreLock(counting.Take, Short);
        long first;
        using (reads.Enter(CancellationToken.None))
        {
            first = reads.Epoch;
        }

        WaitUntil(() => counting.Held == 0);
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
        using var reads = new LingeringStoreLock(counting.Take, Short);
        IDisposable first = reads.Enter(CancellationToken.None);
        IDisposable second = reads.Enter(CancellationToken.None);
        first.Dispose();
        first.Dispose(); // twice is once

        Thread.Sleep(Short * 4); // long past the linger: the second read still holds it
        Assert.Equal((1, 1), (counting.Taken, counting.Held));
        second.Dispose();
        WaitUntil(() => counting.Held == 0);
        Assert.Equal(1, counting.Taken);
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

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
