using System.Buffers.Binary;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Codecs;

/// <summary>How deltas are coded: each chunk by the transform that stores it smallest, never above solo, across 16-bit dtypes.</summary>
public class DeltaTransformTests
{
    private static readonly CodecOptions SmallChunks = new() { ChunkSize = 4096 };

    /// <summary>Each pair of 16-bit dtypes (finetune, base) at each length; public, as xunit requires, and untyped: DType is internal.</summary>
    public static IEnumerable<object[]> Pairs()
    {
        foreach ((DType ft, DType @base) in new[] { (DType.BF16, DType.BF16), (DType.F16, DType.F16), (DType.F16, DType.BF16), (DType.BF16, DType.F16) })
        {
            foreach (int length in new[] { 0, 2, 6, 4096, 4098, 30_002, 30_001 })
            {
                yield return [ft, @base, length];
            }
        }
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    internal void RoundTrip_FinetuneOfAnyHalfWordBase_IncludingSpecialValuesAndConversions_IsExact(DType dtype, DType baseDType, int length)
    {
        var random = new Random(length + (int)dtype * 7 + (int)baseDType);
        byte[] baseTensor = WithSpecialValues(random, TensorData.Sample(random, baseDType, length));
        BaseConversion conversion = DeltaPairing.ConversionFor(dtype, baseDType);
        byte[] tensor = Near(random, Converted(baseTensor, conversion));
        using var pool = new WorkerPool(2, SmallChunks);
        ElementLayout layout = ElementLayouts.ForDType(dtype);
        var counts = new TransformCounts();
        byte[] encoded = Encode(layout, tensor, baseTensor, pool, conversion, counts);
        EncodedTensor opened = EncodedTensor.Open("ft", encoded);
        // Near words code smaller against the base; an empty tensor has no chunk to, and is solo.
        Assert.Equal(length == 0 ? EncodedTensorKind.Solo : EncodedTensorKind.Delta, opened.Kind);
        Assert.Equal(length == 0 ? BaseConversion.None : conversion, opened.Conversion);
        opened.Base = RawChunkSource.FromMemory(baseTensor);
        Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
        Assert.Equal(EncodedTensorFormat.ChunkCount(length, SmallChunks.ChunkSize), counts.Solo + counts.Xor + counts.OrderedDifference + counts.ContextXor);
    }

    [Fact]
    public void Encode_F16CopyOfABf16Base_CostsNextToNothing()
    {
        var random = new Random(3);
        byte[] baseTensor = TensorData.Sample(random, DType.BF16, 1 << 20);
        byte[] copy = Converted(baseTensor, BaseConversion.Bf16ToF16);
        using var pool = new WorkerPool(2);
        byte[] encoded = Encode(ElementLayout.Half, copy, baseTensor, pool, BaseConversion.Bf16ToF16, null);
        Assert.True(encoded.Length < copy.Length / 500, $"{encoded.Length} bytes for a {copy.Length}-byte exact conversion");
        byte[] solo = TensorCodec.Encode(ElementLayout.Half, copy, null, pool);
        Assert.True(solo.Length > copy.Length / 2);
    }

    [Fact]
    public void Encode_NearFinetune_OrderedDifferenceStoresAtLeastAFifthLessThanBitX()
    {
        var random = new Random(4);
        (byte[] baseTensor, byte[] tensor) = MultiplicativeFinetune(random, 1 << 21, 0.01);
        using var pool = new WorkerPool(2);
        using var bitxPool = new WorkerPool(2, CodecOptions.Default with { OrderedDifference = false, Rans = false });
        var counts = new TransformCounts();
        long ours = Encode(ElementLayout.Word16, tensor, baseTensor, pool, BaseConversion.None, counts).Length;
        long bitx = Encode(ElementLayout.Word16, tensor, baseTensor, bitxPool, BaseConversion.None, null).Length;
        Assert.True(ours <= 0.8 * bitx, $"ordered difference {ours} bytes, BitX {bitx}");
        Assert.Equal(counts.OrderedDifference, EncodedTensorFormat.ChunkCount(tensor.Length, pool.Options.ChunkSize));
    }

    [Theory]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    [InlineData(DType.F32)]
    [InlineData(DType.I8)]
    internal void Encode_AgainstAnUnrelatedBase_IsNeverLargerThanSolo(DType dtype)
    {
        var random = new Random((int)dtype);
        byte[] tensor = TensorData.Sample(random, dtype, 200_000);
        byte[] unrelated = TensorData.Sample(random, dtype, 200_000);
        using var pool = new WorkerPool(2, SmallChunks with { ChunkSize = 64 << 10 });
        ElementLayout layout = ElementLayouts.ForDType(dtype);
        var counts = new TransformCounts();
        byte[] delta = Encode(layout, tensor, unrelated, pool, BaseConversion.None, counts);
        byte[] solo = TensorCodec.Encode(layout, tensor, null, pool);
        // The same chunks and streams: the delta's header adds only its base reference.
        Assert.True(delta.Length <= solo.Length + 1, $"delta {delta.Length} bytes, solo {solo.Length}");
        Assert.True(counts.Solo > 0);
        EncodedTensor opened = EncodedTensor.Open("d", delta);
        opened.Base = RawChunkSource.FromMemory(unrelated);
        Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
    }

    [Theory]
    [InlineData(0.001)]
    [InlineData(0.05)]
    [InlineData(0.2)]
    [InlineData(0.6)]
    [InlineData(1.5)]
    [InlineData(double.PositiveInfinity)]
    public void Encode_ChoiceByEstimates_IsNeverAboveSolo_AndWithinAPercentOfCodingEveryWay(double noise)
    {
        // Chunks large enough to be chosen by estimates, from a near finetune to an unrelated tensor (infinite noise), and a
        // short last chunk (chosen by trial).
        var random = new Random((int)Math.Min(1e6, noise * 1000));
        (byte[] baseTensor, byte[] tensor) = MultiplicativeFinetune(random, (3 << 20) + 4002, double.IsInfinity(noise) ? 0 : noise);
        if (double.IsInfinity(noise))
        {
            baseTensor = MultiplicativeFinetune(random, tensor.Length, 0).Base;
        }
        var options = new CodecOptions { ChunkSize = 1 << 20 };
        using var pool = new WorkerPool(2, options);
        using var exhaustive = new WorkerPool(2, options with { TrialEveryCoding = true });
        var counts = new TransformCounts();
        byte[] chosen = Encode(ElementLayout.Word16, tensor, baseTensor, pool, BaseConversion.None, counts);
        byte[] best = Encode(ElementLayout.Word16, tensor, baseTensor, exhaustive, BaseConversion.None, null);
        byte[] solo = TensorCodec.Encode(ElementLayout.Word16, tensor, null, pool);

        Assert.True(chosen.Length <= solo.Length + 1, $"chosen {chosen.Length} bytes, solo {solo.Length}");
        Assert.True(chosen.Length <= best.Length * 1.01, $"chosen {chosen.Length} bytes, every way {best.Length}");
        EncodedTensor opened = EncodedTensor.Open("d", chosen);
        opened.Base = RawChunkSource.FromMemory(baseTensor);
        Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
        Assert.Equal(4, counts.Solo + counts.Xor + counts.OrderedDifference + counts.ContextXor);
    }

    [Fact]
    public void Decode_ChunkStoredSoloInADelta_DoesNotReadTheBase()
    {
        var random = new Random(8);
        byte[] tensor = TensorData.Sample(random, DType.BF16, 8192);
        byte[] unrelated = new byte[8192];
        random.NextBytes(unrelated);
        using var pool = new WorkerPool(1, SmallChunks);
        EncodedTensor opened = EncodedTensor.Open("d", Encode(ElementLayout.Word16, tensor, unrelated, pool, BaseConversion.None, null));
        opened.Base = new RawChunkSource(unrelated.Length, (_, _) => throw new InvalidOperationException("the base was read"));
        Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
    }

    [Fact]
    public void Decode_RandomCorruptionOfOrderedDifferences_NeverYieldsWrongBytes()
    {
        var random = new Random(21);
        (byte[] baseTensor, byte[] tensor) = MultiplicativeFinetune(random, 20_000, 0.05);
        for (int i = 0; i < 40; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(tensor.AsSpan(random.Next(10_000) * 2), (ushort)random.Next(65536)); // escapes too
        }
        using var pool = new WorkerPool(2, SmallChunks);
        byte[] encoded = Encode(ElementLayout.Word16, tensor, baseTensor, pool, BaseConversion.None, null);
        int detected = 0;
        for (int iteration = 0; iteration < 2000; iteration++)
        {
            byte[] corrupt = (byte[])encoded.Clone();
            corrupt[random.Next(TensorHeader.Size, corrupt.Length)] ^= (byte)(1 << random.Next(8));
            try
            {
                EncodedTensor opened = EncodedTensor.Open("c", corrupt);
                opened.Base = RawChunkSource.FromMemory(baseTensor);
                Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
            }
            catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException)
            {
                detected++;
            }
        }
        Assert.True(detected > 1900, $"{detected} of 2000 detected");
    }

