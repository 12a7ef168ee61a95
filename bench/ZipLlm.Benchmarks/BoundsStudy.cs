using System.Diagnostics;
using System.Runtime.InteropServices;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;

namespace ZipLlm.Benchmarks;

/// <summary>
/// <c>--bounds CONFIG</c>: for each model of a config's list, the bytes its safetensors tensors take coded by the store
/// (format 5, as format 4 coded them without the context XOR, and as format 2's BitX coded them) next to the order-0 entropy bounds of the codings a delta could use,
/// all computed over the whole model. Finetunes are paired with their base as the store pairs them (same name and
/// shape; BF16 with F16 through a conversion); unpaired tensors count at their solo bound. "XOR|exp" is BitX's two XOR
/// streams each coded given the base word's exponent (the store's context XOR), "hi/lo|exp" the XOR's high byte given the
/// base exponent and its low byte given the base exponent and whether the high byte is zero (the split it was weighed against). Files other than
/// safetensors, and tensors of other dtypes, are left out: the table is about 16-bit float weights.
/// </summary>
internal static class BoundsStudy
{
    public static void Run(string configPath)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(configPath);
        // The synthetic stand-in list where setup wrote one, as the CLI's verbs read it.
        ModelList list = ModelList.Load(StandInModelList.Resolve(config).Path);
        BaseFtMap map = BaseFtMap.Load(config.BaseFtPath);
        using var pool = new WorkerPool(Environment.ProcessorCount);
        using var bitxPool = new WorkerPool(Environment.ProcessorCount, CodecOptions.Default with { OrderedDifference = false, Rans = false, ContextXor = false });
        // Format 4's choice: every coding but the context XOR.
        using var v4Pool = new WorkerPool(Environment.ProcessorCount, CodecOptions.Default with { ContextXor = false, FormatVersion = 4 });
        Console.WriteLine("Bytes of each model's 16-bit float tensors, in MB, coded and bounded (order-0 entropy over the whole model):");
        Console.WriteLine($"{"model",-32} {"tensors",8} {"solo o0",8} {"XOR o0",8} {"diff|exp",8} {"XOR|exp",8} {"hi/lo|exp",9} {"BitX v2",8} {"v4",8} {"ours",8} {"ours/bnd",8} {"/v2",6} {"/v4",6} {"s",5}");
        double totalV2 = 0, totalV4 = 0, totalOurs = 0;
        int small = 0;
        foreach (var id in list.Models)
        {
            var clock = Stopwatch.StartNew();
            ModelRole role = map.RoleOf(id);
            string? baseFolder = role.BaseId is { } baseId ? config.ModelFolder(baseId) : null;
            Row row = Measure(config.ModelFolder(id), baseFolder, pool, bitxPool, v4Pool);
            if (row.Raw < 1e6)
            {
                small++;
                continue;
            }
            // The tightest bound of a coding the store can use: solo, or the better delta coding where there is a base.
            double bound = baseFolder is null ? row.Solo : Math.Min(row.Solo, Math.Min(Math.Min(row.Xor, row.XorGivenExponent), row.Difference));
            totalV2 += row.BitxV2;
            totalV4 += row.V4;
            totalOurs += row.Ours;
            Console.WriteLine($"{id,-32} {Mb(row.Raw),8} {Mb(row.Solo),8} {Mb(row.Xor),8} {Mb(row.Difference),8} {Mb(row.XorGivenExponent),8} {Mb(row.HighLow),9} {Mb(row.BitxV2),8} {Mb(row.V4),8} {Mb(row.Ours),8} " +
                $"{Ratio(row.Ours, bound),8} {Ratio(row.Ours, row.BitxV2),6} {Ratio(row.Ours, row.V4),6} {clock.Elapsed.TotalSeconds,5:F0}");
        }
        Console.WriteLine($"{"all",-32} {"",8} {"",8} {"",8} {"",8} {"",8} {"",9} {Mb(totalV2),8} {Mb(totalV4),8} {Mb(totalOurs),8} {"",8} {totalOurs / totalV2,6:F3} {totalOurs / totalV4,6:F3}");
        Console.WriteLine($"Deduplicated tensors are counted in every model that holds them; the store keeps them once. {small} model(s) under 1 MB of such tensors left out.");
    }

    /// <summary>A ratio, or "-" where the denominator is next to nothing (an exact copy's bound).</summary>
    private static string Ratio(double numerator, double denominator) => denominator < 1e5 ? "-" : (numerator / denominator).ToString("F3");

    private sealed record Row(double Raw, double Solo, double Xor, double Difference, double XorGivenExponent, double HighLow, double BitxV2, double V4, double Ours);

    private static string Mb(double bytes) => (bytes / 1e6).ToString("F1");

    private static Row Measure(string folder, string? baseFolder, WorkerPool pool, WorkerPool bitxPool, WorkerPool v4Pool)
    {
        Dictionary<string, (string File, TensorInfo Tensor)> baseTensors = baseFolder is null ? [] : Tensors(baseFolder);
        var solo = new Histogram(1);
        var unpaired = new Histogram(1);
        var xor = new Histogram(1);
        var difference = new Histogram(256);
        // Byte symbols per context: the XOR's exponent and sign+mantissa bytes given the base exponent; its high byte given
        // the base exponent, its low byte given the base exponent and whether the high byte is zero.
        var xorExponent = new ByteHistogram(256);
        var xorSignMantissa = new ByteHistogram(256);
        var high = new ByteHistogram(256);
        var low = new ByteHistogram(512);
        double raw = 0, v2 = 0, v4 = 0, ours = 0;
        foreach ((string file, TensorInfo tensor) in Tensors(folder).Values)
        {
            if (tensor.DType is not (DType.BF16 or DType.F16))
            {
                continue;
            }
            byte[] words = Read(file, tensor);
            raw += words.Length;
            ElementLayout layout = ElementLayouts.ForDType(tensor.DType);
            byte[]? basis = null, converted = null;
            var conversion = BaseConversion.None;
            if (baseTensors.TryGetValue(tensor.Name, out var partner)
                && DeltaPairing.Pair(tensor, partner.Tensor, DeltaPairing.Rule.Store) != DeltaPairing.Fit.None)
            {
                // A base with other rows is seen cut short or zero-extended to the finetune's length, as the store sees it.
                basis = new byte[words.Length];
                byte[] full = Read(partner.File, partner.Tensor);
                full.AsSpan(0, Math.Min(full.Length, basis.Length)).CopyTo(basis);
                conversion = DeltaPairing.ConversionFor(tensor.DType, partner.Tensor.DType);
                converted = (byte[])basis.Clone();
                HalfConversion.ConvertInPlace(converted, conversion);
            }
            ReadOnlySpan<ushort> w = MemoryMarshal.Cast<byte, ushort>(words);
            ReadOnlySpan<ushort> b = converted is null ? default : MemoryMarshal.Cast<byte, ushort>(converted);
            int exponentShift = layout == ElementLayout.Half ? 10 : 7, exponentMask = layout == ElementLayout.Half ? 0x1F : 0xFF;
            for (int i = 0; i < w.Length; i++)
            {
                solo.Add(Exponent(w[i]), SignMantissa(w[i]));
                if (converted is null)
                {
                    // Unpaired: stored solo whatever the coding, so the delta columns count it at its solo bound.
                    unpaired.Add(Exponent(w[i]), SignMantissa(w[i]));
                    continue;
                }
                ushort x = (ushort)(w[i] ^ b[i]);
                xor.Add(Exponent(x), SignMantissa(x));
                int d = (short)(OrderedDifference.ToOrdered(w[i]) - OrderedDifference.ToOrdered(b[i]));
                int baseExponent = (b[i] >> exponentShift) & exponentMask;
                difference.Add16(baseExponent, (ushort)((d << 1) ^ (d >> 31)));
                xorExponent.Add(baseExponent, Exponent(x));
                xorSignMantissa.Add(baseExponent, SignMantissa(x));
                high.Add(baseExponent, (byte)(x >> 8));
                low.Add(2 * baseExponent + ((x >> 8) == 0 ? 1 : 0), (byte)x);
            }
            v2 += Encoded(layout, words, basis, conversion, bitxPool, allowConversion: false);
            v4 += Encoded(layout, words, basis, conversion, v4Pool, allowConversion: true);
            ours += Encoded(layout, words, basis, conversion, pool, allowConversion: true);
        }
        double alone = unpaired.SplitBits();
        return new Row(raw, solo.SplitBits() / 8, (xor.SplitBits() + alone) / 8, (difference.ConditionalBits() + alone) / 8,
            (xorExponent.Bits() + xorSignMantissa.Bits() + alone) / 8, (high.Bits() + low.Bits() + alone) / 8, v2, v4, ours);
    }

    /// <summary>Bytes the codec stores a tensor in; format 2 had no conversions, so a converted pair was stored solo.</summary>
    private static long Encoded(ElementLayout layout, byte[] words, byte[]? basis, BaseConversion conversion, WorkerPool pool, bool allowConversion)
    {
        if (!allowConversion && conversion != BaseConversion.None)
        {
            basis = null;
        }
        if (!allowConversion && layout == ElementLayout.Half)
        {
            layout = ElementLayout.Word16;
        }
        using var output = new CountingStream();
        TensorCodec.Encode(output, layout, RawChunkSource.FromMemory(words), basis is null ? null : RawChunkSource.FromMemory(basis), basis is null ? [] : [1],
            pool, conversion: basis is null ? BaseConversion.None : conversion);
        return output.Length;
    }

    private static byte Exponent(ushort word) => (byte)(word >> 7);

    private static byte SignMantissa(ushort word) => (byte)(((word >> 8) & 0x80) | (word & 0x7F));

    private static Dictionary<string, (string, TensorInfo)> Tensors(string folder)
    {
        var tensors = new Dictionary<string, (string, TensorInfo)>(StringComparer.Ordinal);
        foreach (string file in Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal))
        {
            using SafetensorsFile opened = SafetensorsFile.Open(file);
            foreach (TensorInfo tensor in opened.Header.Tensors)
            {
                tensors[tensor.Name] = (file, tensor);
            }
        }
        return tensors;
    }

    private static byte[] Read(string file, TensorInfo tensor)
    {
        using SafetensorsFile opened = SafetensorsFile.Open(file);
        byte[] bytes = new byte[tensor.Length];
        opened.ReadTensor(tensor, 0, bytes);
        return bytes;
    }

    /// <summary>Symbol counts per context: two byte streams (the split), or one 16-bit symbol (the difference).</summary>
    private sealed class Histogram(int contexts)
    {
        private readonly long[] _exponent = new long[256], _signMantissa = new long[256];
        private readonly int[] _words = new int[contexts * 65536];
        private long _count;

        public void Add(byte exponent, byte signMantissa)
        {
            _exponent[exponent]++;
            _signMantissa[signMantissa]++;
            _count++;
        }

        public void Add16(int context, ushort symbol)
        {
            _words[context * 65536 + symbol]++;
            _count++;
        }

        /// <summary>Order-0 bits of the two split streams, each coded on its own.</summary>
        public double SplitBits() => Bits<long>(_exponent) + Bits<long>(_signMantissa);

        /// <summary>Bits of the 16-bit symbols coded with one table per context: H(symbol | context).</summary>
        public double ConditionalBits()
        {
            double bits = 0;
            for (int c = 0; c < contexts; c++)
            {
                bits += Bits<int>(_words.AsSpan(c * 65536, 65536));
            }
            return bits;
        }

        internal static double Bits<T>(ReadOnlySpan<T> counts) where T : System.Numerics.IBinaryInteger<T>
        {
            long total = 0;
            foreach (T c in counts)
            {
                total += long.CreateTruncating(c);
            }
            double bits = 0;
            foreach (T c in counts)
            {
                long n = long.CreateTruncating(c);
                if (n > 0)
                {
                    bits -= n * Math.Log2((double)n / total);
                }
            }
            return bits;
        }
    }

    /// <summary>Byte symbol counts per context: H(symbol | context), one order-0 table per context.</summary>
    private sealed class ByteHistogram(int contexts)
    {
        private readonly long[] _counts = new long[contexts * 256];

        public void Add(int context, byte symbol) => _counts[context * 256 + symbol]++;

        public double Bits()
        {
            double bits = 0;
            for (int c = 0; c < contexts; c++)
            {
                bits += Histogram.Bits<long>(_counts.AsSpan(c * 256, 256));
            }
            return bits;
        }
    }

    /// <summary>A sink that only counts the bytes written to it.</summary>
    private sealed class CountingStream : Stream
    {
        private long _length;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _length += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;
    }
}
