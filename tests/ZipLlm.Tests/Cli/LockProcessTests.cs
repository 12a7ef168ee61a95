using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Cli;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Store.Backends;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>Verbs that wait for a store lock say whom they wait for, can be stopped, and agree when they race.</summary>
[Trait("Category", "Slow")]
public class LockProcessTests
{
    private static (TempDir Dir, string Config, ModelStore Store) StoredTinyFamily()
    {
        var dir = new TempDir();
        CompressJobTests.StoreFamily(dir);
        return (dir, dir.Combine("config.json"), ModelStore.Open(dir.Combine("store"), create: false));
    }

    [Fact]
    public async Task Remove_StoreLockHeldByCompress_SaysWhomItWaitsForAndCompletesAfterRelease()
    {
        (TempDir dir, string config, ModelStore store) = StoredTinyFamily();
        using (dir)
        {
            ModelId model = SyntheticFamily.IdOf(SyntheticModelKind.Standalone);
            RunningCli run;
            using (FileLock.BeginScope("compress", onWait: null))
            using (store.LockStore(exclusive: false))
            {
                run = new RunningCli(["remove", config, model.ToString()]);
                Assert.True(run.WaitForError("Waiting for the store lock"), $"remove did not wait:\n{run.StandardError}");
                Assert.Contains($"held by compress (pid {Environment.ProcessId}) since ", run.StandardError);
                Assert.Contains("Ctrl+C", run.StandardError);
                Assert.False(run.Process.HasExited);
            }
            using (run)
            {
                CliResult result = await run.WaitAsync();
                Assert.True(result.ExitCode == 0, result.StandardError);
                Assert.Contains($"Removed {model}", result.StandardError);
                Assert.False(store.Contains(model));
                // Its own holder record went with its lock.
                Assert.Empty(FileLock.ReadHolders(store.Layout.LockPath("store")));
            }
        }
    }

    [Fact]
    public async Task Remove_WaitingForTheLock_SigintExitsCancelledAndRemovesNothing()
    {
        (TempDir dir, string config, ModelStore store) = StoredTinyFamily();
        using (dir)
        using (store.LockStore(exclusive: false))
        {
            ModelId model = SyntheticFamily.IdOf(SyntheticModelKind.Standalone);
            using var run = new RunningCli(["remove", config, model.ToString()]);
            Assert.True(run.WaitForError("Waiting for the store lock"), $"remove did not wait:\n{run.StandardError}");
            Signals.Send(run.Process, Signals.SigInt);

            CliResult result = await run.WaitAsync();
            Assert.True(result.ExitCode == 130, $"exit {result.ExitCode}:\n{result.StandardError}");
            Assert.Contains("Cancelled.", result.StandardError);
            Assert.True(store.Contains(model));
        }
    }

    [Fact]
    public async Task Remove_TwoProcessesOfOneModel_OneRemovesItTheOtherExitsUsageErrorInOneLine()
    {
        (TempDir dir, string config, ModelStore store) = StoredTinyFamily();
        using (dir)
        {
            ModelId model = SyntheticFamily.IdOf(SyntheticModelKind.Standalone);
            RunningCli first, second;
            // Both see the model, then both wait for the store lock: the one that gets it second finds it gone.
            using (store.LockStore(exclusive: false))
            {
                first = new RunningCli(["remove", config, model.ToString()]);
                second = new RunningCli(["remove", config, model.ToString()]);
                Assert.True(first.WaitForError("Waiting for the store lock"), first.StandardError);
                Assert.True(second.WaitForError("Waiting for the store lock"), second.StandardError);
            }
            using (first)
            using (second)
            {
                CliResult[] results = [await first.WaitAsync(), await second.WaitAsync()];
                Assert.Single(results, r => r.ExitCode == 0);
                CliResult loser = Assert.Single(results, r => r.ExitCode == 2);
                string[] errors = loser.StandardError.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToArray();
                Assert.Equal($"error: Model {model} is not in the store (removed by another process meanwhile)", Assert.Single(errors));
                Assert.DoesNotContain("   at ", loser.StandardError);
                Assert.DoesNotContain("Exception", loser.StandardError);
                Assert.False(store.Contains(model));
            }
        }
    }

    [Theory]
    [InlineData("restore")]
    [InlineData("verify")]
    [InlineData("remove")]
    public async Task Verb_ModelNotInStore_ExitsUsageErrorInOneLine(string verb)
    {
        (TempDir dir, string config, _) = StoredTinyFamily();
        using (dir)
        {
            string[] arguments = verb == "restore" ? [verb, config, "no/such-model", dir.Combine("out")] : [verb, config, "no/such-model"];
            CliResult result = await CliProcess.RunAsync(arguments);
            Assert.Equal(2, result.ExitCode);
            Assert.Contains("no/such-model", result.StandardError);
            Assert.DoesNotContain("   at ", result.StandardError);
            Assert.False(Directory.Exists(dir.Combine("out")) && Directory.EnumerateFileSystemEntries(dir.Combine("out")).Any());
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task ReadOnlyStore_RestoreListAndVerifyWork_RemoveAndGcFailAtOnceAndDeleteNothing()
    {
        // A store on a read-only mount, or another user's: read under a shared lock through a read-only handle.
        // As root (permissions do not bind it) the store is mounted read-only for the process; else its files are.
        (TempDir dir, string config, ModelStore store) = StoredTinyFamily();
        using (dir)
        {
            bool root = Environment.UserName == "root";
            string storeFolder = dir.Combine("store");
            string? readOnlyFolder = root ? storeFolder : null;
            if (!root)
            {
                SetWritable(storeFolder, writable: false);
            }
            try
            {
                int objects = store.Objects.Enumerate().Count();
                ModelId model = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune);
                CliResult restore = await CliProcess.RunAsync(["restore", config, model.ToString(), dir.Combine("out")], readOnlyFolder: readOnlyFolder);
                Assert.True(restore.ExitCode == 0, restore.StandardError);
                Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", model.FolderName)), ModelFolders.Snapshot(dir.Combine("out")));
                CliResult list = await CliProcess.RunAsync(["list", config], readOnlyFolder: readOnlyFolder);
                Assert.True(list.ExitCode == 0, list.StandardError);
                CliResult verify = await CliProcess.RunAsync(["verify", config], readOnlyFolder: readOnlyFolder);
                Assert.True(verify.ExitCode == 0, verify.StandardError);

                foreach (string[] verb in new[] { new[] { "remove", config, model.ToString() }, ["gc", config, "--grace", "0"] })
                {
                    // At once: it used to retry the lock as if another process held it, for the lock timeout (30 minutes).
                    CliResult refused = await CliProcess.RunAsync(verb, timeout: TimeSpan.FromSeconds(30), readOnlyFolder: readOnlyFolder);
                    Assert.Equal(ExitCodes.IoError, refused.ExitCode);
                    Assert.Contains("read-only here", refused.StandardError);
                }
                Assert.Equal(objects, store.Objects.Enumerate().Count());
                Assert.True(store.Contains(model));
            }
            finally
            {
                if (!root)
                {
                    SetWritable(storeFolder, writable: true);
                }
            }
        }
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void SetWritable(string folder, bool writable)
    {
        foreach (string entry in Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories).Append(folder))
        {
            UnixFileMode mode = File.GetUnixFileMode(entry);
            const UnixFileMode write = UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
            File.SetUnixFileMode(entry, writable ? mode | UnixFileMode.UserWrite : mode & ~write);
        }
    }
}
