using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;

namespace ZipLlm.Throughput;

/// <summary>Wall clock and peak memory of one child process.</summary>
/// <param name="PeakRssKb">The largest resident set of the child or any of its descendants, in KiB.</param>
/// <param name="CpuSeconds">CPU time (user + system) of the child and its descendants: much less sensitive than the wall clock to other load on the machine.</param>
public sealed record ProcessResult(int ExitCode, double Seconds, long PeakRssKb, double CpuSeconds);

/// <summary>
/// Times a command and reads its peak resident set. getrusage(RUSAGE_CHILDREN).ru_maxrss is exact
/// (the kernel keeps the high-water mark of every reaped descendant) but it is the maximum over all
/// children a process ever had, so each command runs under a fresh copy of this tool (the hidden
/// <c>__measure</c> verb) whose only child is the command: its figure is that command's alone.
/// The helper starts the clock just before it starts the child and stops it when the child is reaped,
/// so the helper's own start-up is not counted.
/// </summary>
public static partial class ProcessMeter
{
    public const string Verb = "__measure";

    /// <summary>Runs <paramref name="command"/> under the helper, appending its output to <paramref name="logFile"/>.</summary>
    /// <exception cref="InvalidOperationException">The helper itself failed (not the command: see <see cref="ProcessResult.ExitCode"/>).</exception>
    public static ProcessResult Run(IReadOnlyList<string> command, string logFile)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot find this process's executable.");
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.FileName = self;
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        }
        else
        {
            start.FileName = self;
        }
        start.ArgumentList.Add(Verb);
        start.ArgumentList.Add(logFile);
        start.ArgumentList.Add("--");
        foreach (string arg in command)
        {
            start.ArgumentList.Add(arg);
        }
        using Process helper = Process.Start(start) ?? throw new InvalidOperationException("Could not start the measuring helper.");
        Task<string> error = helper.StandardError.ReadToEndAsync();
        string output = helper.StandardOutput.ReadToEnd();
        helper.WaitForExit();
        string[] fields = output.Trim().Split(' ');
        if (helper.ExitCode != 0 || fields.Length != 4)
        {
            throw new InvalidOperationException($"The measuring helper failed (exit {helper.ExitCode}): {output.Trim()} {error.Result.Trim()}");
        }
        return new ProcessResult(
            int.Parse(fields[0], CultureInfo.InvariantCulture),
            double.Parse(fields[1], CultureInfo.InvariantCulture),
            long.Parse(fields[2], CultureInfo.InvariantCulture),
            double.Parse(fields[3], CultureInfo.InvariantCulture));
    }

    /// <summary>The helper: <c>__measure LOG -- PROGRAM ARGS...</c>; prints "exit seconds peak_kib cpu_seconds" on one line.</summary>
    public static int RunHelper(string[] args)
    {
        if (args.Length < 4 || args[0] != Verb || args[2] != "--")
        {
            Console.Error.WriteLine("usage: __measure LOG -- PROGRAM ARGS...");
            return 2;
        }
        File.AppendAllText(args[1], "$ " + string.Join(' ', args.Skip(3)) + Environment.NewLine);
        // The shell execs the command with its output appended to the log, so the command's pid is our child's
        // and nothing in this process competes with it for the CPU while it runs (no output pumping threads).
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec \"$@\" >>\"$ZIPLLM_MEASURE_LOG\" 2>&1");
        start.ArgumentList.Add("sh");
        foreach (string arg in args.Skip(3))
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["ZIPLLM_MEASURE_LOG"] = args[1];
        var clock = Stopwatch.StartNew();
        using Process child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {args[3]}.");
        child.WaitForExit();
        double seconds = clock.Elapsed.TotalSeconds;
        if (getrusage(RusageChildren, out Rusage usage) != 0)
        {
            Console.Error.WriteLine("getrusage failed: errno " + Marshal.GetLastPInvokeError());
            return 1;
        }
        double cpu = usage.UtimeSec + usage.StimeSec + (usage.UtimeUsec + usage.StimeUsec) / 1e6;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{child.ExitCode} {seconds:F6} {usage.MaxRss} {cpu:F6}"));
        return 0;
    }

    private const int RusageChildren = -1;

    /// <summary>struct rusage of 64-bit Linux: two timevals, then fourteen longs (ru_maxrss first, in KiB).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Rusage
    {
        public long UtimeSec, UtimeUsec, StimeSec, StimeUsec;
        public long MaxRss, IxRss, IdRss, IsRss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NVcsw, NIvcsw;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrusage(int who, out Rusage usage);
}
