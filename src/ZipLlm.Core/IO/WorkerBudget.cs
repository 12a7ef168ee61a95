using System.Runtime.ExceptionServices;

namespace ZipLlm.IO;

/// <summary>
/// The one thread budget of a run: at most <see cref="Threads"/> CPU-bound work items (chunk encodes and decodes,
/// per-tensor hashes) run at once, in total, however many files are worked on side by side.
/// Every item runs as a task on one scheduler limited to <see cref="Threads"/>, over threads the budget starts and
/// ends itself (never the thread pool's, so a host sharing the pool keeps it); loops over items go through
/// <see cref="ForEach{T}"/> rather than a <see cref="Parallel"/> loop of their own, so nesting them never multiplies
/// the count.
/// </summary>
/// <remarks>
/// Not covered: each file's one in-order pass, on a thread of its own (at most one per file worked on side by side,
/// and callers work on at most <see cref="Threads"/> files at once): reading and writing in order, and the hash of
/// the whole file, at ingest (its scan) and at restore (the check of what was written). Budgeting the ingest scan
/// made compress 34% slower at one thread, where it took turns with the tensors' hashes.
/// An item must never wait for another item of the same budget: with every slot taken by a waiter, nothing would run.
/// </remarks>
internal sealed class WorkerBudget : IDisposable
{
    // Depth of budget items on this thread: an item that enters again (a hash loop inside a budgeted task) is one worker.
    [ThreadStatic]
    private static int t_depth;

    private readonly DedicatedThreadScheduler _threads;
    private readonly ConcurrentExclusiveSchedulerPair _schedulers;
    private int _busy;
    private int _peak;

    /// <summary>Creates a budget of <paramref name="threads"/> busy workers at once.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is below 1.</exception>
    public WorkerBudget(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        _threads = new DedicatedThreadScheduler(threads, "zipllm worker");
        _schedulers = new ConcurrentExclusiveSchedulerPair(_threads, threads);
    }

    /// <summary>Most work items running at once.</summary>
    public int Threads { get; }

    /// <summary>The scheduler every item runs on; it runs at most <see cref="Threads"/> tasks at once.</summary>
    public TaskScheduler Scheduler => _schedulers.ConcurrentScheduler;

    /// <summary>Items running now: a test hook.</summary>
    public int Busy => Volatile.Read(ref _busy);

    /// <summary>Most items seen running at once since the budget was created: a test hook.</summary>
    public int PeakBusy => Volatile.Read(ref _peak);

    /// <summary>Called as an item starts, once counted: a test hook (tests slow items down to make overlaps likely).</summary>
    public Action? Entered { get; set; }

    /// <summary>
    /// Marks the calling thread busy with a work item until the scope is disposed; nested scopes on one thread count
    /// once. Every item the budget runs is marked, and work that must be inside the budget marks itself too, so
    /// <see cref="PeakBusy"/> would show work that slipped outside it.
    /// </summary>
    public Scope Enter()
    {
        if (t_depth++ == 0)
        {
            int busy = Interlocked.Increment(ref _busy);
            int peak = Volatile.Read(ref _peak);
            while (busy > peak)
            {
                int seen = Interlocked.CompareExchange(ref _peak, busy, peak);
                if (seen == peak)
                {
                    break;
                }
                peak = seen;
            }
            Entered?.Invoke();
        }
        return new Scope(this);
    }

    /// <summary>Starts <paramref name="work"/> as one item of the budget.</summary>
    public Task<T> Run<T>(Func<T> work, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(() =>
        {
            using Scope scope = Enter();
            return work();
        }, cancellationToken, TaskCreationOptions.DenyChildAttach, Scheduler);

    /// <summary>
    /// Runs <paramref name="body"/> for every item, in the budget's slots, and returns when all are done. The first
    /// failure propagates as it was thrown; cancellation throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public void ForEach<T>(IEnumerable<T> items, Action<T> body, CancellationToken cancellationToken)
    {
        var options = new ParallelOptions
        {
            MaxDegreeOfParallelism = Threads,
            TaskScheduler = Scheduler,
            CancellationToken = cancellationToken,
        };
        try
        {
            Parallel.ForEach(items, options, item =>
            {
                using Scope scope = Enter();
                body(item);
            });
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
        }
    }

    /// <summary>Ends the budget's threads once the work queued is done.</summary>
    public void Dispose()
    {
        _schedulers.Complete();
        // The pair hands its last processing task to the threads as it completes: end them only after that.
        _schedulers.Completion.ContinueWith(static (_, threads) => ((DedicatedThreadScheduler)threads!).Dispose(), _threads,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>One thread's hold on a slot of the budget's count.</summary>
    public readonly struct Scope(WorkerBudget budget) : IDisposable
    {
        /// <inheritdoc/>
        public void Dispose()
        {
            if (--t_depth == 0)
            {
                Interlocked.Decrement(ref budget._busy);
            }
        }
    }
}
