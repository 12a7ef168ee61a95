using System.Diagnostics;

namespace ZipLlm.Tests.TestSupport;

/// <summary>What a run of the real <c>zipllm</c> process did.</summary>
/// <param name="ExitCode">The process exit code.</param>
/// <param name="StandardOutput">Everything written to stdout.</param>
/// <param name="StandardError">Everything written to stderr (logs).</param>
internal sealed record CliResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>
/// Runs the real <c>zipllm</c> command as a child process: the test project references the CLI project, so
/// <c>zipllm.dll</c> sits next to the test assembly and runs under the same <c>dotnet</c> host. Setting
/// <c>ZIPLLM_TEST_CLI</c> to another build (the native one <c>./zipllm</c> makes) runs the same tests against it.
/// </summary>
internal static class CliProcess
{
    private static readonly TimeSpan s_defaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Environment variable naming the CLI build to test instead of the referenced one.</summary>
    public const string CliVariable = "ZIPLLM_TEST_CLI";

    /// <summary>Full path of the CLI under test: a .dll run with dotnet, or a native executable.</summary>
    public static string CliPath =>
        Environment.GetEnvironmentVariable(CliVariable) is { Length: > 0 } other ? Path.GetFullPath(other) : Path.Combine(AppContext.BaseDirectory, "zipllm.dll");

    /// <summary>Runs <c>dotnet zipllm.dll</c> with <paramref name="arguments"/> and waits for it to exit.</summary>
    /// <exception cref="TimeoutException">The process did not exit in time (it is killed).</exception>
    /// <param name="arguments">The CLI's arguments.</param>
    /// <param name="workingDirectory">Its working folder (default: the test assembly's).</param>
    /// <param name="timeout">How long it may run.</param>
    /// <param name="environment">Variables to set.</param>
    /// <param name="openFileLimit">When set, the process runs under <c>ulimit -n</c> of this many files.</param>
    /// <param name="readOnlyFolder">
    /// When set, the process sees this folder on a read-only file system: bind-mounted read-only over itself, in a
    /// mount namespace of the process's own (<c>unshare -m</c>, so nothing outlives it). Needs root.
    /// </param>
    public static async Task<CliResult> RunAsync(IEnumerable<string> arguments, string? workingDirectory = null, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null, int? openFileLimit = null, string? readOnlyFolder = null)
    {
        using Process process = Start(arguments, workingDirectory, environment, openFileLimit, readOnlyFolder);
        return await WaitAsync(process, $"zipllm {string.Join(' ', arguments)}", timeout ?? s_defaultTimeout);
    }

    /// <summary>
    /// Runs another program of this repository, built beside the tests (<c>dotnet</c> <paramref name="dll"/>), and waits for it.
    /// </summary>
    /// <exception cref="TimeoutException">The process did not exit in time (it is killed).</exception>
    public static async Task<CliResult> RunDllAsync(string dll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        foreach ((string name, string value) in environment)
        {
            start.Environment[name] = value;
        }
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {start.FileName}.");
        return await WaitAsync(process, $"{Path.GetFileNameWithoutExtension(dll)} {string.Join(' ', arguments)}", timeout);
    }

    /// <summary>Where the build of this configuration puts the output of project <paramref name="projectFolder"/> (relative to the repository).</summary>
    public static string BuildOutputOf(string projectFolder, string assembly)
    {
        // Built as the tests are: PROJECT/bin/CONFIGURATION/TFM/ beside tests/ZipLlm.Tests/bin/CONFIGURATION/TFM/.
        string here = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        string configuration = Path.GetFileName(Path.GetDirectoryName(here)!);
        return Path.Combine(Repository.Root, projectFolder, "bin", configuration, Path.GetFileName(here), assembly);
    }

    /// <summary>Reads all of a started process's output until it exits; kills it (and its children) after <paramref name="timeout"/>.</summary>
    private static async Task<CliResult> WaitAsync(Process process, string what, TimeSpan timeout)
    {
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{what} did not exit within {timeout}.");
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts the CLI with output redirected; the caller reads the output and waits (or kills it).</summary>
    public static Process Start(IEnumerable<string> arguments, string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null,
        int? openFileLimit = null, string? readOnlyFolder = null)
    {
        bool native = !CliPath.EndsWith(".dll", StringComparison.OrdinalIgnoreCase);
        string program = native ? CliPath : DotnetHost();
        var start = new ProcessStartInfo(openFileLimit is null && readOnlyFolder is null ? program : readOnlyFolder is null ? "bash" : "unshare")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        if (readOnlyFolder is not null)
        {
            foreach (string argument in new[] { "-m", "--propagation", "private", "bash" })
            {
                start.ArgumentList.Add(argument);
            }
        }
        if (openFileLimit is not null || readOnlyFolder is not null)
        {
            // The shell sets the process up, then becomes the CLI: what it set holds for it and nothing else.
            string mount = readOnlyFolder is null ? "" : $"mount --bind -o ro '{readOnlyFolder.Replace("'", "'\\''")}' '{readOnlyFolder.Replace("'", "'\\''")}' && ";
            string limit = openFileLimit is { } files ? $"ulimit -n {files} && " : "";
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add($"{mount}{limit}exec \"$0\" \"$@\"");
            start.ArgumentList.Add(program);
        }
        if (!native)
        {
            start.ArgumentList.Add(CliPath);
        }
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        return Process.Start(start) ?? throw new InvalidOperationException($"Could not start {start.FileName}.");
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
}
