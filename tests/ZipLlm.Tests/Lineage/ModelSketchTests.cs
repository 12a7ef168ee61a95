using ZipLlm.Lineage;
using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Lineage;

public class ModelSketchTests
{
    private static SketchSource Source(string name, DType dtype, long elements, int seed)
    {
        int size = dtype.BitSize() / 8;
        var bytes = new byte[elements * size];
        new Random(seed).NextBytes(bytes);
        return new SketchSource(name, dtype, [elements], bytes.Length, (offset, destination) => bytes.AsSpan((int)offset, destination.Length).CopyTo(destination));
    }

    [Fact]
    public void Build_SamplesTheSameTensorsAndPlacesWhateverTheOrder()
    {
        var sources = Enumerable.Range(0, 80).Select(i => Source($"layer.{i}.weight", DType.BF16, 5000 + i, i)).ToList();
        ModelSketch a = ModelSketch.Build(sources);
        ModelSketch b = ModelSketch.Build(Enumerable.Reverse(sources));
        Assert.Equal(ModelSketch.MaxTensors, a.Tensors.Count);
        Assert.Equal(a.ToBytes(), b.ToBytes());
        Assert.Equal(sources.Sum(s => s.Length), a.TensorBytes);
        Assert.True(a.SampleBytes <= ModelSketch.MaxSampleBytes);
    }

    [Fact]
    public void Build_SkipsIntegerAndTinyTensorsAndCountsFloatBytesOnly()
    {
        ModelSketch sketch = ModelSketch.Build([Source("ids", DType.I64, 10_000, 1), Source("bias", DType.F32, 10, 2), Source("w", DType.F16, 10_000, 3)]);
        Assert.Equal(["w"], sketch.Tensors.Select(t => t.Name));
        Assert.Equal(10 * 4 + 10_000 * 2, sketch.TensorBytes);
    }

    [Theory]
    [InlineData(1_000_000, 1_000_100)]   // a few added vocabulary rows
    [InlineData(4096, 4097)]
    public void WindowStarts_LengthsThatDifferALittle_SampleTheSamePlaces(long elements, long grown)
    {
        int window = ModelSketch.WindowElementsFor(elements * 2 * 64);
        Assert.Equal(ModelSketch.WindowStarts(elements, window), ModelSketch.WindowStarts(grown, window));
    }

    [Theory]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(3000)]
    public void WindowStarts_ShortTensor_StretchesInsideAndApart(long elements)
    {
        int window = (int)Math.Min(2048, elements);
        long[] starts = [.. ModelSketch.WindowStarts(elements, window)];
        Assert.NotEmpty(starts);
        Assert.All(starts, s => Assert.InRange(s, 0, elements - Math.Min(window, elements)));
        for (int i = 1; i < starts.Length; i++)
        {
            Assert.True(starts[i] >= starts[i - 1] + window, "stretches overlap");
        }
    }

    [Fact]
    public void Parse_OfToBytes_GivesTheSameSketch()
    {
        ModelSketch sketch = ModelSketch.Build([Source("a", DType.BF16, 9000, 1), Source("b", DType.F32, 3000, 2), Source("c", DType.F16, 70, 3)]);
        ModelSketch back = ModelSketch.Parse(sketch.ToBytes());
        Assert.Equal(sketch.ToBytes(), back.ToBytes());
        Assert.Equal(sketch.TensorBytes, back.TensorBytes);
        Assert.Equal(sketch.Tensors.Select(t => (t.Name, t.DType)), back.Tensors.Select(t => (t.Name, t.DType)));
    }

    [Fact]
    public void Parse_MalformedBytes_ThrowsInvalidData()
    {
        byte[] good = ModelSketch.Build([Source("a", DType.BF16, 9000, 1)]).ToBytes();
        Assert.Throws<InvalidDataException>(() => ModelSketch.Parse(good[..^1]));
        Assert.Throws<InvalidDataException>(() => ModelSketch.Parse([.. good, 0]));
        Assert.Throws<InvalidDataException>(() => ModelSketch.Parse([]));
        byte[] magic = (byte[])good.Clone();
        magic[0] ^= 1;
        Assert.Throws<InvalidDataException>(() => ModelSketch.Parse(magic));
        for (int cut = 0; cut < good.Length; cut += 7)
        {
            Assert.Throws<InvalidDataException>(() => ModelSketch.Parse(good.AsSpan(0, cut)));
        }
    }

    [Fact]
    public void Truncated_CutsEachStretch()
    {
        // A 2 MB model samples stretches of the shortest length, 64 elements.
        ModelSketch sketch = ModelSketch.Build([Source("a", DType.BF16, 1 << 20, 1)]);
        Assert.All(sketch.Tensors.SelectMany(t => t.Windows), w => Assert.Equal(2 * ModelSketch.MinWindowElements, w.Bytes.Length));
        ModelSketch cut = sketch.Truncated(10);
        Assert.All(cut.Tensors.SelectMany(t => t.Windows), w => Assert.Equal(20, w.Bytes.Length));
        Assert.Equal(sketch.Tensors[0].Windows.Select(w => w.Offset), cut.Tensors[0].Windows.Select(w => w.Offset));
        Assert.Equal(sketch.ToBytes(), sketch.Truncated(1000).ToBytes());
    }
}
