using System.Diagnostics;

namespace ZipLlm.Tests.TestUtil;

/// <summary>Runs the real <c>zipllm</c> executable (built next to the tests) as a separate process.</summary>
internal static class ZipllmProcess
{
    /// <summary>Path of zipllm.dll, copied next to the test assembly by the project reference.</summary>
    public static string DllPath => Path.Combine(AppContext.BaseDirectory, "zipllm.dll");

    /// <summary>Starts <c>dotnet zipllm.dll args</c> with output captured.</summary>
    public static Process Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(DllPath);
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_TieredPGO"] = "0";
        return Process.Start(info) ?? throw new InvalidOperationException("Could not start dotnet.");
    }

    /// <summary>Runs to completion (at most two minutes) and returns the exit code and both outputs.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        using Process process = Start(args);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"zipllm {string.Join(' ', args)} did not finish in two minutes.");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
