using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Safetensors;

namespace ZipLlm.Lineage;

/// <summary>
/// Scores a candidate base for a model on their sketches, in two steps. <see cref="QuickBits"/> is a cheap estimate
/// from a few hundred elements of each stretch (the bit lengths of the ordered differences), fit to rank a thousand
/// candidates; <see cref="CodedBytes"/> runs the store's own codec on the whole sample, for the few ranked first.
/// A sampled tensor pairs with the candidate's by the store's rule (<see cref="DeltaPairing.Rule.Store"/>: same name,
/// shape but perhaps for added rows, dtype or BF16/F16 either way); its stretches pair where they overlap the
/// candidate's; what does not pair counts as stored solo. Not thread-safe (it holds a codec).
/// </summary>
internal sealed class SketchScorer : IDisposable
{
    /// <summary>Elements of each stretch the quick estimate looks at.</summary>
    public const int QuickElements = 512;

    private readonly ChunkCodec _codec;
    private byte[] _encoded = [];

    public SketchScorer(CodecOptions options)
    {
        // Without the context XOR: the sample codes stretches of every tensor as one chunk, where the base's exponents tell
        // the tensors' scales apart, a context the store's chunks (each inside one tensor) do not have. With it, the
        // unrelated channel-scaled model of the synthetic family scored below alone against the full finetune, and was
        // stored against it with every chunk solo.
        _codec = new ChunkCodec(options with { ChunkSize = Math.Max(options.ChunkSize, ModelSketch.MaxSampleBytes), ContextXor = false });
    }

    /// <summary>A stretch of the model and the candidate's bytes at the same place (converted to the model's dtype), or none.</summary>
    private readonly record struct Segment(DType DType, ReadOnlyMemory<byte> Bytes, ReadOnlyMemory<byte>? Base);

    /// <summary>The quick estimate, in bits, of the sample coded against <paramref name="candidate"/> (or alone when it is null).</summary>
    /// <param name="target">The model's sketch.</param>
    /// <param name="candidate">The candidate's sketch, or null for the model stored alone.</param>
    /// <param name="paired">Bytes of the sample that paired with the candidate.</param>
    public static double QuickBits(ModelSketch target, ModelSketch? candidate, out long paired)
    {
        paired = 0;
        // Histograms over the whole sample, so the estimate does not pay a small sample's entropy bias per stretch.
        Span<long> lengths = stackalloc long[66];
        lengths.Clear();
        long differences = 0;
        var solo = new Dictionary<DType, long[]>();
        foreach (Segment segment in Segments(target, candidate, QuickElements))
        {
            int size = segment.DType.BitSize() / 8;
            int count = segment.Bytes.Length / size;
            ReadOnlySpan<byte> words = segment.Bytes.Span;
            if (segment.Base is null)
            {
                if (!solo.TryGetValue(segment.DType, out long[]? exponents))
                {
                    solo[segment.DType] = exponents = new long[257];
                }
                CountExponents(segment.DType, words, count, exponents);
                continue;
            }
            paired += segment.Bytes.Length;
            differences += count;
            ReadOnlySpan<byte> baseWords = segment.Base.Value.Span;
            if (size == 2)
            {
                ReadOnlySpan<ushort> a = MemoryMarshal.Cast<byte, ushort>(words[..(2 * count)]), b = MemoryMarshal.Cast<byte, ushort>(baseWords[..(2 * count)]);
                for (int i = 0; i < count; i++)
                {
                    long difference = OrderedDifference.ToOrdered(a[i]) - (long)OrderedDifference.ToOrdered(b[i]);
                    lengths[64 - BitOperations.LeadingZeroCount((ulong)((difference << 1) ^ (difference >> 63)))]++;
                }
            }
            else
            {
                ReadOnlySpan<uint> a = MemoryMarshal.Cast<byte, uint>(words[..(4 * count)]), b = MemoryMarshal.Cast<byte, uint>(baseWords[..(4 * count)]);
                for (int i = 0; i < count; i++)
                {
                    long difference = Ordered32(a[i]) - (long)Ordered32(b[i]);
                    lengths[64 - BitOperations.LeadingZeroCount((ulong)((difference << 1) ^ (difference >> 63)))]++;
                }
            }
        }
        // A difference of bit length k > 0 costs its k - 1 bits below the leading one, and the length's own code.
        double bits = Entropy(lengths, differences);
        for (int k = 2; k < lengths.Length; k++)
        {
            bits += lengths[k] * (k - 1);
        }
        foreach ((DType dtype, long[] exponents) in solo)
        {
            // The last slot holds the count; every bit but the exponent's is taken as it is.
            bits += Entropy(exponents.AsSpan(0, 256), exponents[256]) + (double)exponents[256] * (dtype.BitSize() - ExponentField(dtype).Bits);
        }
        return bits;
    }

