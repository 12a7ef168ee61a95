using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>Manifests check themselves: any edit is seen, and what a model needs follows from its file entries.</summary>
public class ManifestTests
{
    private static readonly CodecOptions Options = new() { ChunkSize = 4096 };

    public static TheoryData<string> Edits => new()
    {
        "one character of a file name",
        "a dropped file entry",
        "a dropped tensor entry",
        "the model id",
        "a tensor's object",
        "an added field",
        "the checksum itself",
    };

    [Theory]
    [MemberData(nameof(Edits))]
    public void Parse_AnyEditAfterWriting_FailsTheChecksum(string edit)
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        string path = store.Layout.ManifestPath(ModelId.Parse("o/base"));
        byte[] original = File.ReadAllBytes(path);
        Assert.Equal(original, Manifest.Parse(original, path).ToJson());

        File.WriteAllText(path, Edit(Encoding.UTF8.GetString(original), edit));

        var ex = Assert.Throws<InvalidDataException>(() => Manifest.Parse(File.ReadAllBytes(path), path));
        Assert.Contains(path, ex.Message);
        Assert.Throws<InvalidDataException>(() => store.ReadManifest(ModelId.Parse("o/base")));
        IReadOnlyList<string> problems = new ModelRestorer(store, pool).Verify(ModelId.Parse("o/base"));
        Assert.Contains(problems, p => p.Contains("checksum") || p.Contains("manifest"));
    }

    [Fact]
    public void Remove_WhileAnotherManifestIsDamaged_DeletesNothingAndNamesIt()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        // The probe: o/ft's manifest edited to claim it is o/other, then the base removed.
        string ftPath = store.Layout.ManifestPath(ModelId.Parse("o/ft"));
        File.WriteAllText(ftPath, File.ReadAllText(ftPath).Replace("\"o/ft\"", "\"o/other\""));
        int objects = store.Objects.Enumerate().Count();

        var ex = Assert.Throws<StoreDamageException>(() => store.Remove(ModelId.Parse("o/base")));
        Assert.Contains(ftPath, ex.Message);
        Assert.Contains("Nothing was deleted", ex.Message);
        Assert.True(store.Contains(ModelId.Parse("o/base")));
        Assert.Equal(objects, store.Objects.Enumerate().Count());
        Assert.Throws<StoreDamageException>(() => store.CollectGarbage());
        Assert.Equal(objects, store.Objects.Enumerate().Count());
    }

    [Fact]
    public void Verify_ManifestRecordsAnotherChainOfBasesThanTheObjects_IsReported()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        var restorer = new ModelRestorer(store, pool);
        Assert.Empty(restorer.Verify(ModelId.Parse("o/ft")));
        // Sealed again after the edit: a manifest that checks, and says a delta needs nothing.
        ManifestEdits.RewriteFiles(store, ModelId.Parse("o/ft"), file =>
        {
            foreach (JsonNode? tensor in file["tensors"]?.AsArray() ?? [])
            {
                tensor!.AsObject().Remove("bases");
            }
        });

        IReadOnlyList<string> problems = restorer.Verify(ModelId.Parse("o/ft"));
        Assert.NotEmpty(problems);
        Assert.All(problems, p => Assert.Contains("but the manifest records []", p));
    }

    [Fact]
    public void ScanManifests_ManifestMovedToAnotherModelsPath_IsReportedDamaged()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        pool.Dispose();
        // Intact and checksummed, but at the path of a model it is not: it would be read for the wrong model.
        Directory.CreateDirectory(Path.GetDirectoryName(store.Layout.ManifestPath(ModelId.Parse("x/y")))!);
        File.Copy(store.Layout.ManifestPath(ModelId.Parse("o/ft")), store.Layout.ManifestPath(ModelId.Parse("x/y")));

        ManifestScan scan = store.ScanManifests();
        Assert.Equal(["o/base", "o/ft"], scan.Manifests.Select(m => m.Id).Select(m => m.ToString()));
        Assert.Single(scan.Damaged);
        Assert.Contains("o/ft", scan.Damaged[0].Problem);
        Assert.Throws<InvalidDataException>(() => store.ReadManifest(ModelId.Parse("x/y")));
    }

    [Fact]
    public void Parse_Format1Manifest_StillReadsAndItsObjectListCounts()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        Manifest current = store.ReadManifest(ModelId.Parse("o/ft"));
        string[] objects = current.NeededObjects().Select(h => h.Hex).Order(StringComparer.Ordinal).ToArray();
        // What a store written before checksums holds: format 1, an object list, no checksum, no bases per tensor.
        string path = store.Layout.ManifestPath(ModelId.Parse("o/ft"));
        JsonObject json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json["format"] = 1;
        json.Remove("checksum");
        json["objects"] = new JsonArray(objects.Select(o => (JsonNode)JsonValue.Create(o)!).ToArray());
        foreach (JsonNode? file in json["files"]!.AsArray())
        {
            foreach (JsonNode? tensor in file!["tensors"]?.AsArray() ?? [])
            {
                tensor!.AsObject().Remove("bases");
            }
        }
        File.WriteAllText(path, json.ToJsonString());

        Manifest old = store.ReadManifest(ModelId.Parse("o/ft"));
        Assert.Equal(1, old.Format);
        Assert.Equal(objects.ToHashSet(), old.NeededObjects().Select(h => h.Hex).ToHashSet());
        Assert.Empty(new ModelRestorer(store, pool).Verify(ModelId.Parse("o/ft")));
        store.Remove(ModelId.Parse("o/base"));
        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/ft"), dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("ft")), ModelFolders.Snapshot(dir.Combine("out")));
    }

    [Theory]
    [InlineData("a//b.txt")]
    [InlineData("../escape")]
    [InlineData("/rooted")]
    public void ToCheckedJson_ManifestItsOwnParserWouldRefuse_IsNeverCommitted(string path)
    {
        StoredFile file = new(path, 1, ContentHash.Parse(new string('a', 64)), StoredFileKind.Blob, ContentHash.Parse(new string('a', 64)), null, new string('b', 32));
        Manifest manifest = Manifest.Create(ModelId.Parse("o/m"), ModelRoleKind.Standalone, null, [file], 1, 1, DateTimeOffset.UnixEpoch);
        Assert.Throws<InvalidDataException>(() => manifest.ToCheckedJson("test"));
    }

    [Fact]
    public void Parse_FileAndFolderOfOneName_IsRefused()
    {
        StoredFile a = new("a", 1, ContentHash.Parse(new string('a', 64)), StoredFileKind.Blob, ContentHash.Parse(new string('a', 64)), null);
        StoredFile ab = a with { Path = "a/b" };
        Manifest manifest = Manifest.Create(ModelId.Parse("o/m"), ModelRoleKind.Standalone, null, [a, ab], 2, 1, DateTimeOffset.UnixEpoch);
        var ex = Assert.Throws<InvalidDataException>(() => manifest.ToCheckedJson("test"));
        Assert.Contains("both as a file and as a folder", ex.Message);
    }

    // Written by the build before model ids were a value type: the bytes on disk must neither change nor stop reading.
    private const string ManifestOfStringIds =
        """
        {
          "format": 2,
          "id": "my_org/llama-ft",
          "role": "Finetune",
          "base_id": "meta-llama/Llama-3.2-1B",
          "files": [
            {
              "path": "config.json",
              "size": 12,
              "sha256": "1111111111111111111111111111111111111111111111111111111111111111",
              "kind": "Blob",
              "object": "2222222222222222222222222222222222222222222222222222222222222222",
              "xxh128": "33333333333333333333333333333333"
            },
            {
              "path": "model.safetensors",
              "size": 96,
              "sha256": "4444444444444444444444444444444444444444444444444444444444444444",
              "kind": "Safetensors",
              "object": "5555555555555555555555555555555555555555555555555555555555555555",
              "tensors": [
                {
                  "name": "w",
                  "d_type": "BF16",
                  "shape": [
                    2,
                    4
                  ],
                  "object": "6666666666666666666666666666666666666666666666666666666666666666",
                  "encoding": "delta",
                  "bases": [
                    "7777777777777777777777777777777777777777777777777777777777777777"
                  ]
                },
                {
                  "name": "b",
                  "d_type": "F32",
                  "shape": [],
                  "object": "8888888888888888888888888888888888888888888888888888888888888888",
                  "encoding": "solo"
                }
              ],
              "xxh128": "99999999999999999999999999999999"
            }
          ],
          "original_bytes": 108,
          "added_bytes": 64,
          "stored_at": "2025-01-02T03:04:05+00:00",
          "checksum": "sha256:1557cae30d71ecde5764075c793abb5b614d1c782de90141ea86551550b1326a"
        }
        """;

    [Fact]
    public void Ingest_WithRevision_RecordsItInTheManifestUnderItsChecksum()
    {
        using var dir = new TempDir();
        string folder = dir.Combine("models", "o_m");
        StoredModels.SmallModel(5)(Directory.CreateDirectory(folder).FullName);
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        string commit = new('c', 40);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/m"), folder, ModelRole.Standalone, revision: commit);

        string path = store.Layout.ManifestPath(ModelId.Parse("o/m"));
        string json = File.ReadAllText(path);
        Assert.Contains($"\"revision\": \"{commit}\"", json);
        Assert.Equal(commit, store.ReadManifest(ModelId.Parse("o/m")).Revision);
        File.WriteAllText(path, json.Replace(commit, new string('d', 40)));
        Assert.Throws<InvalidDataException>(() => store.ReadManifest(ModelId.Parse("o/m")));
    }

    [Fact]
    public void Ingest_WithoutRevision_WritesNoRevisionField()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(6));
        Assert.DoesNotContain("revision", File.ReadAllText(store.Layout.ManifestPath(ModelId.Parse("o/m"))));
        Assert.Null(store.ReadManifest(ModelId.Parse("o/m")).Revision);
    }

    [Fact]
    public void ToJson_ManifestOfModelIds_IsByteForByteWhatStringIdsWrote()
    {
        ContentHash h(char c) => ContentHash.Parse(new string(c, 64));
        StoredFile[] files =
        [
            new("config.json", 12, h('1'), StoredFileKind.Blob, h('2'), null, new string('3', 32)),
            new("model.safetensors", 96, h('4'), StoredFileKind.Safetensors, h('5'),
                [new StoredTensor("w", "BF16", [2, 4], h('6'), TensorEncoding.Delta, [h('7')]), new StoredTensor("b", "F32", [], h('8'), TensorEncoding.Solo)], new string('9', 32)),
        ];
        Manifest manifest = Manifest.Create(ModelId.Parse("my_org/llama-ft"), ModelRoleKind.Finetune, ModelId.Parse("meta-llama/Llama-3.2-1B"), files, 108, 64,
            new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero));

        Assert.Equal(ManifestOfStringIds, Encoding.UTF8.GetString(manifest.ToCheckedJson("test")));
        Manifest read = Manifest.Parse(Encoding.UTF8.GetBytes(ManifestOfStringIds), "test");
        Assert.Equal(ModelId.Parse("my_org/llama-ft"), read.Id);
        Assert.Equal(ModelId.Parse("meta-llama/Llama-3.2-1B"), read.BaseId);
    }

    [Theory]
    [InlineData("\"id\": \"my_org/llama-ft\"", "\"id\": \"my_org/llama/ft\"", "Invalid model id: \"my_org/llama/ft\" has more than one '/'")]
    [InlineData("\"id\": \"my_org/llama-ft\"", "\"id\": 7", "Invalid model id: the model id is empty")]
    [InlineData("\"id\": \"my_org/llama-ft\",", "", "missing required fields")]
    [InlineData("\"base_id\": \"meta-llama/Llama-3.2-1B\"", "\"base_id\": \"../x\"", "Invalid model id: \"../x\" has an org or name of '.' or '..'")]
    public void Parse_InvalidOrMissingModelId_IsRefusedNamingTheManifest(string field, string replacement, string expected)
    {
        string json = ManifestOfStringIds.Replace(field, replacement, StringComparison.Ordinal);
        Assert.NotEqual(ManifestOfStringIds, json);
        var ex = Assert.Throws<InvalidDataException>(() => Manifest.Parse(Encoding.UTF8.GetBytes(json), "m.json"));
        Assert.StartsWith("m.json: manifest ", ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    private static string Edit(string json, string edit)
    {
        JsonObject manifest = JsonNode.Parse(json)!.AsObject();
        JsonArray files = manifest["files"]!.AsArray();
        JsonObject safetensors = files.Select(f => f!.AsObject()).First(f => f["tensors"] is not null);
        switch (edit)
        {
            case "one character of a file name":
                return json.Replace("\"config.json\"", "\"config.jsoN\"");
            case "a dropped file entry":
                files.RemoveAt(files.Count - 1);
                break;
            case "a dropped tensor entry":
                safetensors["tensors"]!.AsArray().RemoveAt(0);
                break;
            case "the model id":
                return json.Replace("\"o/base\"", "\"o/ft\"");
            case "a tensor's object":
                JsonArray tensors = safetensors["tensors"]!.AsArray();
                tensors[0]!["object"] = tensors[1]!["object"]!.GetValue<string>();
                break;
            case "an added field":
                manifest["note"] = "hello";
                break;
            case "the checksum itself":
                string checksum = manifest["checksum"]!.GetValue<string>();
                manifest["checksum"] = checksum[..^1] + (checksum[^1] == '0' ? '1' : '0');
                break;
        }
        return manifest.ToJsonString();
    }
}
