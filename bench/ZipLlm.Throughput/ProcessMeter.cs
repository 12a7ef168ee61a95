using System.Diagnostics;
using System.Globalization;

namespace ZipLlm.Throughput;

/// <summary>Wall clock and peak memory of one child process.</summary>
/// <param name="ExitCode">The command's exit code.</param>
/// <param name="Seconds">Wall clock from just before the command is started to when it is reaped.</param>
/// <param name="PeakRssKb">
/// The largest resident set of the command or any of its descendants, in KiB; null when GNU time
/// (<c>/usr/bin/time</c>) is not installed.
/// </param>
/// <param name="CpuSeconds">
/// CPU time (user + system) of the command and the descendants it reaped, from the same GNU time; much less sensitive
/// than the wall clock to other load on the machine. Null without GNU time.
/// </param>
internal sealed record ProcessResult(int ExitCode, double Seconds, long? PeakRssKb, double? CpuSeconds = null);

/// <summary>
/// Times a command and reads its peak resident set through GNU time (<c>/usr/bin/time -f %M</c>), which reports the
/// ru_maxrss that wait4 gives for the command alone (the high-water mark of it and the descendants it reaped).
/// </summary>
/// <remarks>
/// Why not getrusage in this process, or in a helper of ours: a forked child starts as a copy of its parent's
/// address space, and the kernel carries that copy's high-water mark across exec into the child's ru_maxrss. Forked
/// from a .NET process (29 MB resident at least), every command showed at least 29 MB: <c>zstd -d</c> 29 MB where
/// GNU time, a small C program, says 5 MB. GNU time forks the command from its own 2 MB, so only the command shows.
/// The command runs under <c>/bin/sh -c 'exec "$@" &gt;&gt;LOG 2&gt;&amp;1'</c>: its output goes to the log file and
/// nothing in this process competes with it for the CPU (no output pumping threads).
/// </remarks>
internal static class ProcessMeter
{
    /// <summary>Where GNU time is looked for.</summary>
    public const string GnuTime = "/usr/bin/time";

    private static int s_warned;

    /// <summary>Whether peak RSS can be measured here.</summary>
    public static bool MeasuresMemory => File.Exists(GnuTime);

    /// <summary>Runs <paramref name="command"/>, appending its output to <paramref name="logFile"/>.</summary>
    /// <exception cref="InvalidOperationException">The command could not be started.</exception>
    public static ProcessResult Run(IReadOnlyList<string> command, string logFile)
    {
        File.AppendAllText(logFile, "$ " + string.Join(' ', command) + Environment.NewLine);
        string? rssFile = MeasuresMemory ? Path.Combine(Path.GetTempPath(), $"zipllm-rss-{Environment.ProcessId}-{Guid.NewGuid():N}") : null;
        var start = new ProcessStartInfo(rssFile is null ? "/bin/sh" : GnuTime) { UseShellExecute = false };
        if (rssFile is not null)
        {
            // Two lines: user and system seconds, then the peak KiB (the last line, as ParsePeak reads it).
            foreach (string arg in new[] { "-f", "%U %S\n%M", "-o", rssFile, "/bin/sh" })
            {
                start.ArgumentList.Add(arg);
            }
        }
        else if (Interlocked.Exchange(ref s_warned, 1) == 0)
        {
            Console.Error.WriteLine($"throughput: {GnuTime} is not installed (Debian: apt-get install time), so peak RSS is not measured");
        }
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec \"$@\" >>\"$ZIPLLM_MEASURE_LOG\" 2>&1");
        start.ArgumentList.Add("sh");
        foreach (string arg in command)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["ZIPLLM_MEASURE_LOG"] = logFile;
        try
        {
            var clock = Stopwatch.StartNew();
            using Process child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {command[0]}.");
            child.WaitForExit();
            double seconds = clock.Elapsed.TotalSeconds;
            string? usage = rssFile is null ? null : File.ReadAllText(rssFile);
            return new ProcessResult(child.ExitCode, seconds, usage is null ? null : ParsePeak(usage), usage is null ? null : ParseCpu(usage));
        }
        finally
        {
            if (rssFile is not null)
            {
                File.Delete(rssFile);
            }
        }
    }

    /// <summary>
    /// The KiB of GNU time's <c>-f %M</c> output: its last line (a command that failed or was killed gets a line
    /// before it, "Command exited with non-zero status 1"); null when there is none.
    /// </summary>
    public static long? ParsePeak(string timeOutput)
    {
        string? last = timeOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        return long.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out long kib) ? kib : null;
    }

    /// <summary>User plus system seconds from the line before the peak ("%U %S"); null when it is not there.</summary>
    public static double? ParseCpu(string timeOutput)
    {
        string[] lines = timeOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string[] fields = lines.Length >= 2 ? lines[^2].Split(' ', StringSplitOptions.RemoveEmptyEntries) : [];
        return fields.Length == 2
            && double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double user)
            && double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double system)
            ? user + system : null;
    }
}
