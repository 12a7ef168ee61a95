using ZipLlm.Cli;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>
/// The third round of a hostile user's probes (issue 24), as real processes: disks out of space and inodes, inputs that
/// never end, stores inside stores. Each test is one probe, or a relative of it.
/// </summary>
public class TrustRound3ProcessTests
{
    [Fact]
    public async Task List_NoInodeLeftForTheStoreLock_ExitsIoErrorNamingTheLockAtOnce()
    {
        using var dir = new TempDir();
        using var disk = new TmpfsMount(4 << 20, inodes: 64);
        ModelStore.Open(disk.Combine("store"), create: true);
        File.Delete(disk.Combine("store", "locks", "store.lock"));
        Assert.True(disk.UseEveryInode() > 0);
        File.WriteAllText(dir.Combine("config.json"),
            $$"""{"model_dir": "models", "storage_dir": "{{disk.Combine("store")}}", "models_to_process": "m.txt", "base_ft_path": "b.json"}""");

        // Before, the ENOSPC of creating the lock file was read as another holder: list waited 30 minutes for nobody.
        CliResult result = await CliProcess.RunAsync(["list", dir.Combine("config.json")], timeout: TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == ExitCodes.IoError, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains(disk.Combine("store", "locks", "store.lock"), result.StandardError);
        Assert.Contains("No space left", result.StandardError);
    }

    [Theory]
    [InlineData("config", "/dev/zero")]
    [InlineData("config", "fifo")]
    [InlineData("config", "folder")]
    [InlineData("models_to_process", "/dev/urandom")]
    [InlineData("models_to_process", "fifo")]
    [InlineData("base_ft_path", "/dev/zero")]
    [InlineData("base_ft_path", "fifo")]
    public async Task Compress_AnInputThatNeverEnds_ExitsInvalidInputAtOnceNamingIt(string input, string what)
    {
        using var dir = new TempDir();
        Jobs.CompressJobTests.WriteFamily(dir);
        string target = what switch
        {
            "fifo" => dir.Combine("never.fifo"),
            "folder" => dir.Combine("a-folder"),
            _ => what,
        };
        if (what == "fifo")
        {
            Config.BaseFtMapTests.MakeFifo(target);
        }
        else if (what == "folder")
        {
            Directory.CreateDirectory(target);
        }
        string config = dir.Combine("config.json");
        if (input == "config")
        {
            config = target;
        }
        else
        {
            string field = input == "models_to_process" ? "test_models.txt" : "base_ft.json";
            File.WriteAllText(config, File.ReadAllText(config).Replace($"\"{field}\"", $"\"{target}\"", StringComparison.Ordinal));
        }

        // Before: /dev/zero grew to 4 GB and died (exit 1); a FIFO waited for a writer forever, and SIGTERM did not stop it.
        CliResult result = await CliProcess.RunAsync(["compress", config], timeout: TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == ExitCodes.InvalidInput, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains($"{target}: ", result.StandardError);
        Assert.Contains("not a regular file", result.StandardError);
        Assert.False(Directory.Exists(dir.Combine("store")));
    }

    [Fact]
    public async Task List_S3StoreWithNoRegionNorEndpoint_ExitsInvalidInputNamingTheVariables()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("config.json"),
            """{"model_dir": "models", "storage_dir": "s3://zipllm-nowhere/team", "models_to_process": "m.txt", "base_ft_path": "b.json"}""");
        // Nothing of the AWS environment: no region, no endpoint, no profile.
        var environment = new Dictionary<string, string>
        {
            ["AWS_REGION"] = "", ["AWS_DEFAULT_REGION"] = "", ["AWS_ENDPOINT_URL_S3"] = "", ["AWS_ENDPOINT_URL"] = "", ["AWS_PROFILE"] = "",
            ["HOME"] = dir.Path, ["AWS_CONFIG_FILE"] = dir.Combine("no-config"), ["AWS_SHARED_CREDENTIALS_FILE"] = dir.Combine("no-credentials"),
            ["AWS_EC2_METADATA_DISABLED"] = "true",
        };

        // Before: a stack trace, "No RegionEndpoint or ServiceURL configured", exit 1.
        CliResult result = await CliProcess.RunAsync(["list", dir.Combine("config.json")], timeout: TimeSpan.FromSeconds(60), environment: environment);

        Assert.True(result.ExitCode == ExitCodes.InvalidInput, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains("AWS_REGION", result.StandardError);
        Assert.Contains("AWS_ENDPOINT_URL_S3", result.StandardError);
        Assert.DoesNotContain("   at ", result.StandardError);
    }

    [Fact]
    public async Task List_BadBucketNameInTheConfig_ExitsInvalidInputNotUsage()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("config.json"),
            """{"model_dir": "models", "storage_dir": "s3://Team_Models/x", "models_to_process": "m.txt", "base_ft_path": "b.json"}""");

        CliResult result = await CliProcess.RunAsync(["list", dir.Combine("config.json")], timeout: TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == ExitCodes.InvalidInput, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains("\"storage_dir\"", result.StandardError);
        Assert.Contains("Team_Models", result.StandardError);
    }

