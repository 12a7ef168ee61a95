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

/// <summary>A summary column with MB/s (10^6 bytes per second) of input processed, from the mean time.</summary>
internal sealed class ThroughputColumn : IColumn
{
    public string Id => nameof(ThroughputColumn);
    public string ColumnName => "MB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Input megabytes (10^6 bytes) processed per second, from the mean";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        int? bytes = benchmarkCase.Descriptor.Type.GetCustomAttribute<BytesPerOperationAttribute>()?.Bytes;
        double? mean = summary[benchmarkCase]?.ResultStatistics?.Mean;
        return bytes is null || mean is null or <= 0 ? "-" : (bytes.Value / (mean.Value / 1e9) / 1e6).ToString("N0");
    }

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
