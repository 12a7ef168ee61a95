using ZipLlm.Codecs;
using ZipLlm.Codecs.Zstd;
using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Codecs;

public class ZstdContextTests
{
    // The theories' data is public, as xunit requires, and untyped: ZstdBackend is internal to the library.

    /// <summary>Every backend this machine can run: managed always, native where libzstd loads.</summary>
    public static IEnumerable<object[]> Backends() => Available().Select(backend => new object[] { backend });

    /// <summary>Every (writer, reader) pair of backends this machine can run.</summary>
    public static IEnumerable<object[]> BackendPairs() =>
        from writer in Available()
        from reader in Available()
        select new object[] { writer, reader };

    private static IEnumerable<ZstdBackend> Available() =>
        ZstdContext.NativeAvailable ? [ZstdBackend.Managed, ZstdBackend.Native] : [ZstdBackend.Managed];

    [Theory]
    [MemberData(nameof(BackendPairs))]
    internal void Frames_WrittenByOneBackend_DecodeExactlyWithTheOther(ZstdBackend writer, ZstdBackend reader)
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
    internal void Decompress_CorruptOrTruncatedFrames_ThrowInvalidData(ZstdBackend backend)
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
    internal void Compress_DestinationBelowBound_IsRefused(ZstdBackend backend)
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
    internal void Tensors_EncodedOnOneBackend_DecodeExactlyOnTheOther(ZstdBackend writer, ZstdBackend reader)
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
    [Theory]
    [MemberData(nameof(BackendPairs))]
    internal void Compress_WithContentChecksum_SetsTheFlagAndDecodesWithEitherBackendAndZstdSharpStream(ZstdBackend writer, ZstdBackend reader)
    {
        // Frame header descriptor (after the 4-byte magic): bit 2 is Content_Checksum_flag (RFC 8878, 3.1.1.1.1).
        const int ChecksumBit = 1 << 2;
        using ZstdContext encoder = ZstdContext.Create(writer);
        using ZstdContext decoder = ZstdContext.Create(reader);
        var random = new Random(5);
        foreach (int length in new[] { 0, 1, 4096, 300_000 })
        {
            byte[] data = Compressible(random, length);
            byte[] plain = new byte[ZstdContext.CompressBound(length)], summed = new byte[ZstdContext.CompressBound(length)];
            int plainLength = encoder.Compress(data, plain, 3);
            int summedLength = encoder.Compress(data, summed, 3, contentChecksum: true);
            Assert.Equal(0, plain[4] & ChecksumBit);
            Assert.Equal(ChecksumBit, summed[4] & ChecksumBit);
            Assert.Equal((ulong)length, ZstdContext.FrameContentSize(summed.AsSpan(0, summedLength)));
            // The context keeps no checksum setting from one call to the next.
            Assert.Equal(plain.AsSpan(0, plainLength).ToArray(), Compressed(encoder, data, 3, contentChecksum: false));

            byte[] decoded = new byte[length];
            decoder.DecompressExact(summed.AsSpan(0, summedLength), decoded);
            Assert.Equal(data, decoded);
            using var stream = new ZstdSharp.DecompressionStream(new MemoryStream(summed, 0, summedLength));
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            Assert.Equal(data, copy.ToArray());

            // The last four bytes are the checksum: a decoder that checks it refuses a changed one.
            summed[summedLength - 1] ^= 1;
            Assert.Throws<InvalidDataException>(() => decoder.DecompressExact(summed.AsSpan(0, summedLength), decoded));
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    internal void FrameContentSize_ReadsTheHeaderOnly(ZstdBackend backend)
    {
        using ZstdContext zstd = ZstdContext.Create(backend);
        byte[] frame = Compressed(zstd, Compressible(new Random(6), 70_000), 1, contentChecksum: true);

        Assert.Equal(70_000UL, ZstdContext.FrameContentSize(frame));
        Assert.Equal(70_000UL, ZstdContext.FrameContentSize(frame.AsSpan(0, 18)));
        Assert.Equal(ZstdContext.ContentSizeError, ZstdContext.FrameContentSize(frame.AsSpan(0, 4)));
        Assert.Equal(ZstdContext.ContentSizeError, ZstdContext.FrameContentSize([]));
        Assert.Equal(ZstdContext.ContentSizeError, ZstdContext.FrameContentSize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    }

    [Fact]
    public void FrameContentSize_FrameWithoutContentSize_Unknown()
    {
        // Magic, descriptor 0 (no content size, single segment off), window 0, then a last empty raw block.
        byte[] frame = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0x01, 0x00, 0x00];

        Assert.Equal(ZstdContext.ContentSizeUnknown, ZstdContext.FrameContentSize(frame));
        Assert.True(ZstdContext.TryGetFrameCompressedSize(frame, out long size));
        Assert.Equal(frame.Length, size);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    internal void TryGetFrameCompressedSize_FindsTheFirstWholeFrame(ZstdBackend backend)
    {
        using ZstdContext zstd = ZstdContext.Create(backend);
        byte[] frame = Compressed(zstd, Compressible(new Random(7), 50_000), 3, contentChecksum: true);
        byte[] skippable = [0x5B, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 9, 9, 9];
        byte[] file = [.. frame, .. skippable, .. frame];

        Assert.True(ZstdContext.TryGetFrameCompressedSize(file, out long first));
        Assert.Equal(frame.Length, first);
        Assert.True(ZstdContext.TryGetFrameCompressedSize(file.AsSpan(frame.Length), out long second));
        Assert.Equal(skippable.Length, second);
        Assert.False(ZstdContext.TryGetFrameCompressedSize(frame.AsSpan(0, frame.Length - 1), out long truncated));
        Assert.Equal(0, truncated);
        Assert.False(ZstdContext.TryGetFrameCompressedSize([], out _));
        Assert.False(ZstdContext.TryGetFrameCompressedSize([1, 2, 3, 4, 5, 6, 7, 8], out _));
    }

    private static byte[] Compressed(ZstdContext zstd, byte[] data, int level, bool contentChecksum)
    {
        byte[] frame = new byte[ZstdContext.CompressBound(data.Length)];
        return frame.AsSpan(0, zstd.Compress(data, frame, level, contentChecksum)).ToArray();
    }

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
