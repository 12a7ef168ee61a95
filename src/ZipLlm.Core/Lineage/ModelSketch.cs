using System.Buffers.Binary;
using System.IO.Hashing;
using System.Numerics;
using System.Text;
using ZipLlm.Safetensors;

namespace ZipLlm.Lineage;

/// <summary>One sampled stretch of a tensor's bytes.</summary>
/// <param name="Offset">Byte offset in the tensor.</param>
/// <param name="Bytes">The bytes there.</param>
internal sealed record SketchWindow(long Offset, byte[] Bytes);

/// <summary>A sampled tensor of a sketch.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Its dtype.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Windows">The stretches sampled, in offset order.</param>
internal sealed record SketchTensor(string Name, DType DType, long[] Shape, SketchWindow[] Windows);

/// <summary>A tensor a sketch may sample: its name, dtype and shape, and how to read its bytes.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Its dtype.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Length">Its byte length.</param>
/// <param name="Read">Reads its bytes at an offset.</param>
internal sealed record SketchSource(string Name, DType DType, long[] Shape, long Length, Codecs.ReadAt Read);

/// <summary>
/// A model's lineage sketch: the same few stretches of the same few tensors in every model, so that two models'
/// sketches line up and a delta between them can be coded on the sample, as a stand-in for the delta between the
/// models. Which tensors and where depends only on the tensor's name and length (the 32 floating tensors whose names
/// hash lowest; stretches at fixed fractions of a power of two no larger than the tensor), never on the other model,
/// so a sketch recorded when a model was stored serves for every model stored after it. The sample is at most
/// <see cref="MaxSampleBytes"/>, and about 1/256 of a small model's tensor bytes.
/// </summary>
internal sealed class ModelSketch
{
    /// <summary>Most tensors sampled.</summary>
    public const int MaxTensors = 32;

    /// <summary>Stretches sampled per tensor.</summary>
    public const int WindowsPerTensor = 2;

    /// <summary>Most elements in a stretch.</summary>
    public const int MaxWindowElements = 2048;

    /// <summary>Fewest elements in a stretch (and in a tensor worth sampling).</summary>
    public const int MinWindowElements = 64;

    /// <summary>Most bytes sampled from a model (F32 stretches at their longest).</summary>
    public const int MaxSampleBytes = MaxTensors * WindowsPerTensor * MaxWindowElements * 4;

    private const uint Magic = 0x4B534C5A; // "ZLSK"
    private const byte FormatVersion = 1;

    internal ModelSketch(long tensorBytes, IReadOnlyList<SketchTensor> tensors)
    {
        TensorBytes = tensorBytes;
        Tensors = tensors;
        SampleBytes = tensors.Sum(t => t.Windows.Sum(w => (long)w.Bytes.Length));
    }

    /// <summary>Bytes of every floating tensor of the model (BF16, F16, F32): what the sample stands for.</summary>
    public long TensorBytes { get; }

    /// <summary>Bytes sampled.</summary>
    public long SampleBytes { get; }

    /// <summary>The tensors sampled.</summary>
    public IReadOnlyList<SketchTensor> Tensors { get; }

    private Dictionary<string, SketchTensor>? _byName;

    /// <summary>The sampled tensor of this name, or null.</summary>
    public SketchTensor? Find(string name)
    {
        _byName ??= Tensors.GroupBy(t => t.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        return _byName.GetValueOrDefault(name);
    }

    /// <summary>
    /// This sketch with each stretch cut to its first <paramref name="elements"/> elements: what the quick estimate reads,
    /// kept in memory for every candidate where the whole sketch is read again only for the few ranked first.
    /// </summary>
    public ModelSketch Truncated(int elements) => new(TensorBytes, Tensors.Select(t => t with
    {
        Windows = t.Windows.Select(w => w.Bytes.Length <= (long)elements * (t.DType.BitSize() / 8)
            ? w
            : w with { Bytes = w.Bytes[..(elements * (t.DType.BitSize() / 8))] }).ToArray(),
    }).ToList());

    /// <summary>Whether <paramref name="dtype"/> is sampled: the floating types deltas are coded for.</summary>
    public static bool IsSampled(DType dtype) => dtype is DType.BF16 or DType.F16 or DType.F32;

    /// <summary>
    /// Samples the tensors of a model. A name seen twice (a tensor in two shards) is sampled once, from its first
    /// source; the selection does not depend on the order the sources come in.
    /// </summary>
    internal static ModelSketch Build(IEnumerable<SketchSource> sources, CancellationToken cancellationToken = default)
    {
        var unique = new Dictionary<string, SketchSource>(StringComparer.Ordinal);
        long tensorBytes = 0;
        foreach (SketchSource source in sources)
        {
            if (IsSampled(source.DType) && unique.TryAdd(source.Name, source))
            {
                tensorBytes += source.Length;
            }
        }
        int windowElements = WindowElementsFor(tensorBytes);
        var chosen = unique.Values
            .Where(s => s.Length / (s.DType.BitSize() / 8) >= MinWindowElements)
            .OrderBy(s => NameHash(s.Name)).ThenBy(s => s.Name, StringComparer.Ordinal)
            .Take(MaxTensors)
            .OrderBy(s => s.Name, StringComparer.Ordinal);
        var tensors = new List<SketchTensor>();
        foreach (SketchSource source in chosen)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int size = source.DType.BitSize() / 8;
            var windows = new List<SketchWindow>(WindowsPerTensor);
            foreach (long element in WindowStarts(source.Length / size, windowElements))
            {
                long count = Math.Min(windowElements, source.Length / size - element);
                var bytes = new byte[count * size];
                source.Read(element * size, bytes);
                windows.Add(new SketchWindow(element * size, bytes));
            }
            tensors.Add(new SketchTensor(source.Name, source.DType, source.Shape, [.. windows]));
        }
        return new ModelSketch(tensorBytes, tensors);
    }

