using System.CommandLine;
using System.Text;
using ZipLlm.Cli;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

public class ModelsCommandTests
{
    private const string ConfigJson = """{"model_dir": "models", "storage_dir": "store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json"}""";

    private static async Task<(int ExitCode, string Output)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        int exitCode = await Program.CreateRootCommand().Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = new StringWriter() });
        return (exitCode, output.ToString());
    }

    [Fact]
    public async Task ModelsSetup_Synthetic_GeneratesFamilyAndPrintsOneLinePerModel()
    {
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        (int exitCode, string output) = await RunAsync("models", "setup", config, "--synthetic", "--size", "tiny", "--seed", "5", "-v", "Warning");
        Assert.Equal(ExitCodes.Success, exitCode);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(SyntheticFamily.DefaultKinds.Count, lines.Length);
        Assert.StartsWith("synthetic/llama-base: base;", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("synthetic/mixed-f32: standalone", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("synthetic/llama-full-ft-chat: finetune of synthetic/llama-full-ft", StringComparison.Ordinal));
        Assert.True(Directory.Exists(dir.Combine("models", "my_org_llama-base-reupload")));
        Assert.False(File.Exists(dir.Combine("test_models.txt")));
        Assert.Equal(SyntheticFamily.DefaultKinds.Count, ModelList.Load(dir.Combine("models", StandInModelList.FileName)).Models.Count);
        // Every kind but the base, the two standalone models, and the two listed under the full finetune.
        Assert.Equal(SyntheticFamily.DefaultKinds.Count - 5, BaseFtMap.Load(dir.Combine("base_ft.json")).FinetunesOf(ModelId.Parse("synthetic/llama-base")).Count);
        Assert.Contains("seed 5", File.ReadAllText(dir.Combine("models", "synthetic_llama-base", "README.md")));
    }

    [Fact]
    public async Task ModelsSetup_SyntheticRetrained_AddsTheRetrainedModelLastUnderTheBase()
    {
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        (int exitCode, string output) = await RunAsync("models", "setup", config, "--synthetic", "--retrained", "--size", "tiny", "-v", "Warning");
        Assert.Equal(ExitCodes.Success, exitCode);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(SyntheticFamily.DefaultKinds.Count + 1, lines.Length);
        Assert.StartsWith("synthetic/llama-retrained: finetune of synthetic/llama-base", lines[^1]);
        Assert.Equal(ModelId.Parse("synthetic/llama-retrained"), ModelList.Load(dir.Combine("models", StandInModelList.FileName)).Models[^1]);
        Assert.Contains(ModelId.Parse("synthetic/llama-retrained"), BaseFtMap.Load(dir.Combine("base_ft.json")).FinetunesOf(ModelId.Parse("synthetic/llama-base")));
    }

    [Fact]
    public async Task ModelsSetup_ConfigMissingField_ExitsInvalidInput()
    {
        using var dir = new TempDir();
        string config = dir.Write("config.json", """{"model_dir": "models"}""");
        (int exitCode, _) = await RunAsync("models", "setup", config, "--synthetic", "--size", "tiny", "-v", "None");
        Assert.Equal(ExitCodes.InvalidInput, exitCode);
        Assert.False(Directory.Exists(dir.Combine("models")));
    }

    [Fact]
    public async Task ModelsSetup_ConfigMissing_ExitsIoError()
    {
        using var dir = new TempDir();
        (int exitCode, _) = await RunAsync("models", "setup", dir.Combine("none.json"), "--synthetic", "-v", "None");
        Assert.Equal(ExitCodes.IoError, exitCode);
    }

    [Fact]
    public async Task ModelsSetup_UnknownSize_FailsToParse()
    {
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        (int exitCode, _) = await RunAsync("models", "setup", config, "--synthetic", "--size", "huge");
        Assert.NotEqual(ExitCodes.Success, exitCode);
        Assert.False(Directory.Exists(dir.Combine("models")));
    }

    [Fact]
    public async Task ModelsSetup_Endpoint_DownloadsFromHub()
    {
        await using var hub = new FakeHub();
        hub.Add("org/base", ("model.safetensors", [1, 2]), ("pytorch_model.bin", [1, 2]), ("original/params.json", [3]));
        hub.Add("org/ft", ("model.safetensors", [1, 3]), ("README.md", Encoding.UTF8.GetBytes("---\nbase_model: org/base\n---\n")));
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/base\norg/ft\n");
        (int exitCode, string output) = await RunAsync("models", "setup", config, "--endpoint", hub.Endpoint.AbsoluteUri, "-v", "Warning");
        Assert.Equal(ExitCodes.Success, exitCode);
        // The default selection: every file, folders included, but the other weight format beside the safetensors.
        Assert.Equal(["model.safetensors", Path.Combine("original", "params.json")], ModelFolders.Snapshot(dir.Combine("models", "org_base")).Keys);
        Assert.Contains("org/ft: finetune of org/base; downloaded 2 files", output);
        Assert.Equal(["org/ft"], BaseFtMap.Load(dir.Combine("base_ft.json")).FinetunesOf(ModelId.Parse("org/base")).Select(m => m.ToString()));
    }

    [Fact]
    public async Task ModelsSetup_UnknownModelOnHub_ExitsNonZeroWithoutFallback()
    {
        await using var hub = new FakeHub();
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/missing\n");
        (int exitCode, _) = await RunAsync("models", "setup", config, "--endpoint", hub.Endpoint.AbsoluteUri, "-v", "None");
        Assert.Equal(ExitCodes.IoError, exitCode);
        Assert.False(File.Exists(dir.Combine("base_ft.json")));
        Assert.Equal("org/missing\n", File.ReadAllText(dir.Combine("test_models.txt")));
    }

    [Fact]
    public async Task ModelsSetup_AsProcess_ExitsZeroAndLogsToStderr()
    {
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        CliResult result = await CliProcess.RunAsync(["models", "setup", "config.json", "--synthetic", "--size", "tiny"], dir.Path);
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal(SyntheticFamily.DefaultKinds.Count, result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("SYNTHETIC MODELS", result.StandardError);
        Assert.Contains("asked for with --synthetic", result.StandardError);
    }

    [Fact]
    public async Task ModelsSetup_NoTokenAndNoHub_MakesSyntheticModelsUnderABannerAndLeavesTheListAlone()
    {
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        const string list = "meta-llama/Llama-3.2-1B\nunsloth/Llama-3.2-1B\n";
        dir.Write("test_models.txt", list);
        CliResult result = await CliProcess.RunAsync(["models", "setup", "config.json", "--size", "tiny"], dir.Path, environment: Offline());
        Assert.True(result.ExitCode == 0, result.StandardError);
        string banner = result.StandardError[result.StandardError.IndexOf("SYNTHETIC MODELS", StringComparison.Ordinal)..];
        Assert.Contains("HF_TOKEN is not set", banner);
        Assert.Contains("cannot be reached", banner);
        Assert.Contains(StandInModelList.FileName, banner);
        Assert.Equal(list, File.ReadAllText(dir.Combine("test_models.txt")));

        CliResult compress = await CliProcess.RunAsync(["compress", "config.json"], dir.Path);
        Assert.True(compress.ExitCode == 0, compress.StandardError);
        Assert.Contains($"warning: Reading the synthetic family's list {dir.Combine("models", StandInModelList.FileName)} instead of", compress.StandardError);
        Assert.Contains("synthetic/llama-full-ft", compress.StandardError);
        Assert.DoesNotContain("meta-llama", compress.StandardError.Replace(dir.Combine("test_models.txt"), ""));
    }

    [Fact]
    public async Task ModelsSetup_TokenSetAndDownloadRefused_ExitsIoErrorWithoutSyntheticModels()
    {
        await using var hub = new FakeHub();
        hub.Add("org/base", ("model.safetensors", [1, 2]));
        hub.Gated.Add("org/base");
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/base\n");
        var environment = new Dictionary<string, string> { ["HF_TOKEN"] = "not-the-token", ["HF_ENDPOINT"] = hub.Endpoint.AbsoluteUri, ["HF_HUB_OFFLINE"] = "" };
        CliResult result = await CliProcess.RunAsync(["models", "setup", "config.json", "--size", "tiny"], dir.Path, environment: environment);
        Assert.Equal(ExitCodes.IoError, result.ExitCode);
        Assert.Contains("error: ", result.StandardError);
        Assert.Contains("access denied", result.StandardError);
        Assert.DoesNotContain("SYNTHETIC", result.StandardError);
        Assert.False(Directory.Exists(dir.Combine("models", "synthetic_llama-base")));
        Assert.False(File.Exists(dir.Combine("base_ft.json")));
    }

    [Fact]
    public async Task ModelsSetup_RevisionIncludeExcludeAndDownloads_DownloadThatCommitAndCompressRecordsIt()
    {
        await using var hub = new FakeHub();
        byte[] weights = SafetensorsBytes();
        hub.Add("org/base", ("model.safetensors", weights), ("config.json", Encoding.UTF8.GetBytes("{\"v\": 0}")));
        hub.AddRevision("org/base", "v1", ("model.safetensors", weights), ("config.json", Encoding.UTF8.GetBytes("{\"v\": 1}")),
            ("sub/notes.md", [1]), ("sub/skip.txt", [2]), ("pytorch_model.bin", [3]));
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/base\n");
        CliResult setup = await CliProcess.RunAsync(
            ["models", "setup", "config.json", "--revision", "v1", "--include", "*.safetensors", "--include", "*.json", "--include", "sub/", "--exclude", "*.txt",
                "--downloads", "2"], dir.Path, environment: Hub(hub));
        Assert.True(setup.ExitCode == 0, setup.StandardError);
        string commit = FakeHub.Commit("org/base", "v1");
        Assert.Contains($"commit {commit[..12]}", setup.StandardOutput);
        Assert.Equal(["config.json", "model.safetensors", Path.Combine("sub", "notes.md")], ModelFolders.Snapshot(dir.Combine("models", "org_base")).Keys);
        Assert.Equal("{\"v\": 1}", File.ReadAllText(dir.Combine("models", "org_base", "config.json")));
        Assert.Equal(commit + "\n", File.ReadAllText(DownloadRecord.PathFor(dir.Combine("models"), ModelId.Parse("org/base"))));

        CliResult compress = await CliProcess.RunAsync(["compress", "config.json"], dir.Path);
        Assert.True(compress.ExitCode == 0, compress.StandardError);
        CliResult list = await CliProcess.RunAsync(["list", "config.json", "--json"], dir.Path);
        Assert.Contains($"\"revision\": \"{commit}\"", list.StandardOutput);
    }

    [Theory]
    [InlineData("--downloads", "0", "--downloads must be from 1 to 32")]
    [InlineData("--downloads", "33", "--downloads must be from 1 to 32")]
    [InlineData("--revision", "../x", "--revision")]
    [InlineData("--revision", "a b", "--revision")]
    public async Task ModelsSetup_BadDownloadsOrRevision_IsAUsageError(string option, string value, string message)
    {
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        CliResult result = await CliProcess.RunAsync(["models", "setup", "config.json", option, value], dir.Path, environment: Offline());
        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        Assert.Contains(message, result.StandardError);
        Assert.False(Directory.Exists(dir.Combine("models")));
    }

    [Fact]
    public async Task ModelsSetup_TokenFile_IsUsedAndHfTokenBeatsIt()
    {
        await using var hub = new FakeHub();
        hub.Add("org/gated", ("model.safetensors", SafetensorsBytes()));
        hub.Gated.Add("org/gated");
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/gated\n");
        // What 'hf auth login' writes: $HF_HOME/token, or the file $HF_TOKEN_PATH names.
        dir.Write(Path.Combine("hf-home", "token"), hub.Token + "\n");
        dir.Write("other-token", "wrong-token");

        var fromHome = Hub(hub, token: "");
        fromHome.Remove("HF_TOKEN_PATH");
        fromHome["HF_HOME"] = dir.Combine("hf-home");
        CliResult home = await CliProcess.RunAsync(["models", "setup", "config.json"], dir.Path, environment: fromHome);
        Assert.True(home.ExitCode == 0, home.StandardError);
        Assert.Contains("org/gated: base; downloaded 1 files", home.StandardOutput);

        // HF_TOKEN_PATH beats HF_HOME: a wrong token there is an error (a token was given), never synthetic models.
        Directory.Delete(dir.Combine("models"), recursive: true);
        var fromPath = new Dictionary<string, string>(fromHome) { ["HF_TOKEN_PATH"] = dir.Combine("other-token") };
        CliResult path = await CliProcess.RunAsync(["models", "setup", "config.json"], dir.Path, environment: fromPath);
        Assert.Equal(ExitCodes.IoError, path.ExitCode);
        Assert.Contains(dir.Combine("other-token"), path.StandardError);
        Assert.DoesNotContain("SYNTHETIC", path.StandardError);

        // HF_TOKEN beats any file.
        var fromVariable = new Dictionary<string, string>(fromPath) { ["HF_TOKEN"] = hub.Token };
        CliResult variable = await CliProcess.RunAsync(["models", "setup", "config.json"], dir.Path, environment: fromVariable);
        Assert.True(variable.ExitCode == 0, variable.StandardError);
    }

    [Fact]
    public async Task ModelsSetup_TokenFile_HfHomeBeatsXdgCacheHomeWhichBeatsHomeCache()
    {
        await using var hub = new FakeHub();
        hub.Add("org/gated", ("model.safetensors", SafetensorsBytes()));
        hub.Gated.Add("org/gated");
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/gated\n");
        dir.Write(Path.Combine("xdg", "huggingface", "token"), hub.Token + "\n");
        dir.Write(Path.Combine("home", ".cache", "huggingface", "token"), "home-token");
        dir.Write(Path.Combine("hf-home", "token"), "hf-home-token");
        // An empty variable counts as unset, as in huggingface_hub; HOME is where ~ leads.
        var environment = Hub(hub, token: "");
        environment["HF_TOKEN_PATH"] = "";
        environment["HF_HOME"] = "";
        environment["HOME"] = dir.Combine("home");

        // Without XDG_CACHE_HOME: ~/.cache/huggingface/token (a wrong token there is an error naming it).
        environment["XDG_CACHE_HOME"] = "";
        CliResult home = await CliProcess.RunAsync(["models", "setup", "config.json"], dir.Path, environment: environment);
        Assert.Equal(ExitCodes.IoError, home.ExitCode);
        Assert.Contains(dir.Combine("home", ".cache", "huggingface", "token"), home.StandardError);

        // HF_HOME beats XDG_CACHE_HOME.
        environment["XDG_CACHE_HOME"] = dir.Combine("xdg");
        environment["HF_HOME"] = dir.Combine("hf-home");
        CliResult hfHome = await CliProcess.RunAsync(["models", "setup", "config.json"], dir.Path, environment: environment);
        Assert.Equal(ExitCodes.IoError, hfHome.ExitCode);
        Assert.Contains(dir.Combine("hf-home", "token"), hfHome.StandardError);

        // With XDG_CACHE_HOME set: $XDG_CACHE_HOME/huggingface/token, not ~/.cache's.
        environment["HF_HOME"] = "";
        CliResult xdg = await CliProcess.RunAsync(["models", "setup", "config.json"], dir.Path, environment: environment);
        Assert.True(xdg.ExitCode == 0, xdg.StandardError);
        Assert.Contains("org/gated: base; downloaded 1 files", xdg.StandardOutput);
    }

    [Fact]
    public async Task ModelsSetup_OfflineWithModelsOnDisk_UsesThemAndMakesNoRequest()
    {
        await using var hub = new FakeHub();
        hub.Add("org/base", ("model.safetensors", SafetensorsBytes()));
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/base\norg/cached\n");
        ModelFolders.WriteSafetensors(dir.Combine("models", "org_base", "model.safetensors"), ModelFolders.Bf16Layers(new Random(1), 1, 8));
        FakeHubCache.AddSnapshot(dir.Combine("models"), "org/cached", FakeHubCache.CommitOf("c"), new Dictionary<string, byte[]> { ["model.safetensors"] = SafetensorsBytes() });

        var environment = Hub(hub, token: "a-token");
        environment["HF_HUB_OFFLINE"] = "1";
        CliResult result = await CliProcess.RunAsync(["models", "setup", "config.json"], dir.Path, environment: environment);
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("org/base: base; on disk (offline)", result.StandardOutput);
        Assert.Contains($"org/cached: finetune of org/base; in the Hugging Face cache (offline); commit {FakeHubCache.CommitOf("c")[..12]}", result.StandardOutput);
        Assert.Contains("HF_HUB_OFFLINE is set", result.StandardError);
        Assert.Empty(hub.Requests);
        Assert.Equal(["org/cached"], BaseFtMap.Load(dir.Combine("base_ft.json")).FinetunesOf(ModelId.Parse("org/base")).Select(m => m.ToString()));
    }

    [Fact]
    public async Task ModelsSetup_OfflineWithModelsMissing_TokenIsAnErrorNoTokenMakesTheSyntheticFamily()
    {
        await using var hub = new FakeHub();
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/base\n");

        var withToken = Hub(hub, token: "a-token");
        withToken["HF_HUB_OFFLINE"] = "true";
        CliResult error = await CliProcess.RunAsync(["models", "setup", "config.json", "--size", "tiny"], dir.Path, environment: withToken);
        Assert.Equal(ExitCodes.IoError, error.ExitCode);
        Assert.Contains("HF_HUB_OFFLINE is set and org/base", error.StandardError);
        Assert.DoesNotContain("SYNTHETIC", error.StandardError);
        Assert.False(File.Exists(dir.Combine("base_ft.json")));

        var anonymous = Hub(hub, token: "");
        anonymous["HF_HUB_OFFLINE"] = "1";
        CliResult synthetic = await CliProcess.RunAsync(["models", "setup", "config.json", "--size", "tiny"], dir.Path, environment: anonymous);
        Assert.True(synthetic.ExitCode == 0, synthetic.StandardError);
        Assert.Contains("SYNTHETIC MODELS", synthetic.StandardError);
        Assert.Contains("HF_HUB_OFFLINE is set", synthetic.StandardError);
        Assert.Empty(hub.Requests);
    }

    /// <summary>A tiny valid safetensors file.</summary>
    private static byte[] SafetensorsBytes()
    {
        using var dir = new TempDir();
        ModelFolders.WriteSafetensors(dir.Combine("m.safetensors"), ModelFolders.Bf16Layers(new Random(7), 1, 8));
        return File.ReadAllBytes(dir.Combine("m.safetensors"));
    }

    /// <summary>The fake hub as the endpoint, with <paramref name="token"/> ("" for none) and no token file.</summary>
    private static Dictionary<string, string> Hub(FakeHub hub, string token = "") => new()
    {
        ["HF_TOKEN"] = token,
        ["HUGGING_FACE_HUB_TOKEN"] = "",
        ["HF_TOKEN_PATH"] = "/nonexistent/zipllm-test-token",
        ["HF_ENDPOINT"] = hub.Endpoint.AbsoluteUri,
    };

    /// <summary>No token (an empty one counts as none) and a hub address nothing answers on.</summary>
    private static Dictionary<string, string> Offline() => new()
    {
        ["HF_TOKEN"] = "",
        ["HUGGING_FACE_HUB_TOKEN"] = "",
        ["HF_TOKEN_PATH"] = "/nonexistent/zipllm-test-token",
        ["HF_ENDPOINT"] = HubTestOptions.ClosedPortEndpoint().AbsoluteUri,
    };
}
