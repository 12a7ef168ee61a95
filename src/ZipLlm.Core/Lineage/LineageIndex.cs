using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Safetensors;

namespace ZipLlm.Lineage;

/// <summary>
/// A model's lineage summary, the coarse stand-in for its sketch that the catalog keeps for every stored model: the
/// first <see cref="ElementsPerWindow"/> elements of each stretch of its sketch, as ordered BF16 integers, under the
/// hash of each sampled tensor's name. Two models of one family have nearly equal values (a finetune's weights are its
/// base's plus a little), two of different families values as far apart as their weights' spread, so the sum of
/// their differences ranks candidates in the order the quick estimate would, at a few hundred additions each.
/// The index proposes the closest <see cref="LineagePlanner.IndexCandidates"/> candidates; only those are scored on
/// their sketches. Bytes:
/// <code>
/// u8 version (1) | u16 tensors | tensors × u32 name hash | tensors × ValuesPerTensor × u16 value
/// </code>
/// where a value is 0 for a stretch the tensor lacks.
/// </summary>
internal sealed class LineageIndex
{
    /// <summary>Elements of each stretch the summary keeps.</summary>
    public const int ElementsPerWindow = 4;

    /// <summary>Values per sampled tensor.</summary>
    public const int ValuesPerTensor = ModelSketch.WindowsPerTensor * ElementsPerWindow;

    // The most one value's difference counts: a far value says "another family", however far.
    private const int Cap = 255;

    private const byte Version = 1;

    // The summary's bytes, read in place (the catalog holds them for every stored model; a copy would double that).
    private readonly byte[] _bytes;
    private readonly int _tensors;

    private LineageIndex(byte[] bytes, int tensors)
    {
        _bytes = bytes;
        _tensors = tensors;
        Signature = XxHash64.HashToUInt64(bytes.AsSpan(3, 4 * tensors));
    }

    /// <summary>The hash of the sampled tensors' names in order: models of one architecture share it.</summary>
    public ulong Signature { get; }

    /// <summary>Each sampled tensor's name hash, in the sketch's (name) order (little-endian words, as on every machine .NET runs on here).</summary>
    private ReadOnlySpan<uint> Names => MemoryMarshal.Cast<byte, uint>(_bytes.AsSpan(3, 4 * _tensors));

    /// <summary>The values, <see cref="ValuesPerTensor"/> a tensor.</summary>
    private ReadOnlySpan<ushort> Values => MemoryMarshal.Cast<byte, ushort>(_bytes.AsSpan(3 + 4 * _tensors));

