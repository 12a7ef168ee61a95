using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace ZipLlm.Benchmarks;

/// <summary>How many input bytes one invocation of every benchmark in the class processes.</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class BytesPerOperationAttribute(int bytes) : Attribute
{
    public int Bytes { get; } = bytes;
}

/// <summary>
/// A summary column with MB/s (10^6 bytes per second) of input processed, from the mean time, or with
/// <paramref name="best"/> from the fastest iteration: on a machine shared with other work the mean follows the load,
/// the best iteration much less.
/// </summary>
internal sealed class ThroughputColumn(bool best = false) : IColumn
{
    public string Id => nameof(ThroughputColumn) + (best ? "Best" : "");
    public string ColumnName => best ? "best MB/s" : "MB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => best
        ? "Input megabytes (10^6 bytes) processed per second, from the fastest iteration"
        : "Input megabytes (10^6 bytes) processed per second, from the mean";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        int? bytes = benchmarkCase.Descriptor.Type.GetCustomAttribute<BytesPerOperationAttribute>()?.Bytes;
        double? mean = best ? summary[benchmarkCase]?.ResultStatistics?.Min : summary[benchmarkCase]?.ResultStatistics?.Mean;
        return bytes is null || mean is null or <= 0 ? "-" : (bytes.Value / (mean.Value / 1e9) / 1e6).ToString("N0");
    }

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
