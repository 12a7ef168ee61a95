using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.IO;
using ZipLlm.Store;
using ZipLlm.Tests.IO;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>Ingest stores exactly what it read, or nothing: changing files, odd names, symlinks, special files.</summary>
public class IngestTests
{
    private static readonly CodecOptions Options = new() { ChunkSize = 4096 };

    [Fact]
    public void Ingest_FileChangedBetweenHashAndEncode_IsRefusedAndNoObjectIsMisnamed()
    {
        using var dir = new TempDir();
        string shard = WriteModel(dir, "m", seed: 1);
        byte[] pristine = File.ReadAllBytes(shard);
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        // The first report comes once every tensor is hashed and the header is stored: the tensors are read again from here.
        bool changed = false;
        var ingester = new ModelIngester(store, pool, NullLogger.Instance)
        {
            Progress = new InlineProgress(_ =>
            {
                if (!changed)
                {
                    changed = true;
                    Overwrite(shard, pristine.Length / 2, 16);
                }
            }),
        };

        var ex = Assert.Throws<FileChangedException>(() => ingester.Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone));
        Assert.Contains("model.safetensors", ex.Message);
        Assert.Contains("changed while it was being read", ex.Message);
        Assert.True(changed);
        Assert.False(store.Contains(ModelId.Parse("o/m")));
        AssertEveryObjectHoldsTheBytesItIsNamedFor(store, pool);

