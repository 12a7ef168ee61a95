namespace ZipLlm.Throughput;

/// <summary>One timed run, as measured; the derived columns come from <see cref="Analysis.Derive"/>.</summary>
/// <param name="Mode">"restore" or "compress".</param>
/// <param name="Tool">"zipllm" or "zstd".</param>
/// <param name="Model">The model id restored, or <see cref="Measurement.FamilyModel"/> for a compress of the whole list.</param>
/// <param name="Threads">The thread count asked for.</param>
/// <param name="Run">1-based run number.</param>
/// <param name="Bytes">Original bytes moved: the model folder(s) read (compress) or written (restore).</param>
/// <param name="Seconds">Wall clock of the whole process, start to exit.</param>
/// <param name="PeakRssMb">Peak resident set of the process and its children, in MB (10^6 bytes); null when unknown.</param>
/// <param name="StoredBytes">Compress only: bytes on disk afterwards (store objects + manifests, or the .tar.zst).</param>
/// <param name="CpuSeconds">CPU time (user + system) of the process and its children; null when unknown (files written before it was measured).</param>
internal sealed record Measurement(
    string Mode,
    string Tool,
    string Model,
    int Threads,
    int Run,
    long Bytes,
    double Seconds,
    double? PeakRssMb,
    long? StoredBytes,
    double? CpuSeconds = null)
{
    public const string Restore = "restore";
    public const string Compress = "compress";
    public const string ZipLlm = "zipllm";
    public const string Zstd = "zstd";

    /// <summary>The model column of a compress run over every model of the config.</summary>
    public const string FamilyModel = "family";

    /// <summary>Throughput in GB/s (10^9 bytes per second).</summary>
    public double Gbps => Seconds > 0 ? Bytes / Seconds / 1e9 : double.NaN;
}

/// <summary>A measurement with the columns computed over the whole set.</summary>
/// <param name="Speedup">Throughput over the median 1-thread throughput of the same mode, tool and model; NaN when there is no 1-thread run.</param>
/// <param name="Efficiency">Speedup divided by the thread count.</param>
internal sealed record Row(Measurement M, double Speedup, double Efficiency);
