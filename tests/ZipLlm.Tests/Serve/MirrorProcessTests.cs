using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary><c>zipllm serve --upstream</c> as a real process: killed mid-download and restarted, and its options' validation.</summary>
[Collection("Serve processes")]
public sealed class MirrorProcessTests
{
    [NeedsFact("curl")]
    public async Task Mirror_KilledMidDownloadThenRestarted_NothingIncompleteListedAndFetchResumed()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        await using var hub = new FakeHub();
        foreach (SyntheticModel each in family.Models)
        {
            hub.Add(each.Id.ToString(), [.. MirrorHarness.FilesOf(each.Folder)]);
        }
        SyntheticModel model = family.Models[0];
        string id = model.Id.ToString();
        (string shard, byte[] content) = MirrorHarness.FilesOf(model.Folder).MaxBy(f => f.Content.Length);
        int half = content.Length / 2;
        // Half the shard arrives, then the connection is cut, and upstream stalls: the mirror is killed there.
        hub.AddFault(FakeHub.ResolvePath(id, shard), new FakeResponse(200, content, SendBytes: half));
        hub.ResolveDelay = TimeSpan.FromSeconds(15);
        string config = MirrorConfig(dir);
        string part = Path.Combine(dir.Combine("mirror-models", ".zipllm-mirror", "staging"), id, FakeHub.Commit(id), shard + ".part");

        using (ServeProcess first = ServeProcess.Start(config, "--upstream", hub.Endpoint.ToString()))
        {
            Task<CurlResult> download = Curl.RunAsync(first.Url($"/{id}/resolve/main/{shard}"));
            Assert.True(await EventuallyAsync(() => File.Exists(part) && new FileInfo(part).Length == half), "the first half never arrived");
            first.Cli.Process.Kill();
            CurlResult cut = await download;
            Assert.True(cut.ExitCode != 0 && cut.Body.Length < content.Length, $"curl {cut.ExitCode}, {cut.Body.Length} bytes");
        }
        using (ZipLlmStore store = ZipLlmStore.Open(dir.Combine("mirror-store")))
        {
            Assert.Empty(store.ListModels());
        }

