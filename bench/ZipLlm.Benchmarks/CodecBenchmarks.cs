using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Zstd;

namespace ZipLlm.Benchmarks;

/// <summary>
/// The tensor codec on one core (a pool of one worker) against plain zstd -3 of the same 16 MiB of BF16
/// weights: solo (the weights alone) and BitX (a finetune against them), encode and decode, with and
/// without the incompressible-stream probe. Sizes and ratios: run with <c>--ratios</c>.
/// </summary>
[Config(typeof(Config))]
[BytesPerOperation(Size)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class CodecBenchmarks
{
    internal const int Size = 16 << 20;

    private byte[] _base = [], _finetune = [], _zstdOut = [], _plain = [], _solo = [], _delta = [], _decoded = [];
    private WorkerPool _pool = null!, _poolNoProbe = null!;
    // Plain zstd through the same backend as the codec (the system's libzstd when it loads), so the comparison is of formats.
    private ZstdContext _zstd = null!;
    private MemoryStream _sink = null!;

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddJob(Job.ShortRun.WithWarmupCount(1).WithIterationCount(3));
            AddColumn(new ThroughputColumn());
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        (_base, _finetune) = BenchData.Bf16Pair(Size);
        _pool = new WorkerPool(1);
        _poolNoProbe = new WorkerPool(1, new CodecOptions { ProbeIncompressible = false });
        _zstd = ZstdContext.Create();
        _zstdOut = new byte[ZstdContext.CompressBound(Size)];
        _plain = _zstdOut.AsSpan(0, _zstd.Compress(_finetune, _zstdOut, 3)).ToArray();
        _solo = TensorCodec.Encode(ElementLayout.Word16, _finetune, null, _pool);
        _delta = TensorCodec.Encode(ElementLayout.Word16, _finetune, _base, _pool);
        _decoded = new byte[Size];
        _sink = new MemoryStream(Size + Size / 8);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _poolNoProbe.Dispose();
        _zstd.Dispose();
    }

    [BenchmarkCategory("Encode"), Benchmark(Baseline = true)]
    public int PlainZstd3Compress() => _zstd.Compress(_finetune, _zstdOut, 3);

    [BenchmarkCategory("Encode"), Benchmark]
    public long SoloEncode() => Encode(_finetune, null, _pool);

    [BenchmarkCategory("Encode"), Benchmark]
    public long SoloEncodeNoProbe() => Encode(_finetune, null, _poolNoProbe);

    [BenchmarkCategory("Encode"), Benchmark]
    public long BitxEncode() => Encode(_finetune, _base, _pool);

    [BenchmarkCategory("Encode"), Benchmark]
    public long BitxEncodeNoProbe() => Encode(_finetune, _base, _poolNoProbe);

    [BenchmarkCategory("Decode"), Benchmark(Baseline = true)]
    public int PlainZstd3Decompress()
    {
        _zstd.DecompressExact(_plain, _decoded);
        return _decoded.Length;
    }

    [BenchmarkCategory("Decode"), Benchmark]
    public int SoloDecode() => Decode(EncodedTensor.Open("solo", _solo));

    [BenchmarkCategory("Decode"), Benchmark]
    public int BitxDecode()
    {
        EncodedTensor delta = EncodedTensor.Open("delta", _delta);
        delta.Base = RawChunkSource.FromMemory(_base);
        return Decode(delta);
    }

    private long Encode(byte[] tensor, byte[]? baseTensor, WorkerPool pool)
    {
        _sink.Position = 0;
        return TensorCodec.Encode(_sink, ElementLayout.Word16, RawChunkSource.FromMemory(tensor),
            baseTensor is null ? null : RawChunkSource.FromMemory(baseTensor), baseTensor is null ? default : [1], pool).Bytes;
    }

    private int Decode(EncodedTensor tensor)
    {
        int position = 0;
        TensorCodec.Decode(tensor, tensor.ChunkSize, _pool, chunk =>
        {
            chunk.CopyTo(_decoded.AsSpan(position));
            position += chunk.Length;
        });
        return position;
    }
}
