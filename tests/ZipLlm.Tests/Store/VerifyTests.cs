using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>Verify decodes every file and names what is damaged: the model, the file, the object.</summary>
public class VerifyTests
{
    private static readonly CodecOptions Options = new() { ChunkSize = 4096 };

    [Fact]
    public void VerifyAndRestore_CorruptedObject_ReportModelAndFileAndWriteNothing()
    {
        using var dir = new TempDir();
        var random = new Random(4);
        ModelFolders.WriteSafetensors(dir.Combine("m", "model.safetensors"), ModelFolders.Bf16Layers(random, 1, 64));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone);

        Manifest manifest = store.ReadManifest(ModelId.Parse("o/m"));
        string victim = store.Layout.ObjectPath(manifest.Files[0].Tensors![1].Object);
        byte[] bytes = File.ReadAllBytes(victim);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(victim, bytes);

        var restorer = new ModelRestorer(store, pool);
        IReadOnlyList<string> problems = restorer.Verify(ModelId.Parse("o/m"));
        Assert.Single(problems);
        Assert.Contains("o/m", problems[0]);
        Assert.Contains("model.safetensors", problems[0]);

        var ex = Assert.Throws<StoreDamageException>(() => restorer.Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false));
        Assert.Contains("model.safetensors", ex.Message);
        Assert.Empty(Directory.EnumerateFiles(dir.Combine("out")));
    }

    [Fact]
    public void Verify_MissingObject_IsReportedWithTheModel()
    {
        using var dir = new TempDir();
        var random = new Random(16);
        ModelFolders.WriteSafetensors(dir.Combine("m", "model.safetensors"), ModelFolders.Bf16Layers(random, 1, 32));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone);
        ContentHash name = store.ReadManifest(ModelId.Parse("o/m")).Files[0].Tensors![0].Object;
        File.Delete(store.Layout.ObjectPath(name));

        IReadOnlyList<string> problems = new ModelRestorer(store, pool).Verify(ModelId.Parse("o/m"));
        Assert.Contains(problems, p => p.Contains("o/m", StringComparison.Ordinal) && p.Contains(name.Hex, StringComparison.Ordinal) && p.Contains("missing", StringComparison.Ordinal));
    }
}
