using System.Diagnostics;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Catalog;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Cli;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>The catalog written by a real compress process killed at many moments (two at once: <see cref="Cli.CompressProcessTests"/>).</summary>
[Trait("Category", "Slow")]
public class CatalogProcessTests
{
    [Fact]
    public async Task Catalog_CompressKilledAtManyMoments_StaysReadableAndTheNextRunRepairsIt()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        string storeDir = dir.Combine("store");
        int kills = 0;
        // Kill once the store holds this many files, a moment further into the run each time, in one store that grows.
        foreach (int threshold in new[] { 3, 10, 25, 45, 70, 100, 140 })
        {
            using (Process process = CliProcess.Start(["compress", config]))
            {
                var deadline = Stopwatch.StartNew();
                while (!process.HasExited && CountFiles(storeDir) < threshold && deadline.Elapsed < TimeSpan.FromMinutes(1))
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
            if (!File.Exists(Path.Combine(storeDir, "FORMAT")))
            {
                continue;
            }
            // Readable as it was left: never damaged, and what it records is what the manifests say (it may lack the
            // model whose manifest was written just before the kill).
            ModelStore store = ModelStore.Open(storeDir, create: false);
            var left = ModelStore.Open(storeDir, create: false);
            left.Catalog.Refresh();
            Assert.False(left.Catalog.IsDamaged);
            IReadOnlyList<CatalogEntry> asLeft = left.Catalog.Snapshot().Entries;
            var manifests = store.ReadAllManifests().ToDictionary(m => m.Id);
            Assert.All(asLeft, e => Assert.True(manifests.ContainsKey(e.Id), $"{e.Id} is in the catalog without its manifest"));
            Assert.InRange(asLeft.Count, manifests.Count - 1, manifests.Count);

            // The next run (a list) repairs it.
            CliResult list = await CliProcess.RunAsync(["list", config]);
            Assert.True(list.ExitCode == 0, list.StandardError);
            CatalogTests.AssertMatchesManifests(store, CatalogTests.AsWritten(storeDir));
        }
        Assert.True(kills >= 4, $"only {kills} runs were killed before they finished");

        CliResult rerun = await CliProcess.RunAsync(["compress", config]);
        Assert.True(rerun.ExitCode == 0, rerun.StandardError);
        IReadOnlyList<CatalogEntry> final = CatalogTests.AsWritten(storeDir);
        Assert.Equal(family.Models.Count, final.Count);
        CatalogTests.AssertMatchesManifests(ModelStore.Open(storeDir, create: false), final);
    }

    private static int CountFiles(string store) => CompressProcessTests.CountFiles(store)
        + (Directory.Exists(Path.Combine(store, "catalog")) ? SafeCount(Path.Combine(store, "catalog")) : 0);

    private static int SafeCount(string folder)
    {
        try
        {
            return Directory.EnumerateFiles(folder).Count();
        }
        catch (DirectoryNotFoundException)
        {
            return 0;
        }
    }
}
