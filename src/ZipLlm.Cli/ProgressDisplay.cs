using System.Diagnostics;
using ZipLlm.Store;

namespace ZipLlm.Cli;

/// <summary>
/// A one-line progress display on standard error, redrawn at most ten times a second, shown only
/// when standard error is a terminal (logs and pipes get the per-model summary lines instead).
/// </summary>
internal sealed class ProgressDisplay : IProgress<ByteProgress>, IDisposable
{
    private readonly Lock _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _verb;
    private long _lastDraw = -1000;
    private string? _item;
    private long _itemStart;
    private bool _drawn;

    private ProgressDisplay(string verb) => _verb = verb;

    /// <summary>A display for <paramref name="verb"/> when standard error is a terminal; null otherwise.</summary>
    public static ProgressDisplay? ForTerminal(string verb) =>
        Console.IsErrorRedirected || Environment.GetEnvironmentVariable("CI") is not null ? null : new ProgressDisplay(verb);

    public void Report(ByteProgress value)
    {
        lock (_gate)
        {
            long now = _clock.ElapsedMilliseconds;
            if (value.Item != _item)
            {
                _item = value.Item;
                _itemStart = now;
            }
            if (now - _lastDraw < 100 && value.DoneBytes < value.TotalBytes)
            {
                return;
            }
            _lastDraw = now;
            double seconds = Math.Max((now - _itemStart) / 1000.0, 1e-3);
            double percent = value.TotalBytes == 0 ? 100 : 100.0 * value.DoneBytes / value.TotalBytes;
            string line = $"{_verb} {value.Item}: {percent,5:F1}%  {value.DoneBytes / 1e6,9:F1} / {value.TotalBytes / 1e6:F1} MB  {value.DoneBytes / 1e6 / seconds,7:F0} MB/s";
            int width = Math.Max(20, SafeWindowWidth() - 1);
            Console.Error.Write("\r" + (line.Length > width ? line[..width] : line.PadRight(width)));
            _drawn = true;
        }
    }

    /// <summary>Clears the line so log messages start on a clean one.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            if (_drawn)
            {
                Console.Error.Write("\r" + new string(' ', Math.Max(20, SafeWindowWidth() - 1)) + "\r");
                _drawn = false;
            }
        }
    }

    public void Dispose() => Clear();

    private static int SafeWindowWidth()
    {
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : 100;
        }
        catch (IOException)
        {
            return 100;
        }
    }
}
