using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Store;

/// <summary>What ingesting one model did.</summary>
/// <param name="ModelId">The model.</param>
/// <param name="Skipped">It was already stored; nothing was done.</param>
/// <param name="OriginalBytes">Bytes of the model's files.</param>
/// <param name="AddedBytes">Bytes of objects it added to the store.</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="Files">Files stored.</param>
/// <param name="DedupFiles">Files found whole in the store already.</param>
/// <param name="Tensors">Tensors stored.</param>
/// <param name="DedupTensors">Tensors found in the store already.</param>
/// <param name="DeltaTensors">Tensors stored as a delta against the base.</param>
/// <param name="Chunks">How many chunks of the tensors stored were coded by each transform (null when nothing was stored).</param>
internal sealed record IngestResult(
    ModelId ModelId,
    bool Skipped,
    long OriginalBytes,
    long AddedBytes,
    TimeSpan Elapsed,
    int Files,
    int DedupFiles,
    int Tensors,
    int DedupTensors,
    int DeltaTensors,
    ChunkCounts? Chunks = null)
{
    /// <summary>Original bytes per stored byte (infinite when nothing new was stored).</summary>
    public double Ratio => AddedBytes == 0 ? double.PositiveInfinity : (double)OriginalBytes / AddedBytes;

    /// <summary>The ratio for people: "3.10x", or "dedup" when nothing (or next to nothing) new was stored (<see cref="Reporting.Sizes.Ratio"/>).</summary>
    public string RatioText => Reporting.Sizes.Ratio(OriginalBytes, AddedBytes);

    /// <summary>Input throughput in MB/s.</summary>
    public double MegabytesPerSecond => Elapsed.TotalSeconds <= 0 ? 0 : OriginalBytes / 1e6 / Elapsed.TotalSeconds;
}
