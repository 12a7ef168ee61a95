using System.IO.Hashing;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

public class FileDigestTests
{
    private static readonly CodecOptions Options = new() { ChunkSize = 4096 };

    [Fact]
    public void EmptyInput_GivesTheReferenceDigests()
    {
        using var digest = new FileDigest(sha256: true, xxh128: true);
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", digest.Sha256().Hex);
        // XXH3-128 of nothing, as xxhsum -H2 prints it.
        Assert.Equal("99aa06d3014798d86001c324468d497f", digest.Xxh128());
    }

    [Fact]
    public void AppendingInPieces_EqualsHashingAtOnce()
    {
        var random = new Random(8);
        byte[] data = new byte[100_003];
        random.NextBytes(data);
        using var digest = new FileDigest(sha256: true, xxh128: true);
        for (int done = 0; done < data.Length;)
        {
            int n = Math.Min(random.Next(1, 9000), data.Length - done);
            digest.Append(data.AsSpan(done, n));
            done += n;
        }
        Assert.Equal(data.Length, digest.Length);
        Assert.Equal(ContentHash.Of(data), digest.Sha256());
        Assert.Equal(Convert.ToHexStringLower(XxHash128.Hash(data)), digest.Xxh128());
    }

    [Fact]
    public void HashNotTaken_CannotBeRead()
    {
        using var shaOnly = new FileDigest(sha256: true, xxh128: false);
        Assert.Throws<InvalidOperationException>(() => shaOnly.Xxh128());
        using var xxhOnly = new FileDigest(sha256: false, xxh128: true);
        Assert.Throws<InvalidOperationException>(() => xxhOnly.Sha256());
        Assert.Throws<ArgumentException>(() => new FileDigest(sha256: false, xxh128: false));
    }

    [Fact]
    public void Restore_ChecksXxh128ByDefaultAndSha256WhenAsked()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoreOneModel(dir);
        using WorkerPool _ = pool;
        Manifest manifest = store.ReadManifest(ModelId.Parse("o/m"));
        Assert.All(manifest.Files, f => Assert.True(FileDigest.IsXxh128(f.Xxh128), $"{f.Path} has no XXH3-128"));

        // A wrong SHA-256 goes unseen by the default check, and is caught by --sha256 and by verify.
        RewriteFiles(store, ModelId.Parse("o/m"), file => file["sha256"] = new string('0', 64));
        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out-default"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("m")), ModelFolders.Snapshot(dir.Combine("out-default")));
        var ex = Assert.Throws<StoreDamageException>(() =>
            new ModelRestorer(store, pool) { CheckSha256 = true }.Restore(ModelId.Parse("o/m"), dir.Combine("out-sha"), force: false));
        Assert.Contains("SHA-256", ex.Message);
        Assert.Empty(Directory.EnumerateFiles(dir.Combine("out-sha"), "*", SearchOption.AllDirectories));
        Assert.NotEmpty(new ModelRestorer(store, pool).Verify(ModelId.Parse("o/m")));
    }

    [Fact]
    public void Restore_WrongXxh128_IsRefusedAndWritesNothing()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoreOneModel(dir);
        using WorkerPool _ = pool;
        RewriteFiles(store, ModelId.Parse("o/m"), file => file["xxh128"] = new string('a', 32));
        var ex = Assert.Throws<StoreDamageException>(() => new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false));
        Assert.Contains("XXH3-128", ex.Message);
        Assert.Contains("o/m", ex.Message);
        Assert.Empty(Directory.EnumerateFiles(dir.Combine("out"), "*", SearchOption.AllDirectories));
        Assert.NotEmpty(new ModelRestorer(store, pool).Verify(ModelId.Parse("o/m")));
    }

    [Fact]
    public void Restore_ManifestWithoutXxh128_FallsBackToSha256()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoreOneModel(dir);
        using WorkerPool _ = pool;
        // A manifest written before XXH3-128 was recorded.
        RewriteFiles(store, ModelId.Parse("o/m"), file => file.Remove("xxh128"));
        Assert.All(store.ReadManifest(ModelId.Parse("o/m")).Files, f => Assert.Null(f.Xxh128));
        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("m")), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.Empty(new ModelRestorer(store, pool).Verify(ModelId.Parse("o/m")));

        RewriteFiles(store, ModelId.Parse("o/m"), file => file["sha256"] = new string('0', 64));
        Assert.Throws<StoreDamageException>(() => new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out2"), force: false));
    }

    [Theory]
    [InlineData("")]
    [InlineData("99AA06D3014798D86001C324468D497F")]
    [InlineData("99aa06d3014798d86001c324468d497")]
    [InlineData("99aa06d3014798d86001c324468d497fff")]
    [InlineData("zzaa06d3014798d86001c324468d497f")]
    public void Parse_MalformedXxh128_IsRefused(string value)
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoreOneModel(dir);
        pool.Dispose();
        RewriteFiles(store, ModelId.Parse("o/m"), file => file["xxh128"] = value);
        Assert.Throws<InvalidDataException>(() => store.ReadManifest(ModelId.Parse("o/m")));
    }

    private static (ModelStore Store, WorkerPool Pool) StoreOneModel(TempDir dir)
    {
        var random = new Random(12);
        ModelFolders.WriteSafetensors(dir.Combine("m", "model.safetensors"), ModelFolders.Bf16Layers(random, 1, 40));
        dir.Write("m/config.json", "{\"hidden_size\": 40}");
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        var pool = new WorkerPool(2, Options);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone);
        return (store, pool);
    }

    private static void RewriteFiles(ModelStore store, ModelId modelId, Action<JsonObject> change) => ManifestEdits.RewriteFiles(store, modelId, change);
}
