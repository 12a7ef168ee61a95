using System.Security.Cryptography;
using System.Text;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Hub;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Hub;

public class HubClientTests
{
    private static readonly ModelId Model = ModelId.Parse("org/model-1");
    private static readonly byte[] s_shard = RandomBytes(300_000, 1);
    private static readonly byte[] s_shard2 = RandomBytes(70_001, 2);
    private static readonly byte[] s_config = Encoding.UTF8.GetBytes("{\"model_type\": \"llama\"}\n");
    private static readonly byte[] s_readme = Encoding.UTF8.GetBytes("---\nbase_model: org/base\n---\n# m\n");

    private static FakeHub NewHub()
    {
        var hub = new FakeHub();
        hub.Add(Model.ToString(),
            ("model-00001-of-00002.safetensors", s_shard),
            ("model-00002-of-00002.safetensors", s_shard2),
            ("config.json", s_config),
            ("README.md", s_readme),
            (".gitattributes", Encoding.UTF8.GetBytes("*.safetensors filter=lfs\n")),
            ("pytorch_model.bin", RandomBytes(100, 3)));
        return hub;
    }

    [Fact]
    public async Task ListFiles_Model_ReturnsFilesWithSizesAndHashes()
    {
        await using var hub = NewHub();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var files = await client.ListFilesAsync(Model);
        Assert.Equal(6, files.Count);
        HubFile shard = files.Single(f => f.Path == "model-00001-of-00002.safetensors");
        Assert.Equal(s_shard.Length, shard.Size);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(s_shard)), shard.Sha256);
        HubFile config = files.Single(f => f.Path == "config.json");
        Assert.Null(config.Sha256);
        Assert.Equal(FakeHub.GitOid(s_config), config.GitOid);
        Assert.DoesNotContain(files, f => f.Path == "original");
    }

    [Theory]
    [InlineData("model.safetensors", true)]
    [InlineData("model-00001-of-00004.safetensors", true)]
    [InlineData("config.json", true)]
    [InlineData("tokenizer.json", true)]
    [InlineData("tokenizer.model", true)]
    [InlineData("tokenizer_config.json", true)]
    [InlineData("chat_template.jinja", true)]
    [InlineData("merges.txt", true)]
    [InlineData("README.md", true)]
    [InlineData("LICENSE", true)]
    [InlineData("LICENSE.md", true)]
    [InlineData("modeling_custom.py", true)]
    [InlineData("tiktoken.model", true)]
    [InlineData("qwen.tiktoken", true)]
    [InlineData("original/params.json", true)]
    [InlineData("original/consolidated.00.pth", false)]
    [InlineData("pytorch_model.bin", false)]
    [InlineData("model.gguf", false)]
    [InlineData("onnx/model.onnx", false)]
    [InlineData("flax_model.msgpack", false)]
    [InlineData("tf_model.h5", false)]
    [InlineData("rust_model.ot", false)]
    [InlineData(".gitattributes", false)]
    [InlineData("sub/.hidden", false)]
    [InlineData("../x.json", false)]
    [InlineData("a//b.json", false)]
    [InlineData("..\\x.json", false)]
    [InlineData("x.json.part", false)]
    public void DefaultSelection_WithSafetensors_TakesWhatAModelNeeds(string path, bool expected) =>
        Assert.Equal(expected, HubFileSelection.Default.Takes(path, repositoryHasSafetensors: true));

    [Theory]
    [InlineData("pytorch_model.bin")]
    [InlineData("original/consolidated.00.pth")]
    public void DefaultSelection_WithoutSafetensors_KeepsOtherWeights(string path) =>
        Assert.True(HubFileSelection.Default.Takes(path, repositoryHasSafetensors: false));

    [Fact]
    public void Selection_IncludeAndExclude_FilterAsGlobsOverTheWholePath()
    {
        var selection = new HubFileSelection(["*.safetensors", "*.json", "original/"], ["*.index.json", "original/*.pth"]);
        Assert.True(selection.Takes("model.safetensors", true));
        Assert.True(selection.Takes("sub/config.json", true));
        Assert.True(selection.Takes("original/tokenizer.model", true));
        Assert.False(selection.Takes("original/consolidated.00.pth", true));
        Assert.False(selection.Takes("model.safetensors.index.json", true));
        Assert.False(selection.Takes("README.md", true));
        // An exclude list of one's own replaces the default one: other weight formats are then taken.
        Assert.True(new HubFileSelection([], ["*.md"]).Takes("pytorch_model.bin", true));
    }

    [Fact]
    public async Task DownloadModel_FreshFolder_FetchesWantedFilesVerified()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        var progress = new List<HubTransferProgress>();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var summary = await client.DownloadModelAsync(Model, dir.Path, progress: new SyncProgress(progress));
        Assert.Equal(FakeHub.Commit(Model.ToString()), summary.Commit);
        Assert.Equal(4, summary.FilesDownloaded);
        Assert.Equal(0, summary.FilesSkipped);
        Assert.Equal(s_shard.Length + s_shard2.Length + s_config.Length + s_readme.Length, summary.BytesDownloaded);
        Assert.Equal(s_shard, File.ReadAllBytes(dir.Combine("model-00001-of-00002.safetensors")));
        Assert.Equal(s_config, File.ReadAllBytes(dir.Combine("config.json")));
        Assert.Equal(
            ["README.md", "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
            Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        HubTransferProgress last = progress[^1];
        Assert.Equal((4, 4), (last.FilesDone, last.FilesTotal));
        Assert.Equal(summary.BytesDownloaded, last.BytesTotal);
        Assert.Equal(last.BytesTotal, last.BytesDone);
        Assert.Equal(Enumerable.Range(1, 4), progress.Select(p => p.FilesDone).Distinct().Where(n => n > 0));
        Assert.All(hub.Requests, r => Assert.Null(r.Header("Authorization")));
    }

    [Fact]
    public async Task DownloadModel_Revision_ResolvesItsCommitAndDownloadsThatCommitsFiles()
    {
        await using var hub = NewHub();
        byte[] v1Shard = RandomBytes(5_000, 9);
        hub.AddRevision(Model.ToString(), "v1.0", ("model.safetensors", v1Shard), ("config.json", s_config));
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        string commit = FakeHub.Commit(Model.ToString(), "v1.0");
        Assert.Equal(commit, await client.ResolveCommitAsync(Model, "v1.0"));

        var summary = await client.DownloadModelAsync(Model, dir.Path, "v1.0");
        Assert.Equal(commit, summary.Commit);
        Assert.Equal(["config.json", "model.safetensors"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(v1Shard, File.ReadAllBytes(dir.Combine("model.safetensors")));
        // Every file is fetched at the commit, so a branch that moves meanwhile cannot mix two commits in one folder.
        Assert.All(hub.Requests.Where(r => r.Path.Contains("/resolve/")), r => Assert.Contains($"/resolve/{commit}/", r.Path));
        Assert.Contains(hub.Requests, r => r.Path == FakeHub.TreePath(Model.ToString(), "v1.0") && r.Query.Contains("recursive=true"));
    }

    [Fact]
    public async Task DownloadModel_UnknownRevision_ThrowsNotFoundNamingIt()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(Model, dir.Path, "v9"));
        Assert.Equal(HubErrorKind.NotFound, ex.Kind);
        Assert.Contains("v9", ex.Message);
        Assert.Contains("revision", ex.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public async Task DownloadModel_FilesInFolders_ListsRecursivelyAndKeepsTheirPaths()
    {
        await using var hub = new FakeHub();
        byte[] consolidated = RandomBytes(2_000, 4);
        hub.Add("org/llama", ("model.safetensors", s_shard2), ("config.json", s_config), ("original/params.json", s_config),
            ("original/tokenizer.model", [7, 7]), ("original/consolidated.00.pth", consolidated), ("deep/a/b/chat_template.jinja", s_readme));
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        Assert.Equal(6, (await client.ListFilesAsync(ModelId.Parse("org/llama"))).Count);

        var summary = await client.DownloadModelAsync(ModelId.Parse("org/llama"), dir.Path);
        Assert.Equal(5, summary.FilesDownloaded);
        Assert.Equal(s_readme, File.ReadAllBytes(dir.Combine("deep", "a", "b", "chat_template.jinja")));
        Assert.Equal([7, 7], File.ReadAllBytes(dir.Combine("original", "tokenizer.model")));
        // The other weight format is left out where safetensors exist.
        Assert.False(File.Exists(dir.Combine("original", "consolidated.00.pth")));
    }

    [Fact]
    public async Task DownloadModel_IncludeAndExcludePatterns_DownloadOnlyTheSelectedFiles()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        var options = HubTestOptions.Fast(hub.Endpoint) with { Files = new HubFileSelection(["*.safetensors", "*.md", "*.bin"], ["*-00002-of-*"]) };
        using var client = new HubClient(options);
        var summary = await client.DownloadModelAsync(Model, dir.Path);
        Assert.Equal(["README.md", "model-00001-of-00002.safetensors", "pytorch_model.bin"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(3, summary.FilesDownloaded);
        Assert.DoesNotContain(hub.Requests, r => r.Path.EndsWith("config.json", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DownloadModel_PatternsTakingNoSafetensors_ThrowsNotFoundNamingThePatterns()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint) with { Files = new HubFileSelection(["*.json"], null) });
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(Model, dir.Path));
        Assert.Contains("*.json", ex.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task DownloadModel_ParallelDownloads_AtMostNAtOnceAndTheSameFiles(int downloads)
    {
        await using var hub = new FakeHub { ResolveDelay = TimeSpan.FromMilliseconds(150) };
        var files = Enumerable.Range(0, 8).Select(i => ($"model-{i:D5}-of-00008.safetensors", RandomBytes(10_000 + i, 20 + i))).ToArray();
        hub.Add("org/many", files);
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint) with { MaxConcurrentDownloads = downloads });
        var summary = await client.DownloadModelAsync(ModelId.Parse("org/many"), dir.Path);
        Assert.Equal(8, summary.FilesDownloaded);
        foreach ((string name, byte[] content) in files)
        {
            Assert.Equal(content, File.ReadAllBytes(dir.Combine(name)));
        }
        Assert.InRange(hub.PeakConcurrentResolves, downloads == 1 ? 1 : 2, downloads);
    }

    [Fact]
    public async Task DownloadModel_OneDownloadAtATime_FetchesTheLargestFirst()
    {
        await using var hub = new FakeHub();
        // Listed, and named, in no order of size.
        hub.Add("org/sizes", ("a.safetensors", RandomBytes(2_000, 30)), ("b.json", RandomBytes(30_000, 31)), ("c.safetensors", RandomBytes(500, 32)),
            ("d.txt", RandomBytes(9_000, 33)));
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint) with { MaxConcurrentDownloads = 1 });
        var summary = await client.DownloadModelAsync(ModelId.Parse("org/sizes"), dir.Path);
        Assert.Equal(4, summary.FilesDownloaded);
        Assert.Equal(["b.json", "d.txt", "a.safetensors", "c.safetensors"],
            hub.Requests.Where(r => r.Path.Contains("/resolve/")).Select(r => Path.GetFileName(r.Path)));
    }

    [Fact]
    public async Task DownloadModel_FolderOfAnotherCommit_ReplacesSameSizeFilesThatDiffer()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        await client.DownloadModelAsync(Model, dir.Path);
        byte[] stale = (byte[])s_config.Clone();
        stale[2] ^= 0x20;
        File.WriteAllBytes(dir.Combine("config.json"), stale);

        // The folder is said to hold this very commit: its complete files are trusted as they are.
        var trusted = await client.DownloadModelAsync(Model, dir.Path, folderCommit: FakeHub.Commit(Model.ToString()));
        Assert.Equal(0, trusted.FilesDownloaded);
        // Of another (or no known) commit: each is checked against the listing, and the one that differs fetched again.
        var checkedRun = await client.DownloadModelAsync(Model, dir.Path, folderCommit: FakeHub.Commit(Model.ToString(), "old"));
        Assert.Equal(1, checkedRun.FilesDownloaded);
        Assert.Equal(3, checkedRun.FilesSkipped);
        Assert.Equal(s_config, File.ReadAllBytes(dir.Combine("config.json")));
    }

    [Fact]
    public async Task DownloadModel_Offline_ThrowsWithoutARequest()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint) with { Offline = true });
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(Model, dir.Path));
        Assert.Contains("HF_HUB_OFFLINE", ex.Message);
        Assert.False(await client.IsReachableAsync(TimeSpan.FromSeconds(1)));
        Assert.Empty(hub.Requests);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(33)]
    public void Constructor_DownloadsOutOfRange_ThrowsArgumentException(int downloads) =>
        Assert.ThrowsAny<ArgumentException>(() => new HubClient(new HubClientOptions { MaxConcurrentDownloads = downloads }));

    [Fact]
    public async Task DownloadModel_SecondRun_SkipsCompleteFiles()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        await client.DownloadModelAsync(Model, dir.Path);
        int before = hub.Count(r => r.Path.Contains("/resolve/"));
        var summary = await client.DownloadModelAsync(Model, dir.Path);
        Assert.Equal(0, summary.FilesDownloaded);
        Assert.Equal(4, summary.FilesSkipped);
        Assert.Equal(before, hub.Count(r => r.Path.Contains("/resolve/")));
    }

    [Fact]
    public async Task DownloadModel_PartialFile_ResumesWithRange()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        const int have = 123_457;
        File.WriteAllBytes(dir.Combine("model-00001-of-00002.safetensors.part"), s_shard[..have]);
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var summary = await client.DownloadModelAsync(Model, dir.Path);
        Assert.Equal(s_shard, File.ReadAllBytes(dir.Combine("model-00001-of-00002.safetensors")));
        Assert.False(File.Exists(dir.Combine("model-00001-of-00002.safetensors.part")));
        FakeRequest request = Assert.Single(hub.Requests, r => r.Path.EndsWith("model-00001-of-00002.safetensors", StringComparison.Ordinal));
        Assert.Equal($"bytes={have}-", request.Header("Range"));
        Assert.Equal(s_shard.Length - have + s_shard2.Length + s_config.Length + s_readme.Length, summary.BytesDownloaded);
    }

    [Fact]
    public async Task DownloadModel_ConnectionCutMidBody_ResumesFromWhereItStopped()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        string path = FakeHub.ResolvePath(Model.ToString(), "model-00001-of-00002.safetensors");
        hub.AddFault(path, new FakeResponse(200, s_shard, SendBytes: 100_000));
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        await client.DownloadModelAsync(Model, dir.Path);
        Assert.Equal(s_shard, File.ReadAllBytes(dir.Combine("model-00001-of-00002.safetensors")));
        var ranges = hub.Requests.Where(r => r.Path == path).Select(r => r.Header("Range")).ToList();
        Assert.Equal(2, ranges.Count);
        Assert.Null(ranges[0]);
        Assert.StartsWith("bytes=", ranges[1]);
        Assert.NotEqual("bytes=0-", ranges[1]);
    }

    [Theory]
    [InlineData(429)]
    [InlineData(503)]
    [InlineData(500)]
    public async Task DownloadModel_TransientStatusThenSuccess_Retries(int status)
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        string path = FakeHub.ResolvePath(Model.ToString(), "config.json");
        hub.AddFault(path, FakeResponse.Text(status, "busy", new Dictionary<string, string> { ["Retry-After"] = "0" }));
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var summary = await client.DownloadModelAsync(Model, dir.Path);
        Assert.Equal(4, summary.FilesDownloaded);
        Assert.Equal(2, hub.Count(r => r.Path == path));
        Assert.Equal(s_config, File.ReadAllBytes(dir.Combine("config.json")));
    }

    [Fact]
    public async Task ListFiles_503ThenSuccess_Retries()
    {
        await using var hub = NewHub();
        hub.AddFault(FakeHub.TreePath(Model.ToString()), FakeResponse.Text(503, "down"));
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        Assert.Equal(6, (await client.ListFilesAsync(Model)).Count);
    }

    [Fact]
    public async Task DownloadModel_AlwaysUnavailable_GivesUpAsNetworkErrorAfterMaxAttempts()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        string path = FakeHub.ResolvePath(Model.ToString(), "config.json");
        hub.AddFault(path, Enumerable.Range(0, 10).Select(_ => FakeResponse.Text(503, "down")).ToArray());
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(Model, dir.Path));
        Assert.Equal(HubErrorKind.Network, ex.Kind);
        Assert.True(ex.IsNetworkError);
        Assert.Contains("config.json", ex.Message);
        Assert.Contains("503", ex.Message);
        Assert.Equal(3, hub.Count(r => r.Path == path));
        Assert.False(File.Exists(dir.Combine("config.json")));
    }

    [Fact]
    public async Task DownloadModel_UnknownModel_ThrowsNotFound()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(ModelId.Parse("org/nope"), dir.Path));
        Assert.Equal(HubErrorKind.NotFound, ex.Kind);
        Assert.Equal(404, ex.StatusCode);
        Assert.Contains("org/nope", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public async Task DownloadModel_GatedWithoutToken_ThrowsUnauthorizedNamingToken()
    {
        await using var hub = NewHub();
        hub.Gated.Add(Model.ToString());
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(Model, dir.Path));
        Assert.Equal(HubErrorKind.Unauthorized, ex.Kind);
        Assert.Equal(401, ex.StatusCode);
        Assert.Contains("HF_TOKEN", ex.Message);
        Assert.False(ex.IsNetworkError);
    }

    [Fact]
    public async Task DownloadModel_GatedWithToken_SendsBearerAndSucceeds()
    {
        await using var hub = NewHub();
        hub.Gated.Add(Model.ToString());
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint, hub.Token));
        var summary = await client.DownloadModelAsync(Model, dir.Path);
        Assert.Equal(4, summary.FilesDownloaded);
        Assert.All(hub.Requests, r => Assert.Equal($"Bearer {hub.Token}", r.Header("Authorization")));
    }

    [Fact]
    public async Task DownloadModel_BadSha256_FailsWithoutLeavingFile()
    {
        await using var hub = NewHub();
        hub.ListedShaOverride[$"{Model}/model-00002-of-00002.safetensors"] = new string('a', 64);
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(Model, dir.Path));
        Assert.Equal(HubErrorKind.Integrity, ex.Kind);
        Assert.Contains("SHA-256", ex.Message);
        Assert.False(File.Exists(dir.Combine("model-00002-of-00002.safetensors")));
        Assert.False(File.Exists(dir.Combine("model-00002-of-00002.safetensors.part")));
    }

    [Fact]
    public async Task DownloadModel_CorruptSmallFile_FailsGitOidCheck()
    {
        await using var hub = NewHub();
        using var dir = new TempDir();
        byte[] corrupt = (byte[])s_config.Clone();
        corrupt[3] ^= 1;
        hub.AddFault(FakeHub.ResolvePath(Model.ToString(), "config.json"), new FakeResponse(200, corrupt));
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(Model, dir.Path));
        Assert.Equal(HubErrorKind.Integrity, ex.Kind);
        Assert.False(File.Exists(dir.Combine("config.json")));
    }

    [Fact]
    public async Task DownloadModel_RedirectToOtherHost_FollowsWithoutToken()
    {
        await using var cdn = new FakeHttpServer(request => request.Path.StartsWith($"/cdn/{Model}/", StringComparison.Ordinal)
            ? FakeHub.Serve(RandomFileFor(request.Path), request)
            : FakeResponse.Text(404, "no"));
        await using var hub = NewHub();
        hub.RedirectResolveTo = cdn.Endpoint;
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint, hub.Token));
        await client.DownloadModelAsync(Model, dir.Path);
        Assert.Equal(s_shard, File.ReadAllBytes(dir.Combine("model-00001-of-00002.safetensors")));
        Assert.Equal(4, cdn.Requests.Count);
        Assert.All(cdn.Requests, r => Assert.Null(r.Header("Authorization")));
        Assert.All(hub.Requests, r => Assert.NotNull(r.Header("Authorization")));
    }

    [Fact]
    public async Task DownloadModel_NoSafetensors_ThrowsNotFound()
    {
        await using var hub = new FakeHub();
        hub.Add("org/bin-only", ("pytorch_model.bin", [1, 2, 3]), ("config.json", s_config));
        using var dir = new TempDir();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(ModelId.Parse("org/bin-only"), dir.Path));
        Assert.Contains(".safetensors", ex.Message);
    }

    [Fact]
    public async Task DownloadModel_DiskFull_ThrowsDiskFull()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/dev/full"))
        {
            return;
        }
        await using var hub = new FakeHub();
        hub.Add("org/m", ("model.safetensors", s_shard2));
        using var dir = new TempDir();
        // Writes through this link fail with ENOSPC, as on a full disk.
        File.CreateSymbolicLink(dir.Combine("model.safetensors.part"), "/dev/full");
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        var ex = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(ModelId.Parse("org/m"), dir.Path));
        Assert.Equal(HubErrorKind.DiskFull, ex.Kind);
        Assert.Contains("disk is full", ex.Message);
        Assert.False(File.Exists(dir.Combine("model.safetensors")));
    }

    [Fact]
    public async Task IsReachable_RunningServer_True()
    {
        await using var hub = NewHub();
        using var client = new HubClient(HubTestOptions.Fast(hub.Endpoint));
        Assert.True(await client.IsReachableAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task IsReachable_ClosedPort_False()
    {
        using var client = new HubClient(HubTestOptions.Fast(HubTestOptions.ClosedPortEndpoint()));
        Assert.False(await client.IsReachableAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task ListFiles_ClosedPort_ThrowsNetworkError()
    {
        using var client = new HubClient(HubTestOptions.Fast(HubTestOptions.ClosedPortEndpoint()));
        var ex = await Assert.ThrowsAsync<HubException>(() => client.ListFilesAsync(Model));
        Assert.True(ex.IsNetworkError);
    }

    [Fact]
    public void Constructor_ZeroAttempts_ThrowsArgumentException() =>
        Assert.ThrowsAny<ArgumentException>(() => new HubClient(new HubClientOptions { MaxAttempts = 0 }));

    [Theory]
    [InlineData("ftp://x")]
    [InlineData("not a url")]
    [InlineData("/relative")]
    public void ParseEndpoint_NotHttp_ThrowsArgumentException(string endpoint) =>
        Assert.Throws<UsageException>(() => HubClientOptions.ParseEndpoint(endpoint));

    private static byte[] RandomFileFor(string cdnPath) => Path.GetFileName(cdnPath) switch
    {
        "model-00001-of-00002.safetensors" => s_shard,
        "model-00002-of-00002.safetensors" => s_shard2,
        "config.json" => s_config,
        _ => s_readme,
    };

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Records reports on the reporting thread (Progress&lt;T&gt; would post them later).</summary>
    private sealed class SyncProgress(List<HubTransferProgress> sink) : IProgress<HubTransferProgress>
    {
        public void Report(HubTransferProgress value)
        {
            lock (sink)
            {
                sink.Add(value);
            }
        }
    }
}