    /// <summary>Bytes the codec takes for the sample: coded against <paramref name="candidate"/>, or alone when it is null.</summary>
    public long CodedBytes(ModelSketch target, ModelSketch? candidate)
    {
        long total = 0;
        // One chunk per dtype, of every stretch that pairs (with its base) and one of every stretch that does not.
        foreach (IGrouping<(DType DType, bool Paired), Segment> group in Segments(target, candidate, int.MaxValue).GroupBy(s => (s.DType, s.Base is not null)))
        {
            Segment[] segments = [.. group];
            int length = segments.Sum(s => s.Bytes.Length);
            byte[] chunk = new byte[length];
            byte[]? baseChunk = group.Key.Paired ? new byte[length] : null;
            int at = 0;
            foreach (Segment segment in segments)
            {
                segment.Bytes.Span.CopyTo(chunk.AsSpan(at));
                segment.Base?.Span.CopyTo(baseChunk!.AsSpan(at));
                at += segment.Bytes.Length;
            }
            ElementLayout layout = ElementLayouts.ForDType(group.Key.DType);
            int bound = ChunkCodec.MaxEncodedLength(layout, length);
            if (_encoded.Length < bound)
            {
                _encoded = new byte[bound];
            }
            total += _codec.Encode(layout, chunk, baseChunk, _encoded, out _);
        }
        return total;
    }

    public void Dispose() => _codec.Dispose();

    /// <summary>
    /// The model's sampled stretches (at most <paramref name="elements"/> of each), each with the candidate's bytes
    /// where they overlap: a stretch is split where the candidate's ends.
    /// </summary>
    private static IEnumerable<Segment> Segments(ModelSketch target, ModelSketch? candidate, int elements)
    {
        foreach (SketchTensor tensor in target.Tensors)
        {
            int size = tensor.DType.BitSize() / 8;
            SketchTensor? partner = null;
            var conversion = BaseConversion.None;
            if (candidate?.Find(tensor.Name) is { } other
                && DeltaPairing.Pair(tensor.Name, tensor.DType, tensor.Shape, other.Name, other.DType, other.Shape, DeltaPairing.Rule.Store) != DeltaPairing.Fit.None)
            {
                partner = other;
                conversion = DeltaPairing.ConversionFor(tensor.DType, other.DType);
            }
            foreach (SketchWindow window in tensor.Windows)
            {
                long start = window.Offset, end = window.Offset + Math.Min(window.Bytes.Length, (long)elements * size);
                while (start < end)
                {
                    // The candidate's stretch covering start, or the next one to begin after it.
                    SketchWindow? cover = partner?.Windows.FirstOrDefault(w => w.Offset <= start && start < w.Offset + w.Bytes.Length);
                    long next = cover is null
                        ? Math.Min(end, partner?.Windows.Where(w => w.Offset > start).Select(w => w.Offset).DefaultIfEmpty(end).Min() ?? end)
                        : Math.Min(end, cover.Offset + cover.Bytes.Length);
                    ReadOnlyMemory<byte> bytes = window.Bytes.AsMemory((int)(start - window.Offset), (int)(next - start));
                    ReadOnlyMemory<byte>? baseBytes = null;
                    if (cover is not null)
                    {
                        ReadOnlyMemory<byte> same = cover.Bytes.AsMemory((int)(start - cover.Offset), (int)(next - start));
                        if (conversion == BaseConversion.None)
                        {
                            baseBytes = same;
                        }
                        else
                        {
                            byte[] converted = same.ToArray();
                            HalfConversion.ConvertInPlace(converted, conversion);
                            baseBytes = converted;
                        }
                    }
                    yield return new Segment(tensor.DType, bytes, baseBytes);
                    start = next;
                }
            }
        }
    }

    /// <summary>Where a float's exponent lies: the solo estimate is its order-0 entropy plus every other bit as it is (trained weights' mantissas are close to uniform).</summary>
    private static (int Shift, int Bits) ExponentField(DType dtype) => dtype switch
    {
        DType.BF16 => (7, 8),
        DType.F16 => (10, 5),
        _ => (23, 8),
    };

    private static void CountExponents(DType dtype, ReadOnlySpan<byte> words, int count, long[] exponents)
    {
        (int shift, int bits) = ExponentField(dtype);
        uint mask = (1u << bits) - 1;
        for (int i = 0; i < count; i++)
        {
            uint word = dtype == DType.F32 ? BinaryPrimitives.ReadUInt32LittleEndian(words[(4 * i)..]) : BinaryPrimitives.ReadUInt16LittleEndian(words[(2 * i)..]);
            exponents[(int)((word >> shift) & mask)]++;
        }
        exponents[256] += count;
    }

    /// <summary>Total bits of <paramref name="count"/> symbols coded at their order-0 entropy.</summary>
    private static double Entropy(ReadOnlySpan<long> histogram, long count)
    {
        double bits = 0;
        foreach (long n in histogram)
        {
            if (n > 0)
            {
                bits -= n * Math.Log2((double)n / count);
            }
        }
        return bits;
    }

    /// <summary>A single's bits mapped to an integer of the same order as its value (sign and magnitude to two's complement order).</summary>
    private static uint Ordered32(uint word) => (word & 0x8000_0000) != 0 ? ~word : word | 0x8000_0000;
}