        hub.ResolveDelay = TimeSpan.Zero;
        using ServeProcess second = ServeProcess.Start(config, "--upstream", hub.Endpoint.ToString());
        CurlResult whole = await Curl.RunAsync(second.Url($"/{id}/resolve/main/{shard}"));
        Assert.Equal(200, whole.Status);
        Assert.Equal(content, whole.Body);
        Assert.Contains(hub.Requests, r => r.Path == FakeHub.ResolvePath(id, shard) && r.Header("Range") == $"bytes={half}-");
        Assert.True(await EventuallyAsync(() => Directory.Exists(dir.Combine("mirror-store", "manifests")) && OpenAndList(dir.Combine("mirror-store")).Contains(id)),
            "the resumed fetch was never stored");
        using (ZipLlmStore store = ZipLlmStore.Open(dir.Combine("mirror-store")))
        {
            Assert.True((await store.VerifyAsync(id)).Intact);
        }
    }

    [NeedsFact("node", Needs.JsClient)]
    public async Task Mirror_JsClientThroughAMirrorOfAServeProcess_ByteExactStoredAndSecondSnapshotAsksUpstreamNothing()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        Assert.Equal(0, (await CliProcess.RunAsync(["compress", dir.Combine("config.json"), "-q"], timeout: TimeSpan.FromMinutes(3))).ExitCode);
        using ServeProcess upstream = ServeProcess.Start(dir.Combine("config.json"));
        string config = MirrorConfig(dir);
        using ServeProcess mirror = ServeProcess.Start(config, "--upstream", upstream.Url(""));
        string[] ids = [.. family.Models.Select(m => m.Id.ToString())];

        await SnapshotAsync(mirror, dir.Combine("hf-cache-1"), family);
        Assert.True(await EventuallyAsync(() => OpenAndList(dir.Combine("mirror-store")).Count == ids.Length), "the mirror never stored the family");
        int asked = UpstreamRequests(upstream);
        Assert.True(asked > 0, upstream.Cli.StandardError);

        await SnapshotAsync(mirror, dir.Combine("hf-cache-2"), family);
        Assert.Equal(asked, UpstreamRequests(upstream));
        using ZipLlmStore store = ZipLlmStore.Open(dir.Combine("mirror-store"));
        Assert.True((await store.VerifyAsync()).Intact);
    }

    [Fact]
    public async Task Serve_Help_NamesEveryMirrorOption()
    {
        CliResult help = await CliProcess.RunAsync(["serve", "--help"]);
        Assert.Equal(0, help.ExitCode);
        foreach (string option in (string[])["--upstream", "--mirror-allow", "--mirror-deny", "--offline", "--forward-tokens", "--mirror-max-gb", "--refresh"])
        {
            Assert.Contains(option, help.StandardOutput);
        }
    }

    [Theory]
    [InlineData("--upstream", "ftp://example.org", "--upstream")]
    [InlineData("--mirror-max-gb", "0", "--mirror-max-gb")]
    [InlineData("--refresh", "99999999", "--refresh")]
    [InlineData("--mirror-allow", "a/b/c", "--mirror-allow")]
    [InlineData("--offline", null, "--upstream")]
    [InlineData("--forward-tokens", null, "--tokens")]
    public async Task Mirror_BadOption_UsageErrorNamingIt(string option, string? value, string named)
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        File.WriteAllText(dir.Combine("tokens.txt"), "tok_0123456789 *\n");
        List<string> arguments = ["serve", dir.Combine("config.json"), "--port", "0", option, .. value is null ? Array.Empty<string>() : [value]];
        if (option != "--upstream" && option != "--offline")
        {
            arguments.AddRange(["--upstream", "http://127.0.0.1:9"]);
        }
        if (option == "--forward-tokens")
        {
            arguments.AddRange(["--tokens", dir.Combine("tokens.txt")]);
        }
        CliResult result = await CliProcess.RunAsync(arguments);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(named, result.StandardError);
        Assert.DoesNotContain("Listening", result.StandardError);
    }

    /// <summary>A config of an empty store beside the family's, for the mirror.</summary>
    private static string MirrorConfig(TempDir dir)
    {
        Directory.CreateDirectory(dir.Combine("mirror-models"));
        return dir.Write("mirror.json",
            """{"model_dir": "mirror-models", "storage_dir": "mirror-store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json", "threads": 2}""");
    }

    /// <summary>snapshotDownload (and the other calls of hub-client.mjs) of every model through the mirror: byte for byte.</summary>
    private static async Task SnapshotAsync(ServeProcess mirror, string cache, SyntheticFamilyResult family)
    {
        (int exit, string output, string errors) = await HubClientJsTests.NodeAsync(
            [Path.Combine(Needs.JsFolder, "hub-client.mjs"), mirror.Url(""), cache, .. family.Models.Select(m => m.Id.ToString())]);
        Assert.True(exit == 0, $"node: {errors}\nmirror: {mirror.Cli.StandardError}");
        using var report = System.Text.Json.JsonDocument.Parse(output);
        foreach (SyntheticModel model in family.Models)
        {
            string snapshot = report.RootElement.GetProperty(model.Id.ToString()).GetProperty("snapshot").GetString()!;
            List<(string Name, byte[] Content)> expected = [.. MirrorHarness.FilesOf(model.Folder).OrderBy(f => f.Name, StringComparer.Ordinal)];
            List<(string Name, byte[] Content)> got = [.. MirrorHarness.FilesOf(snapshot).OrderBy(f => f.Name, StringComparer.Ordinal)];
            Assert.Equal(expected.Select(f => f.Name), got.Select(f => f.Name));
            Assert.All(expected.Zip(got), pair => Assert.True(pair.First.Content.AsSpan().SequenceEqual(pair.Second.Content), $"{model.Id}/{pair.First.Name} differs"));
        }
    }

    /// <summary>The requests a <c>zipllm serve</c> process has logged (one line each: method, path, status, bytes, ms).</summary>
    private static int UpstreamRequests(ServeProcess server) =>
        System.Text.RegularExpressions.Regex.Matches(server.Cli.StandardError, @"\b(GET|HEAD|POST) /\S* \d{3} ").Count;

    private static IReadOnlyList<string> OpenAndList(string storeFolder)
    {
        using ZipLlmStore store = ZipLlmStore.Open(storeFolder);
        return [.. store.ListModels().Select(m => m.Id)];
    }

    /// <summary>Looks until <paramref name="condition"/> holds, or gives up after a generous deadline.</summary>
    private static async Task<bool> EventuallyAsync(Func<bool> condition)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(1))
        {
            if (condition())
            {
                return true;
            }
            await Task.Delay(50);
        }
        return condition();
    }
}
