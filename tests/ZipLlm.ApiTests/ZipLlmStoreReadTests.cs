using System.Security.Cryptography;

namespace ZipLlm.ApiTests;

/// <summary>Reading a stored family through the public API: listing, one tensor, one file as a seekable stream.</summary>
public sealed class ZipLlmStoreReadTests(StoredFamily family) : IClassFixture<StoredFamily>
{
    private ZipLlmStore Store => family.Store;

    private TestModels Models => family.Models;

    [Fact]
    public void Compress_Finetune_StoresDeltasAndDeduplicates()
    {
        Assert.False(family.BaseSummary.Skipped);
        Assert.True(family.FinetuneSummary.DeltaTensors >= 2, $"{family.FinetuneSummary.DeltaTensors} delta tensors");
        Assert.True(family.FinetuneSummary.DedupTensors >= 1, $"{family.FinetuneSummary.DedupTensors} deduplicated tensors");
        Assert.True(family.FinetuneSummary.AddedBytes < family.BaseSummary.AddedBytes, "the finetune's deltas cost less than the base");
    }

    [Fact]
    public async Task Compress_StoredModel_IsSkipped()
    {
        CompressSummary again = await Store.CompressAsync(Models.BaseFolder, TestModels.BaseId);

        Assert.True(again.Skipped);
        Assert.Equal(0, again.AddedBytes);
    }