    /// <summary>The summary of <paramref name="sketch"/>, as bytes.</summary>
    public static byte[] Summarize(ModelSketch sketch)
    {
        int tensors = Math.Min(sketch.Tensors.Count, ushort.MaxValue);
        byte[] bytes = new byte[3 + tensors * (4 + 2 * ValuesPerTensor)];
        bytes[0] = Version;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(1), (ushort)tensors);
        Span<byte> names = bytes.AsSpan(3, 4 * tensors);
        Span<byte> values = bytes.AsSpan(3 + 4 * tensors);
        for (int t = 0; t < tensors; t++)
        {
            SketchTensor tensor = sketch.Tensors[t];
            BinaryPrimitives.WriteUInt32LittleEndian(names[(4 * t)..], XxHash32.HashToUInt32(Encoding.UTF8.GetBytes(tensor.Name)));
            for (int w = 0; w < Math.Min(tensor.Windows.Length, ModelSketch.WindowsPerTensor); w++)
            {
                byte[] window = tensor.Windows[w].Bytes;
                int size = tensor.DType.BitSize() / 8;
                for (int e = 0; e < ElementsPerWindow && (e + 1) * size <= window.Length; e++)
                {
                    ushort value = OrderedDifference.ToOrdered(Bf16Of(tensor.DType, window.AsSpan(e * size, size)));
                    BinaryPrimitives.WriteUInt16LittleEndian(values[(2 * ((t * ValuesPerTensor) + (w * ElementsPerWindow) + e))..], value);
                }
            }
        }
        return bytes;
    }

    /// <summary>Reads a summary, in place (the bytes are kept, not copied); null for none (empty) or one this build does not read.</summary>
    public static LineageIndex? Parse(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (!BitConverter.IsLittleEndian || bytes.Length < 3 || bytes[0] != Version)
        {
            return null;
        }
        int tensors = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(1));
        return bytes.Length == 3 + tensors * (4 + 2 * ValuesPerTensor) ? new LineageIndex(bytes, tensors) : null;
    }

    /// <summary>
    /// How far <paramref name="candidate"/> is from this model: the sum over this model's values of the difference to
    /// the candidate's value of the same tensor and place, each at most 255, and 255 for each value of a tensor the
    /// candidate lacks. Smaller is closer; 0 is the same weights.
    /// </summary>
    public long DistanceTo(LineageIndex candidate)
    {
        ReadOnlySpan<ushort> values = Values, theirs = candidate.Values;
        if (candidate.Signature == Signature && theirs.Length == values.Length)
        {
            return Sum(values, theirs);
        }
        // Another architecture, or a tensor more or less: tensors matched by name hash (both in name order are not in
        // hash order, so by lookup).
        ReadOnlySpan<uint> names = Names, theirNames = candidate.Names;
        var at = new Dictionary<uint, int>(theirNames.Length);
        for (int t = 0; t < theirNames.Length; t++)
        {
            at.TryAdd(theirNames[t], t);
        }
        long distance = 0;
        for (int t = 0; t < names.Length; t++)
        {
            distance += at.TryGetValue(names[t], out int c)
                ? Sum(values.Slice(t * ValuesPerTensor, ValuesPerTensor), theirs.Slice(c * ValuesPerTensor, ValuesPerTensor))
                : (long)Cap * ValuesPerTensor;
        }
        return distance;
    }

    /// <summary>The sum of min(|a - b|, 255) over the elements: 16 lanes of a Vector256 at a time, then a scalar tail.</summary>
    internal static long Sum(ReadOnlySpan<ushort> a, ReadOnlySpan<ushort> b)
    {
        long sum = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<ushort> cap = Vector256.Create((ushort)Cap);
            // Each lane gains at most 255 a step: flushed to 32 bits every 256 steps, before a u16 lane could overflow.
            while (a.Length - i >= Vector256<ushort>.Count)
            {
                Vector256<ushort> lanes = Vector256<ushort>.Zero;
                for (int steps = 0; steps < 256 && a.Length - i >= Vector256<ushort>.Count; steps++, i += Vector256<ushort>.Count)
                {
                    Vector256<ushort> x = Vector256.Create(a.Slice(i, Vector256<ushort>.Count)), y = Vector256.Create(b.Slice(i, Vector256<ushort>.Count));
                    lanes += Vector256.Min(Vector256.Max(x, y) - Vector256.Min(x, y), cap);
                }
                (Vector256<uint> low, Vector256<uint> high) = Vector256.Widen(lanes);
                sum += Vector256.Sum(low + high);
            }
        }
        for (; i < a.Length; i++)
        {
            sum += Math.Min(Math.Abs(a[i] - b[i]), Cap);
        }
        return sum;
    }

    /// <summary>The scalar twin of <see cref="Sum"/>, which tests hold it to.</summary>
    internal static long SumScalar(ReadOnlySpan<ushort> a, ReadOnlySpan<ushort> b)
    {
        long sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sum += Math.Min(Math.Abs(a[i] - b[i]), Cap);
        }
        return sum;
    }

    /// <summary>The BF16 bits nearest below an element of <paramref name="dtype"/> (its top 16 bits as an F32).</summary>
    private static ushort Bf16Of(DType dtype, ReadOnlySpan<byte> element) => dtype switch
    {
        DType.BF16 => BinaryPrimitives.ReadUInt16LittleEndian(element),
        DType.F16 => (ushort)(BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(element))) >> 16),
        DType.F32 => (ushort)(BinaryPrimitives.ReadUInt32LittleEndian(element) >> 16),
        _ => 0,
    };
}
