using System.Diagnostics;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Tools.BitxFileTool;
using ZstdSharp;

namespace ZipLlm.Benchmarks;

/// <summary>
/// Quick measurements outside BenchmarkDotNet (Stopwatch, best of a few runs, one core): compressed sizes
/// and ratios of the codecs (<c>--ratios</c>), and zstd level per BitX stream against its order-0 entropy (<c>--levels</c>).
/// </summary>
internal static class Studies
{
    private const int Runs = 3;
    private static readonly int[] s_levels = [-1, 1, 3, 5];

    public static void Ratios()
    {
        (byte[] @base, byte[] ft) = BenchData.Bf16Pair(CodecBenchmarks.Size);
        double size = ft.Length;
        Console.WriteLine($"BF16 weights N(0, 0.02), finetune = base * (1 + N(0, 0.002)); {ft.Length >> 20} MiB each.");
        Console.WriteLine($"{"method",-44} {"bytes",12} {"ratio",7} {"% of input",10}");
        void Row(string name, long bytes) => Console.WriteLine($"{name,-44} {bytes,12:N0} {size / bytes,7:F3} {100.0 * bytes / size,9:F1}%");

        using (var compressor = new Compressor(3))
        {
            Row("plain zstd -3 (one frame)", compressor.Wrap(ft).Length);
            Row("plain zstd -3 of base XOR ft (no split)", compressor.Wrap(Xor(ft, @base)).Length);
        }
        foreach ((string name, CodecOptions options) in new[]
        {
            ("default (level 3, exponent 1, probe)", CodecOptions.Default),
            ("exponent level 3", CodecOptions.Default with { ExponentLevel = 3 }),
            ("no probe", CodecOptions.Default with { ProbeIncompressible = false }),
        })
        {
            using var pool = new WorkerPool(1, options);
            Row($"solo, {name}", TensorCodec.Encode(ElementLayout.Word16, ft, null, pool).Length);
            Row($"BitX delta, {name}", TensorCodec.Encode(ElementLayout.Word16, ft, @base, pool).Length);
        }

        // The standalone tool end to end, on files (raw mode: both are plain BF16 words).
        string folder = Path.Combine(Path.GetTempPath(), "zipllm-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            string basePath = Path.Combine(folder, "base"), ftPath = Path.Combine(folder, "ft");
            File.WriteAllBytes(basePath, @base);
            File.WriteAllBytes(ftPath, ft);
            string exp = Path.Combine(folder, "e.zst"), sm = Path.Combine(folder, "s.zst"), output = Path.Combine(folder, "out");
            foreach (int threads in new[] { 1, 2 })
            {
                var options = new BitxOptions { Threads = threads };
                BitxResult c = Best(() => BitxFile.Compress(basePath, ftPath, exp, sm, options));
                BitxResult d = Best(() => BitxFile.Decompress(basePath, exp, sm, output, options));
                Row($"zipllm bitx, {threads} thread(s) (exp+sm)", c.CompressedLength);
                Console.WriteLine($"{"",-44} exp {c.ExponentLength:N0} + sm {c.SignMantissaLength:N0}; compress {c.MegabytesPerSecond:F0} MB/s, decompress {d.MegabytesPerSecond:F0} MB/s");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    public static void Levels()
    {
        (byte[] @base, byte[] ft) = BenchData.Bf16Pair(CodecBenchmarks.Size);
        int words = ft.Length / 2;
        byte[] soloExp = new byte[words], soloSm = new byte[words], deltaExp = new byte[words], deltaSm = new byte[words];
        Bf16Split.Split(ft, default, soloExp, soloSm);
        Bf16Split.Split(ft, @base, deltaExp, deltaSm);
        // Frames as the codec makes them: one per stream per 4 MiB chunk of tensor, so 2 MiB of stream.
        int frame = EncodedTensorFormat.DefaultChunkSize / 2;
        Console.WriteLine($"Per-stream zstd level study: {words >> 20} Mi words, frames of {frame >> 20} MiB, one core, best of at least {Runs} runs and 0.5 s.");
        Console.WriteLine($"{"stream",-16} {"entropy b/B",11} {"bound",11} {"level",5} {"bytes",11} {"ratio",7} {"vs bound",8} {"comp MB/s",9} {"dec MB/s",9}");
        foreach ((string name, byte[] stream) in new[] { ("solo exponent", soloExp), ("solo sign+mant", soloSm), ("delta exponent", deltaExp), ("delta sign+mant", deltaSm) })
        {
            double entropy = Entropy(stream);
            long bound = (long)Math.Ceiling(entropy * stream.Length / 8);
            foreach (int level in s_levels)
            {
                using var compressor = new Compressor(level);
                using var decompressor = new Decompressor();
                byte[] output = new byte[Compressor.GetCompressBound(frame)];
                var frames = new List<byte[]>();
                double compressSeconds = BestSeconds(() =>
                {
                    frames.Clear();
                    for (int at = 0; at < stream.Length; at += frame)
                    {
                        int n = compressor.Wrap(stream.AsSpan(at, Math.Min(frame, stream.Length - at)), output);
                        frames.Add(output[..n]);
                    }
                });
                long bytes = frames.Sum(f => (long)f.Length);
                byte[] decoded = new byte[frame];
                double decompressSeconds = BestSeconds(() =>
                {
                    foreach (byte[] f in frames)
                    {
                        decompressor.Unwrap(f, decoded);
                    }
                });
                Console.WriteLine($"{name,-16} {entropy,11:F3} {bound,11:N0} {level,5} {bytes,11:N0} {(double)stream.Length / bytes,7:F3} {(double)bytes / bound,8:F3} " +
                    $"{stream.Length / compressSeconds / 1e6,9:F0} {stream.Length / decompressSeconds / 1e6,9:F0}");
            }
        }

        // What the probe costs and saves: compressing a 32 KiB sample of a stream against compressing it whole.
        using (var probe = new Compressor(3))
        {
            byte[] output = new byte[Compressor.GetCompressBound(frame)];
            double sample = BestSeconds(() => probe.Wrap(soloSm.AsSpan((frame - (32 << 10)) / 2, 32 << 10), output));
            double whole = BestSeconds(() => probe.Wrap(soloSm.AsSpan(0, frame), output));
            Console.WriteLine($"probe: 32 KiB sample at level 3 takes {sample * 1e6:F0} us; a whole {frame >> 20} MiB sign+mantissa frame {whole * 1e6:F0} us.");
        }
    }

    /// <summary>Order-0 entropy in bits per byte.</summary>
    public static double Entropy(ReadOnlySpan<byte> data)
    {
        Span<long> counts = stackalloc long[256];
        foreach (byte b in data)
        {
            counts[b]++;
        }
        double h = 0;
        foreach (long c in counts)
        {
            if (c > 0)
            {
                double p = (double)c / data.Length;
                h -= p * Math.Log2(p);
            }
        }
        return h;
    }

    private static byte[] Xor(byte[] a, byte[] b)
    {
        byte[] x = new byte[a.Length];
        XorKernel.Xor(a, b, x);
        return x;
    }

    /// <summary>Best time of at least <see cref="Runs"/> runs and half a second, so the JIT has tiered up the zstd code.</summary>
    private static double BestSeconds(Action action)
    {
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int i = 0; i < Runs || total.Elapsed.TotalSeconds < 0.5; i++)
        {
            var clock = Stopwatch.StartNew();
            action();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return best;
    }

    private static BitxResult Best(Func<BitxResult> run)
    {
        BitxResult best = run();
        for (int i = 1; i < Runs; i++)
        {
            BitxResult next = run();
            if (next.Elapsed < best.Elapsed)
            {
                best = next;
            }
        }
        return best;
    }
}
