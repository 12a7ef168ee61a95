using System.Buffers.Binary;
using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Codecs;

public class SparseBytesTests
{
    [Theory]
    [InlineData(0, 0.9)]
    [InlineData(1, 0.0)]
    [InlineData(7, 0.5)]
    [InlineData(8, 0.9)]
    [InlineData(9, 0.5)]
    [InlineData(63, 0.95)]
    [InlineData(64, 1.0)]
    [InlineData(65, 0.0)]
    [InlineData(1000, 0.95)]
    [InlineData(4099, 0.7)]
    public void CompactThenExpand_VectorAndScalarAgreeAndRoundTrip(int length, double zeroShare)
    {
        var random = new Random(length * 31 + (int)(zeroShare * 100));
        byte[] source = new byte[length];
        for (int i = 0; i < length; i++)
        {
            source[i] = random.NextDouble() < zeroShare ? (byte)0 : (byte)random.Next(1, 256);
        }
        int bitmapLength = SparseBytes.BitmapLength(length);
        byte[] bitmap = new byte[bitmapLength], bitmap2 = new byte[bitmapLength];
        byte[] values = new byte[length + SparseBytes.Slack], values2 = new byte[length + SparseBytes.Slack];
        int count = SparseBytes.CompactVector(source, bitmap, values);
        int count2 = SparseBytes.CompactScalar(source, bitmap2, values2);

        Assert.Equal(source.Count(b => b != 0), count);
        Assert.Equal(count, count2);
        Assert.Equal(bitmap, bitmap2);
        Assert.Equal(values.AsSpan(0, count).ToArray(), values2.AsSpan(0, count).ToArray());
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(source[i] != 0, (bitmap[i / 8] & (1 << (i % 8))) != 0);
        }

