using System.Collections.Concurrent;

namespace ZipLlm.Codecs;

/// <summary>
/// The workers that encode and decode chunks: at most <see cref="Threads"/> run at once, and
/// each holds its own <see cref="ChunkCodec"/> (zstd contexts are not thread-safe).
/// </summary>
public sealed class WorkerPool : IDisposable
{
    private readonly ConcurrentBag<ChunkCodec> _codecs = [];
    private readonly ConcurrentExclusiveSchedulerPair _schedulers;

    /// <summary>Creates a pool of <paramref name="threads"/> workers (all cores when 0).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is negative.</exception>
    public WorkerPool(int threads = 0, CodecOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        Threads = threads == 0 ? Environment.ProcessorCount : threads;
        Options = options ?? CodecOptions.Default;
        Options.Validate();
        _schedulers = new ConcurrentExclusiveSchedulerPair(TaskScheduler.Default, Threads);
    }

    /// <summary>Most chunks processed at once.</summary>
    public int Threads { get; }

    /// <summary>The codec settings every worker uses.</summary>
    public CodecOptions Options { get; }

    /// <summary>Runs <paramref name="work"/> on a worker with a codec of its own.</summary>
    public Task<T> Run<T>(Func<ChunkCodec, T> work, CancellationToken cancellationToken = default) =>
        Task.Factory.StartNew(() => WithCodec(work), cancellationToken, TaskCreationOptions.DenyChildAttach, _schedulers.ConcurrentScheduler);

    /// <summary>Runs <paramref name="work"/> on the calling thread with a pooled codec.</summary>
    public T WithCodec<T>(Func<ChunkCodec, T> work)
    {
        if (!_codecs.TryTake(out ChunkCodec? codec))
        {
            codec = new ChunkCodec(Options);
        }
        try
        {
            return work(codec);
        }
        finally
        {
            _codecs.Add(codec);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _schedulers.Complete();
        while (_codecs.TryTake(out ChunkCodec? codec))
        {
            codec.Dispose();
        }
    }
}
