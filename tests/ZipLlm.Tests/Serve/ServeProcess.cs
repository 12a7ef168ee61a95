using System.Diagnostics;
using System.Text.RegularExpressions;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary><c>zipllm serve</c> as a real process on a free port of 127.0.0.1; killed on dispose if still running.</summary>
internal sealed partial class ServeProcess : IDisposable
{
    private ServeProcess(RunningCli cli, Uri address)
    {
        Cli = cli;
        Address = address;
    }

    public RunningCli Cli { get; }

    /// <summary>Where it listens, <c>http://127.0.0.1:PORT</c>.</summary>
    public Uri Address { get; }

    public string Url(string path) => Address.GetLeftPart(UriPartial.Authority) + path;

    /// <summary>Starts <c>zipllm serve CONFIG --port 0 ARGS</c> and waits for its "Listening on" line.</summary>
    public static ServeProcess Start(string config, params string[] arguments) => Start(config, null, arguments);

    /// <summary>The same, with <paramref name="environment"/> set (an S3 store's credentials).</summary>
    public static ServeProcess Start(string config, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var cli = new RunningCli(["serve", config, "--port", "0", .. arguments], environment);
        if (!cli.WaitForError("Listening on http://"))
        {
            string stderr = cli.StandardError;
            cli.Dispose();
            throw new InvalidOperationException($"zipllm serve did not start listening:\n{stderr}");
        }
        Match listening = ListeningLine().Match(cli.StandardError);
        return new ServeProcess(cli, new Uri(listening.Groups[1].Value));
    }

    public void Dispose() => Cli.Dispose();

    [GeneratedRegex(@"Listening on (http://[0-9.]+:[0-9]+)")]
    private static partial Regex ListeningLine();
}

/// <summary>What a run of <c>curl</c> got.</summary>
internal sealed record CurlResult(int ExitCode, int Status, IReadOnlyDictionary<string, string> Headers, byte[] Body, string Error)
{
    public string? Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out string? value) ? value : null;
}

/// <summary>Runs the real <c>curl</c> (and <c>aria2c</c>): the clients users script downloads with.</summary>
internal static class Curl
{
    /// <summary>Whether curl is on the PATH (.ci/run installs it).</summary>
    public static bool Available => Which("curl");

    public static bool Which(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, program)));

    /// <summary>
    /// <c>curl -s --path-as-is</c> with <paramref name="arguments"/> before the URL; the body goes to a file
    /// (returned), the response's headers (the last response's) are parsed.
    /// </summary>
    public static async Task<CurlResult> RunAsync(string url, params string[] arguments)
    {
        string body = Path.GetTempFileName(), headers = Path.GetTempFileName();
        try
        {
            var start = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string argument in (string[])["-sS", "--path-as-is", "--max-time", "60", "-o", body, "-D", headers, "-w", "%{http_code}", .. arguments, url])
            {
                start.ArgumentList.Add(argument);
            }
            using Process process = Process.Start(start)!;
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
            var parsed = new Dictionary<string, string>(StringComparer.Ordinal);
            // The last response's block (after a 100 Continue or the like).
            string[] blocks = File.ReadAllText(headers).Split("\r\n\r\n", StringSplitOptions.RemoveEmptyEntries);
            foreach (string line in blocks.LastOrDefault("").Split("\r\n").Skip(1))
            {
                int colon = line.IndexOf(':');
                if (colon > 0)
                {
                    parsed[line[..colon].Trim().ToLowerInvariant()] = line[(colon + 1)..].Trim();
                }
            }
            int status = int.TryParse(await stdout, out int code) ? code : 0;
            return new CurlResult(process.ExitCode, status, parsed, File.ReadAllBytes(body), await stderr);
        }
        finally
        {
            File.Delete(body);
            File.Delete(headers);
        }
    }

    /// <summary>Runs a program to its end; returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output)> ExecAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (process.ExitCode, await stdout + await stderr);
    }
}
