using ZipLlm.IO;

namespace ZipLlm.Tests.IO;

/// <summary>Work runs on a bounded number of workers, each with its own context, and results come back in order.</summary>
public class OrderedWorkersTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 37)]
    [InlineData(4, 200)]
    public void Run_AnyCount_ConsumesEveryResultInOrderOnTheCallingThread(int threads, int count)
    {
        using var workers = new OrderedWorkers<Context>(threads, () => new Context());
        var seen = new List<long>();
        int caller = Environment.CurrentManagedThreadId;
        workers.Run<long>(count, index => _ =>
        {
            Thread.SpinWait(Random.Shared.Next(1000)); // finish out of order
            return index * 3;
        }, (index, result) =>
        {
            Assert.Equal(caller, Environment.CurrentManagedThreadId);
            Assert.Equal(index * 3, result);
            seen.Add(index);
        }, CancellationToken.None);
        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), seen);
    }

    [Fact]
    public void Run_ManyItems_NeverMoreWorkersAtOnceNorMoreContextsThanThreads()
    {
        const int threads = 3;
        int running = 0, peak = 0, created = 0;
        using var workers = new OrderedWorkers<Context>(threads, () =>
        {
            Interlocked.Increment(ref created);
            return new Context();
        });
        workers.Run<long>(300, _ => context =>
        {
            Assert.False(context.InUse, "a context was shared by two workers at once");
            context.InUse = true;
            int now = Interlocked.Increment(ref running);
            InterlockedMax(ref peak, now);
            Thread.Sleep(1);
            Interlocked.Decrement(ref running);
            context.InUse = false;
            return 0L;
        }, (_, _) => { }, CancellationToken.None);
        Assert.InRange(peak, 1, threads);
        Assert.InRange(created, 1, threads);
    }

    [Fact]
    public void Run_ConsumerSlow_AtMostTwoItemsPerWorkerAreInFlight()
    {
        const int threads = 2;
        long prepared = 0, consumed = 0, worst = 0;
        using var workers = new OrderedWorkers<Context>(threads, () => new Context());
        workers.Run<long>(100, _ =>
        {
            long ahead = Interlocked.Increment(ref prepared) - Interlocked.Read(ref consumed);
            InterlockedMax(ref worst, ahead);
            return _ => 0L;
        }, (_, _) =>
        {
            Thread.Sleep(1);
            Interlocked.Increment(ref consumed);
        }, CancellationToken.None);
        Assert.InRange(worst, 1, 2 * threads);
    }

    [Fact]
    public void Run_WorkFails_ThrowsTheFailureAfterEveryWorkerHasStopped()
    {
        int running = 0;
        using var workers = new OrderedWorkers<Context>(2, () => new Context());
        var ex = Assert.Throws<InvalidDataException>(() => workers.Run<long>(50, index => _ =>
        {
            Interlocked.Increment(ref running);
            try
            {
                Thread.Sleep(2);
                return index == 7 ? throw new InvalidDataException("chunk 7") : index;
            }
            finally
            {
                Interlocked.Decrement(ref running);
            }
        }, (_, _) => { }, CancellationToken.None));
        Assert.Equal("chunk 7", ex.Message);
        Assert.Equal(0, Volatile.Read(ref running));
    }

    [Fact]
    public void Run_Cancelled_StopsPreparingMoreWork()
    {
        using var cancellation = new CancellationTokenSource();
        int prepared = 0;
        using var workers = new OrderedWorkers<Context>(2, () => new Context());
        Assert.ThrowsAny<OperationCanceledException>(() => workers.Run<long>(1000, index =>
        {
            Interlocked.Increment(ref prepared);
            return _ => index;
        }, (index, _) =>
        {
            if (index == 10)
            {
                cancellation.Cancel();
            }
        }, cancellation.Token));
        Assert.InRange(prepared, 11, 11 + 4);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (int seen = Volatile.Read(ref target); value > seen; seen = Volatile.Read(ref target))
        {
            Interlocked.CompareExchange(ref target, value, seen);
        }
    }

    private static void InterlockedMax(ref long target, long value)
    {
        for (long seen = Interlocked.Read(ref target); value > seen; seen = Interlocked.Read(ref target))
        {
            Interlocked.CompareExchange(ref target, value, seen);
        }
    }

    private sealed class Context : IDisposable
    {
        public bool InUse { get; set; }

        public void Dispose()
        {
        }
    }
}
