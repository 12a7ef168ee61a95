using ZipLlm.Codecs;
using ZipLlm.Safetensors;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Codecs;

public class TensorCodecTests
{
    private static readonly CodecOptions SmallChunks = new() { ChunkSize = 256 };

    [Fact]
    public void RoundTrip_RandomTensorsOfEveryDType_AreExact()
    {
        var random = new Random(42);
        using var pool = new WorkerPool(2, SmallChunks);
        DType[] dtypes = Enum.GetValues<DType>();
        int deltas = 0;
        for (int iteration = 0; iteration < 1500; iteration++)
        {
            DType dtype = dtypes[random.Next(dtypes.Length)];
            int length = RandomLength(random);
            byte[] tensor = TensorData.Sample(random, dtype, length);
            ElementLayout layout = ElementLayouts.ForDType(dtype);

            byte[] solo = TensorCodec.Encode(layout, tensor, null, pool);
            Assert.Equal(tensor, TensorCodec.DecodeToArray(EncodedTensor.Open("solo", solo), pool));

            byte[] baseTensor = TensorData.Perturb(random, tensor, dtype);
            byte[] delta = TensorCodec.Encode(layout, tensor, baseTensor, pool, [1, 2, 3]);
            EncodedTensor opened = EncodedTensor.Open("delta", delta);
            // A delta when some chunk is smaller so (then it names its base); else solo, no larger than alone.
            Assert.Equal(opened.Kind == EncodedTensorKind.Delta ? [1, 2, 3] : [], opened.Reference);
            Assert.True(opened.Kind == EncodedTensorKind.Delta || delta.Length <= solo.Length, $"{dtype}, {length} bytes");
            deltas += opened.Kind == EncodedTensorKind.Delta ? 1 : 0;
            opened.Base = RawChunkSource.FromMemory(baseTensor);
            Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
        }
        Assert.InRange(deltas, 500, 1500);
    }

    [Fact]
    public void RoundTrip_DeltaAgainstEncodedBase_IsExact()
    {
        var random = new Random(7);
        using var pool = new WorkerPool(2, SmallChunks);
        byte[] baseTensor = TensorData.Sample(random, DType.BF16, 5000);
        byte[] ft = TensorData.Perturb(random, baseTensor, DType.BF16);
        byte[] ft2 = TensorData.Perturb(random, ft, DType.BF16);

        EncodedTensor encodedBase = EncodedTensor.Open("base", TensorCodec.Encode(ElementLayout.Word16, baseTensor, null, pool));
        EncodedTensor encodedFt = EncodedTensor.Open("ft", TensorCodec.Encode(ElementLayout.Word16, ft, baseTensor, pool));
        encodedFt.Base = encodedBase;
        EncodedTensor encodedFt2 = EncodedTensor.Open("ft2", TensorCodec.Encode(ElementLayout.Word16, ft2, ft, pool));
        encodedFt2.Base = encodedFt;

        Assert.Equal(ft2, TensorCodec.DecodeToArray(encodedFt2, pool));
    }

    [Theory]
    [InlineData(1000, 1000)]
    [InlineData(1000, 1600)] // rows added: the tail XORs with zeros
    [InlineData(1600, 1000)] // rows removed: the base is cut short
    [InlineData(300, 2000)]
    [InlineData(0, 700)]
    public void RoundTrip_DeltaAgainstBaseOfOtherLength_IsExact(int baseLength, int length)
    {
        var random = new Random(baseLength + length);
        using var pool = new WorkerPool(2, SmallChunks);
        byte[] baseTensor = TensorData.Sample(random, DType.BF16, baseLength);
        byte[] grown = TensorData.Sample(random, DType.BF16, length);
        byte[] tensor = [.. TensorData.Perturb(random, baseTensor, DType.BF16).Take(length), .. grown.Skip(baseLength)];
        EncodedTensor encodedBase = EncodedTensor.Open("base", TensorCodec.Encode(ElementLayout.Word16, baseTensor, null, pool));

        using var output = new MemoryStream();
        TensorCodec.Encode(output, ElementLayout.Word16, RawChunkSource.FromMemory(tensor),
            new ResizedChunkSource(encodedBase, encodedBase.ChunkSize, tensor.Length), [7], pool);
        EncodedTensor delta = EncodedTensor.Open("delta", output.ToArray());
        delta.Base = new ResizedChunkSource(encodedBase, encodedBase.ChunkSize, tensor.Length);

        Assert.Equal(tensor, TensorCodec.DecodeToArray(delta, pool));
    }

