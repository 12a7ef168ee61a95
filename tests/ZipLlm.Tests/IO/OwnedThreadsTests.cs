using System.Text.RegularExpressions;
using ZipLlm.IO;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.IO;

/// <summary>The engine's own threads: work that waits never runs on, or blocks, a thread-pool thread.</summary>
public partial class OwnedThreadsTests
{
    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    [InlineData(7, 1)]
    [InlineData(7, 3)]
    [InlineData(50, 8)]
    public async Task ForEach_AnyCountAndDegree_RunsEveryItemOnceOffThePool(int count, int degree)
    {
        int[] runs = new int[count];
        var threads = new HashSet<int>();
        bool onPool = false;

        // Called from an owned thread, as the engine calls it (the caller takes part in the loop).
        await OwnedThreads.Start("zipllm test", () =>
        {
            OwnedThreads.ForEach(Enumerable.Range(0, count).ToArray(), degree, i =>
            {
                Interlocked.Increment(ref runs[i]);
                lock (threads)
                {
                    threads.Add(Environment.CurrentManagedThreadId);
                    onPool |= Thread.CurrentThread.IsThreadPoolThread;
                }
            }, CancellationToken.None);
            return 0;
        });

        Assert.All(runs, r => Assert.Equal(1, r));
        Assert.False(onPool);
        Assert.InRange(threads.Count, 0, degree);
    }

    [Fact]
    public void ForEach_ItemsThatWaitForEachOther_RunSideBySideUpToTheDegree()
    {
        // Three items that each wait until all three have started: they finish only if three threads run them at once.
        using var started = new CountdownEvent(3);
        OwnedThreads.ForEach([0, 1, 2], 3, _ =>
        {
            started.Signal();
            Assert.True(started.Wait(TimeSpan.FromSeconds(30)), "the items did not run side by side");
        }, CancellationToken.None);
    }

    [Fact]
    public void ForEach_AnItemFails_ThrowsThatExceptionAsThrownAndStartsNoMoreItems()
    {
        int started = 0;
        var ex = Assert.Throws<InvalidDataException>(() => OwnedThreads.ForEach(Enumerable.Range(0, 1000).ToArray(), 1, i =>
        {
            Interlocked.Increment(ref started);
            if (i == 3)
            {
                throw new InvalidDataException("item 3");
            }
        }, CancellationToken.None));

        Assert.Equal("item 3", ex.Message);
        Assert.Equal(4, started);
    }

    [Fact]
    public void ForEach_Cancelled_ThrowsOperationCanceled()
    {
        using var cancel = new CancellationTokenSource();
        int started = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => OwnedThreads.ForEach(Enumerable.Range(0, 100).ToArray(), 2, i =>
        {
            if (Interlocked.Increment(ref started) == 5)
            {
                cancel.Cancel();
            }
        }, cancel.Token));
        Assert.InRange(started, 5, 6);
    }

    [Fact]
    public async Task Start_Work_RunsOnANamedThreadOfItsOwnAndGivesItsResult()
    {
        (bool OnPool, string? Name) seen = await OwnedThreads.Start("zipllm test", () => (Thread.CurrentThread.IsThreadPoolThread, Thread.CurrentThread.Name));

        Assert.Equal((false, "zipllm test"), seen);
    }

    [Fact]
    public async Task Start_WorkThrowsOrIsCancelled_TheTaskFailsOrIsCancelledTheSame()
    {
        await Assert.ThrowsAsync<InvalidDataException>(() => OwnedThreads.Start<int>("t", () => throw new InvalidDataException("bad")));
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Task<int> cancelled = OwnedThreads.Start<int>("t", () => { cancel.Token.ThrowIfCancellationRequested(); return 0; });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.True(cancelled.IsCanceled);
    }

    [Fact]
    public async Task DedicatedThreadScheduler_Tasks_RunOnItsThreadsNeverThePool()
    {
        using var scheduler = new DedicatedThreadScheduler(2, "zipllm test worker");
        var tasks = Enumerable.Range(0, 20).Select(_ => Task.Factory.StartNew(() => (Thread.CurrentThread.IsThreadPoolThread, Thread.CurrentThread.Name),
            CancellationToken.None, TaskCreationOptions.None, scheduler)).ToArray();

        var seen = await Task.WhenAll(tasks);

        Assert.All(seen, s => Assert.Equal((false, "zipllm test worker"), s));
        Assert.Equal(2, scheduler.MaximumConcurrencyLevel);
    }

    [Fact]
    public async Task WorkerBudget_ItemsAndLoops_RunOffThePool()
    {
        using var budget = new WorkerBudget(2);
        var onPool = new List<bool>();
        await OwnedThreads.Start("zipllm test", () =>
        {
            budget.ForEach(Enumerable.Range(0, 40), _ =>
            {
                lock (onPool)
                {
                    onPool.Add(Thread.CurrentThread.IsThreadPoolThread);
                }
            }, CancellationToken.None);
            return 0;
        });

        bool runOnPool = await budget.Run(() => Thread.CurrentThread.IsThreadPoolThread, CancellationToken.None);

        Assert.Equal(40, onPool.Count);
        Assert.DoesNotContain(true, onPool);
        Assert.False(runOnPool);
    }

    [Fact]
    public void Sources_OfTheLibrary_NeitherSetProcessWideThreadStateNorWrapBlockingWorkInThePool()
    {
        // The library is hosted by long-lived processes (a server, a mount): it must not change the thread pool, nor
        // hand it work that blocks. Blocking work runs on OwnedThreads, chunk work on WorkerBudget's own threads.
        string core = Path.Combine(Repository.Root, "src", "ZipLlm.Core");
        // Each file allowed, with why.
        var allowed = new Dictionary<string, string>
        {
            ["IO/WorkerBudget.cs"] = "its items and loops run on its own scheduler (TaskScheduler = Scheduler), never the pool's",
            ["Synthetic/ModelWriter.cs"] = "generating a synthetic family (setup): CPU only, never in a hosted process",
        };
        var offenders = new List<string>();
        foreach (string file in Directory.EnumerateFiles(core, "*.cs", SearchOption.AllDirectories))
        {
            if (allowed.ContainsKey(Path.GetRelativePath(core, file).Replace(Path.DirectorySeparatorChar, '/')))
            {
                continue;
            }
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") || file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            {
                continue;
            }
            string[] lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                if (PoolUse().IsMatch(lines[i]) && !lines[i].TrimStart().StartsWith("//", StringComparison.Ordinal))
                {
                    offenders.Add($"{Path.GetRelativePath(Repository.Root, file)}:{i + 1}: {lines[i].Trim()}");
                }
            }
        }
        Assert.True(offenders.Count == 0, "thread-pool use in the library:\n" + string.Join('\n', offenders));
    }

    [Fact]
    public void PoolUse_PatternItself_CatchesEachWayOfUsingThePool()
    {
        foreach (string line in new[] { "ThreadPool.SetMinThreads(8, 8);", "await Task.Run(() => Work());", "Parallel.ForEach(items, Body);",
            "Parallel.For(0, n, i => { });", "ThreadPool.QueueUserWorkItem(_ => { });", "Task.Factory.StartNew(Work);" })
        {
            Assert.Matches(PoolUse(), line);
        }
        Assert.DoesNotMatch(PoolUse(), "OwnedThreads.ForEach(items, 2, Body, token);");
    }

    [GeneratedRegex(@"\bThreadPool\.|\bTask\.Run\(|\bParallel\.For(Each)?(Async)?\(|Task\.Factory\.StartNew\(")]
    private static partial Regex PoolUse();
}
