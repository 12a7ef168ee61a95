using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using ZipLlm.Codecs.Entropy;

namespace ZipLlm.Benchmarks;

/// <summary>
/// The rANS coder on 2 Mi symbols, a chunk's worth: an ordered difference's symbols in 16 contexts (near-Gaussian,
/// a spread set by the context) and a solo exponent stream's in one, in the format's 64 lanes; decoded by the
/// processor's best path, the AVX2 one and the scalar twin. Throughput is of symbols (one byte each).
/// </summary>
[Config(typeof(Config))]
[BytesPerOperation(Size)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class RansBenchmarks
{
    private const int Size = 2 << 20;
    private readonly ContextRans _rans = new();
    private byte[] _symbols = [], _contexts = [], _encoded16 = [], _encoded1 = [], _output = [];
    private int _length16, _length1;

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.ShortRun.WithWarmupCount(2).WithIterationCount(9));
            AddColumn(new ThroughputColumn(), new ThroughputColumn(best: true));
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(7);
        _symbols = new byte[Size];
        _contexts = new byte[Size];
        for (int i = 0; i < Size; i++)
        {
            _contexts[i] = (byte)random.Next(16);
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            double gaussian = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            _symbols[i] = (byte)Math.Min(254, Math.Abs((int)(gaussian * 4 * (1 + _contexts[i] % 4))));
        }
        _encoded16 = new byte[ContextRans.MaxEncodedLength(Size, 16)];
        _encoded1 = new byte[ContextRans.MaxEncodedLength(Size, 1)];
        _output = new byte[Size];
        _length16 = _rans.Encode(_symbols, _contexts, 16, _encoded16);
        _length1 = _rans.Encode(_symbols, default, 1, _encoded1);
    }

    [Benchmark, BenchmarkCategory("Encode")]
    public int Encode16Contexts() => _rans.Encode(_symbols, _contexts, 16, _encoded16);

    [Benchmark, BenchmarkCategory("Encode")]
    public int EncodeOrderZero() => _rans.Encode(_symbols, default, 1, _encoded1);

    [Benchmark, BenchmarkCategory("Encode")]
    public int Encode16ContextsScalar() => _rans.Encode(_symbols, _contexts, 16, _encoded16, vectorized: false);

    [Benchmark, BenchmarkCategory("Estimate")]
    public long Estimate16Contexts() => _rans.EstimateLength(_symbols, _contexts, 16);

    [Benchmark, BenchmarkCategory("Estimate")]
    public long EstimateOrderZero() => _rans.EstimateLength(_symbols, default, 1);

    [Benchmark, BenchmarkCategory("Decode")]
    public byte Decode16Contexts() => Decode16(ContextRans.BestPath);

    [Benchmark, BenchmarkCategory("Decode")]
    public byte Decode16ContextsAvx2() => Decode16(RansPath.Avx2);

    [Benchmark, BenchmarkCategory("Decode")]
    public byte Decode16Scalar() => Decode16(RansPath.Scalar);

    [Benchmark, BenchmarkCategory("Decode")]
    public byte DecodeOrderZero() => DecodeOrderZero(ContextRans.BestPath);

    [Benchmark, BenchmarkCategory("Decode")]
    public byte DecodeOrderZeroAvx2() => DecodeOrderZero(RansPath.Avx2);

    [Benchmark, BenchmarkCategory("Decode")]
    public byte DecodeOrderZeroScalar() => DecodeOrderZero(RansPath.Scalar);

    private byte Decode16(RansPath path)
    {
        _rans.Decode(_encoded16.AsSpan(0, _length16), _contexts, 16, _output, path);
        return _output[^1];
    }

    private byte DecodeOrderZero(RansPath path)
    {
        _rans.Decode(_encoded1.AsSpan(0, _length1), default, 1, _output, path);
        return _output[^1];
    }
}