    [Theory]
    [InlineData("manifests/x")]
    [InlineData("objects/inner")]
    [InlineData("link-to-objects")]
    public async Task Compress_StoreInsideAnotherStore_ExitsInvalidInputBeforeWritingAnything(string inner)
    {
        using var dir = new TempDir();
        Jobs.CompressJobTests.StoreFamily(dir);
        Directory.CreateSymbolicLink(dir.Combine("store", "link-to-objects"), dir.Combine("store", "objects"));
        string[] before = Directory.EnumerateFileSystemEntries(dir.Combine("store"), "*", SearchOption.AllDirectories).Order().ToArray();
        string config = dir.Write("inner.json",
            $$"""{"model_dir": "models", "storage_dir": "store/{{inner}}", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json"}""");

        // Before, the inner store was made: the outer one's verify then failed on it, and its remove and gc refused.
        CliResult result = await CliProcess.RunAsync(["compress", config], timeout: TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == ExitCodes.InvalidInput, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains($"lies inside the zipllm store {dir.Combine("store")}", result.StandardError);
        Assert.Equal(before, Directory.EnumerateFileSystemEntries(dir.Combine("store"), "*", SearchOption.AllDirectories).Order().ToArray());
        CliResult verify = await CliProcess.RunAsync(["verify", dir.Combine("config.json")], timeout: TimeSpan.FromSeconds(60));
        Assert.True(verify.ExitCode == 0, verify.StandardError);
    }

    [Fact]
    public async Task Compress_StoreInsideAModelFolder_ExitsInvalidInputBeforeWritingAnything()
    {
        using var dir = new TempDir();
        var family = Jobs.CompressJobTests.WriteFamily(dir);
        string modelFolder = Directory.EnumerateDirectories(dir.Combine("models")).First();
        string[] before = Directory.EnumerateFileSystemEntries(dir.Combine("models"), "*", SearchOption.AllDirectories).Order().ToArray();
        string config = dir.Write("inside.json",
            $$"""{"model_dir": "models", "storage_dir": "models/{{Path.GetFileName(modelFolder)}}/store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json"}""");

        // Before: "being used by another process" once compress reached that model, with the objects of the models before it left behind.
        CliResult result = await CliProcess.RunAsync(["compress", config], timeout: TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == ExitCodes.InvalidInput, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains($"lies inside the model folder {modelFolder}", result.StandardError);
        Assert.Equal(before, Directory.EnumerateFileSystemEntries(dir.Combine("models"), "*", SearchOption.AllDirectories).Order().ToArray());
        Assert.NotEmpty(family.Models);
    }

    [Fact]
    public async Task Compress_S3PrefixUnderAnotherStoresPrefix_ExitsInvalidInputBeforeWritingAnything()
    {
        using var dir = new TempDir();
        Jobs.CompressJobTests.WriteFamily(dir);
        string outer = RgwGateway.NewStoreUrl("team");
        using (ZipLlm.Store.Backends.S3Backend backend = RgwGateway.Shared.Backend(outer))
        {
            ModelStore.Open(backend, create: true);
        }
        string config = dir.Write("inner.json",
            $$"""{"model_dir": "models", "storage_dir": "{{outer}}/objects/inner", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json"}""");

        CliResult result = await CliProcess.RunAsync(["compress", config], environment: RgwGateway.Shared.Environment, timeout: TimeSpan.FromSeconds(90));

        Assert.True(result.ExitCode == ExitCodes.InvalidInput, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains($"lies inside the zipllm store {outer}", result.StandardError);
        using Amazon.S3.IAmazonS3 client = RgwGateway.Shared.Client();
        var listed = await client.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request { BucketName = ZipLlm.Store.Backends.S3Location.Parse(outer).Bucket });
        Assert.DoesNotContain(listed.S3Objects ?? [], o => o.Key.Contains("/objects/inner", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Restore_GatewayThatStopsAnswering_ExitsIoErrorNamingTheRequestAndTheTriesWithinItsStatedBound()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("config.json"),
            """{"model_dir": "models", "storage_dir": "s3://zipllm-silent/store", "models_to_process": "m.txt", "base_ft_path": "b.json"}""");
        // A server that takes connections and requests and never answers.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var held = new List<System.Net.Sockets.TcpClient>();
        using var stop = new CancellationTokenSource();
        Task accepting = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                held.Add(await silent.AcceptTcpClientAsync(stop.Token));
            }
        });
        var environment = new Dictionary<string, string>
        {
            ["AWS_ENDPOINT_URL_S3"] = $"http://127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}",
            ["AWS_ACCESS_KEY_ID"] = "AKIAEXAMPLE", ["AWS_SECRET_ACCESS_KEY"] = "secret", ["AWS_REGION"] = "us-east-1",
            ["AWS_EC2_METADATA_DISABLED"] = "true",
        };
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // Before: 361 s, then "The operation was canceled." Now: 3 tries of 30 s each, with pauses of about 0.5 and 1 s.
        CliResult result = await CliProcess.RunAsync(["restore", dir.Combine("config.json"), "o/m", dir.Combine("out")],
            timeout: TimeSpan.FromSeconds(200), environment: environment);

        stop.Cancel();
        Assert.True(result.ExitCode == ExitCodes.IoError, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Matches(@"S3 GET \S*FORMAT: timed out after 30 s, 3 tries", result.StandardError);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(180), $"took {clock.Elapsed}");
        foreach (var client in held)
        {
            client.Dispose();
        }
    }
}
