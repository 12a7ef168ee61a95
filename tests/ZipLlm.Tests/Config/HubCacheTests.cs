using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Config;

public class HubCacheTests
{
    private static readonly ModelId Model = ModelId.Parse("org/m");
    private static readonly string s_main = FakeHubCache.CommitOf("main");

    private static Dictionary<string, byte[]> Files() => new()
    {
        ["config.json"] = "{\"a\": 1}"u8.ToArray(),
        ["model.safetensors"] = [1, 2, 3],
        ["original/params.json"] = "{}"u8.ToArray(),
    };

    [Fact]
    public void FolderName_Model_IsModelsOrgName() =>
        Assert.Equal("models--my_org--Llama-3.2-1B", HubCache.FolderName(ModelId.Parse("my_org/Llama-3.2-1B")));

    [Fact]
    public void IsCache_FolderWithModelsEntry_True()
    {
        using var dir = new TempDir();
        Assert.False(HubCache.IsCache(dir.Path));
        Directory.CreateDirectory(dir.Combine("org_m"));
        Assert.False(HubCache.IsCache(dir.Path));
        FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files());
        Assert.True(HubCache.IsCache(dir.Path));
        Assert.False(HubCache.IsCache(dir.Combine("missing")));
    }

    [Fact]
    public void Resolve_Main_ReturnsTheSnapshotRefsMainNames()
    {
        using var dir = new TempDir();
        string snapshot = FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files());
        HubCacheSnapshot resolved = HubCache.Resolve(dir.Path, Model);
        Assert.Equal(s_main, resolved.Commit);
        Assert.Equal(snapshot, resolved.Folder);
        Assert.Equal(FakeHubCache.RepoFolder(dir.Path, "org/m"), resolved.RepoFolder);
    }

    [Fact]
    public void Resolve_BranchTagOrCommit_PicksThatSnapshot()
    {
        using var dir = new TempDir();
        string v1 = FakeHubCache.CommitOf("v1"), pr = FakeHubCache.CommitOf("pr"), loose = FakeHubCache.CommitOf("loose");
        FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files());
        FakeHubCache.AddSnapshot(dir.Path, "org/m", v1, Files(), "v1.0");
        FakeHubCache.AddSnapshot(dir.Path, "org/m", pr, Files(), "refs/pr/1");
        FakeHubCache.AddSnapshot(dir.Path, "org/m", loose, Files(), refName: null);
        Assert.Equal(v1, HubCache.Resolve(dir.Path, Model, "v1.0").Commit);
        Assert.Equal(pr, HubCache.Resolve(dir.Path, Model, "refs/pr/1").Commit);
        // A commit the cache has a snapshot of needs no ref; upper-case digits name the same commit.
        Assert.Equal(loose, HubCache.Resolve(dir.Path, Model, loose.ToUpperInvariant()).Commit);
    }

    [Fact]
    public void Resolve_RefFileWithNewline_ReadsTheCommit()
    {
        using var dir = new TempDir();
        FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files());
        File.WriteAllText(Path.Combine(FakeHubCache.RepoFolder(dir.Path, "org/m"), "refs", "main"), s_main.ToUpperInvariant() + "\n");
        Assert.Equal(s_main, HubCache.Resolve(dir.Path, Model).Commit);
    }

    [Fact]
    public void Resolve_MissingRef_ThrowsInvalidDataNamingTheRefAndWhatThereIs()
    {
        using var dir = new TempDir();
        FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files(), "v2");
        var ex = Assert.Throws<InvalidDataException>(() => HubCache.Resolve(dir.Path, Model));
        Assert.Contains(Path.Combine(FakeHubCache.RepoFolder(dir.Path, "org/m"), "refs", "main"), ex.Message);
        Assert.Contains("v2", ex.Message);
        Assert.Contains(s_main, ex.Message);
    }

    [Fact]
    public void Resolve_RefToMissingSnapshot_ThrowsInvalidData()
    {
        using var dir = new TempDir();
        FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files());
        File.WriteAllText(Path.Combine(FakeHubCache.RepoFolder(dir.Path, "org/m"), "refs", "main"), FakeHubCache.CommitOf("gone"));
        var ex = Assert.Throws<InvalidDataException>(() => HubCache.Resolve(dir.Path, Model));
        Assert.Contains(FakeHubCache.CommitOf("gone"), ex.Message);
        Assert.Contains("does not exist", ex.Message);
    }

    [Theory]
    [InlineData("not a commit")]
    [InlineData("")]
    public void Resolve_RefWithoutCommit_ThrowsInvalidData(string content)
    {
        using var dir = new TempDir();
        FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files());
        File.WriteAllText(Path.Combine(FakeHubCache.RepoFolder(dir.Path, "org/m"), "refs", "main"), content);
        Assert.Contains("does not hold a commit id", Assert.Throws<InvalidDataException>(() => HubCache.Resolve(dir.Path, Model)).Message);
    }

    [Fact]
    public void Resolve_DanglingLink_ThrowsInvalidDataNamingTheLink()
    {
        using var dir = new TempDir();
        string snapshot = FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files());
        string link = Path.Combine(snapshot, "config.json");
        File.Delete(File.ResolveLinkTarget(link, returnFinalTarget: true)!.FullName);
        var ex = Assert.Throws<InvalidDataException>(() => HubCache.Resolve(dir.Path, Model));
        Assert.Contains(link, ex.Message);
        Assert.Contains("does not exist", ex.Message);
    }

    [Fact]
    public void Resolve_LinkOutOfTheModelsFolder_ThrowsInvalidDataNamingTheLink()
    {
        using var dir = new TempDir();
        string snapshot = FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files());
        // Another model's blob is outside this model's folder too.
        string other = FakeHubCache.AddSnapshot(dir.Path, "org/other", s_main, Files());
        string secret = dir.Write("secret.txt", "not a model's");
        string escaping = Path.Combine(snapshot, "original", "leak.txt");
        File.CreateSymbolicLink(escaping, "../../../../secret.txt");
        var ex = Assert.Throws<InvalidDataException>(() => HubCache.Resolve(dir.Path, Model));
        Assert.Contains(escaping, ex.Message);
        Assert.Contains(secret, ex.Message);
        Assert.Contains("outside the model's cache folder", ex.Message);

        File.Delete(escaping);
        File.CreateSymbolicLink(escaping, Path.Combine(other, "config.json"));
        Assert.Contains(escaping, Assert.Throws<InvalidDataException>(() => HubCache.Resolve(dir.Path, Model)).Message);
    }

    [Fact]
    public void Resolve_SnapshotOfPlainFiles_IsAccepted()
    {
        using var dir = new TempDir();
        // Where symlinks are not allowed, huggingface_hub copies the blobs into the snapshot.
        dir.Write(Path.Combine("models--org--m", "snapshots", s_main, "config.json"), "{}");
        dir.Write(Path.Combine("models--org--m", "refs", "main"), s_main);
        Assert.Equal(s_main, HubCache.Resolve(dir.Path, Model).Commit);
    }

    [Fact]
    public void Resolve_NoModelFolder_ThrowsDirectoryNotFound()
    {
        using var dir = new TempDir();
        FakeHubCache.AddSnapshot(dir.Path, "org/other", s_main, Files());
        Assert.Throws<DirectoryNotFoundException>(() => HubCache.Resolve(dir.Path, Model));
    }

    [Theory]
    [InlineData("../main")]
    [InlineData("a b")]
    [InlineData("")]
    [InlineData("/main")]
    public void Resolve_InvalidRevision_ThrowsArgument(string revision)
    {
        using var dir = new TempDir();
        FakeHubCache.AddSnapshot(dir.Path, "org/m", s_main, Files());
        Assert.Throws<ArgumentException>(() => HubCache.Resolve(dir.Path, Model, revision));
    }

    [Fact]
    public void ResolveModel_CacheOrPlainFolder_PicksWhatModelDirHolds()
    {
        using var dir = new TempDir();
        FakeHubCache.AddSnapshot(dir.Combine("models"), "org/m", s_main, Files());
        Directory.CreateDirectory(dir.Combine("models", "org_plain"));
        var config = new ZipLlmConfig(dir.Combine("config.json"), "models", "store", "list.txt", "base_ft.json", 1);
        Assert.True(config.ModelDirIsHubCache);
        ModelSource cached = config.ResolveModel(Model);
        Assert.True(cached.FromCache);
        Assert.Equal(s_main, cached.Commit);
        ModelSource plain = config.ResolveModel(ModelId.Parse("org/plain"));
        Assert.False(plain.FromCache);
        Assert.Null(plain.Commit);
        Assert.Equal(dir.Combine("models", "org_plain"), plain.Folder);

        DownloadRecord.Write(config.ModelDir, ModelId.Parse("org/plain"), s_main.ToUpperInvariant());
        Assert.Equal(s_main, config.ResolveModel(ModelId.Parse("org/plain")).Commit);
        Assert.True(config.HasModel(Model));
        Assert.True(config.HasModel(ModelId.Parse("org/plain")));
        Assert.False(config.HasModel(ModelId.Parse("org/none")));
    }
}
