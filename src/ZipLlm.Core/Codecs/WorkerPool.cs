using ZipLlm.IO;

namespace ZipLlm.Codecs;

/// <summary>
/// The workers of one run: at most <see cref="Threads"/> CPU-bound work items run at once in total, chunk encodes
/// and decodes and ingest's per-tensor hashing alike (one <see cref="WorkerBudget"/>), and each chunk worker holds its own
/// <see cref="ChunkCodec"/> (zstd contexts are not thread-safe).
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    /// <summary>
    /// Most workers a pool may have. Each keeps up to two chunks in flight with their buffers (8 MiB and more at the
    /// default chunk size), so a thousand workers already want gigabytes; far more is a typo, and counts near
    /// 2^29 overflowed the sizes of the pool's queues.
    /// </summary>
    public const int MaxThreads = 1024;

    private readonly WorkerBudget _budget;
    private readonly OrderedWorkers<ChunkCodec> _workers;

    /// <summary>
    /// What "all cores" means everywhere (a config without <c>threads</c>, a pool or a tool given 0): one worker per
    /// processor, at most <see cref="MaxThreads"/>.
    /// </summary>
    public static int DefaultThreads => Math.Min(Environment.ProcessorCount, MaxThreads);

    /// <summary>Creates a pool of <paramref name="threads"/> workers (<see cref="DefaultThreads"/> when 0).</summary>
    /// <exception cref="ArgumentOutOfRangeException">
    /// <paramref name="threads"/> is negative or above <see cref="MaxThreads"/>, or the options are out of range.
    /// </exception>
    public WorkerPool(int threads = 0, CodecOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threads, MaxThreads);
        Threads = threads == 0 ? DefaultThreads : threads;
        Options = options ?? CodecOptions.Default;
        Options.Validate();
        CodecOptions captured = Options;
        ChunkBufferPool buffers = Buffers;
        _budget = new WorkerBudget(Threads);
        _workers = new OrderedWorkers<ChunkCodec>(_budget, () => new ChunkCodec(captured, buffers));
    }

    /// <summary>Most chunks processed at once.</summary>
    public int Threads { get; }

    /// <summary>The codec settings every worker uses.</summary>
    public CodecOptions Options { get; }

    /// <summary>The pool every chunk buffer of the run comes from (each worker's codec rents from it too); it goes with the pool.</summary>
    public ChunkBufferPool Buffers { get; } = new();

    /// <summary>
    /// Produces <paramref name="count"/> results on the workers and hands them to <paramref name="consume"/>
    /// in index order on the calling thread, with at most two per worker in flight.
    /// </summary>
    public void RunOrdered<T>(long count, Func<long, ChunkCodec, T> produce, Action<long, T> consume, CancellationToken cancellationToken = default) =>
        _workers.Run(count, index => codec => produce(index, codec), consume, cancellationToken);

    /// <summary>
    /// Runs <paramref name="work"/> on one worker with its codec, as one item of the budget; the task completes on that
    /// worker, so an awaiting caller should yield (<see cref="ConfigureAwaitOptions.ForceYielding"/>) rather than go on there.
    /// </summary>
    public Task<T> RunAsync<T>(Func<ChunkCodec, T> work, CancellationToken cancellationToken = default) =>
        _workers.RunOne(work, cancellationToken);

    /// <summary>The budget every CPU-bound item of the run takes a slot of: the chunk workers' and ingest's per-tensor hashing.</summary>
    internal WorkerBudget Budget => _budget;

    /// <inheritdoc/>
    public void Dispose()
    {
        _workers.Dispose();
        _budget.Dispose();
    }
}
