using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ZipLlm.Tests.TestSupport;

/// <summary>Real POSIX signals for process tests (Linux numbering).</summary>
internal static partial class Signals
{
    public const int SigInt = 2;
    public const int SigTerm = 15;
    private const int SigCont = 18;
    private const int SigStop = 19;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="process"/>.</summary>
    public static void Send(Process process, int signal)
    {
        if (kill(process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    /// <summary>
    /// Stops <paramref name="process"/>, sends it <paramref name="signal"/> and lets it go on: the signal is then
    /// delivered at the very moment the test chose, however fast the machine would have finished the run meanwhile.
    /// </summary>
    public static void SendWhileStopped(Process process, int signal)
    {
        Send(process, SigStop);
        try
        {
            Send(process, signal);
        }
        finally
        {
            Send(process, SigCont);
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds, the process exits, or a generous deadline passes.</summary>
    /// <returns>Whether the condition held while the process still ran.</returns>
    public static bool WaitUntil(Process process, Func<bool> condition, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < (timeout ?? TimeSpan.FromMinutes(1)))
        {
            if (process.HasExited)
            {
                return false;
            }
            if (condition())
            {
                return !process.HasExited;
            }
            Thread.Sleep(1);
        }
        return false;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