    [Fact]
    public void Decode_DeltaWithoutBase_ThrowsInvalidData()
    {
        using var pool = new WorkerPool(1, SmallChunks);
        // Random bytes against themselves: the XOR is all zeros, far smaller than the bytes alone, so the chunk needs its base.
        byte[] bytes = new byte[200];
        new Random(3).NextBytes(bytes);
        byte[] delta = TensorCodec.Encode(ElementLayout.Bytes, bytes, bytes, pool);
        Assert.Throws<InvalidDataException>(() => TensorCodec.DecodeToArray(EncodedTensor.Open("d", delta), pool));
    }

    [Fact]
    public void Encode_Bf16Weights_SoloBeatsPlainZstdAndDeltaBeatsSolo()
    {
        var random = new Random(3);
        using var pool = new WorkerPool(2);
        byte[] weights = TensorData.Sample(random, DType.BF16, 1 << 20);
        byte[] finetune = TensorData.Perturb(random, weights, DType.BF16);
        int plain = new ZstdSharp.Compressor(3).Wrap(weights).Length;
        int solo = TensorCodec.Encode(ElementLayout.Word16, weights, null, pool).Length;
        int delta = TensorCodec.Encode(ElementLayout.Word16, finetune, weights, pool).Length;
        Assert.True(solo < plain, $"solo {solo} should be smaller than plain zstd {plain}");
        Assert.True(delta < solo / 2, $"delta {delta} should be far smaller than solo {solo}");
    }

    [Fact]
    public void Encode_IncompressibleData_StoredRawWithSmallOverhead()
    {
        var random = new Random(5);
        using var pool = new WorkerPool(2);
        byte[] noise = KernelTests.RandomBytes(random, 3 << 20);
        byte[] encoded = TensorCodec.Encode(ElementLayout.Bytes, noise, null, pool);
        Assert.InRange(encoded.Length, noise.Length, noise.Length + 256);
        Assert.Equal(noise, TensorCodec.DecodeToArray(EncodedTensor.Open("n", encoded), pool));
    }

