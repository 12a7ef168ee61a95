using Microsoft.Win32.SafeHandles;
using ZipLlm.Codecs;
using ZipLlm.IO;
using ZipLlm.Safetensors;

namespace ZipLlm.Tools.BitxFileTool;

/// <summary>
/// Which bytes of the finetune file are XOR-ed with which bytes of the base to form the delta image.
/// Built the same way by the compressor and the decompressor, so pairing lives only here.
/// </summary>
internal sealed class DeltaPlan
{
    /// <summary>Image bytes [<see cref="Start"/>, Start + <see cref="Length"/>) are XOR-ed with base bytes from <see cref="BaseStart"/>.</summary>
    internal readonly record struct Segment(long Start, long Length, long BaseStart)
    {
        public long End => Start + Length;
    }

    private readonly Segment[] _segments;

    private DeltaPlan(BitxMode mode, Segment[] segments)
    {
        Mode = mode;
        _segments = segments;
    }

    public BitxMode Mode { get; }

    /// <summary>Tensors paired with the base: in tensor mode, one segment each.</summary>
    public int PairedTensors => Mode == BitxMode.Tensors ? _segments.Length : 0;

    /// <summary>The finetune XOR the base over their common prefix.</summary>
    public static DeltaPlan Raw(long ftLength, long baseLength)
    {
        long common = Math.Min(ftLength, baseLength);
        return new DeltaPlan(BitxMode.Raw, common == 0 ? [] : [new Segment(0, common, 0)]);
    }

    /// <summary>
    /// Each finetune tensor XOR the base tensor it pairs with under <see cref="DeltaPairing.Rule.ExactShape"/>
    /// (same name, dtype and shape); the finetune's header, and tensors with no such partner, are left as they are.
    /// </summary>
    public static DeltaPlan Tensors(SafetensorsHeader ft, SafetensorsHeader @base)
    {
        var byName = new Dictionary<string, TensorInfo>(@base.Tensors.Count, StringComparer.Ordinal);
        foreach (TensorInfo t in @base.Tensors)
        {
            byName[t.Name] = t;
        }
        var segments = new List<Segment>();
        foreach (TensorInfo t in ft.Tensors)
        {
            // An empty tensor has no bytes to XOR, so it makes no segment. The headers checked each tensor's length
            // against its dtype and shape, so partners of the same shape are as long as each other.
            if (t.Length > 0 && byName.TryGetValue(t.Name, out TensorInfo? partner)
                && DeltaPairing.Pair(t, partner, DeltaPairing.Rule.ExactShape) == DeltaPairing.Fit.SameShape)
            {
                segments.Add(new Segment(checked(ft.DataOffset + t.Begin), t.Length, checked(@base.DataOffset + partner.Begin)));
            }
        }
        // The header sorts tensors by offset and forbids overlaps, so the segments are sorted and disjoint.
        return new DeltaPlan(BitxMode.Tensors, [.. segments]);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with what image bytes [<paramref name="offset"/>, offset + length) are
    /// XOR-ed with: base bytes inside segments, zero elsewhere.
    /// </summary>
    /// <returns>Whether any byte of the range lies in a segment (when not, no XOR is needed).</returns>
    /// <exception cref="EndOfStreamException">The base file is shorter than the plan expects.</exception>
    public bool FillBase(long offset, Span<byte> destination, SafeFileHandle baseFile, string baseName)
    {
        long end = offset + destination.Length;
        int first = FirstSegmentEndingAfter(offset);
        if (first == _segments.Length || _segments[first].Start >= end)
        {
            return false;
        }
        long filled = offset;
        for (int i = first; i < _segments.Length && _segments[i].Start < end; i++)
        {
            Segment s = _segments[i];
            long from = Math.Max(s.Start, offset), to = Math.Min(s.End, end);
            destination[(int)(filled - offset)..(int)(from - offset)].Clear();
            PositionalRead.ReadExactly(baseFile, destination[(int)(from - offset)..(int)(to - offset)], s.BaseStart + (from - s.Start), baseName);
            filled = to;
        }
        destination[(int)(filled - offset)..].Clear();
        return true;
    }

    private int FirstSegmentEndingAfter(long offset)
    {
        int lo = 0, hi = _segments.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_segments[mid].End <= offset)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }
}
