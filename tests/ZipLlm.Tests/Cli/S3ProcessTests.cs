using System.Diagnostics;
using System.Text.RegularExpressions;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>
/// The verbs as real processes on a store in a bucket of the test run's RADOS Gateway, configured through the
/// AWS environment variables as a user would: killed at any moment, two machines' compress runs at once, and
/// remove and gc beside a running compress.
/// </summary>
[Trait("Category", "S3")]
public partial class S3ProcessTests
{
    private static IReadOnlyDictionary<string, string> Environment => RgwGateway.Shared.Environment;

    [Fact]
    public async Task Compress_KilledAtManyMoments_EveryListedModelRestoresAndRerunCompletes()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        // Kill once the bucket holds this many objects and manifests: moments spread over the whole run.
        int[] killAfterKeys = [1, 12, 40];
        int kills = 0;
        var listedCounts = new List<int>();
        foreach (int threshold in killAfterKeys)
        {
            string url = RgwGateway.NewStoreUrl();
            string config = WriteConfig(dir, $"config-{threshold}.json", url);
            using S3Backend backend = RgwGateway.Shared.Backend(url);
            using (Process process = CliProcess.Start(["compress", config], environment: Environment))
            {
                var deadline = Stopwatch.StartNew();
                while (!process.HasExited && CountKeys(backend) < threshold && deadline.Elapsed < TimeSpan.FromMinutes(1))
                {
                    Thread.Sleep(5);
                }
                if (!process.HasExited)
                {
                    process.Kill(); // SIGKILL: no cleanup code runs, its leases stay behind
                    kills++;
                }
                process.WaitForExit();
            }
            listedCounts.Add(AssertEveryListedModelRestores(backend, dir, family));

            CliResult rerun = await CliProcess.RunAsync(["compress", config], environment: Environment, timeout: TimeSpan.FromMinutes(2));
            Assert.True(rerun.ExitCode == 0, rerun.StandardError);
            Assert.Equal(family.Models.Count, AssertEveryListedModelRestores(backend, dir, family));
            // The killed run's leases (the store's, a model's) were its own process's: gc breaks them at once.
            CliResult gc = await CliProcess.RunAsync(["gc", config, "--grace", "0"], environment: Environment, timeout: TimeSpan.FromSeconds(60));
            Assert.True(gc.ExitCode == 0, gc.StandardError);
        }
        Assert.True(kills >= 2, $"only {kills} runs were killed before they finished; models listed after each: {string.Join(", ", listedCounts)}");
    }

    [Fact]
    public async Task RestoreExample_OnAStoreInABucket_ListsRestoresReadsAndStreamsThroughThePublicApi()
    {
        // The library's public API over S3, as a program uses it: examples/RestoreExample, given the bucket's URL and the
        // AWS variables, against a store the CLI wrote.
        using var dir = new TempDir();
        (SyntheticFamilyResult family, string url, string config) = await CompressFamilyIntoABucket(dir);

        string dll = CliProcess.BuildOutputOf(Path.Combine("examples", "RestoreExample"), "RestoreExample.dll");
        Assert.True(File.Exists(dll), $"{dll} was not built (dotnet test ZipLlm.sln builds it)");
        ModelId model = SyntheticFamily.IdOf(SyntheticModelKind.ChainFinetune);
        CliResult example = await CliProcess.RunDllAsync(dll, [url, model.ToString(), dir.Combine("out")], Environment, TimeSpan.FromMinutes(2));
        Assert.True(example.ExitCode == 0, $"exit {example.ExitCode}: {example.StandardError}");
        Assert.Contains($"{family.Models.Count} models", example.StandardOutput);
        Assert.Contains("(matches the stored hash)", example.StandardOutput);
        Assert.Equal(ModelFolders.Snapshot(family.Get(SyntheticModelKind.ChainFinetune).Folder), ModelFolders.Snapshot(dir.Combine("out")));
    }

    [Fact]
    public async Task Compress_TwoMachinesAtOnce_StoreIsConsistentAndEachModelStoredOnce()
    {
        // Two machines: each its own folder, config, copy of the models and local state; one bucket.
        using var first = new TempDir();
        using var second = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(first);
        CompressJobTests.WriteFamily(second);
        string url = RgwGateway.NewStoreUrl();
        string firstConfig = WriteConfig(first, "config.json", url), secondConfig = WriteConfig(second, "config.json", url);

        using var a = new RunningCli(["compress", firstConfig], Environment);
        using var b = new RunningCli(["compress", secondConfig], Environment);
        CliResult resultA = await a.WaitAsync(TimeSpan.FromMinutes(3)), resultB = await b.WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(resultA.ExitCode == 0, resultA.StandardError);
        Assert.True(resultB.ExitCode == 0, resultB.StandardError);

        foreach (SyntheticModel model in family.Models)
        {
            int stored = StoredLine(model.Id.ToString()).Matches(resultA.StandardError).Count + StoredLine(model.Id.ToString()).Matches(resultB.StandardError).Count;
            Assert.True(stored == 1, $"{model.Id} stored {stored} times:\n{resultA.StandardError}\n{resultB.StandardError}");
        }
        using S3Backend backend = RgwGateway.Shared.Backend(url);
        Assert.Equal(family.Models.Count, AssertEveryListedModelRestores(backend, first, family));
        // Nothing either wrote is left unneeded: every object is named by a manifest.
        ModelStore store = ModelStore.Open(backend, create: false);
        Assert.Equal(0, store.CollectGarbage(dryRun: true).Objects);
        CliResult verify = await CliProcess.RunAsync(["verify", secondConfig], environment: Environment);
        Assert.True(verify.ExitCode == 0, verify.StandardError);
    }

    [Fact]
    public async Task Remove_StoreLeaseHeldByACompressElsewhere_SaysWhomItWaitsForAndCompletesAfterRelease()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        string url = RgwGateway.NewStoreUrl();
        string config = WriteConfig(dir, "config.json", url);
        CliResult compress = await CliProcess.RunAsync(["compress", config], environment: Environment, timeout: TimeSpan.FromMinutes(2));
        Assert.True(compress.ExitCode == 0, compress.StandardError);
        ModelId model = SyntheticFamily.IdOf(SyntheticModelKind.Standalone);

        // A compress on another machine: its lease is renewed, so nothing here can take it for dead.
        using S3Backend elsewhere = RgwGateway.Shared.Backend(url, hostKey: "another-machine/1");
        RunningCli run;
        using (FileLock.BeginScope("compress", onWait: null))
        using (elsewhere.Lock("store", exclusive: false, TimeSpan.FromSeconds(10), CancellationToken.None))
        {
            run = new RunningCli(["remove", config, model.ToString()], Environment);
            Assert.True(run.WaitForError("Waiting for the store lock"), $"remove did not wait:\n{run.StandardError}");
            Assert.Contains($"held by compress on {System.Environment.MachineName} (pid {System.Environment.ProcessId}) since ", run.StandardError);
            Thread.Sleep(500);
            Assert.False(run.Process.HasExited);
            Assert.True(ModelStore.Open(elsewhere, create: false).Contains(model));
        }
        using (run)
        {
            CliResult result = await run.WaitAsync();
            Assert.True(result.ExitCode == 0, result.StandardError);
            Assert.Contains($"Removed {model}", result.StandardError);
        }
        Assert.False(ModelStore.Open(elsewhere, create: false).Contains(model));
    }

    [Fact]
    public async Task RemoveAndGc_BesideARunningCompress_EveryListedModelRestoresAndVerifies()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string url = RgwGateway.NewStoreUrl();
        // The base and the standalone model first; then the finetunes, while remove and gc run.
        ModelId standalone = SyntheticFamily.IdOf(SyntheticModelKind.Standalone);
        File.WriteAllLines(dir.Combine("first.txt"), [family.BaseId.ToString(), standalone.ToString()]);
        string firstConfig = WriteConfig(dir, "first.json", url, "first.txt");
        string config = WriteConfig(dir, "config.json", url);
        CliResult initial = await CliProcess.RunAsync(["compress", firstConfig], environment: Environment, timeout: TimeSpan.FromMinutes(2));
        Assert.True(initial.ExitCode == 0, initial.StandardError);

        using S3Backend backend = RgwGateway.Shared.Backend(url);
        using var compress = new RunningCli(["compress", config], Environment);
        var deadline = Stopwatch.StartNew();
        while (!compress.Process.HasExited && LeaseCount(backend) == 0 && deadline.Elapsed < TimeSpan.FromMinutes(1))
        {
            Thread.Sleep(5);
        }
        using var remove = new RunningCli(["remove", config, standalone.ToString()], Environment);
        using var gc = new RunningCli(["gc", config, "--grace", "0"], Environment);
        CliResult compressed = await compress.WaitAsync(TimeSpan.FromMinutes(3));
        CliResult removed = await remove.WaitAsync(TimeSpan.FromMinutes(3));
        CliResult collected = await gc.WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(compressed.ExitCode == 0, compressed.StandardError);
        Assert.True(removed.ExitCode == 0, removed.StandardError);
        Assert.True(collected.ExitCode == 0, collected.StandardError);

        Assert.Equal(family.Models.Count - 1, AssertEveryListedModelRestores(backend, dir, family));
        Assert.False(ModelStore.Open(backend, create: false).Contains(standalone));
        CliResult verify = await CliProcess.RunAsync(["verify", config], environment: Environment);
        Assert.True(verify.ExitCode == 0, verify.StandardError);
    }

    [Fact]
    public async Task Restore_ObjectMissingFromTheBucket_ExitsVerificationFailedNamingIt()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        File.WriteAllLines(dir.Combine("base.txt"), [family.BaseId.ToString()]);
        string url = RgwGateway.NewStoreUrl();
        string config = WriteConfig(dir, "config.json", url, "base.txt");
        CliResult compress = await CliProcess.RunAsync(["compress", config], environment: Environment, timeout: TimeSpan.FromMinutes(2));
        Assert.True(compress.ExitCode == 0, compress.StandardError);
        using S3Backend backend = RgwGateway.Shared.Backend(url);
        ContentHash victim = ModelStore.Open(backend, create: false).ReadManifest(family.BaseId).Files.First(f => f.Tensors is { Length: > 0 }).Tensors![0].Object;
        backend.DeleteObject(victim);

        CliResult restore = await CliProcess.RunAsync(["restore", config, family.BaseId.ToString(), dir.Combine("out")], environment: Environment);
        Assert.Equal(6, restore.ExitCode);
        Assert.Contains(victim.Hex, restore.StandardError);
        CliResult verify = await CliProcess.RunAsync(["verify", config], environment: Environment);
        Assert.Equal(6, verify.ExitCode);
    }

    [Fact]
    public async Task ReadOnlyCredentials_RestoreListAndVerifyWork_RemoveAndGcAreRefusedAndDeleteNothing()
    {
        // A hub's mirror: one key writes the store, the key users get may only read the bucket.
        using var dir = new TempDir();
        (SyntheticFamilyResult family, string url, string config) = await CompressFamilyIntoABucket(dir);
        RgwGateway.Shared.GrantRead(url);
        IReadOnlyDictionary<string, string> reader = RgwGateway.Shared.ReaderEnvironment;
        ModelId model = SyntheticFamily.IdOf(SyntheticModelKind.ChainFinetune);

        CliResult restore = await CliProcess.RunAsync(["restore", config, model.ToString(), dir.Combine("out")], environment: reader);
        Assert.True(restore.ExitCode == 0, restore.StandardError);
        Assert.Equal(ModelFolders.Snapshot(family.Get(SyntheticModelKind.ChainFinetune).Folder), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.Contains("without a lease", restore.StandardError);
        CliResult list = await CliProcess.RunAsync(["list", config], environment: reader);
        Assert.True(list.ExitCode == 0, list.StandardError);
        Assert.Contains($"{family.Models.Count} models", list.StandardOutput);
        CliResult verify = await CliProcess.RunAsync(["verify", config], environment: reader);
        Assert.True(verify.ExitCode == 0, verify.StandardError);

        int keys;
        using (S3Backend backend = RgwGateway.Shared.Backend(url))
        {
            keys = CountKeys(backend);
            foreach (string[] verb in new[] { new[] { "remove", config, model.ToString() }, ["gc", config, "--grace", "0"] })
            {
                CliResult refused = await CliProcess.RunAsync(verb, environment: reader);
                Assert.Equal(4, refused.ExitCode);
                Assert.Contains("these credentials may not do this", refused.StandardError);
                Assert.DoesNotContain("   at ", refused.StandardError);
            }
            Assert.Equal(keys, CountKeys(backend));
        }
    }

    /// <summary>The tiny synthetic family, stored by a real compress in a bucket of its own; the store's URL and the config.</summary>
    private static async Task<(SyntheticFamilyResult Family, string Url, string Config)> CompressFamilyIntoABucket(TempDir dir)
    {
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string url = RgwGateway.NewStoreUrl();
        string config = WriteConfig(dir, "config.json", url);
        CliResult compress = await CliProcess.RunAsync(["compress", config, "-q"], environment: Environment);
        Assert.True(compress.ExitCode == 0, compress.StandardError);
        return (family, url, config);
    }

    private static string WriteConfig(TempDir dir, string name, string url, string models = "test_models.txt")
    {
        string path = dir.Combine(name);
        File.WriteAllText(path,
            $$"""{"model_dir": "models", "storage_dir": "{{url}}", "models_to_process": "{{models}}", "base_ft_path": "base_ft.json", "threads": 2}""");
        return path;
    }

    private static Regex StoredLine(string modelId) => new($@"Stored {Regex.Escape(modelId)} \(");

    private static int CountKeys(S3Backend backend)
    {
        try
        {
            return backend.ListObjects().Count() + backend.ListManifests().Count();
        }
        catch (IOException)
        {
            return 0; // the bucket is not made yet
        }
    }

    private static int LeaseCount(S3Backend backend)
    {
        using Amazon.S3.IAmazonS3 client = RgwGateway.Shared.Client();
        try
        {
            return client.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request { BucketName = backend.Store.Bucket, Prefix = backend.Store.LocksPrefix + "store/" })
                .GetAwaiter().GetResult().S3Objects?.Count ?? 0;
        }
        catch (Amazon.S3.AmazonS3Exception)
        {
            return 0;
        }
    }

    private static int AssertEveryListedModelRestores(S3Backend backend, TempDir dir, SyntheticFamilyResult family) =>
        backend.ReadFormat() is null ? 0 : CompressProcessTests.AssertEveryListedModelRestores(ModelStore.Open(backend, create: false), dir, family);
}