    [Fact]
    public void Decode_RandomCorruption_NeverYieldsWrongBytes()
    {
        var random = new Random(11);
        using var pool = new WorkerPool(2, SmallChunks);
        byte[] tensor = TensorData.Sample(random, DType.BF16, 3000);
        byte[] encoded = TensorCodec.Encode(ElementLayout.Word16, tensor, null, pool);
        for (int iteration = 0; iteration < 3000; iteration++)
        {
            byte[] corrupt = (byte[])encoded.Clone();
            switch (iteration % 3)
            {
                case 0:
                    corrupt[random.Next(corrupt.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    Array.Resize(ref corrupt, random.Next(corrupt.Length));
                    break;
                default:
                    for (int k = 0; k < 4; k++)
                    {
                        corrupt[random.Next(corrupt.Length)] = (byte)random.Next(256);
                    }
                    break;
            }
            try
            {
                byte[] decoded = TensorCodec.DecodeToArray(EncodedTensor.Open("c", corrupt), pool);
                // A flip may hit a byte that does not matter (e.g. an unused bit of a header field): then the data must still be right.
                Assert.Equal(tensor, decoded);
            }
            catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or NotSupportedException)
            {
            }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(255)]
    [InlineData(256)]
    [InlineData(257)]
    [InlineData(1023)]
    public void RoundTrip_SizesAroundChunkBoundary_AreExact(int length)
    {
        var random = new Random(length);
        using var pool = new WorkerPool(2, SmallChunks);
        foreach (ElementLayout layout in Enum.GetValues<ElementLayout>())
        {
            byte[] tensor = KernelTests.RandomBytes(random, length);
            byte[] baseTensor = KernelTests.RandomBytes(random, length);
            Assert.Equal(tensor, TensorCodec.DecodeToArray(EncodedTensor.Open("s", TensorCodec.Encode(layout, tensor, null, pool)), pool));
            EncodedTensor delta = EncodedTensor.Open("d", TensorCodec.Encode(layout, tensor, baseTensor, pool));
            delta.Base = RawChunkSource.FromMemory(baseTensor);
            Assert.Equal(tensor, TensorCodec.DecodeToArray(delta, pool));
        }
    }

    [Fact]
    public void Decode_SeveralTensorsAsOneStream_EmitsTheirBytesInOrder()
    {
        var random = new Random(21);
        using var pool = new WorkerPool(2, SmallChunks);
        var expected = new List<byte>();
        var sources = new List<IChunkSource>();
        // Every kind of source and length: encoded solo and delta, raw, empty, one chunk, many chunks.
        for (int i = 0; i < 40; i++)
        {
            DType dtype = i % 3 == 0 ? DType.BF16 : DType.F32;
            byte[] tensor = TensorData.Sample(random, dtype, i % 7 == 0 ? 0 : random.Next(1, 2000));
            ElementLayout layout = ElementLayouts.ForDType(dtype);
            IChunkSource source;
            switch (i % 3)
            {
                case 0:
                    source = EncodedTensor.Open($"solo{i}", TensorCodec.Encode(layout, tensor, null, pool));
                    break;
                case 1:
                    byte[] baseTensor = TensorData.Perturb(random, tensor, dtype);
                    var delta = EncodedTensor.Open($"delta{i}", TensorCodec.Encode(layout, tensor, baseTensor, pool, [1]));
                    delta.Base = RawChunkSource.FromMemory(baseTensor);
                    source = delta;
                    break;
                default:
                    source = RawChunkSource.FromMemory(tensor);
                    break;
            }
            sources.Add(source);
            expected.AddRange(tensor);
        }

        var actual = new List<byte>();
        int calls = 0;
        TensorCodec.Decode(sources, SmallChunks.ChunkSize, pool, chunk =>
        {
            Assert.InRange(chunk.Length, 1, SmallChunks.ChunkSize);
            actual.AddRange(chunk.ToArray());
            calls++;
        });
        Assert.Equal(expected, actual);
        Assert.True(calls > sources.Count, $"{calls} chunks for {sources.Count} tensors");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Open_OlderVersionObject_StillDecodes_NewerVersionIsRefused(byte version)
    {
        var random = new Random(31 + version);
        // As those versions coded: no rANS, no ordered differences; version 1 had no sparse streams either, which chunks this small never use.
        CodecOptions options = SmallChunks with { Rans = false, OrderedDifference = false, FormatVersion = 3, ChunkSize = version == 1 ? 256 : 64 << 10 };
        using var pool = new WorkerPool(2, options);
        byte[] baseTensor = TensorData.Sample(random, DType.BF16, 100_000);
        byte[] tensor = TensorData.Perturb(random, baseTensor, DType.BF16);
        foreach ((byte[] encoded, byte[]? basis) in new[] { (TensorCodec.Encode(ElementLayout.Word16, tensor, null, pool), (byte[]?)null),
                     (TensorCodec.Encode(ElementLayout.Word16, tensor, baseTensor, pool, [7]), baseTensor) })
        {
            byte[] old = LegacyObjects.Downgrade(encoded, version);
            EncodedTensor opened = EncodedTensor.Open("old", old);
            Assert.Equal(version, opened.Version);
            if (basis is not null)
            {
                opened.Base = RawChunkSource.FromMemory(basis);
            }
            Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
        }

        using var current = new WorkerPool(2, SmallChunks);
        byte[] newer = TensorCodec.Encode(ElementLayout.Word16, tensor, null, current);
        Assert.Equal(EncodedTensorFormat.Version, newer[4]);
        newer[4] = EncodedTensorFormat.Version + 1;
        var ex = Assert.Throws<NotSupportedException>(() => EncodedTensor.Open("v4", newer));
        Assert.Contains("version", ex.Message);
    }

    [Theory]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    [InlineData(DType.F32)]
    internal void Open_Version3Object_WithRansStreams_StillDecodes_AndIsNotReadAsVersion4(DType dtype)
    {
        // Version 3 differs from 4 only in its rANS streams' lanes (32, not 64): written here by this build's encoder.
        var random = new Random(47 + (int)dtype);
        var v3 = new CodecOptions { ChunkSize = 64 << 10, FormatVersion = 3 };
        using var pool3 = new WorkerPool(2, v3);
        using var pool4 = new WorkerPool(2, v3 with { FormatVersion = EncodedTensorFormat.Version });
        ElementLayout layout = ElementLayouts.ForDType(dtype);
        byte[] baseTensor = TensorData.Sample(random, dtype, 300_001);
        byte[] tensor = TensorData.Perturb(random, baseTensor, dtype);
        foreach (byte[]? basis in new[] { null, baseTensor })
        {
            ReadOnlyMemory<byte>? against = basis is null ? (ReadOnlyMemory<byte>?)null : basis;
            byte[] old = TensorCodec.Encode(layout, tensor, against, pool3, basis is null ? default : [9]);
            byte[] now = TensorCodec.Encode(layout, tensor, against, pool4, basis is null ? default : [9]);
            Assert.Equal(3, old[4]);
            Assert.Equal(EncodedTensorFormat.Version, now[4]);
            // Apart from the version byte the two are the same exactly when no chunk has a rANS stream; BF16 always has some.
            bool onlyTheVersionDiffers = old.AsSpan(0, 4).SequenceEqual(now.AsSpan(0, 4)) && old.AsSpan(5).SequenceEqual(now.AsSpan(5));
            if (dtype == DType.BF16)
            {
                Assert.False(onlyTheVersionDiffers, "the two versions' rANS streams should differ in their lanes");
            }
            foreach ((byte[] encoded, byte version) in new[] { (old, (byte)3), (now, EncodedTensorFormat.Version) })
            {
                EncodedTensor opened = EncodedTensor.Open($"v{version}", encoded);
                Assert.Equal(version, opened.Version);
                if (basis is not null)
                {
                    opened.Base = RawChunkSource.FromMemory(basis);
                }
                Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool4));
            }
            // A version 3 object relabelled 4 has its rANS streams read with the other lanes: refused as corrupt, never decoded wrong.
            byte[] relabelled = (byte[])old.Clone();
            relabelled[4] = EncodedTensorFormat.Version;
            EncodedTensor wrong = EncodedTensor.Open("relabelled", relabelled);
            if (basis is not null)
            {
                wrong.Base = RawChunkSource.FromMemory(basis);
            }
            if (onlyTheVersionDiffers)
            {
                Assert.Equal(tensor, TensorCodec.DecodeToArray(wrong, pool4));
            }
            else
            {
                Assert.Throws<InvalidDataException>(() => TensorCodec.DecodeToArray(wrong, pool4));
            }
        }
    }

    [Theory]
    [InlineData(DType.BF16, ElementLayout.Word16)]
    [InlineData(DType.F16, ElementLayout.Half)]
    [InlineData(DType.F32, ElementLayout.Word32)]
    [InlineData(DType.F64, ElementLayout.Bytes)]
    [InlineData(DType.I8, ElementLayout.Bytes)]
    [InlineData(DType.U8, ElementLayout.Bytes)]
    [InlineData(DType.BOOL, ElementLayout.Bytes)]
    internal void ElementLayout_FollowsTheReadme_SplitForFloats16And32_PlainBytesOtherwise(DType dtype, ElementLayout expected) =>
        Assert.Equal(expected, ElementLayouts.ForDType(dtype));

    private static int RandomLength(Random random) => random.Next(4) switch
    {
        0 => random.Next(8),
        1 => random.Next(200),
        2 => 256 * random.Next(1, 4) + random.Next(-3, 4),
        _ => random.Next(2000),
    };
}
