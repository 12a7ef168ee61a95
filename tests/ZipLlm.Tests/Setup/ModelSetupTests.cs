using System.Text;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Hub;
using ZipLlm.Setup;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Setup;

public class ModelSetupTests
{
    private static ZipLlmConfig WriteConfig(TempDir dir) =>
        ZipLlmConfig.Load(dir.Write("config.json", """{"model_dir": "models", "storage_dir": "store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json", "threads": 2}"""));

    private static ModelSetupOptions Options(Uri endpoint, string? token = null, bool synthetic = false) => new()
    {
        Synthetic = synthetic,
        Size = SyntheticSize.Tiny,
        Seed = 3,
        Hub = HubTestOptions.Fast(endpoint, token),
        ProbeTimeout = TimeSpan.FromSeconds(2),
    };

    private static FakeHub HubWithFamily()
    {
        var hub = new FakeHub();
        byte[] card(string b) => Encoding.UTF8.GetBytes($"---\nbase_model: {b}\n---\n");
        hub.Add("org/base", ("model.safetensors", [1, 2, 3, 4]), ("README.md", Encoding.UTF8.GetBytes("# base\n")));
        hub.Add("my_org/ft", ("model.safetensors", [1, 2, 3, 5]), ("README.md", card("org/base")));
        hub.Add("org/ft-odd", ("model.safetensors", [9]), ("README.md", card("someone/else")));
        return hub;
    }

    [Fact]
    public async Task Run_Synthetic_WritesFamilyStandInAndBaseFtAndLeavesTheListAlone()
    {
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        const string hubList = "# my real models\norg/base\norg/ft\n";
        File.WriteAllText(config.ModelsToProcess, hubList);
        var result = await ModelSetup.RunAsync(config, Options(HubTestOptions.ClosedPortEndpoint(), synthetic: true), new ListLogger());

        Assert.Equal(ModelSetupMode.Synthetic, result.Mode);
        Assert.Equal(hubList, File.ReadAllText(config.ModelsToProcess));
        Assert.Equal(StandInModelList.PathFor(config), result.ModelListPath);
        Assert.StartsWith(config.ModelDir + Path.DirectorySeparatorChar, result.ModelListPath);
        Assert.Equal(["base_ft.json", "config.json", "test_models.txt"], Directory.EnumerateFiles(dir.Path).Select(Path.GetFileName).Order());
        ModelListChoice choice = StandInModelList.Resolve(config);
        Assert.Equal(result.ModelListPath, choice.Path);
        Assert.Contains("--synthetic", choice.StandInReason);
        var list = ModelList.Load(choice.Path);
        Assert.Equal(SyntheticFamily.IdOf(SyntheticModelKind.Base), list.Base);
        var map = BaseFtMap.Load(config.BaseFtPath);
        Assert.Equal(ModelRoleKind.Finetune, map.RoleOf(SyntheticFamily.IdOf(SyntheticModelKind.LoraFinetune)).Kind);
        Assert.Equal(ModelRoleKind.Standalone, map.RoleOf(SyntheticFamily.IdOf(SyntheticModelKind.Standalone)).Kind);
        Assert.All(result.Models, m => Assert.True(Directory.Exists(config.ModelFolder(m.ModelId))));

        var again = await ModelSetup.RunAsync(config, Options(HubTestOptions.ClosedPortEndpoint(), synthetic: true), new ListLogger());
        Assert.Equal(hubList, File.ReadAllText(config.ModelsToProcess));
        Assert.All(again.Models, m => Assert.StartsWith("already complete", m.Action));
    }

    [Fact]
    public async Task Run_NoTokenAndHubUnreachable_FallsBackToSyntheticAndSaysWhy()
    {
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\n");
        var result = await ModelSetup.RunAsync(config, Options(HubTestOptions.ClosedPortEndpoint()), new ListLogger());
        Assert.Equal(ModelSetupMode.Synthetic, result.Mode);
        Assert.Contains("cannot be reached", result.Reason);
        Assert.Contains(HubClientOptions.TokenVariable, result.Reason);
        Assert.True(File.Exists(config.BaseFtPath));
        Assert.Equal("org/base\n", File.ReadAllText(config.ModelsToProcess));
        Assert.True(StandInModelList.Resolve(config).IsStandIn);
    }

    [Fact]
    public async Task Run_TokenSetAndHubUnreachable_ThrowsNetworkErrorAndMakesNoModels()
    {
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\n");
        var ex = await Assert.ThrowsAsync<HubException>(() => ModelSetup.RunAsync(config, Options(HubTestOptions.ClosedPortEndpoint(), token: "a-token"), new ListLogger()));
        Assert.Equal(HubErrorKind.Network, ex.Kind);
        AssertNothingMade(config);
    }

    [Fact]
    public async Task Run_HubReachable_DownloadsListedModelsAndWritesBaseFt()
    {
        await using var hub = HubWithFamily();
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "# family\norg/base\nmy_org/ft\norg/ft-odd\n");
        var logger = new ListLogger();
        var result = await ModelSetup.RunAsync(config, Options(hub.Endpoint), logger);

