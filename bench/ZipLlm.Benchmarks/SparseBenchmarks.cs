using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Benchmarks;

/// <summary>
/// The sparse-stream kernels on a 2 MiB stream that is 95% zeros, like a finetune's XOR-ed exponent stream:
/// SSSE3 shuffles against the scalar twin. Throughput is of the full (expanded) stream.
/// </summary>
[Config(typeof(Config))]
[BytesPerOperation(Size)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class SparseBenchmarks
{
    private const int Size = 2 << 20;
    private byte[] _stream = [], _bitmap = [], _values = [], _out = [];
    private int _count;

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.ShortRun.WithWarmupCount(2).WithIterationCount(5));
            AddColumn(new ThroughputColumn());
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(5);
        _stream = new byte[Size];
        for (int i = 0; i < Size; i++)
        {
            _stream[i] = random.Next(20) == 0 ? (byte)random.Next(1, 256) : (byte)0;
        }
        _bitmap = new byte[SparseBytes.BitmapLength(Size)];
        _values = new byte[Size + SparseBytes.Slack];
        _out = new byte[Size];
        _count = SparseBytes.Compact(_stream, _bitmap, _values);
    }

    [BenchmarkCategory("Compact"), Benchmark(Baseline = true)]
    public int CompactScalar() => SparseBytes.CompactScalar(_stream, _bitmap, _values);

    [BenchmarkCategory("Compact"), Benchmark]
    public int Compact() => SparseBytes.Compact(_stream, _bitmap, _values);

    [BenchmarkCategory("Expand"), Benchmark(Baseline = true)]
    public void ExpandScalar() => SparseBytes.ExpandScalar(_bitmap, _values, _out);

    [BenchmarkCategory("Expand"), Benchmark]
    public void Expand() => SparseBytes.Expand(_bitmap, _values, _count, _out);
}
