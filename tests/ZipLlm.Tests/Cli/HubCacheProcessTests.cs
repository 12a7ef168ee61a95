using System.Text.Json;
using ZipLlm.Cli;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>Compress straight from a Hugging Face cache (model_dir pointing at one), as real processes.</summary>
public class HubCacheProcessTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly string s_baseCommit = FakeHubCache.CommitOf("base main");
    private static readonly string s_ftCommit = FakeHubCache.CommitOf("ft v1");

    /// <summary>A base and a finetune (pinned to v1) in a cache under <c>hub/</c>, with config, list and base_ft.json.</summary>
    private static (Dictionary<string, byte[]> Base, Dictionary<string, byte[]> Finetune) WriteFamily(TempDir dir)
    {
        var random = new Random(31);
        var layers = ModelFolders.Bf16Layers(random, 2, 64);
        Dictionary<string, byte[]> Model(IReadOnlyList<(string, ZipLlm.Safetensors.DType, long[], byte[])> tensors, string name)
        {
            string scratch = dir.Combine("scratch", name + ".safetensors");
            ModelFolders.WriteSafetensors(scratch, tensors);
            return new Dictionary<string, byte[]>
            {
                ["model.safetensors"] = File.ReadAllBytes(scratch),
                ["config.json"] = System.Text.Encoding.UTF8.GetBytes($"{{\"name\": \"{name}\"}}"),
                ["chat_template.jinja"] = "{{ messages }}"u8.ToArray(),
                ["original/params.json"] = System.Text.Encoding.UTF8.GetBytes($"{{\"dim\": 64, \"model\": \"{name}\"}}"),
            };
        }
        var baseFiles = Model(layers, "base");
        var ftFiles = Model(ModelFolders.Finetune(random, layers), "ft");
        FakeHubCache.AddSnapshot(dir.Combine("hub"), "org/base", s_baseCommit, baseFiles);
        FakeHubCache.AddSnapshot(dir.Combine("hub"), "org/ft", FakeHubCache.CommitOf("ft main"), baseFiles);
        FakeHubCache.AddSnapshot(dir.Combine("hub"), "org/ft", s_ftCommit, ftFiles, "v1");
        dir.Write("config.json", """{"model_dir": "hub", "storage_dir": "store", "models_to_process": "list.txt", "base_ft_path": "base_ft.json"}""");
        dir.Write("list.txt", "org/base\norg/ft@v1\n");
        dir.Write("base_ft.json", """{"org/base": ["org/ft"]}""");
        return (baseFiles, ftFiles);
    }

    [Fact]
    public async Task Compress_ModelDirIsHubCache_StoresSnapshotsInPlaceRecordsCommitsAndRestoresPlainFiles()
    {
        using var dir = new TempDir();
        (_, Dictionary<string, byte[]> finetune) = WriteFamily(dir);

        CliResult compress = await CliProcess.RunAsync(["compress", "config.json"], dir.Path, Timeout);
        Assert.True(compress.ExitCode == 0, compress.StandardError);

        CliResult list = await CliProcess.RunAsync(["list", "config.json"], dir.Path, Timeout);
        Assert.True(list.ExitCode == 0, list.StandardError);
        Assert.Contains("revision", list.StandardOutput);
        Assert.Contains(s_ftCommit[..12], list.StandardOutput);
        Assert.Contains(s_baseCommit[..12], list.StandardOutput);

        CliResult json = await CliProcess.RunAsync(["list", "config.json", "--json"], dir.Path, Timeout);
        using (var document = JsonDocument.Parse(json.StandardOutput))
        {
            var revisions = document.RootElement.GetProperty("models").EnumerateArray()
                .ToDictionary(m => m.GetProperty("id").GetString()!, m => m.GetProperty("revision").GetString());
            Assert.Equal(s_ftCommit, revisions["org/ft"]);
            Assert.Equal(s_baseCommit, revisions["org/base"]);
        }

        CliResult restore = await CliProcess.RunAsync(["restore", "config.json", "org/ft", "out"], dir.Path, Timeout);
        Assert.True(restore.ExitCode == 0, restore.StandardError);
        var restored = ModelFolders.Snapshot(dir.Combine("out"));
        Assert.Equal(finetune.Keys.Select(k => k.Replace('/', Path.DirectorySeparatorChar)).Order(StringComparer.Ordinal), restored.Keys);
        foreach ((string path, byte[] bytes) in finetune)
        {
            Assert.Equal(bytes, restored[path.Replace('/', Path.DirectorySeparatorChar)]);
            Assert.Null(new FileInfo(dir.Combine("out", path)).LinkTarget);
        }
        // The cache is read, never written.
        Assert.Equal(finetune["config.json"], File.ReadAllBytes(Path.Combine(FakeHubCache.RepoFolder(dir.Combine("hub"), "org/ft"), "snapshots", s_ftCommit, "config.json")));
    }

    [Fact]
    public async Task Compress_DanglingLinkInSnapshot_ExitsInvalidInputNamingTheLink()
    {
        using var dir = new TempDir();
        WriteFamily(dir);
        dir.Write("list.txt", "org/base\n");
        string link = Path.Combine(FakeHubCache.RepoFolder(dir.Combine("hub"), "org/base"), "snapshots", s_baseCommit, "original", "params.json");
        File.Delete(File.ResolveLinkTarget(link, returnFinalTarget: true)!.FullName);

        CliResult compress = await CliProcess.RunAsync(["compress", "config.json"], dir.Path, Timeout);
        Assert.True(compress.ExitCode == ExitCodes.InvalidInput, $"exit {compress.ExitCode}: {compress.StandardError}");
        Assert.Contains(link, compress.StandardError);
        Assert.Contains("does not exist", compress.StandardError);
        Assert.DoesNotContain("   at ", compress.StandardError);
        Assert.False(Directory.Exists(dir.Combine("store", "manifests", "org")));
    }

    [Fact]
    public async Task Compress_LinkEscapingTheModelsCacheFolder_ExitsInvalidInputAndReadsNothing()
    {
        using var dir = new TempDir();
        WriteFamily(dir);
        dir.Write("list.txt", "org/base\n");
        dir.Write("private.txt", "secret");
        string link = Path.Combine(FakeHubCache.RepoFolder(dir.Combine("hub"), "org/base"), "snapshots", s_baseCommit, "leak.txt");
        File.CreateSymbolicLink(link, "../../../../private.txt");

        CliResult compress = await CliProcess.RunAsync(["compress", "config.json"], dir.Path, Timeout);
        Assert.True(compress.ExitCode == ExitCodes.InvalidInput, $"exit {compress.ExitCode}: {compress.StandardError}");
        Assert.Contains(link, compress.StandardError);
        Assert.Contains("outside the model's cache folder", compress.StandardError);
        Assert.False(Directory.Exists(dir.Combine("store", "manifests", "org")));
    }

    [Fact]
    public async Task Compress_RevisionTheCacheLacks_ExitsInvalidInputNamingTheRef()
    {
        using var dir = new TempDir();
        WriteFamily(dir);
        dir.Write("list.txt", "org/base@v9\n");

        CliResult compress = await CliProcess.RunAsync(["compress", "config.json"], dir.Path, Timeout);
        Assert.True(compress.ExitCode == ExitCodes.InvalidInput, $"exit {compress.ExitCode}: {compress.StandardError}");
        Assert.Contains(Path.Combine(FakeHubCache.RepoFolder(dir.Combine("hub"), "org/base"), "refs", "v9"), compress.StandardError);
    }
}
