using System.Diagnostics;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>The compress and restore verbs run as real processes: killed at any moment, or two at once.</summary>
[Trait("Category", "Slow")]
public class CompressProcessTests
{
    [Fact]
    public async Task Compress_KilledAtManyMoments_EveryListedModelRestoresAndRerunCompletes()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);

        // Kill once the store holds this many files (objects and manifests): moments spread over the whole run,
        // whatever the speed of the machine.
        int[] killAfterFiles = [1, 4, 12, 30, 60, 100];
        int kills = 0;
        var listedCounts = new List<int>();
        foreach (int threshold in killAfterFiles)
        {
            string store = $"store-{threshold}";
            string config = ConfigWithStore(dir, store);
            using (Process process = CliProcess.Start(["compress", config]))
            {
                var deadline = Stopwatch.StartNew();
                while (!process.HasExited && CountFiles(dir.Combine(store)) < threshold && deadline.Elapsed < TimeSpan.FromMinutes(1))
                {
                    Thread.Sleep(1);
                }
                if (!process.HasExited)
                {
                    process.Kill(); // SIGKILL: no cleanup code runs.
                    kills++;
                }
                process.WaitForExit();
            }
            listedCounts.Add(AssertEveryListedModelRestores(dir, store, family));

            var (exitCode, _, stderr) = await CliProcess.RunAsync(["compress", config]);
            Assert.True(exitCode == 0, stderr);
            Assert.Equal(family.Models.Count, AssertEveryListedModelRestores(dir, store, family));
        }
        // Most kills must land mid-run, or the test proves nothing.
        Assert.True(kills >= 4, $"only {kills} runs were killed before they finished; models listed after each: {string.Join(", ", listedCounts)}");
    }

    internal static int CountFiles(string store)
    {
        int count = 0;
        foreach (string sub in new[] { "objects", "manifests" })
        {
            string path = Path.Combine(store, sub);
            try
            {
                count += Directory.Exists(path) ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Count() : 0;
            }
            catch (DirectoryNotFoundException)
            {
                // A folder appeared or vanished mid-enumeration: count it next time.
            }
        }
        return count;
    }

    private static string ConfigWithStore(TempDir dir, string store)
    {
        string path = dir.Combine($"config-{store}.json");
        File.WriteAllText(path, File.ReadAllText(dir.Combine("config.json")).Replace("\"store\"", $"\"{store}\""));
        return path;
    }

    [Fact]
    public async Task Compress_TwoProcessesAtOnce_LeaveAConsistentStore()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");

        using Process first = CliProcess.Start(["compress", config]);
        using Process second = CliProcess.Start(["compress", config]);
        Task<string> firstErr = first.StandardError.ReadToEndAsync(), secondErr = second.StandardError.ReadToEndAsync();
        Assert.True(first.WaitForExit(TimeSpan.FromMinutes(3)) && second.WaitForExit(TimeSpan.FromMinutes(3)));
        Assert.True(first.ExitCode == 0, await firstErr);
        Assert.True(second.ExitCode == 0, await secondErr);

        // The catalog as the newest root names it, before any reader checks it against the manifests: every model of
        // either writer is there without a repair.
        IReadOnlyList<ZipLlm.Store.Catalog.CatalogEntry> written = CatalogTests.AsWritten(dir.Combine("store"));
        Assert.Equal(family.Models.Count, written.Count);
        CatalogTests.AssertMatchesManifests(ModelStore.Open(dir.Combine("store"), create: false), written);

        Assert.Equal(family.Models.Count, AssertEveryListedModelRestores(dir, "store", family));
        var (verifyExit, _, verifyErr) = await CliProcess.RunAsync(["verify", config]);
        Assert.True(verifyExit == 0, verifyErr);
    }

    [Fact]
    public async Task RestoreListVerifyRemove_AsProcesses_ReportAndExitAsDocumented()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        Assert.Equal(0, (await CliProcess.RunAsync(["compress", config])).ExitCode);

        ModelId ft = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune);
        string output = dir.Combine("out");
        var restore = await CliProcess.RunAsync(["restore", config, ft.ToString(), output]);
        Assert.True(restore.ExitCode == 0, restore.StandardError);
        Assert.Equal(ModelFolders.Snapshot(family.Get(SyntheticModelKind.FullFinetune).Folder), ModelFolders.Snapshot(output));
        Assert.NotEqual(0, (await CliProcess.RunAsync(["restore", config, ft.ToString(), output])).ExitCode); // not empty, no --force
        Assert.Equal(2, (await CliProcess.RunAsync(["restore", config, "no/such-model", dir.Combine("out2")])).ExitCode);

        var list = await CliProcess.RunAsync(["list", config]);
        Assert.Equal(0, list.ExitCode);
        foreach (SyntheticModel model in family.Models)
        {
            Assert.Contains(model.Id.ToString(), list.StandardOutput);
        }
        Assert.Contains("store ratio", list.StandardOutput);

        Assert.Equal(0, (await CliProcess.RunAsync(["remove", config, SyntheticFamily.IdOf(SyntheticModelKind.Standalone).ToString()])).ExitCode);
        Assert.DoesNotContain(SyntheticFamily.IdOf(SyntheticModelKind.Standalone).ToString(), (await CliProcess.RunAsync(["list", config])).StandardOutput);

        // Damage one object: verify names the model and fails; restore refuses to write the file.
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: false);
        Manifest manifest = store.ReadManifest(ft);
        string victim = store.Layout.ObjectPath(manifest.Files.First(f => f.Tensors is { Length: > 0 }).Tensors!.Last().Object);
        byte[] bytes = File.ReadAllBytes(victim);
        bytes[bytes.Length / 3] ^= 0x10;
        File.WriteAllBytes(victim, bytes);
        var verify = await CliProcess.RunAsync(["verify", config, ft.ToString()]);
        Assert.Equal(6, verify.ExitCode);
        Assert.Contains(ft.ToString(), verify.StandardError);
        Assert.Equal(6, (await CliProcess.RunAsync(["restore", config, ft.ToString(), dir.Combine("out3")])).ExitCode);
    }

    /// <summary>Restores every model the store lists and compares it with its source folder; returns how many were listed.</summary>
    internal static int AssertEveryListedModelRestores(TempDir dir, string storeName, SyntheticFamilyResult family)
    {
        if (!File.Exists(dir.Combine(storeName, "FORMAT")))
        {
            return 0;
        }
        return AssertEveryListedModelRestores(ModelStore.Open(dir.Combine(storeName), create: false), dir, family);
    }

    /// <summary>Restores every model <paramref name="store"/> lists and compares it with its folder; how many there were.</summary>
    internal static int AssertEveryListedModelRestores(ModelStore store, TempDir dir, SyntheticFamilyResult family)
    {
        using var pool = new WorkerPool(2);
        var restorer = new ModelRestorer(store, pool);
        IReadOnlyList<Manifest> manifests = store.ReadAllManifests();
        foreach (Manifest manifest in manifests)
        {
            string output = dir.Combine("check", Guid.NewGuid().ToString("N"));
            restorer.Restore(manifest.Id, output, force: false);
            SyntheticModel model = family.Models.Single(m => m.Id == manifest.Id);
            Assert.Equal(ModelFolders.Snapshot(model.Folder), ModelFolders.Snapshot(output));
            Directory.Delete(output, recursive: true);
        }
        return manifests.Count;
    }
}
