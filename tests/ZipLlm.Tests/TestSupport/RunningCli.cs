using System.Diagnostics;
using System.Text;

namespace ZipLlm.Tests.TestSupport;

/// <summary>A <c>zipllm</c> process under way whose output the test can read while it runs; killed on dispose if still running.</summary>
internal sealed class RunningCli : IDisposable
{
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    public RunningCli(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        Arguments = string.Join(' ', arguments);
        Process = CliProcess.Start(arguments, environment: environment);
        Process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        Process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
    }

    public Process Process { get; }

    public string Arguments { get; }

    /// <summary>What the process wrote to stderr so far.</summary>
    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Waits until stderr contains <paramref name="text"/> (true) or the process exits first, or a generous deadline passes (false).</summary>
    public bool WaitForError(string text, TimeSpan? timeout = null) => Signals.WaitUntil(Process, () => StandardError.Contains(text, StringComparison.Ordinal), timeout);

    /// <summary>Waits for the process to exit (killing it after a generous timeout) and returns what it did.</summary>
    /// <exception cref="TimeoutException">It did not exit in time.</exception>
    public async Task<CliResult> WaitAsync(TimeSpan? timeout = null)
    {
        using var cancellation = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(1));
        try
        {
            await Process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            Process.Kill(entireProcessTree: true);
            throw new TimeoutException($"zipllm {Arguments} did not exit in time; stderr so far:\n{StandardError}");
        }
        Process.WaitForExit(); // the output readers have seen the end of both streams
        string stdout;
        lock (_stdout)
        {
            stdout = _stdout.ToString();
        }
        return new CliResult(Process.ExitCode, stdout, StandardError);
    }

    public void Dispose()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited meanwhile.
        }
        Process.Dispose();
    }

    private static void Append(StringBuilder builder, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (builder)
        {
            builder.AppendLine(line);
        }
    }
}
