using System.Buffers.Binary;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Safetensors;
using ZipLlm.Tests.Codecs;
using ZipLlm.Tools.BitxFileTool;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace ZipLlm.Tests.Tools.BitxFileTool;

public class BitxFileTests
{
    // Small chunks so tiny files still span many frames.
    private static readonly BitxOptions Small = new() { ChunkSize = 64, Threads = 2 };

    [Fact]
    public void Compress_SafetensorsFinetune_RoundTripsAndPairsOnlyMatchingTensors()
    {
        using var files = new BitxTestFiles();
        var random = new Random(1);
        byte[] q = TensorData.Sample(random, DType.BF16, 2 * 300), k = TensorData.Sample(random, DType.BF16, 2 * 64);
        byte[] norm = TensorData.Sample(random, DType.F32, 4 * 16), resized = TensorData.Sample(random, DType.BF16, 2 * 40);
        string basePath = files.Write("base.safetensors", BitxTestFiles.Safetensors(
            ("q", DType.BF16, [20, 15], q), ("k", DType.BF16, [8, 8], k), ("norm", DType.F32, [16], norm), ("emb", DType.BF16, [4, 10], resized)));
        string ftPath = files.Write("ft.safetensors", BitxTestFiles.Safetensors(
            ("emb", DType.BF16, [5, 10], TensorData.Sample(random, DType.BF16, 2 * 50)),  // different shape: not paired
            ("k", DType.BF16, [8, 8], TensorData.Perturb(random, k, DType.BF16)),
            ("lora", DType.BF16, [3], TensorData.Sample(random, DType.BF16, 6)),          // not in the base
            ("norm", DType.F32, [16], TensorData.Perturb(random, norm, DType.F32)),
            ("q", DType.BF16, [20, 15], TensorData.Perturb(random, q, DType.BF16))));

        BitxResult result = RoundTrip(files, basePath, ftPath, Small);

        Assert.Equal(BitxMode.Tensors, result.Mode);
        Assert.Equal(3, result.PairedTensors);
        Assert.Equal(new FileInfo(ftPath).Length, result.OriginalLength);
    }

    [Fact]
    public void Compress_Bf16FinetuneOfBase_ExponentStreamFarSmallerThanAgainstUnrelatedBase()
    {
        using var files = new BitxTestFiles();
        var random = new Random(2);
        byte[] w = TensorData.Sample(random, DType.BF16, 1 << 16);
        string basePath = files.Write("base.safetensors", BitxTestFiles.Safetensors(("w", DType.BF16, [1 << 15], w)));
        string unrelated = files.Write("other.safetensors", BitxTestFiles.Safetensors(("x", DType.BF16, [1 << 15], TensorData.Sample(random, DType.BF16, 1 << 16))));
        string ftPath = files.Write("ft.safetensors", BitxTestFiles.Safetensors(("w", DType.BF16, [1 << 15], TensorData.Perturb(random, w, DType.BF16))));

        BitxResult paired = BitxFile.Compress(basePath, ftPath, files.PathOf("e1"), files.PathOf("s1"));
        BitxResult solo = BitxFile.Compress(unrelated, ftPath, files.PathOf("e2"), files.PathOf("s2"));

        Assert.Equal(1, paired.PairedTensors);
        Assert.Equal(0, solo.PairedTensors);
        // Perturb touches only the low mantissa bits, so the XOR's exponent stream is all zeros.
        Assert.True(paired.ExponentLength * 20 < solo.ExponentLength, $"{paired.ExponentLength} vs {solo.ExponentLength}");
        Assert.True(paired.CompressedLength < solo.CompressedLength / 2, $"{paired.CompressedLength} vs {solo.CompressedLength}");
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(0, 5)]
    [InlineData(5, 0)]
    [InlineData(1, 1)]
    [InlineData(1, 0)]
    [InlineData(7, 3)]
    [InlineData(3, 7)]
    [InlineData(64, 64)]
    [InlineData(65, 64)]
    [InlineData(129, 1000)]
    [InlineData(1001, 1000)]
    public void Compress_RawFiles_RoundTripInRawMode(int ftLength, int baseLength)
    {
        using var files = new BitxTestFiles();
        var random = new Random(ftLength * 7919 + baseLength);
        byte[] ft = TensorData.Sample(random, DType.BF16, ftLength);
        string basePath = files.Write("base.bin", TensorData.Sample(random, DType.BF16, baseLength));
        string ftPath = files.Write("ft.bin", ft);

        BitxResult result = RoundTrip(files, basePath, ftPath, Small);

        Assert.Equal(BitxMode.Raw, result.Mode);
        Assert.Equal(ftLength, result.OriginalLength);
    }

