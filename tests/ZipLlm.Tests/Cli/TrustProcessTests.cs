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

/// <summary>
/// The probes of a hostile user, as real processes: no "Stored" or exit 0 may stand in front of a model that does not
/// restore exactly. Each test is one probe of the issue, or a relative of it.
/// </summary>
[Trait("Category", "Slow")]
public class TrustProcessTests
{
    [Fact]
    public async Task Compress_ShardEditedWhileItIsRead_NeverLeavesAStoredModelThatDoesNotRestore()
    {
        using var dir = new TempDir();
        string shard = dir.Combine("models", "o_big", "model.safetensors");
        ModelFolders.WriteSafetensors(shard, ModelFolders.Bf16Layers(new Random(31), 6, 1024)); // about 38 MB
        byte[] pristine = File.ReadAllBytes(shard);
        byte[] edited = (byte[])pristine.Clone();
        Array.Fill(edited, (byte)0x5A, edited.Length / 2, 16);
        File.WriteAllText(dir.Combine("test_models.txt"), "o/big\n");
        File.WriteAllText(dir.Combine("base_ft.json"), "{}");

        int refused = 0;
        bool editedAfterExit = false;
        var outcomes = new List<string>();
        // Compress sketches the model and chooses its base before it reads the files to store them: the later delays reach
        // that read, whose window (open to the last check) is a few hundred milliseconds here, so the delays step by at
        // most 100 ms through the first second. On a loaded machine everything takes longer, so they go on growing until
        // an edit has been refused and one comes after compress has ended (later ones would too).
        foreach (int delay in new[] { 0, 20, 40, 70, 100, 150, 200, 250, 300, 400, 500, 600, 700, 800, 900, 1000, 1300, 1600, 1900, 2300, 2800, 3400, 4000, 5000, 6000 })
        {
            File.WriteAllBytes(shard, pristine);
            string store = $"store-{delay}";
            string config = WriteConfig(dir, store, threads: 1);
            using (Process process = CliProcess.Start(["compress", config]))
            {
                Task<string> stderr = process.StandardError.ReadToEndAsync();
                var clock = Stopwatch.StartNew();
                while (!process.HasExited && !File.Exists(dir.Combine(store, "FORMAT")) && clock.Elapsed < TimeSpan.FromSeconds(30))
                {
                    Thread.Sleep(1);
                }
                Thread.Sleep(delay);
                editedAfterExit = process.HasExited;
                // As `dd conv=notrunc` does: 16 bytes in the middle, in place.
                using (var stream = new FileStream(shard, FileMode.Open, FileAccess.Write))
                {
                    stream.Position = edited.Length / 2;
                    stream.Write(edited, edited.Length / 2, 16);
                }
                Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)));
                string log = await stderr;
                outcomes.Add($"{delay} ms: exit {process.ExitCode}{(editedAfterExit ? " (edited after it ended)" : "")}");
                ModelStore opened = ModelStore.Open(dir.Combine(store), create: false);
                if (process.ExitCode == 0)
                {
                    // Stored: then it restores to one whole version of the file, never a mix.
                    Assert.True(opened.Contains(ModelId.Parse("o/big")), log);
                    var restore = await CliProcess.RunAsync(["restore", config, "o/big", dir.Combine($"out-{delay}")]);
                    Assert.True(restore.ExitCode == 0, restore.StandardError);
                    byte[] back = File.ReadAllBytes(dir.Combine($"out-{delay}", "model.safetensors"));
                    Assert.True(back.AsSpan().SequenceEqual(pristine) || back.AsSpan().SequenceEqual(edited), "restored a mix of two versions");
                }
                else
                {
                    refused++;
                    Assert.Contains("changed while it was being read", log);
                    Assert.False(opened.Contains(ModelId.Parse("o/big")));
                }
                using (var pool = new WorkerPool(2))
                {
                    IngestTests.AssertEveryObjectHoldsTheBytesItIsNamedFor(opened, pool);
                }
            }

            // The same bytes, pristine, later: stored and restored exactly, whatever the first run left.
            File.WriteAllBytes(shard, pristine);
            var again = await CliProcess.RunAsync(["compress", config]);
            Assert.True(again.ExitCode == 0, again.StandardError);
            var check = await CliProcess.RunAsync(["verify", config]);
            Assert.True(check.ExitCode == 0, check.StandardError);
            if (editedAfterExit && refused > 0)
            {
                break;
            }
        }
        Assert.True(refused > 0, $"no run saw the edit; the test proves nothing: {string.Join(", ", outcomes)}");
    }

    [Fact]
    public async Task Compress_BackslashInAFileName_StoresARestorableModelAndTheStoreStaysUsable()
    {
        using var dir = new TempDir();
        ModelFolders.WriteSafetensors(dir.Combine("models", "o_a", "model.safetensors"), ModelFolders.Bf16Layers(new Random(32), 1, 32));
        dir.Write("models/o_a/a\\b.txt", "z\n");
        ModelFolders.WriteSafetensors(dir.Combine("models", "o_b", "model.safetensors"), ModelFolders.Bf16Layers(new Random(33), 1, 32));
        File.WriteAllText(dir.Combine("test_models.txt"), "o/a\no/b\n");
        File.WriteAllText(dir.Combine("base_ft.json"), "{}");
        string config = WriteConfig(dir, "store", threads: 2);

        await AssertSucceeds(["compress", config]);
        Assert.Contains("o/b", (await AssertSucceeds(["list", config])).StandardOutput);
        await AssertSucceeds(["verify", config]);
        await AssertSucceeds(["restore", config, "o/a", dir.Combine("out")]);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "o_a")), ModelFolders.Snapshot(dir.Combine("out")));
        await AssertSucceeds(["remove", config, "o/a"]);
        await AssertSucceeds(["restore", config, "o/b", dir.Combine("out-b")]);
    }

    [Fact]
    public async Task Compress_SymlinkToTheModelsParent_FailsAtOnceNamingTheLoop()
    {
        using var dir = new TempDir();
        ModelFolders.WriteSafetensors(dir.Combine("models", "o_a", "model.safetensors"), ModelFolders.Bf16Layers(new Random(34), 1, 32));
        Directory.CreateSymbolicLink(dir.Combine("models", "o_a", "parent"), dir.Combine("models"));
        File.WriteAllText(dir.Combine("test_models.txt"), "o/a\n");
        File.WriteAllText(dir.Combine("base_ft.json"), "{}");
        string config = WriteConfig(dir, "store", threads: 2);

        var result = await CliProcess.RunAsync(["compress", config], timeout: TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("loop", result.StandardError);
        Assert.Contains("o/a", result.StandardError);
        Assert.Empty(Directory.EnumerateFiles(dir.Combine("store", "objects"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task EditedManifest_RestoreVerifyListRemoveAndGc_ReportDamageAndDeleteNothing()
    {
        using var dir = new TempDir();
        (SyntheticFamilyResult family, string config, ModelStore store) = await CompressFamily(dir);
        ModelId ft = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune);
        ModelId baseId = family.BaseId;
        // One character of one file name, as the probe changed it.
        string path = store.Layout.ManifestPath(ft);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"config.json\"", "\"config.jsoN\""));
        int objects = store.Objects.Enumerate().Count();

        var restore = await CliProcess.RunAsync(["restore", config, ft.ToString(), dir.Combine("out")]);
        Assert.Equal(6, restore.ExitCode);
        Assert.Contains("checksum", restore.StandardError);
        var verify = await CliProcess.RunAsync(["verify", config]);
        Assert.Equal(6, verify.ExitCode);
        Assert.Contains(path, verify.StandardError);
        var list = await CliProcess.RunAsync(["list", config]);
        Assert.Equal(6, list.ExitCode);
        Assert.Contains(baseId.ToString(), list.StandardOutput);
        var remove = await CliProcess.RunAsync(["remove", config, baseId.ToString()]);
        Assert.Equal(6, remove.ExitCode);
        Assert.Contains("Nothing was deleted", remove.StandardError);
        var gc = await CliProcess.RunAsync(["gc", config, "--grace", "0"]);
        Assert.Equal(6, gc.ExitCode);
        Assert.True(store.Contains(baseId));
        Assert.Equal(objects, store.Objects.Enumerate().Count());
        await AssertSucceeds(["restore", config, baseId.ToString(), dir.Combine("out-base")]);
    }

    [Fact]
    public async Task Gc_AfterAKilledRemove_ReclaimsItsObjectsAndDryRunDeletesNothing()
    {
        using var dir = new TempDir();
        (_, string config, ModelStore store) = await CompressFamily(dir);
        ModelId standalone = SyntheticFamily.IdOf(SyntheticModelKind.Standalone);
        // What a remove killed after deleting the manifest leaves: the model's objects, needed by nothing.
        File.Delete(store.Layout.ManifestPath(standalone));
        int objects = store.Objects.Enumerate().Count();

        // Just written: the default grace period keeps them, for a compress the lock might not see.
        var graced = await AssertSucceeds(["gc", config]);
        Assert.Contains("Deleted 0 unused objects", graced.StandardError);
        Assert.Contains("--grace 0", graced.StandardError);
        Assert.Equal(objects, store.Objects.Enumerate().Count());
        var dry = await AssertSucceeds(["gc", config, "--dry-run", "--grace", "0"]);
        Assert.Contains("Would delete", dry.StandardError);
        Assert.Equal(objects, store.Objects.Enumerate().Count());
        var gc = await AssertSucceeds(["gc", config, "--grace", "0"]);
        Assert.Contains("Deleted", gc.StandardError);
        Assert.True(store.Objects.Enumerate().Count() < objects);
        await AssertSucceeds(["verify", config]);
        Assert.Contains("Deleted 0 unused objects", (await AssertSucceeds(["gc", config, "--grace", "0"])).StandardError);
        Assert.Equal(2, (await CliProcess.RunAsync(["gc", config, "--grace", "-1"])).ExitCode);
    }

    /// <summary>The tiny synthetic family, stored by a real compress; its config and the store opened.</summary>
    private static async Task<(SyntheticFamilyResult Family, string Config, ModelStore Store)> CompressFamily(TempDir dir)
    {
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        await AssertSucceeds(["compress", config]);
        return (family, config, ModelStore.Open(dir.Combine("store"), create: false));
    }

    private static async Task<CliResult> AssertSucceeds(string[] arguments)
    {
        CliResult result = await CliProcess.RunAsync(arguments);
        Assert.True(result.ExitCode == 0, $"zipllm {string.Join(' ', arguments)}: exit {result.ExitCode}\n{result.StandardError}");
        return result;
    }

    private static string WriteConfig(TempDir dir, string store, int threads)
    {
        string path = dir.Combine($"config-{store}.json");
        File.WriteAllText(path, $$"""{"model_dir": "models", "storage_dir": "{{store}}", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json", "threads": {{threads}}}""");
        return path;
    }
}
