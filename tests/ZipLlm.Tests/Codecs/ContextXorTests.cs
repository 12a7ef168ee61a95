using System.Buffers.Binary;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Safetensors;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Codecs;

/// <summary>
/// The context XOR (<see cref="ChunkTransform.ContextXor"/>): exact over every dtype pair and the edge values, chosen where
/// it is smallest and never above solo, refused when corrupt, truncated or found in a version that lacks it.
/// </summary>
public class ContextXorTests
{
    private static readonly CodecOptions SmallChunks = new() { ChunkSize = 4096 };

    /// <summary>Each (finetune, base) dtype pair the store codes against each other, at lengths around the chunk size; untyped, as DType is internal.</summary>
    public static IEnumerable<object[]> Pairs()
    {
        foreach ((DType ft, DType @base) in new[] { (DType.BF16, DType.BF16), (DType.F16, DType.F16), (DType.F16, DType.BF16), (DType.BF16, DType.F16), (DType.F32, DType.F32) })
        {
            foreach (int length in new[] { 0, 2, 4, 6, 4094, 4096, 4100, 30_002, 30_001, 30_003 })
            {
                yield return [ft, @base, length];
            }
        }
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    internal void RoundTrip_EveryChunkCodedAsContextXor_AnyDtypePairAndEdgeValues_IsExact(DType dtype, DType baseDType, int length)
    {
        var random = new Random(length * 3 + (int)dtype * 11 + (int)baseDType);
        (_, byte[] baseTensor, byte[] tensor, ElementLayout layout) = RetrainedPair(random, dtype, baseDType, length);
        var buffers = new ChunkBufferPool();
        using var coder = new StreamCoder(SmallChunks, buffers);
        using var codec = new ChunkCodec(SmallChunks);
        int coded = 0;
        for (int at = 0; at < tensor.Length; at += SmallChunks.ChunkSize)
        {
            int chunkLength = Math.Min(SmallChunks.ChunkSize, tensor.Length - at);
            ReadOnlySpan<byte> chunk = tensor.AsSpan(at, chunkLength), baseChunk = baseTensor.AsSpan(at, chunkLength);
            if (!StreamCoder.FitsContextXor(layout, chunkLength))
            {
                // Only a 16-bit tensor's odd last chunk (an odd-length tensor is no real 16-bit one) is left to the other transforms.
                Assert.True(layout.IsHalfWord() && chunkLength % 2 == 1);
                continue;
            }
            byte[] encoded = new byte[ChunkCodec.MaxEncodedLength(layout, chunkLength)];
            int written = coder.EncodeContextXor(layout, chunk, baseChunk, encoded);
            Assert.Equal((byte)ChunkTransform.ContextXor, encoded[12]);
            Assert.True(ChunkCodec.NeedsBase(EncodedTensorFormat.Version, encoded));
            byte[] decoded = new byte[chunkLength];
            codec.Decode(layout, EncodedTensorFormat.Version, delta: true, encoded.AsSpan(0, written), baseChunk, decoded);
            Assert.Equal(chunk.ToArray(), decoded);
            coded++;
        }
        Assert.Equal(length >= 2, coded > 0);
    }

    [Theory]
    [InlineData(DType.BF16, DType.BF16)]
    [InlineData(DType.F16, DType.F16)]
    [InlineData(DType.F16, DType.BF16)]
    [InlineData(DType.BF16, DType.F16)]
    [InlineData(DType.F32, DType.F32)]
    internal void Encode_RetrainedFinetune_ChoosesTheContextXor_NeverAboveSolo_AndRoundTrips(DType dtype, DType baseDType)
    {
        var random = new Random(5 + (int)dtype * 3 + (int)baseDType);
        (byte[] baseTensor, _, byte[] tensor, ElementLayout layout) = RetrainedPair(random, dtype, baseDType, 1_200_004);
        BaseConversion conversion = DeltaPairing.ConversionFor(dtype, baseDType);
        var options = new CodecOptions { ChunkSize = 256 << 10 };
        using var pool = new WorkerPool(2, options);
        using var without = new WorkerPool(2, options with { ContextXor = false });
        var counts = new TransformCounts();
        byte[] chosen = Encode(layout, tensor, baseTensor, pool, conversion, counts);
        byte[] before = Encode(layout, tensor, baseTensor, without, conversion, null);
        byte[] solo = TensorCodec.Encode(layout, tensor, null, pool);

        Assert.True(counts.ContextXor > 0, $"{counts.ContextXor} context XOR, {counts.OrderedDifference} difference, {counts.Xor} XOR, {counts.Solo} solo");
        Assert.Equal(counts.ContextXor, LegacyObjects.ChunksOf(chosen, ChunkTransform.ContextXor));
        Assert.True(chosen.Length <= solo.Length + 1, $"chosen {chosen.Length} bytes, solo {solo.Length}");
        Assert.True(chosen.Length < before.Length, $"with the context XOR {chosen.Length} bytes, without {before.Length}");
        EncodedTensor opened = EncodedTensor.Open("ft", chosen);
        Assert.Equal(EncodedTensorFormat.Version, opened.Version);
        Assert.Equal(conversion, opened.Conversion);
        opened.Base = RawChunkSource.FromMemory(baseTensor);
        Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
    }

    [Theory]
    [InlineData(0.01)]
    [InlineData(0.3)]
    [InlineData(0.65)]
    [InlineData(3.0)]
    public void Encode_ChoiceAmongFourByEstimates_IsNeverAboveSolo_AndWithinAPercentOfCodingEveryWay(double noise)
    {
        var random = new Random((int)(noise * 100));
        (byte[] baseTensor, _, byte[] tensor, _) = RetrainedPair(random, DType.BF16, DType.BF16, (3 << 20) + 4002, noise);
        var options = new CodecOptions { ChunkSize = 1 << 20 };
        using var pool = new WorkerPool(2, options);
        using var exhaustive = new WorkerPool(2, options with { TrialEveryCoding = true });
        byte[] chosen = Encode(ElementLayout.Word16, tensor, baseTensor, pool, BaseConversion.None, null);
        byte[] best = Encode(ElementLayout.Word16, tensor, baseTensor, exhaustive, BaseConversion.None, null);
        byte[] solo = TensorCodec.Encode(ElementLayout.Word16, tensor, null, pool);
        Assert.True(chosen.Length <= solo.Length + 1, $"chosen {chosen.Length} bytes, solo {solo.Length}");
        Assert.True(chosen.Length <= best.Length * 1.01, $"chosen {chosen.Length} bytes, every way {best.Length}");
        EncodedTensor opened = EncodedTensor.Open("d", chosen);
        opened.Base = RawChunkSource.FromMemory(baseTensor);
        Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
    }

    [Theory]
    [InlineData(DType.BF16)]
    [InlineData(DType.F32)]
    internal void Decode_CorruptOrTruncatedContextXor_IsRefusedNeverWrong(DType dtype)
    {
        var random = new Random(17 + (int)dtype);
        (byte[] baseChunk, _, byte[] chunk, ElementLayout layout) = RetrainedPair(random, dtype, dtype, 4096);
        var buffers = new ChunkBufferPool();
        using var coder = new StreamCoder(SmallChunks, buffers);
        using var codec = new ChunkCodec(SmallChunks);
        byte[] encoded = new byte[ChunkCodec.MaxEncodedLength(layout, chunk.Length)];
        encoded = encoded.AsSpan(0, coder.EncodeContextXor(layout, chunk, baseChunk, encoded)).ToArray();
        byte[] decoded = new byte[chunk.Length];
        // Each coded stream is rANS in the base exponent's contexts: corruption is refused by the coder or by the checksum.
        Assert.Equal(EncodedTensorFormat.ModeRans, encoded[13]);
        int detected = 0;
        const int Iterations = 1500;
        for (int iteration = 0; iteration < Iterations; iteration++)
        {
            byte[] corrupt = (byte[])encoded.Clone();
            corrupt[random.Next(corrupt.Length)] ^= (byte)(1 << random.Next(8));
            try
            {
                codec.Decode(layout, EncodedTensorFormat.Version, delta: true, corrupt, baseChunk, decoded);
                Assert.Equal(chunk, decoded);
            }
            catch (InvalidDataException)
            {
                detected++;
            }
        }
        Assert.True(detected > Iterations * 0.95, $"{detected} of {Iterations} detected");
        foreach (int cut in new[] { 0, 5, 12, 13, 14, 13 + 5 * layout.StreamCount(), encoded.Length / 2, encoded.Length - 2, encoded.Length - 1 })
        {
            Assert.Throws<InvalidDataException>(() => codec.Decode(layout, EncodedTensorFormat.Version, delta: true, encoded.AsSpan(0, cut), baseChunk, decoded));
        }
        // A context stream may be rANS or raw, never zstd or sparse; and the transform needs a base.
        foreach (byte mode in new[] { EncodedTensorFormat.ModeZstd, EncodedTensorFormat.ModeSparseZstd, (byte)9 })
        {
            byte[] other = (byte[])encoded.Clone();
            other[13] = mode;
            Assert.Throws<InvalidDataException>(() => codec.Decode(layout, EncodedTensorFormat.Version, delta: true, other, baseChunk, decoded));
        }
        Assert.Throws<InvalidDataException>(() => codec.Decode(layout, EncodedTensorFormat.Version, delta: true, encoded, default, decoded));
        Assert.Throws<InvalidDataException>(() => codec.Decode(layout, EncodedTensorFormat.Version, delta: false, encoded, default, decoded));
        // Decoded against another base, the contexts and the XOR differ: refused, never other bytes.
        byte[] otherBase = (byte[])baseChunk.Clone();
        otherBase[1] ^= 0x40;
        Assert.Throws<InvalidDataException>(() => codec.Decode(layout, EncodedTensorFormat.Version, delta: true, encoded, otherBase, decoded));
    }

    [Fact]
    public void Decode_ContextXorChunkInAVersion4Object_IsRefused_AndVersion4ObjectsStillDecode()
    {
        var random = new Random(23);
        (byte[] baseTensor, _, byte[] tensor, _) = RetrainedPair(random, DType.BF16, DType.BF16, 600_000);
        var options = new CodecOptions { ChunkSize = 256 << 10 };
        using var pool = new WorkerPool(2, options);
        byte[] v5 = Encode(ElementLayout.Word16, tensor, baseTensor, pool, BaseConversion.None, null);
        Assert.True(LegacyObjects.ChunksOf(v5, ChunkTransform.ContextXor) > 0);
        Assert.Throws<ArgumentException>(() => LegacyObjects.ToVersion4(v5));
        // The same object labelled 4, as a forged or corrupt one would be: its context XOR chunks are refused as corrupt.
        EncodedTensor forged = EncodedTensor.Open("forged", LegacyObjects.ToVersion4(v5, force: true));
        forged.Base = RawChunkSource.FromMemory(baseTensor);
        var ex = Assert.Throws<InvalidDataException>(() => TensorCodec.DecodeToArray(forged, pool));
        Assert.Contains("transform 3", ex.Message);

        // What version 4 wrote: this build's encoder at version 4, and a version 5 object without context XOR relabelled.
        using var v4Pool = new WorkerPool(2, options with { FormatVersion = 4 });
        using var noContextPool = new WorkerPool(2, options with { ContextXor = false });
        foreach (byte[] v4 in new[] { Encode(ElementLayout.Word16, tensor, baseTensor, v4Pool, BaseConversion.None, null),
                     LegacyObjects.ToVersion4(Encode(ElementLayout.Word16, tensor, baseTensor, noContextPool, BaseConversion.None, null)) })
        {
            Assert.Equal(4, v4[4]);
            Assert.Equal(0, LegacyObjects.ChunksOf(v4, ChunkTransform.ContextXor));
            EncodedTensor opened = EncodedTensor.Open("v4", v4);
            Assert.Equal(4, opened.Version);
            opened.Base = RawChunkSource.FromMemory(baseTensor);
            Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
        }
    }

    [Fact]
    public void BaseExponents_F32Words_TakeTheBf16ContextOfTheirTopHalf_AndHalfWordsTheDifferencesContexts()
    {
        var random = new Random(41);
        byte[] singles = TensorData.Sample(random, DType.F32, 4 * 1001);
        byte[] contexts = new byte[1001], expected = new byte[1001];
        BaseExponents.Contexts(ElementLayout.Word32, singles, contexts);
        byte[] tops = new byte[2 * 1001];
        for (int i = 0; i < 1001; i++)
        {
            singles.AsSpan(4 * i + 2, 2).CopyTo(tops.AsSpan(2 * i));
        }
        OrderedDifference.Contexts(tops, ElementLayout.Word16, expected);
        Assert.Equal(expected, contexts);
        Assert.Contains(contexts, c => c is > 0 and < BaseExponents.ContextCount - 1);
        byte[] halves = TensorData.Sample(random, DType.F16, 2 * 1001);
        BaseExponents.Contexts(ElementLayout.Half, halves, contexts);
        OrderedDifference.Contexts(halves, ElementLayout.Half, expected);
        Assert.Equal(expected, contexts);
        Assert.Throws<ArgumentException>(() => BaseExponents.Contexts(ElementLayout.Bytes, halves, contexts));
        Assert.Throws<ArgumentException>(() => BaseExponents.Contexts(ElementLayout.Word32, singles.AsSpan(1), contexts));
    }

    private static byte[] Encode(ElementLayout layout, byte[] tensor, byte[] baseTensor, WorkerPool pool, BaseConversion conversion, TransformCounts? counts)
    {
        using var output = new MemoryStream();
        TensorCodec.Encode(output, layout, RawChunkSource.FromMemory(tensor), RawChunkSource.FromMemory(baseTensor), [7], pool,
            conversion: conversion, transforms: counts);
        return output.ToArray();
    }

    /// <summary>
    /// A base of <paramref name="baseDType"/> with the edge values (zeros of both signs, infinities, NaNs, subnormals) and a
    /// finetune of <paramref name="dtype"/> retrained from it: each weight scaled by 1 + N(0, <paramref name="noise"/>), 3% of
    /// signs flipped (the edge values scaled too: a NaN stays a NaN); and the base converted to the finetune's dtype, as
    /// the codec sees it.
    /// </summary>
    private static (byte[] Base, byte[] Converted, byte[] Finetune, ElementLayout Layout) RetrainedPair(Random random, DType dtype, DType baseDType, int length, double noise = 0.65)
    {
        byte[] baseTensor = TensorData.Sample(random, baseDType, length);
        int width = dtype == DType.F32 ? 4 : 2;
        ushort[] special16 = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC1, 0x7C00, 0xFC00, 0x7E01, 0x0001, 0x8001, 0x03FF];
        uint[] special32 = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00001, 0x00000001, 0x807FFFFF, 0x00800000];
        for (int i = 0; i + width <= length; i += width)
        {
            if (random.Next(40) == 0)
            {
                if (width == 4)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(baseTensor.AsSpan(i), special32[random.Next(special32.Length)]);
                }
                else
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(baseTensor.AsSpan(i), special16[random.Next(special16.Length)]);
                }
            }
        }
        byte[] converted = (byte[])baseTensor.Clone();
        HalfConversion.ConvertInPlace(converted, DeltaPairing.ConversionFor(dtype, baseDType));
        byte[] tensor = (byte[])converted.Clone();
        for (int i = 0; i + width <= length; i += width)
        {
            double factor = (1 + noise * Gaussian(random)) * (random.Next(33) == 0 ? -1 : 1);
            Span<byte> word = tensor.AsSpan(i, width);
            switch (dtype)
            {
                case DType.F32:
                    BinaryPrimitives.WriteSingleLittleEndian(word, (float)(BinaryPrimitives.ReadSingleLittleEndian(word) * factor));
                    break;
                case DType.F16:
                    BinaryPrimitives.WriteHalfLittleEndian(word, (Half)((double)BinaryPrimitives.ReadHalfLittleEndian(word) * factor));
                    break;
                default:
                    float value = BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(word) << 16);
                    BinaryPrimitives.WriteUInt16LittleEndian(word, (ushort)(BitConverter.SingleToUInt32Bits((float)(value * factor)) >> 16));
                    break;
            }
        }
        // The bytes past the last whole word: anything.
        for (int i = length - length % width; i < length; i++)
        {
            tensor[i] = (byte)random.Next(256);
        }
        return (baseTensor, converted, tensor, ElementLayouts.ForDType(dtype));
    }

    private static double Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