        // A pristine copy of the same model later is stored whole and restores exactly.
        Directory.CreateDirectory(dir.Combine("copy"));
        File.WriteAllBytes(dir.Combine("copy", "model.safetensors"), pristine);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/copy"), dir.Combine("copy"), ModelRole.Standalone);
        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/copy"), dir.Combine("out"), force: false);
        Assert.Equal(pristine, File.ReadAllBytes(dir.Combine("out", "model.safetensors")));
    }

    [Fact]
    public void Ingest_FileChangedAfterItsBytesWereRead_IsRefused()
    {
        using var dir = new TempDir();
        string shard = WriteModel(dir, "m", seed: 2);
        long length = new FileInfo(shard).Length;
        DateTime written = File.GetLastWriteTimeUtc(shard);
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        // The last report comes after every byte was read the second time: only the file's version can tell.
        var ingester = new ModelIngester(store, pool, NullLogger.Instance)
        {
            Progress = new InlineProgress(progress =>
            {
                if (progress.DoneBytes == length)
                {
                    Overwrite(shard, 200, 4);
                    // The write moves the file's times, but by the kernel's coarse clock it may land in the tick the
                    // file was made in: the time a later write would give it is set outright instead of waited for.
                    File.SetLastWriteTimeUtc(shard, written.AddSeconds(1));
                }
            }),
        };

        var ex = Assert.Throws<FileChangedException>(() => ingester.Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone));
        Assert.Contains("model.safetensors", ex.Message);
        Assert.False(store.Contains(ModelId.Parse("o/m")));
    }

    [Fact]
    public void Ingest_FileReplacedWhileRead_IsRefused()
    {
        using var dir = new TempDir();
        string shard = WriteModel(dir, "m", seed: 3);
        byte[] other = File.ReadAllBytes(WriteModel(dir, "other", seed: 4));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        bool replaced = false;
        var ingester = new ModelIngester(store, pool, NullLogger.Instance)
        {
            Progress = new InlineProgress(_ =>
            {
                if (!replaced)
                {
                    replaced = true;
                    File.WriteAllBytes(shard + ".new", other);
                    File.Move(shard + ".new", shard, overwrite: true);
                }
            }),
        };

        Assert.Throws<FileChangedException>(() => ingester.Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone));
        Assert.False(store.Contains(ModelId.Parse("o/m")));
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("empty")]
    [InlineData("zeros")]
    public void Ingest_DeduplicatedAgainstADamagedObject_StoresItAgainAndBothModelsRestore(string damage)
    {
        using var dir = new TempDir();
        WriteModel(dir, "a", seed: 13);
        Directory.CreateDirectory(dir.Combine("b"));
        File.Copy(dir.Combine("a", "model.safetensors"), dir.Combine("b", "model.safetensors"));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        ingester.Ingest(ModelId.Parse("o/a"), dir.Combine("a"), ModelRole.Standalone);
        string victim = store.Layout.ObjectPath(store.ReadManifest(ModelId.Parse("o/a")).Files[0].Tensors![0].Object);
        byte[] bytes = File.ReadAllBytes(victim);
        File.WriteAllBytes(victim, damage switch
        {
            "truncated" => bytes[..(bytes.Length / 2)],
            "empty" => [],
            _ => new byte[bytes.Length],
        });

        // A later compress run (an ingester trusts what it wrote itself for the length of its run).
        IngestResult b = new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/b"), dir.Combine("b"), ModelRole.Standalone);

        Assert.True(b.AddedBytes > 0);
        var restorer = new ModelRestorer(store, pool);
        Assert.Empty(restorer.Verify(ModelId.Parse("o/a")));
        Assert.Empty(restorer.Verify(ModelId.Parse("o/b")));
        AssertEveryObjectHoldsTheBytesItIsNamedFor(store, pool);
    }

    [Theory]
    [InlineData("a\\b.txt")]
    [InlineData("back\\slash\\dir/x.json")]
    [InlineData("new\nline.txt")]
    [InlineData("tab\tand \"quotes\".md")]
    [InlineData("ünïcödé ✓.txt")]
    [InlineData(".hidden")]
    [InlineData("config.json.zipllm-partial")]
    public void Ingest_AnyNameTheFileSystemAllows_RoundTripsAndTheStoreStaysUsable(string name)
    {
        using var dir = new TempDir();
        WriteModel(dir, "m", seed: 5);
        dir.Write("m/config.json", "{}");
        dir.Write("m/" + name, "odd name\n");
        WriteModel(dir, "n", seed: 6);
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);

        ingester.Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone);
        ingester.Ingest(ModelId.Parse("o/n"), dir.Combine("n"), ModelRole.Standalone);

        Assert.Equal(["o/m", "o/n"], store.ReadAllManifests().Select(m => m.Id).Select(m => m.ToString()));
        var restorer = new ModelRestorer(store, pool);
        Assert.Empty(restorer.Verify(ModelId.Parse("o/m")));
        restorer.Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("m")), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.Equal("odd name\n", File.ReadAllText(Path.Combine(dir.Combine("out"), name)));
        store.Remove(ModelId.Parse("o/m"));
        Assert.Empty(restorer.Verify(ModelId.Parse("o/n")));
    }

    [Fact]
    public void Ingest_NameThatIsNotUtf8_IsRefusedBeforeAnythingIsStored()
    {
        using var dir = new TempDir();
        WriteModel(dir, "m", seed: 7);
        // A name whose bytes are not UTF-8 cannot be made through .NET's string APIs: the shell makes it.
        using (var process = System.Diagnostics.Process.Start("sh", ["-c", "printf x > \"$1/$(printf 'bad\\377name')\"", "sh", dir.Combine("m")]))
        {
            process.WaitForExit();
            Assert.Equal(0, process.ExitCode);
        }
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);

        var ex = Assert.Throws<InvalidDataException>(() => new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone));
        Assert.Contains("not valid UTF-8", ex.Message);
        Assert.Empty(store.Objects.Enumerate());
        Assert.False(store.Contains(ModelId.Parse("o/m")));
    }

    [Fact]
    public void Ingest_SymlinkToAFileAndToAFolder_StoresTheirContentAsPlainFiles()
    {
        using var dir = new TempDir();
        WriteModel(dir, "m", seed: 8);
        dir.Write("elsewhere/tokenizer.json", "{\"vocab\": 1}");
        dir.Write("elsewhere/sub/extra.txt", "extra");
        File.CreateSymbolicLink(dir.Combine("m", "tokenizer.json"), dir.Combine("elsewhere", "tokenizer.json"));
        Directory.CreateSymbolicLink(dir.Combine("m", "linked"), dir.Combine("elsewhere", "sub"));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);

        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone);
        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false);

        Assert.Equal(EntryKind.File, Posix.Lstat(dir.Combine("out", "tokenizer.json")).Kind);
        Assert.Equal("{\"vocab\": 1}", File.ReadAllText(dir.Combine("out", "tokenizer.json")));
        Assert.Equal(EntryKind.Directory, Posix.Lstat(dir.Combine("out", "linked")).Kind);
        Assert.Equal("extra", File.ReadAllText(dir.Combine("out", "linked", "extra.txt")));
    }

    [Theory]
    [InlineData("parent")]
    [InlineData("self")]
    [InlineData("grandparent-via-sub")]
    public void Ingest_SymlinkLoop_IsRefusedAtOnce(string kind)
    {
        using var dir = new TempDir();
        WriteModel(dir, "m", seed: 9);
        switch (kind)
        {
            case "parent":
                Directory.CreateSymbolicLink(dir.Combine("m", "up"), dir.Path);
                break;
            case "self":
                Directory.CreateSymbolicLink(dir.Combine("m", "again"), dir.Combine("m"));
                break;
            default:
                Directory.CreateDirectory(dir.Combine("m", "sub"));
                Directory.CreateSymbolicLink(dir.Combine("m", "sub", "loop"), dir.Combine("m"));
                break;
        }
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);

        var ex = Assert.Throws<InvalidDataException>(() => new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone));
        Assert.Contains("loop", ex.Message);
        Assert.Empty(store.Objects.Enumerate());
    }

    [Fact]
    public void Ingest_DanglingSymlinkOrFifo_IsRefusedNamingTheEntry()
    {
        using var dir = new TempDir();
        WriteModel(dir, "dangling", seed: 10);
        File.CreateSymbolicLink(dir.Combine("dangling", "gone.json"), dir.Combine("nowhere.json"));
        WriteModel(dir, "fifo", seed: 11);
        PosixTests.MakeFifo(dir.Combine("fifo", "pipe"));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);

        var dangling = Assert.Throws<InvalidDataException>(() => ingester.Ingest(ModelId.Parse("o/dangling"), dir.Combine("dangling"), ModelRole.Standalone));
        Assert.Contains("gone.json", dangling.Message);
        var fifo = Assert.Throws<InvalidDataException>(() => ingester.Ingest(ModelId.Parse("o/fifo"), dir.Combine("fifo"), ModelRole.Standalone));
        Assert.Contains("\"pipe\"", fifo.Message);
        Assert.Empty(store.Objects.Enumerate());
    }

    [Fact]
    public void Ingest_Finetune_RecordsEachDeltaTensorsBaseAndNeedsExactlyWhatItDecodesFrom()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        pool.Dispose();

        Manifest ft = store.ReadManifest(ModelId.Parse("o/ft")), @base = store.ReadManifest(ModelId.Parse("o/base"));
        var baseByName = @base.Files.SelectMany(f => f.Tensors ?? []).ToDictionary(t => t.Name, t => t.Object);
        foreach (StoredTensor tensor in ft.Files.SelectMany(f => f.Tensors ?? []).Where(t => t.Encoding == TensorEncoding.Delta))
        {
            Assert.Equal([baseByName[tensor.Name]], tensor.Bases ?? []);
            Assert.Equal(baseByName[tensor.Name], store.Objects.ReadBaseReference(tensor.Object));
        }
        Assert.Contains(ft.Files.SelectMany(f => f.Tensors ?? []), t => t.Encoding == TensorEncoding.Delta);
        Assert.Superset(new HashSet<ContentHash>(@base.Files.SelectMany(f => f.Tensors ?? []).Select(t => t.Object)),
            new HashSet<ContentHash>(ft.NeededObjects()));
    }

    /// <summary>Decodes every object and checks it holds the bytes whose SHA-256 is its name.</summary>
    internal static void AssertEveryObjectHoldsTheBytesItIsNamedFor(ModelStore store, WorkerPool pool)
    {
        using ObjectStore.ObjectReader reader = store.Objects.OpenReader();
        foreach (ContentHash hash in store.Objects.Enumerate())
        {
            byte[] bytes = TensorCodec.DecodeToArray(reader.Open(hash), pool);
            Assert.Equal(hash.Hex, Convert.ToHexStringLower(SHA256.HashData(bytes)));
        }
    }

    private static string WriteModel(TempDir dir, string folder, int seed)
    {
        string path = dir.Combine(folder, "model.safetensors");
        ModelFolders.WriteSafetensors(path, ModelFolders.Bf16Layers(new Random(seed), 2, 64));
        return path;
    }

    private static void Overwrite(string path, long offset, int count)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.Position = offset;
        stream.Write(Enumerable.Repeat((byte)0x5A, count).ToArray());
    }

    /// <summary>Reports on the reporting thread, at once (<see cref="Progress{T}"/> would post them later).</summary>
    private sealed class InlineProgress(Action<ByteProgress> report) : IProgress<ByteProgress>
    {
        public void Report(ByteProgress value) => report(value);
    }

    [Fact]
    public void Ingest_ReshardedAndReorderedCopy_DedupsEveryTensor()
    {
        using var dir = new TempDir();
        var random = new Random(2);
        var tensors = ModelFolders.Bf16Layers(random, 2, 32);
        ModelFolders.WriteSafetensors(dir.Combine("a", "model.safetensors"), tensors);
        ModelFolders.WriteSafetensors(dir.Combine("b", "model-00001-of-00002.safetensors"), tensors.Skip(4).Reverse().ToList());
        ModelFolders.WriteSafetensors(dir.Combine("b", "model-00002-of-00002.safetensors"), tensors.Take(4).ToList());

        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        ingester.Ingest(ModelId.Parse("o/a"), dir.Combine("a"), ModelRole.Standalone);
        IngestResult copy = ingester.Ingest(ModelId.Parse("o/b"), dir.Combine("b"), ModelRole.Standalone);

        Assert.Equal(tensors.Count, copy.DedupTensors);
        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/b"), dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("b")), ModelFolders.Snapshot(dir.Combine("out")));
    }

    [Fact]
    public void Ingest_MalformedSafetensors_StoresNothing()
    {
        using var dir = new TempDir();
        ModelFolders.WriteSafetensors(dir.Combine("m", "a.safetensors"), ModelFolders.Bf16Layers(new Random(3), 1, 8));
        byte[] bad = File.ReadAllBytes(dir.Combine("m", "a.safetensors"));
        File.WriteAllBytes(dir.Combine("m", "b.safetensors"), bad[..^3]);
        File.WriteAllText(dir.Combine("m", "readme.md"), "x");

        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(1, Options);
        var ex = Assert.ThrowsAny<Exception>(() => new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone));
        Assert.True(ex is InvalidDataException or EndOfStreamException, ex.GetType().Name);
        Assert.Contains("b.safetensors", ex.Message);
        Assert.False(store.Contains(ModelId.Parse("o/m")));
        Assert.Empty(store.Objects.Enumerate());
    }
}
