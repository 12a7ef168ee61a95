using System.Diagnostics;

namespace ZipLlm.ApiTests;

/// <summary>examples/RestoreExample, run as a process on a store made through the API, as the README says to run it.</summary>
public sealed class ExampleTests(StoredFamily family) : IClassFixture<StoredFamily>
{
    [Fact]
    public async Task RestoreExample_OnAStore_RestoresReadsAndStreams()
    {
        string output = Path.Combine(family.Models.Root, "example-out");

        (int exit, string stdout, string stderr) = await RunAsync(family.Models.StoreFolder, TestModels.FinetuneId, output);

        Assert.True(exit == 0, $"exit {exit}: {stderr}");
        Assert.Contains($"{TestModels.FinetuneId}", stdout);
        Assert.Contains("finetune of test/base", stdout);
        Assert.Contains("tensor embed (BF16 [2304, 1024]", stdout);
        Assert.Contains("(matches the stored hash)", stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(family.Models.FinetuneFolder, TestModels.WeightsFile)),
            File.ReadAllBytes(Path.Combine(output, TestModels.WeightsFile)));
    }

    [Fact]
    public async Task RestoreExample_ModelNotStored_SaysSoAndFails()
    {
        (int exit, _, string stderr) = await RunAsync(family.Models.StoreFolder, "test/nothing", Path.Combine(family.Models.Root, "never"));

        Assert.Equal(1, exit);
        Assert.Contains("test/nothing", stderr);
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        // The example's build output sits beside this one's: examples/RestoreExample/bin/CONFIG/TFM/ for tests/ZipLlm.ApiTests/bin/CONFIG/TFM/.
        string here = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        string tfm = Path.GetFileName(here);
        string configuration = Path.GetFileName(Path.GetDirectoryName(here)!);
        string root = Path.GetFullPath(Path.Combine(here, "..", "..", "..", "..", ".."));
        string dll = Path.Combine(root, "examples", "RestoreExample", "bin", configuration, tfm, "RestoreExample.dll");
        Assert.True(File.Exists(dll), $"{dll} was not built");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true); // a hung example must not outlive the test run
            throw new TimeoutException($"RestoreExample {string.Join(' ', args)} did not exit within 2 minutes.");
        }
        return (process.ExitCode, await stdout, await stderr);
    }
}
