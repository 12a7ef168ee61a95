using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Config;
using ZipLlm.Jobs;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>Verbs that wait for a store lock say whom they wait for, can be stopped, and agree when they race.</summary>
public class LockProcessTests
{
    private static (TempDir Dir, string Config, ModelStore Store) StoredTinyFamily()
    {
        var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        Assert.Empty(new CompressJob(ZipLlmConfig.Load(config), NullLogger.Instance).Run().Failures);
        return (dir, config, ModelStore.Open(dir.Combine("store"), create: false));
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
}
