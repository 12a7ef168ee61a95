using ZipLlm.IO;

namespace ZipLlm.Tests.IO;

/// <summary>One budget bounds every item run through it, however the loops that feed it are nested.</summary>
public class WorkerBudgetTests
{
    // Long enough to show a deadlock as a failure rather than a hung run; never reached when the budget is right.
    private static readonly TimeSpan DeadlockGuard = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ForEach_NestedInsideOuterLoops_NeverMoreItemsAtOnceThanThreads(int threads)
    {
        using var budget = new WorkerBudget(threads);
        int running = 0, peak = 0, done = 0;
        // Four outer loops side by side (as files are), each feeding the one budget: 4 * threads items would run
        // at once if each loop had a budget of its own.
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
            budget.ForEach(Enumerable.Range(0, 50), _ =>
            {
                InterlockedMax(ref peak, Interlocked.Increment(ref running));
                Thread.Sleep(1); // widen the window in which items overlap
                Interlocked.Decrement(ref running);
                Interlocked.Increment(ref done);
            }, CancellationToken.None));
        Assert.Equal(200, done);
        Assert.InRange(peak, 1, threads);
        Assert.InRange(budget.PeakBusy, 1, threads);
        Assert.Equal(0, budget.Busy);
    }

    [Fact]
    public async Task RunAndOrderedWorkers_ShareOneBudget_NeverMoreItemsAtOnceThanThreads()
    {
        const int threads = 2;
        using var budget = new WorkerBudget(threads);
        budget.Entered = () => Thread.Sleep(1);
        using var workers = new OrderedWorkers<Context>(budget, () => new Context());
        Task<int>[] scans = Enumerable.Range(0, 3).Select(i => budget.Run(() => i, CancellationToken.None)).ToArray();
        Parallel.For(0, 3, new ParallelOptions { MaxDegreeOfParallelism = 3 }, i =>
        {
            if (i == 0)
            {
                workers.Run<long>(40, index => _ => index, (_, _) => { }, CancellationToken.None);
            }
            else
            {
                budget.ForEach(Enumerable.Range(0, 40), _ => { }, CancellationToken.None);
            }
        });
        int[] results = await Task.WhenAll(scans);
        Assert.Equal(new[] { 0, 1, 2 }, results);
        Assert.InRange(budget.PeakBusy, 1, threads);
    }

    [Fact]
    public void Enter_NestedOnOneThread_CountsOnce()
    {
        using var budget = new WorkerBudget(1);
        using (budget.Enter())
        {
            using (budget.Enter())
            {
                Assert.Equal(1, budget.Busy);
            }
            Assert.Equal(1, budget.Busy);
        }
        Assert.Equal(0, budget.Busy);
        Assert.Equal(1, budget.PeakBusy);
    }

    [Fact]
    public void Enter_OutsideTheBudget_ShowsInThePeak()
    {
        // Work that marks itself but runs on threads of its own is seen: that is what the ingest test relies on.
        using var budget = new WorkerBudget(1);
        using var barrier = new Barrier(3);
        Parallel.For(0, 3, new ParallelOptions { MaxDegreeOfParallelism = 3 }, _ =>
        {
            using (budget.Enter())
            {
                Assert.True(barrier.SignalAndWait(DeadlockGuard));
            }
        });
        Assert.Equal(3, budget.PeakBusy);
    }

    [Fact]
    public async Task ForEach_ItemFails_ThrowsTheFailureAsThrownAndReleasesEverySlot()
    {
        const int threads = 3;
        using var budget = new WorkerBudget(threads);
        var ex = Assert.Throws<InvalidDataException>(() => budget.ForEach(Enumerable.Range(0, 100), i =>
        {
            if (i % 10 == 7)
            {
                throw new InvalidDataException($"item {i}");
            }
        }, CancellationToken.None));
        Assert.StartsWith("item ", ex.Message);
        Assert.Equal(0, budget.Busy);
        await AssertEverySlotIsFree(budget);
    }

    [Fact]
    public async Task Run_ItemFails_TheTaskHoldsTheFailureAndTheSlotIsReleased()
    {
        using var budget = new WorkerBudget(1);
        Task<int> failed = budget.Run<int>(() => throw new EndOfStreamException("short"), CancellationToken.None);
        Assert.Equal("short", (await Assert.ThrowsAsync<EndOfStreamException>(() => failed)).Message);
        Assert.Equal(0, budget.Busy);
        Assert.Equal(5, await budget.Run(() => 5, CancellationToken.None));
    }

    [Fact]
    public async Task ForEach_CancelledMidway_StopsAndReleasesEverySlot()
    {
        const int threads = 2;
        using var budget = new WorkerBudget(threads);
        using var cancellation = new CancellationTokenSource();
        int ran = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => budget.ForEach(Enumerable.Range(0, 10_000), i =>
        {
            if (Interlocked.Increment(ref ran) == 20)
            {
                cancellation.Cancel();
            }
            cancellation.Token.ThrowIfCancellationRequested();
        }, cancellation.Token));
        Assert.InRange(ran, 20, 9_999);
        Assert.Equal(0, budget.Busy);
        await AssertEverySlotIsFree(budget);
    }

    [Fact]
    public async Task ForEachAndRun_CancelledBeforeStart_RunNothing()
    {
        using var budget = new WorkerBudget(2);
        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();
        int ran = 0;
        Assert.ThrowsAny<OperationCanceledException>(() =>
            budget.ForEach(Enumerable.Range(0, 10), _ => Interlocked.Increment(ref ran), cancellation.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => budget.Run(() => Interlocked.Increment(ref ran), cancellation.Token));
        Assert.Equal(0, ran);
        await AssertEverySlotIsFree(budget);
    }

    [Fact]
    public void Constructor_NoThreads_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkerBudget(0));
    }

    /// <summary>Every slot can still be taken at once: items that each wait for all the others all get to run.</summary>
    private static async Task AssertEverySlotIsFree(WorkerBudget budget)
    {
        using var barrier = new Barrier(budget.Threads);
        Task<bool>[] items = Enumerable.Range(0, budget.Threads)
            .Select(_ => budget.Run(() => barrier.SignalAndWait(DeadlockGuard), CancellationToken.None)).ToArray();
        Assert.All(await Task.WhenAll(items), Assert.True);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (int seen = Volatile.Read(ref target); value > seen; seen = Volatile.Read(ref target))
        {
            Interlocked.CompareExchange(ref target, value, seen);
        }
    }

    private sealed class Context : IDisposable
    {
        public void Dispose()
        {
        }
    }
}