        Assert.Equal(ModelSetupMode.Hub, result.Mode);
        Assert.Equal(config.ModelsToProcess, result.ModelListPath);
        Assert.Equal(["org/base", "my_org/ft", "org/ft-odd"], result.Models.Select(m => m.ModelId).Select(m => m.ToString()));
        Assert.Equal(new byte[] { 1, 2, 3, 5 }, File.ReadAllBytes(Path.Combine(config.ModelDir, "my_org_ft", "model.safetensors")));
        var map = BaseFtMap.Load(config.BaseFtPath);
        Assert.Equal(["my_org/ft", "org/ft-odd"], map.FinetunesOf(ModelId.Parse("org/base")).Select(m => m.ToString()));
        string warning = Assert.Single(logger.Warnings);
        Assert.Contains("org/ft-odd", warning);
        Assert.Contains("someone/else", warning);
    }

    [Fact]
    public async Task Run_HubDownloadAfterASyntheticRun_DeletesTheStandIn()
    {
        await using var hub = HubWithFamily();
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\nmy_org/ft\n");
        await ModelSetup.RunAsync(config, Options(hub.Endpoint, synthetic: true), new ListLogger());
        Assert.True(StandInModelList.Resolve(config).IsStandIn);

        var result = await ModelSetup.RunAsync(config, Options(hub.Endpoint), new ListLogger());
        Assert.Equal(ModelSetupMode.Hub, result.Mode);
        Assert.False(File.Exists(StandInModelList.PathFor(config)));
        Assert.Equal(new ModelListChoice(config.ModelsToProcess, null), StandInModelList.Resolve(config));
        Assert.Equal(["my_org/ft"], BaseFtMap.Load(config.BaseFtPath).FinetunesOf(ModelId.Parse("org/base")).Select(m => m.ToString()));
    }

    [Fact]
    public async Task Run_ListWrittenByAnOlderSyntheticSetup_GeneratesSyntheticWithoutAskingTheHub()
    {
        await using var hub = HubWithFamily();
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        string legacy = SyntheticFamily.ListMarker + "\nsynthetic/llama-base\n";
        File.WriteAllText(config.ModelsToProcess, legacy);
        var result = await ModelSetup.RunAsync(config, Options(hub.Endpoint), new ListLogger());
        Assert.Equal(ModelSetupMode.Synthetic, result.Mode);
        Assert.Equal(legacy, File.ReadAllText(config.ModelsToProcess));
        Assert.Equal(0, hub.Count(_ => true));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("secret-token")]
    public async Task Run_NetworkFailureDuringDownload_ThrowsAndMakesNoSyntheticModels(string? token)
    {
        await using var hub = HubWithFamily();
        hub.AddFault(FakeHub.ResolvePath("my_org/ft", "model.safetensors"), Enumerable.Range(0, 5).Select(_ => FakeResponse.Text(503, "down")).ToArray());
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\nmy_org/ft\n");
        var ex = await Assert.ThrowsAsync<HubException>(() => ModelSetup.RunAsync(config, Options(hub.Endpoint, token), new ListLogger()));
        Assert.Equal(HubErrorKind.Network, ex.Kind);
        Assert.Contains("503", ex.Message);
        AssertNothingMade(config);
    }

    [Fact]
    public async Task Run_GatedModelWithoutToken_GeneratesTheSyntheticFamilyAndSaysWhy()
    {
        await using var hub = HubWithFamily();
        hub.Gated.Add("my_org/ft");
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\nmy_org/ft\n");
        var result = await ModelSetup.RunAsync(config, Options(hub.Endpoint), new ListLogger());
        Assert.Equal(ModelSetupMode.Synthetic, result.Mode);
        Assert.Contains(HubClientOptions.TokenVariable, result.Reason);
        // The configured list is left as it is; the family's own list stands in for it.
        Assert.Equal("org/base\nmy_org/ft\n", File.ReadAllText(config.ModelsToProcess));
        Assert.True(File.Exists(StandInModelList.PathFor(config)));
    }

    [Fact]
    public async Task Run_GatedModelWithToken_ThrowsUnauthorized()
    {
        await using var hub = HubWithFamily();
        hub.Gated.Add("my_org/ft");
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\nmy_org/ft\n");
        var ex = await Assert.ThrowsAsync<HubException>(() => ModelSetup.RunAsync(config, Options(hub.Endpoint, token: "wrong-token"), new ListLogger()));
        Assert.Equal(HubErrorKind.Unauthorized, ex.Kind);
        AssertNothingMade(config);
    }

    [Fact]
    public async Task Run_HubModeWithoutList_ThrowsFileNotFound()
    {
        await using var hub = HubWithFamily();
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        await Assert.ThrowsAsync<FileNotFoundException>(() => ModelSetup.RunAsync(config, Options(hub.Endpoint), new ListLogger()));
    }

    [Fact]
    public async Task Run_ListPinsARevision_DownloadsItRecordsItsCommitAndOthersTakeTheDefault()
    {
        await using var hub = HubWithFamily();
        hub.AddRevision("my_org/ft", "v2", ("model.safetensors", [1, 2, 3, 6]));
        hub.AddRevision("org/base", "v1", ("model.safetensors", [1, 2, 3, 7]));
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\nmy_org/ft@v2\n");
        var result = await ModelSetup.RunAsync(config, Options(hub.Endpoint) with { Revision = "v1" }, new ListLogger());

        Assert.Equal([FakeHub.Commit("org/base", "v1"), FakeHub.Commit("my_org/ft", "v2")], result.Models.Select(m => m.Commit));
        Assert.Equal(new byte[] { 1, 2, 3, 7 }, File.ReadAllBytes(Path.Combine(config.ModelFolder(ModelId.Parse("org/base")), "model.safetensors")));
        Assert.Equal(new byte[] { 1, 2, 3, 6 }, File.ReadAllBytes(Path.Combine(config.ModelFolder(ModelId.Parse("my_org/ft")), "model.safetensors")));
        Assert.Equal(FakeHub.Commit("my_org/ft", "v2"), config.ResolveModel(ModelId.Parse("my_org/ft")).Commit);
    }

    [Fact]
    public async Task Run_ListPinsAPullRequest_DownloadsThatRevisionAskingForItEscaped()
    {
        await using var hub = HubWithFamily();
        hub.AddRevision("my_org/ft", "refs/pr/1", ("model.safetensors", [1, 2, 3, 8]));
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\nmy_org/ft@refs/pr/1\n");
        var result = await ModelSetup.RunAsync(config, Options(hub.Endpoint), new ListLogger());

        Assert.Equal(FakeHub.Commit("my_org/ft", "refs/pr/1"), result.Models[1].Commit);
        Assert.Equal(new byte[] { 1, 2, 3, 8 }, File.ReadAllBytes(Path.Combine(config.ModelFolder(ModelId.Parse("my_org/ft")), "model.safetensors")));
        // The revision is one segment of the address, its slashes escaped, as huggingface_hub sends it.
        Assert.Contains(hub.Requests, r => r.EscapedPath == "/api/models/my_org/ft/revision/refs%2Fpr%2F1");
    }

    [Fact]
    public async Task Run_DownloadFails_LeavesNoRecordedCommitForTheFolder()
    {
        await using var hub = HubWithFamily();
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\n");
        await ModelSetup.RunAsync(config, Options(hub.Endpoint), new ListLogger());
        Assert.NotNull(DownloadRecord.Read(config.ModelDir, ModelId.Parse("org/base")));

        hub.AddRevision("org/base", "v1", ("model.safetensors", [9, 9, 9, 9, 9]));
        hub.AddFault(FakeHub.ResolvePath("org/base", "model.safetensors", "v1"), Enumerable.Range(0, 5).Select(_ => FakeResponse.Text(503, "down")).ToArray());
        await Assert.ThrowsAsync<HubException>(() => ModelSetup.RunAsync(config, Options(hub.Endpoint, "secret-token") with { Revision = "v1" }, new ListLogger()));
        // The folder is neither main's nor v1's as a whole now: compress records no commit for it.
        Assert.Null(DownloadRecord.Read(config.ModelDir, ModelId.Parse("org/base")));
    }

    [Fact]
    public async Task Run_ModelDirIsACacheHoldingTheModel_UsesTheSnapshotWithoutDownloading()
    {
        await using var hub = HubWithFamily();
        using var dir = new TempDir();
        var config = WriteConfig(dir);
        File.WriteAllText(config.ModelsToProcess, "org/base\nmy_org/ft\n");
        string commit = FakeHubCache.CommitOf("cached");
        FakeHubCache.AddSnapshot(config.ModelDir, "org/base", commit, new Dictionary<string, byte[]> { ["model.safetensors"] = [5] });
        var result = await ModelSetup.RunAsync(config, Options(hub.Endpoint), new ListLogger());

        Assert.Equal(commit, result.Models[0].Commit);
        Assert.Contains("in the Hugging Face cache", result.Models[0].Action);
        Assert.DoesNotContain(hub.Requests, r => r.Path.Contains("org/base"));
        Assert.False(Directory.Exists(config.ModelFolder(ModelId.Parse("org/base"))));
        Assert.True(File.Exists(Path.Combine(config.ModelFolder(ModelId.Parse("my_org/ft")), "model.safetensors")));
    }

    /// <summary>No synthetic model, stand-in list or base_ft.json: a failed setup leaves nothing a compress would pick up.</summary>
    private static void AssertNothingMade(ZipLlmConfig config)
    {
        Assert.False(File.Exists(config.BaseFtPath));
        Assert.False(File.Exists(StandInModelList.PathFor(config)));
        Assert.False(Directory.Exists(config.ModelFolder(SyntheticFamily.IdOf(SyntheticModelKind.Base))));
    }
}
