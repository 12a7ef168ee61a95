using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>Small stored models for restore and verify tests, and the ways a store's objects get damaged.</summary>
internal static class StoredModels
{
    /// <summary>How an object file is damaged.</summary>
    public static readonly string[] DamageKinds = ["fifo", "directory", "empty", "truncated", "zeros", "flipped"];

    /// <summary>
    /// Ingests the folder <c>dir/models/org_name</c> (written by <paramref name="write"/>) as <paramref name="modelId"/>
    /// into <c>dir/store</c>, and writes a <c>dir/config.json</c> naming both.
    /// </summary>
    public static ModelStore Ingest(TempDir dir, ModelId modelId, Action<string> write, CodecOptions? options = null)
    {
        string folder = dir.Combine("models", modelId.FolderName);
        Directory.CreateDirectory(folder);
        write(folder);
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, options ?? new CodecOptions { ChunkSize = 4096 });
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(modelId, folder, ModelRole.Standalone);
        File.AppendAllText(dir.Combine("test_models.txt"), modelId + "\n");
        File.WriteAllText(dir.Combine("base_ft.json"), "{}");
        File.WriteAllText(dir.Combine("config.json"),
            """{"model_dir": "models", "storage_dir": "store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json"}""");
        return store;
    }

    /// <summary>
    /// A BF16 base <c>o/base</c> (folder <c>dir/base</c>) and its full finetune <c>o/ft</c> (<c>dir/ft</c>), each with a
    /// config.json, stored in <c>dir/store</c> with the finetune's tensors as deltas. The caller disposes the pool.
    /// </summary>
    public static (ModelStore Store, WorkerPool Pool) BaseAndFinetune(TempDir dir)
    {
        var random = new Random(21);
        var baseTensors = ModelFolders.Bf16Layers(random, 1, 32);
        ModelFolders.WriteSafetensors(dir.Combine("base", "model.safetensors"), baseTensors);
        dir.Write("base/config.json", "{\"hidden_size\": 32}");
        ModelFolders.WriteSafetensors(dir.Combine("ft", "model.safetensors"), ModelFolders.Finetune(random, baseTensors));
        dir.Write("ft/config.json", "{\"hidden_size\": 32}");
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        var pool = new WorkerPool(2, new CodecOptions { ChunkSize = 4096 });
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        ingester.Ingest(ModelId.Parse("o/base"), dir.Combine("base"), new ModelRole(ModelRoleKind.Base, null));
        ingester.Ingest(ModelId.Parse("o/ft"), dir.Combine("ft"), new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("o/base")));
        return (store, pool);
    }

    /// <summary>A safetensors file of a few BF16 tensors and a config.json, different for each seed.</summary>
    public static Action<string> SmallModel(int seed) => folder =>
    {
        ModelFolders.WriteSafetensors(Path.Combine(folder, "model.safetensors"), ModelFolders.Bf16Layers(new Random(seed), 1, 64));
        File.WriteAllText(Path.Combine(folder, "config.json"), $"{{\"seed\": {seed}}}");
    };

    /// <summary><paramref name="shards"/> safetensors files of <paramref name="tensorsPerShard"/> tiny tensors, every one distinct.</summary>
    public static Action<string> ManyTinyTensors(int shards, int tensorsPerShard, int elements = 1) => folder =>
    {
        for (int shard = 0; shard < shards; shard++)
        {
            var tensors = new List<(string, DType, long[], byte[])>();
            for (int i = 0; i < tensorsPerShard; i++)
            {
                // Distinct in their first element; the rest (when asked for) random, so that a small change codes smaller as a delta.
                byte[] data = new byte[4 * elements];
                new Random(shard * tensorsPerShard + i).NextBytes(data);
                BitConverter.GetBytes(shard * tensorsPerShard + i).CopyTo(data, 0);
                tensors.Add(($"t.{shard}.{i}", DType.I32, [elements], data));
            }
            ModelFolders.WriteSafetensors(Path.Combine(folder, $"model-{shard:D5}.safetensors"), tensors);
        }
    };

    /// <summary>The object file of the second tensor of <paramref name="path"/> in <paramref name="modelId"/>.</summary>
    public static (ContentHash Hash, string Path) TensorObject(ModelStore store, ModelId modelId, string path = "model.safetensors")
    {
        StoredFile file = store.ReadManifest(modelId).Files.Single(f => f.Path == path);
        var hash = file.Tensors![1].Object;
        return (hash, store.Layout.ObjectPath(hash));
    }

    /// <summary>Damages the object file at <paramref name="path"/> the way <paramref name="kind"/> names.</summary>
    public static void Damage(string path, string kind)
    {
        byte[] bytes = File.ReadAllBytes(path);
        switch (kind)
        {
            case "fifo":
                File.Delete(path);
                using (var mkfifo = Process.Start("mkfifo", [path]))
                {
                    mkfifo.WaitForExit();
                    Assert.Equal(0, mkfifo.ExitCode);
                }
                break;
            case "directory":
                File.Delete(path);
                Directory.CreateDirectory(path);
                break;
            case "empty":
                File.WriteAllBytes(path, []);
                break;
            case "truncated":
                File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
                break;
            case "zeros":
                File.WriteAllBytes(path, new byte[bytes.Length]);
                break;
            case "flipped":
                bytes[bytes.Length / 2] ^= 0x10;
                File.WriteAllBytes(path, bytes);
                break;
            default:
                throw new ArgumentException(kind);
        }
    }

    /// <summary>Every entry under <paramref name="folder"/>, relative, symlinks not followed.</summary>
    public static SortedSet<string> Entries(string folder)
    {
        var entries = new SortedSet<string>(StringComparer.Ordinal);
        void Walk(string current)
        {
            foreach (string entry in Directory.EnumerateFileSystemEntries(current))
            {
                entries.Add(Path.GetRelativePath(folder, entry));
                if (new FileInfo(entry).LinkTarget is null && Directory.Exists(entry))
                {
                    Walk(entry);
                }
            }
        }
        Walk(folder);
        return entries;
    }
}