    [Fact]
    public void Encode_ConversionOfANonHalfWordTensor_IsRefused()
    {
        using var pool = new WorkerPool(1, SmallChunks);
        using var output = new MemoryStream();
        Assert.Throws<ArgumentException>(() => TensorCodec.Encode(output, ElementLayout.Word32, RawChunkSource.FromMemory(new byte[8]),
            RawChunkSource.FromMemory(new byte[8]), [1], pool, conversion: BaseConversion.Bf16ToF16));
    }

    private static byte[] Encode(ElementLayout layout, byte[] tensor, byte[] baseTensor, WorkerPool pool, BaseConversion conversion, TransformCounts? counts)
    {
        using var output = new MemoryStream();
        TensorCodec.Encode(output, layout, RawChunkSource.FromMemory(tensor), RawChunkSource.FromMemory(baseTensor), [7], pool,
            conversion: conversion, transforms: counts);
        return output.ToArray();
    }

    private static byte[] Converted(byte[] words, BaseConversion conversion)
    {
        byte[] copy = (byte[])words.Clone();
        HalfConversion.ConvertInPlace(copy, conversion);
        return copy;
    }

    /// <summary>Each word moved by a few steps of its integer, the way a short finetune moves weights.</summary>
    private static byte[] Near(Random random, byte[] words)
    {
        byte[] copy = (byte[])words.Clone();
        for (int i = 0; i + 1 < copy.Length; i += 2)
        {
            ushort w = BinaryPrimitives.ReadUInt16LittleEndian(copy.AsSpan(i));
            BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(i), (ushort)(w + random.Next(-4, 5)));
        }
        return copy;
    }

    private static byte[] WithSpecialValues(Random random, byte[] words)
    {
        ushort[] special = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC1, 0x7C00, 0xFC00, 0x7E01, 0x0001, 0x8001, 0x03FF];
        for (int i = 0; i + 1 < words.Length; i += 2)
        {
            if (random.Next(50) == 0)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(words.AsSpan(i), special[random.Next(special.Length)]);
            }
        }
        return words;
    }

    /// <summary>BF16 weights N(0, 0.02) and a finetune of them, each scaled by 1 + N(0, <paramref name="noise"/>).</summary>
    private static (byte[] Base, byte[] Finetune) MultiplicativeFinetune(Random random, int bytes, double noise)
    {
        byte[] @base = new byte[bytes], ft = new byte[bytes];
        for (int i = 0; i + 1 < bytes; i += 2)
        {
            double w = Gaussian(random) * 0.02;
            BinaryPrimitives.WriteUInt16LittleEndian(@base.AsSpan(i), ToBf16((float)w));
            BinaryPrimitives.WriteUInt16LittleEndian(ft.AsSpan(i), ToBf16((float)(w * (1 + Gaussian(random) * noise))));
        }
        return (@base, ft);
    }

    private static ushort ToBf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    private static double Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