    [Fact]
    public void Compress_SafetensorsAgainstRawBase_UsesRawModeAndRoundTrips()
    {
        using var files = new BitxTestFiles();
        var random = new Random(3);
        byte[] ft = BitxTestFiles.Safetensors(("w", DType.BF16, [100], TensorData.Sample(random, DType.BF16, 200)));
        string basePath = files.Write("base.bin", TensorData.Sample(random, DType.BF16, 150));
        string ftPath = files.Write("ft.safetensors", ft);

        Assert.Equal(BitxMode.Raw, RoundTrip(files, basePath, ftPath, Small).Mode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Compress_Output_DecodesWithPlainZstdToTheSplitOfTheDeltaImage(bool safetensors)
    {
        using var files = new BitxTestFiles();
        var random = new Random(4);
        byte[] baseBytes, ftBytes, image;
        if (safetensors)
        {
            byte[] w = TensorData.Sample(random, DType.BF16, 2 * 77), solo = TensorData.Sample(random, DType.U8, 9);
            baseBytes = BitxTestFiles.Safetensors(("w", DType.BF16, [77], w));
            ftBytes = BitxTestFiles.Safetensors(("solo", DType.U8, [9], solo), ("w", DType.BF16, [77], TensorData.Perturb(random, w, DType.BF16)));
            // Expected image: the finetune with only tensor "w" XOR-ed with the base's "w" (both files end with it).
            image = (byte[])ftBytes.Clone();
            for (int i = 1; i <= w.Length; i++)
            {
                image[^i] ^= baseBytes[^i];
            }
        }
        else
        {
            baseBytes = TensorData.Sample(random, DType.BF16, 301);
            ftBytes = TensorData.Sample(random, DType.BF16, 555);
            image = (byte[])ftBytes.Clone();
            for (int i = 0; i < baseBytes.Length; i++)
            {
                image[i] ^= baseBytes[i];
            }
        }
        string basePath = files.Write("base", baseBytes), ftPath = files.Write("ft", ftBytes);
        BitxFile.Compress(basePath, ftPath, files.PathOf("e.zst"), files.PathOf("s.zst"), Small);

        int words = image.Length / 2;
        byte[] exp = new byte[words], sm = new byte[words + image.Length % 2];
        Bf16Split.SplitScalar(image.AsSpan(0, 2 * words), default, exp, sm.AsSpan(0, words));
        if (image.Length % 2 != 0)
        {
            sm[^1] = image[^1];
        }
        Assert.Equal(exp, DecodeWithZstdSharpStream(files.PathOf("e.zst")));
        Assert.Equal(sm, DecodeWithZstdSharpStream(files.PathOf("s.zst")));
    }

    [Fact]
    public unsafe void Compress_EveryChunkFrame_DeclaresItsContentSize()
    {
        using var files = new BitxTestFiles();
        string basePath = files.Write("base", TensorData.Sample(new Random(5), DType.BF16, 100));
        string ftPath = files.Write("ft", TensorData.Sample(new Random(6), DType.BF16, 201));
        BitxFile.Compress(basePath, ftPath, files.PathOf("e.zst"), files.PathOf("s.zst"), Small);

        // 201 bytes in chunks of 64: 64, 64, 64, 9 -> exponent 32, 32, 32, 4; sign+mantissa 32, 32, 32, 5.
        Assert.Equal([32UL, 32, 32, 4], FrameContentSizes(File.ReadAllBytes(files.PathOf("e.zst"))));
        Assert.Equal([32UL, 32, 32, 5], FrameContentSizes(File.ReadAllBytes(files.PathOf("s.zst"))));
    }

    [Fact]
    public void Decompress_AnySingleByteFlipped_ThrowsOrRebuildsExactly()
    {
        using var files = new BitxTestFiles();
        (string basePath, byte[] ft) = SmallSafetensorsPair(files);
        BitxFile.Compress(basePath, files.PathOf("ft"), files.PathOf("e.zst"), files.PathOf("s.zst"), Small);
        foreach (string stream in new[] { "e.zst", "s.zst" })
        {
            byte[] good = File.ReadAllBytes(files.PathOf(stream));
            for (int i = 0; i < good.Length; i++)
            {
                byte[] bad = (byte[])good.Clone();
                bad[i] ^= 0x5A;
                File.WriteAllBytes(files.PathOf(stream), bad);
                string output = files.PathOf("out");
                try
                {
                    BitxFile.Decompress(basePath, files.PathOf("e.zst"), files.PathOf("s.zst"), output, Small);
                    // zstd ignores a few header bits (window size); then the file must still be exact.
                    Assert.Equal(ft, File.ReadAllBytes(output));
                    File.Delete(output);
                }
                catch (Exception ex) when (ex is InvalidDataException or NotSupportedException)
                {
                    Assert.False(File.Exists(output), $"{stream} byte {i}: output left behind");
                }
            }
            File.WriteAllBytes(files.PathOf(stream), good);
        }
        Assert.Equal(["base", "e.zst", "ft", "s.zst"], files.FileNames());
    }

    [Fact]
    public void Decompress_TruncatedAnywhere_ThrowsInvalidDataAndLeavesNoFile()
    {
        using var files = new BitxTestFiles();
        (string basePath, _) = SmallSafetensorsPair(files);
        BitxFile.Compress(basePath, files.PathOf("ft"), files.PathOf("e.zst"), files.PathOf("s.zst"), Small);
        foreach (string stream in new[] { "e.zst", "s.zst" })
        {
            byte[] good = File.ReadAllBytes(files.PathOf(stream));
            for (int length = 0; length < good.Length; length++)
            {
                File.WriteAllBytes(files.PathOf(stream), good[..length]);
                Assert.Throws<InvalidDataException>(() =>
                    BitxFile.Decompress(basePath, files.PathOf("e.zst"), files.PathOf("s.zst"), files.PathOf("out"), Small));
            }
            File.WriteAllBytes(files.PathOf(stream), good);
        }
        Assert.Equal(["base", "e.zst", "ft", "s.zst"], files.FileNames());
    }

    [Fact]
    public void Decompress_TrailingGarbage_ThrowsInvalidData()
    {
        using var files = new BitxTestFiles();
        (string basePath, _) = SmallSafetensorsPair(files);
        BitxFile.Compress(basePath, files.PathOf("ft"), files.PathOf("e.zst"), files.PathOf("s.zst"), Small);
        File.AppendAllText(files.PathOf("s.zst"), "x");

        Assert.Throws<InvalidDataException>(() =>
            BitxFile.Decompress(basePath, files.PathOf("e.zst"), files.PathOf("s.zst"), files.PathOf("out"), Small));
    }

    [Fact]
    public void Decompress_DifferentBaseOfSameLength_ThrowsInvalidDataAndKeepsExistingOutput()
    {
        using var files = new BitxTestFiles();
        string basePath = files.Write("base", TensorData.Sample(new Random(7), DType.BF16, 300));
        string ftPath = files.Write("ft", TensorData.Sample(new Random(8), DType.BF16, 300));
        BitxFile.Compress(basePath, ftPath, files.PathOf("e.zst"), files.PathOf("s.zst"), Small);
        string otherBase = files.Write("other", TensorData.Sample(new Random(9), DType.BF16, 300));
        string output = files.Write("out", [1, 2, 3]);

        Assert.Throws<InvalidDataException>(() => BitxFile.Decompress(otherBase, files.PathOf("e.zst"), files.PathOf("s.zst"), output, Small));
        Assert.Equal([1, 2, 3], File.ReadAllBytes(output));
    }

    [Fact]
    public void Decompress_BaseOfOtherLength_ThrowsInvalidData()
    {
        using var files = new BitxTestFiles();
        string basePath = files.Write("base", new byte[300]);
        string ftPath = files.Write("ft", new byte[300]);
        BitxFile.Compress(basePath, ftPath, files.PathOf("e.zst"), files.PathOf("s.zst"), Small);
        string shorter = files.Write("shorter", new byte[299]);

        var ex = Assert.Throws<InvalidDataException>(() => BitxFile.Decompress(shorter, files.PathOf("e.zst"), files.PathOf("s.zst"), files.PathOf("out")));
        Assert.Contains("299", ex.Message);
    }

    [Fact]
    public void Decompress_StreamsSwapped_ThrowsInvalidData()
    {
        using var files = new BitxTestFiles();
        (string basePath, _) = SmallSafetensorsPair(files);
        BitxFile.Compress(basePath, files.PathOf("ft"), files.PathOf("e.zst"), files.PathOf("s.zst"), Small);

        Assert.Throws<InvalidDataException>(() =>
            BitxFile.Decompress(basePath, files.PathOf("s.zst"), files.PathOf("e.zst"), files.PathOf("out"), Small));
    }

    [Fact]
    public void Decompress_PlainZstdFile_ThrowsInvalidData()
    {
        using var files = new BitxTestFiles();
        string basePath = files.Write("base", new byte[10]);
        using (var compressor = new Compressor(3))
        {
            files.Write("e.zst", compressor.Wrap(new byte[5]).ToArray());
            files.Write("s.zst", compressor.Wrap(new byte[5]).ToArray());
        }

        Assert.Throws<InvalidDataException>(() => BitxFile.Decompress(basePath, files.PathOf("e.zst"), files.PathOf("s.zst"), files.PathOf("out")));
    }

    [Fact]
    public void Compress_OutputNamesAnInput_ThrowsArgumentException()
    {
        using var files = new BitxTestFiles();
        string basePath = files.Write("base", new byte[4]), ftPath = files.Write("ft", new byte[4]);

        Assert.Throws<ArgumentException>(() => BitxFile.Compress(basePath, ftPath, ftPath, files.PathOf("s.zst")));
        Assert.Equal([4], [(int)new FileInfo(ftPath).Length]);
    }

    [Theory]
    [InlineData(15)]
    [InlineData(17)]
    [InlineData(0)]
    public void Options_BadChunkSize_Throws(int chunkSize) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new BitxOptions { ChunkSize = chunkSize }.Validate());

    private static BitxResult RoundTrip(BitxTestFiles files, string basePath, string ftPath, BitxOptions options)
    {
        string exp = files.PathOf("e.zst"), sm = files.PathOf("s.zst"), output = files.PathOf("out");
        BitxResult compressed = BitxFile.Compress(basePath, ftPath, exp, sm, options);
        BitxResult decompressed = BitxFile.Decompress(basePath, exp, sm, output, options with { ChunkSize = BitxFormat.DefaultChunkSize });
        Assert.Equal(File.ReadAllBytes(ftPath), File.ReadAllBytes(output));
        Assert.Equal(compressed.Mode, decompressed.Mode);
        Assert.Equal(compressed.PairedTensors, decompressed.PairedTensors);
        Assert.Equal(new FileInfo(exp).Length, compressed.ExponentLength);
        Assert.Equal(new FileInfo(sm).Length, compressed.SignMantissaLength);
        return compressed;
    }

    /// <summary>A base and finetune of two BF16 tensors (one odd-sized), written as "base" and "ft".</summary>
    private static (string BasePath, byte[] Finetune) SmallSafetensorsPair(BitxTestFiles files)
    {
        var random = new Random(10);
        byte[] a = TensorData.Sample(random, DType.BF16, 2 * 40), b = TensorData.Sample(random, DType.U8, 13);
        string basePath = files.Write("base", BitxTestFiles.Safetensors(("a", DType.BF16, [40], a), ("b", DType.U8, [13], b)));
        byte[] ft = BitxTestFiles.Safetensors(("a", DType.BF16, [40], TensorData.Perturb(random, a, DType.BF16)), ("b", DType.U8, [13], TensorData.Perturb(random, b, DType.U8)));
        files.Write("ft", ft);
        return (basePath, ft);
    }

    private static byte[] DecodeWithZstdSharpStream(string path)
    {
        using FileStream file = File.OpenRead(path);
        using var zstd = new DecompressionStream(file);
        using var decoded = new MemoryStream();
        zstd.CopyTo(decoded);
        return decoded.ToArray();
    }

    /// <summary>Content sizes declared by the standard frames of a BitX file, skipping its skippable frames.</summary>
    private static unsafe List<ulong> FrameContentSizes(byte[] file)
    {
        var sizes = new List<ulong>();
        int position = 0;
        fixed (byte* p = file)
        {
            while (position < file.Length)
            {
                uint magic = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(position));
                nuint size = Methods.ZSTD_findFrameCompressedSize(p + position, (nuint)(file.Length - position));
                Assert.False(Methods.ZSTD_isError(size));
                if (magic == BitxFormat.ZstdFrameMagic)
                {
                    sizes.Add(Methods.ZSTD_getFrameContentSize(p + position, (nuint)(file.Length - position)));
                }
                position += (int)size;
            }
        }
        return sizes;
    }
}
