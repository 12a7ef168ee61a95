using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Benchmarks;

/// <summary>
/// The BitX kernels on 4 MiB of words, vector against scalar. The jobs run the same code with AVX-512, then
/// also AVX2, disabled in the runtime, which measures each vector width of the kernels (Vector512, 256, 128).
/// </summary>
[Config(typeof(Config))]
[BytesPerOperation(Size)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class KernelBenchmarks
{
    private const int Size = 4 << 20;
    private byte[] _words = [], _base = [], _out = [], _exp = [], _sm = [];

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            Job shortRun = Job.ShortRun.WithWarmupCount(2).WithIterationCount(5);
            AddJob(shortRun.WithId("Vector512"));
            AddJob(shortRun.WithEnvironmentVariables(new EnvironmentVariable("DOTNET_EnableAVX512F", "0")).WithId("Vector256"));
            AddJob(shortRun.WithEnvironmentVariables(new EnvironmentVariable("DOTNET_EnableAVX512F", "0"), new EnvironmentVariable("DOTNET_EnableAVX2", "0")).WithId("Vector128"));
            AddColumn(new ThroughputColumn());
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        _words = BenchData.RandomBytes(Size, 1);
        _base = BenchData.RandomBytes(Size, 2);
        _out = new byte[Size];
        _exp = new byte[Size / 2];
        _sm = new byte[Size / 2];
        Bf16Split.Split(_words, default, _exp, _sm);
    }

    [BenchmarkCategory("Xor"), Benchmark(Baseline = true)]
    public void XorScalar() => XorKernel.XorScalar(_words, _base, _out);

    [BenchmarkCategory("Xor"), Benchmark]
    public void Xor() => XorKernel.Xor(_words, _base, _out);

    [BenchmarkCategory("Split"), Benchmark(Baseline = true)]
    public void SplitScalar() => Bf16Split.SplitScalar(_words, default, _exp, _sm);

    [BenchmarkCategory("Split"), Benchmark]
    public void Split() => Bf16Split.Split(_words, default, _exp, _sm);

    [BenchmarkCategory("SplitXor"), Benchmark(Baseline = true)]
    public void SplitXorScalar() => Bf16Split.SplitScalar(_words, _base, _exp, _sm);

    [BenchmarkCategory("SplitXor"), Benchmark]
    public void SplitXor() => Bf16Split.Split(_words, _base, _exp, _sm);

    [BenchmarkCategory("Merge"), Benchmark(Baseline = true)]
    public void MergeScalar() => Bf16Split.MergeScalar(_exp, _sm, default, _out);

    [BenchmarkCategory("Merge"), Benchmark]
    public void Merge() => Bf16Split.Merge(_exp, _sm, default, _out);

    [BenchmarkCategory("MergeXor"), Benchmark(Baseline = true)]
    public void MergeXorScalar() => Bf16Split.MergeScalar(_exp, _sm, _base, _out);

    [BenchmarkCategory("MergeXor"), Benchmark]
    public void MergeXor() => Bf16Split.Merge(_exp, _sm, _base, _out);
}
