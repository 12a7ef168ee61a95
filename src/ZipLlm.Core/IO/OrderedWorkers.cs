using System.Collections.Concurrent;

namespace ZipLlm.IO;

/// <summary>
/// Runs numbered work items on at most <c>threads</c> workers, each with a context of its own (zstd contexts
/// are not thread-safe), and hands the results to the calling thread in order. At most two items per worker
/// are in flight, so memory is bounded by the thread count, not the number of items. The items run in a
/// <see cref="WorkerBudget"/>, which may be shared with other CPU-bound work of the same run.
/// </summary>
internal sealed class OrderedWorkers<TContext> : IDisposable
    where TContext : IDisposable
{
    private readonly ConcurrentBag<TContext> _contexts = [];
    private readonly Func<TContext> _create;
    private readonly WorkerBudget _budget;
    private readonly bool _ownsBudget;

    /// <summary>Workers with a budget of their own, of <paramref name="threads"/>.</summary>
    public OrderedWorkers(int threads, Func<TContext> create)
        : this(new WorkerBudget(threads), create, ownsBudget: true)
    {
    }

    /// <summary>Workers in <paramref name="budget"/>, which the caller keeps and disposes.</summary>
    public OrderedWorkers(WorkerBudget budget, Func<TContext> create)
        : this(budget, create, ownsBudget: false)
    {
    }

    private OrderedWorkers(WorkerBudget budget, Func<TContext> create, bool ownsBudget)
    {
        _budget = budget;
        _create = create;
        _ownsBudget = ownsBudget;
    }

    public int Threads => _budget.Threads;

    /// <summary>
    /// For each index in order: <paramref name="prepare"/> runs on the calling thread (reading input that must be
    /// read in order) and returns the work to run on a worker; <paramref name="consume"/> gets the results in order
    /// on the calling thread. On failure, in-flight work is waited for and the first error propagates.
    /// </summary>
    public void Run<T>(long count, Func<long, Func<TContext, T>> prepare, Action<long, T> consume, CancellationToken cancellationToken)
    {
        if (count == 1)
        {
            // Still in the budget: a file of one-chunk tensors would otherwise encode on the caller's thread beside
            // a full set of workers.
            Func<TContext, T> single = prepare(0);
            consume(0, _budget.Run(() => WithContext(single), cancellationToken).GetAwaiter().GetResult());
            return;
        }
        int window = 2 * Threads;
        var inflight = new Queue<(long Index, Task<T> Task)>(window);
        long next = 0;
        try
        {
            while (next < count || inflight.Count > 0)
            {
                while (next < count && inflight.Count < window)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    long index = next++;
                    Func<TContext, T> work = prepare(index);
                    inflight.Enqueue((index, _budget.Run(() => WithContext(work), cancellationToken)));
                }
                (long done, Task<T> task) = inflight.Dequeue();
                consume(done, task.GetAwaiter().GetResult());
            }
        }
        finally
        {
            // No worker may touch a caller's buffer after we return; results of abandoned work go to the garbage collector.
            foreach ((_, Task<T> task) in inflight)
            {
                try
                {
                    task.Wait(CancellationToken.None);
                }
                catch (AggregateException)
                {
                    // The first failure is already propagating.
                }
            }
        }
    }

    /// <summary>Runs <paramref name="work"/> on one worker, with a context of its own, as one item of the budget.</summary>
    public Task<T> RunOne<T>(Func<TContext, T> work, CancellationToken cancellationToken) =>
        _budget.Run(() => WithContext(work), cancellationToken);

    public void Dispose()
    {
        if (_ownsBudget)
        {
            _budget.Dispose();
        }
        while (_contexts.TryTake(out TContext? context))
        {
            context.Dispose();
        }
    }

    private T WithContext<T>(Func<TContext, T> work)
    {
        if (!_contexts.TryTake(out TContext? context))
        {
            context = _create();
        }
        try
        {
            return work(context);
        }
        finally
        {
            _contexts.Add(context);
        }
    }
}
