namespace ZipLlm.Tools.BitxFileTool;

/// <summary>Settings of <see cref="BitxFile"/>.</summary>
internal sealed record BitxOptions
{
    /// <summary>Workers compressing or decompressing chunks at once, up to <see cref="Codecs.WorkerPool.MaxThreads"/>; 0 means all cores.</summary>
    public int Threads { get; init; }

    /// <summary>zstd level of both streams. Default 3, as the original BitX tool.</summary>
    public int Level { get; init; } = 3;

    /// <summary>Bytes of delta image per zstd frame (even). Decompression takes it from the files.</summary>
    public int ChunkSize { get; init; } = BitxFormat.DefaultChunkSize;

    /// <summary>Default options.</summary>
    public static BitxOptions Default { get; } = new();

    /// <summary>Checks the options are usable.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The thread count, level or chunk size is out of range.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(Threads, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Threads, Codecs.WorkerPool.MaxThreads, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfLessThan(Level, -7, nameof(Level));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Level, 22, nameof(Level));
        if (!BitxFormat.IsValidChunkSize(ChunkSize))
        {
            throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize,
                $"Chunk size must be even and between {BitxFormat.MinChunkSize} and {BitxFormat.MaxChunkSize}.");
        }
    }

    internal int EffectiveThreads => Threads == 0 ? Codecs.WorkerPool.DefaultThreads : Threads;
}