        byte[] expanded = new byte[length], expanded2 = new byte[length];
        SparseBytes.ExpandVector(bitmap, values, expanded);
        SparseBytes.ExpandScalar(bitmap, values, expanded2);
        Assert.Equal(source, expanded);
        Assert.Equal(source, expanded2);
        byte[] viaPublic = new byte[length];
        SparseBytes.Expand(bitmap, values, count, viaPublic);
        Assert.Equal(source, viaPublic);
    }

    [Fact]
    public void Expand_BitmapThatDisagreesWithTheCount_IsRefused()
    {
        byte[] source = [0, 5, 0, 0, 7, 0, 0, 0, 9, 0];
        byte[] bitmap = new byte[SparseBytes.BitmapLength(source.Length)];
        byte[] values = new byte[source.Length + SparseBytes.Slack];
        int count = SparseBytes.Compact(source, bitmap, values);
        Assert.Equal(3, count);
        byte[] output = new byte[source.Length];

        Assert.Throws<InvalidDataException>(() => SparseBytes.Expand(bitmap, values, count - 1, output));
        Assert.Throws<InvalidDataException>(() => SparseBytes.Expand(bitmap, values, count + 1, output));
        Assert.Throws<InvalidDataException>(() => SparseBytes.Expand(bitmap, values, -1, output));
        Assert.Throws<InvalidDataException>(() => SparseBytes.Expand(bitmap, values.AsSpan(0, count + SparseBytes.Slack - 1), count, output));
        Assert.Throws<InvalidDataException>(() => SparseBytes.Expand(bitmap.AsSpan(0, 1), values, count, output));
        byte[] pastTheEnd = (byte[])bitmap.Clone();
        pastTheEnd[^1] |= 0x80; // byte 15 of a 10-byte stream
        Assert.Throws<InvalidDataException>(() => SparseBytes.Expand(pastTheEnd, values, count + 1, output));
    }

    [Fact]
    public void Compact_DestinationsTooSmall_AreRefused()
    {
        byte[] source = new byte[100];
        Assert.Throws<ArgumentException>(() => SparseBytes.Compact(source, new byte[12], new byte[100 + SparseBytes.Slack]));
        Assert.Throws<ArgumentException>(() => SparseBytes.Compact(source, new byte[13], new byte[100]));
    }

    /// <summary>Chunks large enough for the codec to choose sparse streams for a finetune's exponent XOR.</summary>
    /// <summary>Without rANS and ordered differences, as format version 2 coded, so that sparse streams are what wins.</summary>
    private static readonly CodecOptions SparseChunks = new() { ChunkSize = 64 << 10, OrderedDifference = false, Rans = false };

    [Fact]
    public void Delta_MostlyUnchangedExponents_IsStoredSparseAndRoundTrips()
    {
        var random = new Random(17);
        using var pool = new WorkerPool(2, SparseChunks);
        foreach (DType dtype in new[] { DType.BF16, DType.F16, DType.F32 })
        {
            byte[] baseTensor = TensorData.Sample(random, dtype, 300_001);
            byte[] tensor = FinetuneWithRareExponentChanges(random, baseTensor, dtype);
            byte[] encoded = TensorCodec.Encode(ElementLayouts.ForDType(dtype), tensor, baseTensor, pool, [7]);
            Assert.Contains(EncodedTensorFormat.ModeSparseZstd, StreamModes(encoded));
            EncodedTensor opened = EncodedTensor.Open("delta", encoded);
            opened.Base = RawChunkSource.FromMemory(baseTensor);
            Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
        }
    }

    [Fact]
    public void Delta_SparseStreams_StoreFewerBytesThanPlainZstd()
    {
        var random = new Random(23);
        using var sparsePool = new WorkerPool(2, SparseChunks);
        byte[] baseTensor = TensorData.Sample(random, DType.BF16, 1 << 20);
        byte[] tensor = FinetuneWithRareExponentChanges(random, baseTensor, DType.BF16);
        byte[] encoded = TensorCodec.Encode(ElementLayout.Word16, tensor, baseTensor, sparsePool, [7]);
        long sparseExponentBytes = StreamSizes(encoded, stream: 0).Sum();

        // The same exponent XOR stream, zstd-compressed whole as version 1 stored it.
        using var zstd = ZipLlm.Codecs.Zstd.ZstdContext.Create();
        long plainExponentBytes = 0;
        for (int offset = 0; offset < tensor.Length; offset += SparseChunks.ChunkSize)
        {
            int length = Math.Min(SparseChunks.ChunkSize, tensor.Length - offset);
            byte[] exponents = new byte[length / 2], signMantissa = new byte[length / 2];
            Bf16Split.Split(tensor.AsSpan(offset, length), baseTensor.AsSpan(offset, length), exponents, signMantissa);
            byte[] frame = new byte[ZipLlm.Codecs.Zstd.ZstdContext.CompressBound(exponents.Length)];
            plainExponentBytes += zstd.Compress(exponents, frame, CodecOptions.Default.ExponentLevel);
        }
        Assert.True(sparseExponentBytes < plainExponentBytes, $"sparse {sparseExponentBytes} bytes, plain zstd {plainExponentBytes}");
    }

    [Fact]
    public void Decode_CorruptSparseStreams_NeverYieldWrongBytes()
    {
        var random = new Random(29);
        using var pool = new WorkerPool(2, SparseChunks);
        byte[] baseTensor = TensorData.Sample(random, DType.BF16, 100_000);
        byte[] tensor = FinetuneWithRareExponentChanges(random, baseTensor, DType.BF16);
        byte[] encoded = TensorCodec.Encode(ElementLayout.Word16, tensor, baseTensor, pool, [7]);
        (int start, int length) = SparsePayload(encoded);
        for (int iteration = 0; iteration < 1500; iteration++)
        {
            byte[] corrupt = (byte[])encoded.Clone();
            // Aim at the sparse stream: its count, its frame, its bitmap and values.
            int at = start + (iteration % 5 == 0 ? random.Next(4) : random.Next(length));
            corrupt[at] ^= (byte)(1 << random.Next(8));
            try
            {
                EncodedTensor opened = EncodedTensor.Open("c", corrupt);
                opened.Base = RawChunkSource.FromMemory(baseTensor);
                Assert.Equal(tensor, TensorCodec.DecodeToArray(opened, pool));
            }
            catch (InvalidDataException)
            {
            }
        }
    }

    /// <summary>A finetune whose exponents change in about 3% of elements, as the synthetic family's full finetune's do.</summary>
    private static byte[] FinetuneWithRareExponentChanges(Random random, byte[] baseTensor, DType dtype)
    {
        byte[] tensor = TensorData.Perturb(random, baseTensor, dtype);
        int width = Math.Max(1, dtype.BitSize() / 8);
        for (int i = width - 1; i < tensor.Length; i += width)
        {
            if (random.Next(33) == 0)
            {
                tensor[i] ^= 0x01; // bit 8 of a 16-bit word, bit 24 of a 32-bit one: in the exponent stream of both splits
            }
        }
        return tensor;
    }

    /// <summary>Mode of every stream of every chunk of an encoded tensor.</summary>
    private static List<byte> StreamModes(byte[] encoded) => Streams(encoded).Select(s => s.Mode).ToList();

    private static IEnumerable<long> StreamSizes(byte[] encoded, int stream) =>
        Streams(encoded).Where(s => s.Index == stream).Select(s => (long)s.Stored);

    private static (int Start, int Length) SparsePayload(byte[] encoded) =>
        Streams(encoded).Where(s => s.Mode == EncodedTensorFormat.ModeSparseZstd).Select(s => (s.Start, s.Stored)).First();

    private static IEnumerable<(int Index, byte Mode, int Start, int Stored)> Streams(byte[] encoded)
    {
        var result = new List<(int, byte, int, int)>();
        int trailer = EncodedTensorFormat.FooterTrailerSize(encoded[4]);
        (TensorHeader header, uint count) = TensorHeader.Read("t", encoded.AsSpan(0, TensorHeader.Size), encoded.AsSpan(encoded.Length - trailer));
        ElementLayout layout = header.Layout;
        int chunks = (int)count;
        int footer = encoded.Length - (int)header.FooterLength(chunks);
        for (int c = 0; c < chunks; c++)
        {
            int offset = (int)BinaryPrimitives.ReadInt64LittleEndian(encoded.AsSpan(footer + 8 * c));
            int entry = offset + ChunkHeader.SizeOf(encoded[4]);
            int position = entry + layout.StreamCount() * EncodedTensorFormat.StreamEntrySize;
            for (int s = 0; s < layout.StreamCount(); s++)
            {
                byte mode = encoded[entry];
                int stored = BinaryPrimitives.ReadInt32LittleEndian(encoded.AsSpan(entry + 1));
                result.Add((s, mode, position, stored));
                entry += EncodedTensorFormat.StreamEntrySize;
                position += stored;
            }
        }
        return result;
    }
}
