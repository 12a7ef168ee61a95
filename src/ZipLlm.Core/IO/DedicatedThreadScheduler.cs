using System.Collections.Concurrent;

namespace ZipLlm.IO;

/// <summary>
/// A task scheduler with threads of its own, started with it and ended by <see cref="Dispose"/>: a run's CPU-bound
/// chunk work (and the object reads it makes) never takes a thread-pool thread, so a long-lived host's pool stays
/// free for its requests, and the run needs no process-wide thread-pool setting to keep its workers busy.
/// </summary>
internal sealed class DedicatedThreadScheduler : TaskScheduler, IDisposable
{
    private readonly BlockingCollection<Task> _queue = [];
    private readonly Thread[] _threads;

    /// <summary>Starts <paramref name="threads"/> threads named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is below 1.</exception>
    public DedicatedThreadScheduler(int threads, string name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _threads = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            _threads[i] = new Thread(Work) { IsBackground = true, Name = name };
            _threads[i].Start();
        }
    }

    /// <inheritdoc/>
    public override int MaximumConcurrencyLevel => _threads.Length;

    /// <summary>Whether the calling thread is one of this scheduler's.</summary>
    public bool IsOwnThread => Array.IndexOf(_threads, Thread.CurrentThread) >= 0;

    /// <summary>Lets the threads finish what is queued, then end; tasks queued afterwards run inline or fail to queue.</summary>
    public void Dispose() => _queue.CompleteAdding();

    /// <inheritdoc/>
    protected override void QueueTask(Task task)
    {
        if (!_queue.TryAdd(task))
        {
            // Queued after Dispose: run it here rather than lose it (a cancellation or a late continuation).
            TryExecuteTask(task);
        }
    }

    /// <inheritdoc/>
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) =>
        IsOwnThread && !taskWasPreviouslyQueued && TryExecuteTask(task);

    /// <inheritdoc/>
    protected override IEnumerable<Task> GetScheduledTasks() => _queue.ToArray();

    private void Work()
    {
        foreach (Task task in _queue.GetConsumingEnumerable())
        {
            TryExecuteTask(task);
        }
    }
}