    /// <summary>
    /// The elements a stretch takes in a model of <paramref name="tensorBytes"/> floating bytes: about 1/256 of them
    /// over all stretches, a power of two between <see cref="MinWindowElements"/> and <see cref="MaxWindowElements"/>.
    /// </summary>
    internal static int WindowElementsFor(long tensorBytes)
    {
        long target = tensorBytes / 256 / (MaxTensors * WindowsPerTensor * 2);
        return (int)Math.Clamp(target <= 1 ? 1 : (long)BitOperations.RoundUpToPowerOf2((ulong)target), MinWindowElements, MaxWindowElements);
    }

    /// <summary>
    /// Where the stretches of a tensor of <paramref name="elements"/> start: at a quarter and three quarters of the
    /// largest power of two not above its length, so tensors whose lengths differ a little (added vocabulary rows)
    /// are sampled at the same places.
    /// </summary>
    internal static IEnumerable<long> WindowStarts(long elements, int windowElements)
    {
        long span = (long)BitOperations.RoundUpToPowerOf2((ulong)elements + 1) / 2;
        long last = -1;
        for (int j = 0; j < WindowsPerTensor; j++)
        {
            long start = Math.Clamp(span * (2 * j + 1) / (2 * WindowsPerTensor) - windowElements / 2, 0, Math.Max(0, elements - windowElements));
            if (start > last)
            {
                // Stretches of a short tensor would overlap: each byte is sampled once.
                if (last >= 0 && start < last + windowElements)
                {
                    continue;
                }
                yield return start;
                last = start;
            }
        }
    }

    private static ulong NameHash(string name) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(name));

    /// <summary>The sketch as bytes, as it is stored (<see cref="Parse"/> reads them).</summary>
    public byte[] ToBytes()
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(FormatVersion);
            writer.Write(TensorBytes);
            writer.Write(Tensors.Count);
            foreach (SketchTensor tensor in Tensors)
            {
                byte[] name = Encoding.UTF8.GetBytes(tensor.Name);
                writer.Write((ushort)name.Length);
                writer.Write(name);
                byte[] dtype = Encoding.UTF8.GetBytes(tensor.DType.Name());
                writer.Write((byte)dtype.Length);
                writer.Write(dtype);
                writer.Write((byte)tensor.Shape.Length);
                foreach (long dimension in tensor.Shape)
                {
                    writer.Write(dimension);
                }
                writer.Write((byte)tensor.Windows.Length);
                foreach (SketchWindow window in tensor.Windows)
                {
                    writer.Write(window.Offset);
                    writer.Write(window.Bytes.Length);
                    writer.Write(window.Bytes);
                }
            }
        }
        return buffer.ToArray();
    }

    /// <summary>Reads a sketch written by <see cref="ToBytes"/>.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a sketch, or are truncated or inconsistent.</exception>
    public static ModelSketch Parse(ReadOnlySpan<byte> bytes)
    {
        var reader = new SpanReader(bytes);
        if (reader.UInt32() != Magic || reader.Byte() != FormatVersion)
        {
            throw new InvalidDataException("Not a lineage sketch of a known format.");
        }
        long tensorBytes = reader.Int64();
        int count = reader.Int32();
        if (tensorBytes < 0 || count is < 0 or > MaxTensors)
        {
            throw new InvalidDataException("Lineage sketch: bad counts.");
        }
        var tensors = new List<SketchTensor>(count);
        long sampled = 0;
        for (int i = 0; i < count; i++)
        {
            string name = Encoding.UTF8.GetString(reader.Bytes(reader.UInt16()));
            if (!DTypes.TryParse(reader.Bytes(reader.Byte()), out DType dtype) || !IsSampled(dtype))
            {
                throw new InvalidDataException($"Lineage sketch: tensor \"{name}\" has a dtype that is not sampled.");
            }
            var shape = new long[reader.Byte()];
            for (int d = 0; d < shape.Length; d++)
            {
                shape[d] = reader.Int64();
            }
            var windows = new SketchWindow[reader.Byte()];
            if (windows.Length > WindowsPerTensor)
            {
                throw new InvalidDataException($"Lineage sketch: tensor \"{name}\" has {windows.Length} stretches.");
            }
            for (int w = 0; w < windows.Length; w++)
            {
                long offset = reader.Int64();
                int length = reader.Int32();
                sampled += length;
                if (offset < 0 || length <= 0 || length % (dtype.BitSize() / 8) != 0 || offset % (dtype.BitSize() / 8) != 0 || sampled > MaxSampleBytes)
                {
                    throw new InvalidDataException($"Lineage sketch: tensor \"{name}\" has a bad stretch.");
                }
                windows[w] = new SketchWindow(offset, reader.Bytes(length).ToArray());
            }
            tensors.Add(new SketchTensor(name, dtype, shape, windows));
        }
        if (!reader.AtEnd)
        {
            throw new InvalidDataException("Lineage sketch: bytes after its end.");
        }
        return new ModelSketch(tensorBytes, tensors);
    }

    /// <summary>Reads little-endian values off a span, every read bounds-checked.</summary>
    private ref struct SpanReader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _at;

        public readonly bool AtEnd => _at == _bytes.Length;

        public ReadOnlySpan<byte> Bytes(int count)
        {
            if (count < 0 || count > _bytes.Length - _at)
            {
                throw new InvalidDataException("Lineage sketch is truncated.");
            }
            ReadOnlySpan<byte> slice = _bytes.Slice(_at, count);
            _at += count;
            return slice;
        }

        public byte Byte() => Bytes(1)[0];
        public ushort UInt16() => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2));
        public uint UInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4));
        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4));
        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8));
    }
}