    [Fact]
    public async Task ListModels_Family_GivesIdsRolesFilesAndHashes()
    {
        IReadOnlyList<StoredModel> models = await Store.ListModelsAsync();

        Assert.Equal([TestModels.BaseId, TestModels.FinetuneId], models.Select(m => m.Id));
        StoredModel finetune = models[1];
        Assert.Equal(StoredModelRole.Finetune, finetune.Role);
        Assert.Equal(TestModels.BaseId, finetune.BaseId);
        Assert.Null(models[0].BaseId);
        // Stored on its own, then a finetune against it: a base now, in the listing and asked for alone.
        Assert.Equal(StoredModelRole.Base, models[0].Role);
        Assert.Equal(StoredModelRole.Base, Store.GetModel(TestModels.BaseId).Role);
        Assert.Equal(StoredModelRole.Finetune, Store.GetModel(TestModels.FinetuneId).Role);
        foreach (string name in new[] { TestModels.WeightsFile, TestModels.ConfigFile })
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(Models.FinetuneFolder, name));
            StoredModelFile file = Assert.Single(finetune.Files, f => f.Path == name);
            Assert.Equal(bytes.Length, file.Length);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), file.Sha256);
            Assert.Equal(name == TestModels.WeightsFile, file.IsSafetensors);
        }
        Assert.Equal(finetune.Files.Sum(f => f.Length), finetune.OriginalBytes);
        Assert.Equal(Models.FinetuneTensors.Select(t => (t.Name, t.DType, t.Bytes.LongLength)), finetune.Tensors.Select(t => (t.Name, t.DType, t.Length)));
        Assert.Equal(Store.ListModels().Select(m => m.Id), models.Select(m => m.Id));
    }

    [Fact]
    public void GetTensorInfo_Tensor_GivesDtypeShapeLengthAndFile()
    {
        StoredModelTensor info = Store.GetTensorInfo(TestModels.FinetuneId, "embed");

        Assert.Equal(("embed", "BF16", TestModels.WeightsFile, 2304L * 1024 * 2), (info.Name, info.DType, info.FilePath, info.Length));
        Assert.Equal([2304L, 1024], info.Shape);
        Assert.Empty(Store.GetTensorInfo(TestModels.FinetuneId, "scale").Shape);
    }

    public static TheoryData<string, string> Tensors => new()
    {
        { TestModels.BaseId, "embed" },           // solo, two chunks
        { TestModels.FinetuneId, "embed" },       // a delta against the base's, two chunks
        { TestModels.FinetuneId, "layer.0.weight" }, // a delta
        { TestModels.FinetuneId, "frozen" },      // the base's own object (deduplicated)
        { TestModels.FinetuneId, "scale" },       // a scalar
        { TestModels.FinetuneId, "mask" },        // 7 bytes
        { TestModels.FinetuneId, "empty" },       // no bytes
    };

    [Theory]
    [MemberData(nameof(Tensors))]
    public void ReadTensor_AnyTensor_GivesItsBytes(string modelId, string name)
    {
        byte[] expected = (modelId == TestModels.BaseId ? Models.BaseTensors : Models.FinetuneTensors).Single(t => t.Name == name).Bytes;
        byte[] destination = new byte[expected.Length + 3];

        int written = Store.ReadTensor(modelId, name, destination);

        Assert.Equal(expected.Length, written);
        Assert.True(expected.AsSpan().SequenceEqual(destination.AsSpan(0, written)), $"{modelId} {name} differs");
    }

    [Theory]
    [MemberData(nameof(Tensors))]
    public async Task ReadTensorAsync_AnyTensor_GivesItsBytes(string modelId, string name)
    {
        byte[] expected = (modelId == TestModels.BaseId ? Models.BaseTensors : Models.FinetuneTensors).Single(t => t.Name == name).Bytes;
        byte[] destination = new byte[Store.GetTensorInfo(modelId, name).Length];

        int written = await Store.ReadTensorAsync(modelId, name, destination);

        Assert.Equal(expected.Length, written);
        Assert.Equal(expected, destination);
    }

    [Fact]
    public void ReadTensor_DestinationTooShort_ThrowsArgumentExceptionNamingTheLength()
    {
        var ex = Assert.Throws<ArgumentException>(() => Store.ReadTensor(TestModels.FinetuneId, "mask", new byte[6]));

        Assert.Contains("7 bytes", ex.Message);
    }

    [Fact]
    public async Task ReadTensorAsync_Cancelled_ThrowsOperationCanceled()
    {
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            Store.ReadTensorAsync(TestModels.FinetuneId, "embed", new byte[2304 * 1024 * 2], cancel.Token));
    }

    [Theory]
    [InlineData(TestModels.BaseId, TestModels.WeightsFile)]
    [InlineData(TestModels.FinetuneId, TestModels.WeightsFile)]
    [InlineData(TestModels.FinetuneId, TestModels.ConfigFile)]
    public void OpenFile_WholeFile_GivesItsBytes(string modelId, string path)
    {
        byte[] expected = File.ReadAllBytes(Path.Combine(modelId == TestModels.BaseId ? Models.BaseFolder : Models.FinetuneFolder, path));
        using Stream stream = Store.OpenFile(modelId, path);
        using var copy = new MemoryStream();

        stream.CopyTo(copy, 100_000);

        Assert.True(stream.CanRead && stream.CanSeek && !stream.CanWrite);
        Assert.Equal(expected.Length, stream.Length);
        Assert.Equal(expected, copy.ToArray());
        Assert.Equal(0, stream.Read(new byte[10]));
    }

    [Theory]
    [InlineData(TestModels.BaseId, 1)]
    [InlineData(TestModels.FinetuneId, 2)]
    [InlineData(TestModels.FinetuneId, 3)]
    public void OpenFile_RandomSeeksAndReads_MatchTheFile(string modelId, int seed)
    {
        string weights = Path.Combine(modelId == TestModels.BaseId ? Models.BaseFolder : Models.FinetuneFolder, TestModels.WeightsFile);
        byte[] expected = File.ReadAllBytes(weights);
        // Reads start just before and end just after the header's end, each tensor's start and the chunk boundary inside "embed".
        long embedStart = TestModels.Boundaries(weights, Models.BaseTensors)[1];
        long[] edges = [.. TestModels.Boundaries(weights, Models.BaseTensors), embedStart + (4 << 20), expected.Length];
        var random = new Random(seed);
        using Stream stream = Store.OpenFile(modelId, TestModels.WeightsFile);

        for (int i = 0; i < 150; i++)
        {
            long offset = i % 2 == 0
                ? Math.Clamp(edges[random.Next(edges.Length)] + random.Next(-40, 40), 0, expected.Length)
                : random.NextInt64(expected.Length + 1);
            int length = random.Next(4) switch { 0 => random.Next(1, 16), 1 => random.Next(16, 5000), 2 => random.Next(5000, 300_000), _ => random.Next(1 << 20, 3 << 20) };
            switch (random.Next(3))
            {
                case 0:
                    stream.Position = offset;
                    break;
                case 1:
                    Assert.Equal(offset, stream.Seek(offset - stream.Position, SeekOrigin.Current));
                    break;
                default:
                    Assert.Equal(offset, stream.Seek(offset - expected.Length, SeekOrigin.End));
                    break;
            }
            byte[] buffer = new byte[length];
            int read = random.Next(2) == 0 ? stream.Read(buffer, 0, length) : stream.ReadAtLeast(buffer, length, throwOnEndOfStream: false);

            int wanted = (int)Math.Min(length, expected.Length - offset);
            Assert.True(read > 0 || wanted == 0, $"nothing read at {offset}");
            Assert.True(read <= wanted);
            Assert.True(expected.AsSpan((int)offset, read).SequenceEqual(buffer.AsSpan(0, read)), $"bytes differ at {offset} for {read}");
            Assert.Equal(offset + read, stream.Position);
        }
    }

    [Theory]
    [InlineData(TestModels.BaseId, 4)]
    [InlineData(TestModels.FinetuneId, 5)]
    [InlineData(TestModels.FinetuneId, 6)]
    public async Task ReadFileAsync_RandomRangesSideBySide_MatchTheFile(string modelId, int seed)
    {
        string weights = Path.Combine(modelId == TestModels.BaseId ? Models.BaseFolder : Models.FinetuneFolder, TestModels.WeightsFile);
        byte[] expected = File.ReadAllBytes(weights);
        // Ranges start just before and end just after the header's end, each tensor's start and the chunk boundary inside "embed".
        long embedStart = TestModels.Boundaries(weights, Models.BaseTensors)[1];
        long[] edges = [.. TestModels.Boundaries(weights, Models.BaseTensors), embedStart + (4 << 20), expected.Length];
        var random = new Random(seed);
        var reads = Enumerable.Range(0, 120).Select(i =>
        {
            long offset = i % 2 == 0
                ? Math.Clamp(edges[random.Next(edges.Length)] + random.Next(-40, 40), 0, expected.Length)
                : random.NextInt64(expected.Length + 1);
            int length = random.Next(4) switch { 0 => random.Next(1, 16), 1 => random.Next(16, 5000), 2 => random.Next(5000, 300_000), _ => random.Next(1 << 20, 9 << 20) };
            return (Offset: offset, Buffer: new byte[length]);
        }).ToList();

        // All at once: many readers of one chunk share its decode, and each gets its own bytes.
        int[] counts = await Task.WhenAll(reads.Select(r => Store.ReadFileAsync(modelId, TestModels.WeightsFile, r.Offset, r.Buffer).AsTask()));

        for (int i = 0; i < reads.Count; i++)
        {
            (long offset, byte[] buffer) = reads[i];
            int wanted = (int)Math.Min(buffer.Length, expected.Length - offset);
            Assert.Equal(wanted, counts[i]);
            Assert.True(expected.AsSpan((int)offset, wanted).SequenceEqual(buffer.AsSpan(0, wanted)), $"bytes differ at {offset} for {wanted}");
        }
    }

    [Theory]
    [InlineData(TestModels.BaseId, TestModels.WeightsFile)]
    [InlineData(TestModels.FinetuneId, TestModels.WeightsFile)]
    [InlineData(TestModels.FinetuneId, TestModels.ConfigFile)]
    public async Task ReadFileAsync_WholeFileInPieces_GivesItsBytesThenNothing(string modelId, string path)
    {
        byte[] expected = File.ReadAllBytes(Path.Combine(modelId == TestModels.BaseId ? Models.BaseFolder : Models.FinetuneFolder, path));
        using var copy = new MemoryStream();
        byte[] buffer = new byte[1_000_003];
        int read;
        while ((read = await Store.ReadFileAsync(modelId, path, copy.Length, buffer)) > 0)
        {
            copy.Write(buffer, 0, read);
        }

        Assert.Equal(expected, copy.ToArray());
        Assert.Equal(0, await Store.ReadFileAsync(modelId, path, expected.Length + 10, buffer));
        Assert.Equal(0, await Store.ReadFileAsync(modelId, path, 0, Memory<byte>.Empty));
    }

    [Fact]
    public async Task ReadFileAsync_Misuse_ThrowsTheDocumentedExceptions()
    {
        byte[] buffer = new byte[10];
        await Assert.ThrowsAsync<ModelNotFoundException>(() => Store.ReadFileAsync("org/not-stored", TestModels.WeightsFile, 0, buffer).AsTask());
        FileNotFoundException missing = await Assert.ThrowsAsync<FileNotFoundException>(() => Store.ReadFileAsync(TestModels.BaseId, "nope.bin", 0, buffer).AsTask());
        Assert.Contains("nope.bin", missing.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.ReadFileAsync(TestModels.BaseId, TestModels.WeightsFile, -1, buffer).AsTask());
        await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.ReadFileAsync("no-slash", TestModels.WeightsFile, 0, buffer).AsTask());
    }

    [Fact]
    public async Task OpenFile_ReadAsyncAndReadByte_GiveTheFilesBytes()
    {
        byte[] expected = File.ReadAllBytes(Path.Combine(Models.FinetuneFolder, TestModels.WeightsFile));
        await using Stream stream = Store.OpenFile(TestModels.FinetuneId, TestModels.WeightsFile);
        stream.Position = expected.Length - 5;

        Assert.Equal(expected[^5], stream.ReadByte());
        byte[] rest = new byte[10];
        Assert.Equal(4, await stream.ReadAsync(rest));
        Assert.Equal(expected[^4..], rest[..4]);
        Assert.Equal(-1, stream.ReadByte());
    }

    [Fact]
    public void OpenFile_Misuse_ThrowsTheDocumentedExceptions()
    {
        using Stream stream = Store.OpenFile(TestModels.FinetuneId, TestModels.ConfigFile);

        Assert.Throws<IOException>(() => stream.Seek(-1, SeekOrigin.Begin));
        Assert.Throws<NotSupportedException>(() => stream.Write([1], 0, 1));
        Assert.Throws<NotSupportedException>(() => stream.SetLength(1));
        stream.Dispose();
        Assert.Throws<ObjectDisposedException>(() => stream.Read(new byte[1]));
    }

    [Fact]
    public async Task ModelNotStored_EveryRead_ThrowsKeyNotFoundNamingTheModel()
    {
        const string missing = "test/not-there";
        var errors = new List<Exception>
        {
            Assert.Throws<ModelNotFoundException>(() => Store.GetModel(missing)),
            Assert.Throws<ModelNotFoundException>(() => Store.GetTensorInfo(missing, "embed")),
            Assert.Throws<ModelNotFoundException>(() => Store.OpenFile(missing, TestModels.WeightsFile)),
            Assert.Throws<ModelNotFoundException>(() => Store.ReadTensor(missing, "embed", new byte[10])),
            await Assert.ThrowsAsync<ModelNotFoundException>(() => Store.RestoreAsync(missing, Path.Combine(Models.Root, "never"))),
            await Assert.ThrowsAsync<ModelNotFoundException>(() => Store.CompressAsync(Models.FinetuneFolder, "test/other", missing)),
        };

        Assert.All(errors, e => Assert.Contains(missing, e.Message));
        Assert.False(Store.Contains(missing));
        Assert.False(Directory.Exists(Path.Combine(Models.Root, "never")));
    }

    [Fact]
    public void NoSuchFileOrTensor_ThrowsNamingIt()
    {
        var file = Assert.Throws<FileNotFoundException>(() => Store.OpenFile(TestModels.FinetuneId, "tokenizer.json"));
        var tensor = Assert.Throws<KeyNotFoundException>(() => Store.ReadTensor(TestModels.FinetuneId, "lm_head.weight", new byte[10]));

        Assert.Contains("tokenizer.json", file.Message);
        Assert.Contains("lm_head.weight", tensor.Message);
    }

    [Theory]
    [InlineData("no-slash")]
    [InlineData("a/b/c")]
    [InlineData("")]
    public void MalformedId_ThrowsArgumentException(string id)
    {
        Assert.ThrowsAny<ArgumentException>(() => Store.GetModel(id));
        Assert.ThrowsAny<ArgumentException>(() => Store.OpenFile(id, TestModels.WeightsFile));
    }

    [Fact]
    public void Open_NoStoreThere_ThrowsDirectoryNotFound()
    {
        string nowhere = Path.Combine(Models.Root, "no-store");

        Assert.Throws<DirectoryNotFoundException>(() => ZipLlmStore.Open(nowhere));
        Assert.Throws<ArgumentException>(() => ZipLlmStore.Open(Models.StoreFolder, new ZipLlmStoreOptions { Threads = -1 }));
        Assert.False(Directory.Exists(nowhere));
    }
}
