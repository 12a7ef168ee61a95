using System.Runtime.ExceptionServices;

namespace ZipLlm.IO;

/// <summary>
/// Threads the engine starts and ends itself, for work that waits: a run's in-order passes (each file's decode, hash
/// and write at restore, its scan at ingest) and a library call's whole operation. The thread pool is never asked to
/// run anything that blocks, so a host that shares it (a Kestrel server, a FUSE loop) keeps every pool thread for
/// itself, and nothing here changes a process-wide setting to make room.
/// </summary>
/// <remarks>
/// A thread costs some tens of microseconds to start; these are started a few per file or per call, never per chunk.
/// CPU-bound chunk work runs on the <see cref="WorkerBudget"/>'s own threads instead.
/// </remarks>
internal static class OwnedThreads
{
    /// <summary>
    /// Runs <paramref name="work"/> on a new thread of its own and completes the task with its result or exception;
    /// continuations run asynchronously, so an awaiting caller never runs on that thread.
    /// </summary>
    public static Task<T> Start<T>(string name, Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (OperationCanceledException ex)
            {
                done.SetCanceled(ex.CancellationToken);
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.Start();
        return done.Task;
    }

    /// <summary>
    /// Runs <paramref name="body"/> for every item, on the calling thread and up to <paramref name="degree"/> - 1 new
    /// threads, items taken in the order given, and returns when all are done. After a failure no new item starts;
    /// the first failure propagates as it was thrown, and cancellation throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public static void ForEach<T>(IReadOnlyList<T> items, int degree, Action<T> body, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(degree, 1);
        int next = -1;
        ExceptionDispatchInfo? failure = null;

        void Drain()
        {
            try
            {
                int index;
                while (Volatile.Read(ref failure) is null && (index = Interlocked.Increment(ref next)) < items.Count)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    body(items[index]);
                }
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref failure, ExceptionDispatchInfo.Capture(ex), null);
            }
        }

        int helpers = Math.Min(degree, items.Count) - 1;
        var threads = new Thread[Math.Max(helpers, 0)];
        for (int i = 0; i < threads.Length; i++)
        {
            threads[i] = new Thread(Drain) { IsBackground = true, Name = "zipllm lane" };
            threads[i].Start();
        }
        Drain();
        foreach (Thread thread in threads)
        {
            thread.Join();
        }
        failure?.Throw();
        cancellationToken.ThrowIfCancellationRequested();
    }
}
