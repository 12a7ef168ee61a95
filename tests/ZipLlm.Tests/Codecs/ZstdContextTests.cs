using ZipLlm.Codecs;
using ZipLlm.Codecs.Zstd;
using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Codecs;

public class ZstdContextTests
{
    /// <summary>Every backend this machine can run: managed always, native where libzstd loads.</summary>
    public static TheoryData<ZstdBackend> Backends()
    {
        var data = new TheoryData<ZstdBackend> { ZstdBackend.Managed };
        if (ZstdContext.NativeAvailable)
        {
            data.Add(ZstdBackend.Native);
        }
        return data;
    }

    /// <summary>Every (writer, reader) pair of backends this machine can run.</summary>
    public static TheoryData<ZstdBackend, ZstdBackend> BackendPairs()
    {
        var data = new TheoryData<ZstdBackend, ZstdBackend>();
        foreach (ZstdBackend writer in Backends())
        {
            foreach (ZstdBackend reader in Backends())
            {
                data.Add(writer, reader);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(BackendPairs))]
    public void Frames_WrittenByOneBackend_DecodeExactlyWithTheOther(ZstdBackend writer, ZstdBackend reader)
    {
        var random = new Random(3);
        using ZstdContext encoder = ZstdContext.Create(writer);
        using ZstdContext decoder = ZstdContext.Create(reader);
        Assert.Equal(writer, encoder.Backend);
        Assert.Equal(reader, decoder.Backend);
        foreach (int length in new[] { 1, 2, 100, 4096, 65_537, 300_000 })
        {
            foreach (int level in new[] { -5, 1, 3, 9 })
            {
                byte[] data = Compressible(random, length);
                byte[] frame = new byte[ZstdContext.CompressBound(length)];
                int written = encoder.Compress(data, frame, level);
                byte[] decoded = new byte[length];
                decoder.DecompressExact(frame.AsSpan(0, written), decoded);
                Assert.Equal(data, decoded);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Decompress_CorruptOrTruncatedFrames_ThrowInvalidData(ZstdBackend backend)
    {
        var random = new Random(11);
        using ZstdContext zstd = ZstdContext.Create(backend);
        byte[] data = Compressible(random, 50_000);
        byte[] frame = new byte[ZstdContext.CompressBound(data.Length)];
        int written = zstd.Compress(data, frame, 1);
        byte[] valid = frame[..written];
        byte[] output = new byte[data.Length];

        Assert.Throws<InvalidDataException>(() => zstd.DecompressExact([], output));
        Assert.Throws<InvalidDataException>(() => zstd.DecompressExact(valid[..(written / 2)], output));
        Assert.Throws<InvalidDataException>(() => zstd.DecompressExact(valid, new byte[data.Length - 1]));
        Assert.Throws<InvalidDataException>(() => zstd.DecompressExact(valid, new byte[data.Length + 1]));
        byte[] badMagic = (byte[])valid.Clone();
        badMagic[0] ^= 0xFF;
        Assert.Throws<InvalidDataException>(() => zstd.DecompressExact(badMagic, output));
        for (int i = 0; i < 300; i++)
        {
            byte[] damaged = (byte[])valid.Clone();
            damaged[random.Next(damaged.Length)] ^= (byte)(1 << random.Next(8));
            try
            {
                zstd.DecompressExact(damaged, output);
            }
            catch (InvalidDataException)
            {
                // Refused: the expected outcome for most flips. A flip zstd cannot see (it keeps no checksum
                // here) must still fill exactly the destination, which DecompressExact has checked.
            }
        }
        // The context is still usable after errors.
        zstd.DecompressExact(valid, output);
        Assert.Equal(data, output);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Compress_DestinationBelowBound_IsRefused(ZstdBackend backend)
    {
        using ZstdContext zstd = ZstdContext.Create(backend);
        byte[] data = new byte[1000];
        Assert.Throws<ArgumentException>(() => zstd.Compress(data, new byte[ZstdContext.CompressBound(1000) - 1], 1));
    }

    [Fact]
    public void CompressBound_MatchesZstdSharp()
    {
        foreach (int length in new[] { 0, 1, 255, 256, 4096, (128 << 10) - 1, 128 << 10, (128 << 10) + 1, 4 << 20, 64 << 20 })
        {
            Assert.Equal(ZstdSharp.Compressor.GetCompressBound(length), ZstdContext.CompressBound(length));
        }
    }

    [Fact]
    public void Native_WhenAvailable_IsTheDefaultUnlessManagedIsAsked()
    {
        string? asked = Environment.GetEnvironmentVariable(ZstdContext.BackendVariable);
        ZstdBackend expected = string.Equals(asked, "managed", StringComparison.OrdinalIgnoreCase) || !ZstdContext.NativeAvailable
            ? ZstdBackend.Managed
            : ZstdBackend.Native;
        Assert.Equal(expected, ZstdContext.Default);
        using ZstdContext zstd = ZstdContext.Create();
        Assert.Equal(expected, zstd.Backend);
        Assert.StartsWith(expected == ZstdBackend.Native ? "native libzstd 1." : "managed ZstdSharp (", ZstdContext.Describe(), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(BackendPairs))]
    public void Tensors_EncodedOnOneBackend_DecodeExactlyOnTheOther(ZstdBackend writer, ZstdBackend reader)
    {
        var random = new Random(5);
        using var encodePool = new WorkerPool(2, new CodecOptions { ChunkSize = 4096, Backend = writer });
        using var decodePool = new WorkerPool(2, new CodecOptions { ChunkSize = 4096, Backend = reader });
        foreach (DType dtype in Enum.GetValues<DType>())
        {
            byte[] tensor = TensorData.Sample(random, dtype, random.Next(0, 20_000));
            ElementLayout layout = ElementLayouts.ForDType(dtype);
            byte[] solo = TensorCodec.Encode(layout, tensor, null, encodePool);
            Assert.Equal(tensor, TensorCodec.DecodeToArray(EncodedTensor.Open("solo", solo), decodePool));

            byte[] baseTensor = TensorData.Perturb(random, tensor, dtype);
            EncodedTensor delta = EncodedTensor.Open("delta", TensorCodec.Encode(layout, tensor, baseTensor, encodePool, [9]));
            delta.Base = RawChunkSource.FromMemory(baseTensor);
            Assert.Equal(tensor, TensorCodec.DecodeToArray(delta, decodePool));
        }
    }

    /// <summary>Bytes with a skewed distribution, so every level finds something to compress.</summary>
    private static byte[] Compressible(Random random, int length)
    {
        byte[] data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = (byte)(random.Next(4) == 0 ? random.Next(256) : 120 + random.Next(6));
        }
        return data;
    }
}
