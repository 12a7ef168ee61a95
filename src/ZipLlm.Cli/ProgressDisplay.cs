using System.CommandLine;
using System.Diagnostics;
using ZipLlm.Cli.Commands;
using ZipLlm.Domain;
using ZipLlm.Reporting;
using ZipLlm.Store;

namespace ZipLlm.Cli;

/// <summary>
/// A one-line progress display on standard error, redrawn at most ten times a second, shown only
/// when standard error is a terminal (logs and pipes get the per-model summary lines instead) and
/// the run is not <c>--quiet</c>: <c>compress 3/8 org/model  45.1%  120.3 MB / 267.0 MB  310.2 MB/s  ETA 0:02</c>.
/// </summary>
internal sealed class ProgressDisplay : IProgress<ByteProgress>, IDisposable
{
    private readonly Lock _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly RateMeter _rate = new();
    private readonly string _verb;
    private long _lastDraw = -1000;
    private string? _item;
    private int _itemNumber;
    private long _finishedBytes;
    private long _itemDone;
    private bool _drawn;

    private ProgressDisplay(string verb)
    {
        _verb = verb;
        // The run starts now, not at the first report: that comes only once a file has been read through.
        _rate.Add(0, 0);
    }

    /// <summary>The items the run works through, in order, for the n/N of the line (none: no n/N).</summary>
    public IReadOnlyList<string> Items { get; set; } = [];

    /// <summary>A display for <paramref name="verb"/> when standard error is a terminal and the run is not quiet; null otherwise.</summary>
    public static ProgressDisplay? ForTerminal(string verb, ParseResult parseResult) =>
        Console.IsErrorRedirected || Environment.GetEnvironmentVariable("CI") is not null || parseResult.GetValue(BaseCommand.QuietOption)
            ? null
            : new ProgressDisplay(verb);

    public void Report(ByteProgress value)
    {
        lock (_gate)
        {
            double seconds = _clock.Elapsed.TotalSeconds;
            if (value.Item != _item)
            {
                _finishedBytes += _itemDone;
                _item = value.Item;
                _itemNumber = Items.Count > 0 && IndexOf(Items, value.Item) is >= 0 and var index ? index + 1 : _itemNumber + 1;
                _itemDone = 0;
            }
            _itemDone = value.DoneBytes;
            _rate.Add(seconds, _finishedBytes + _itemDone);
            long now = (long)(seconds * 1000);
            if (now - _lastDraw < 100 && value.DoneBytes < value.TotalBytes)
            {
                return;
            }
            _lastDraw = now;
            string line = FormatLine(_verb, _itemNumber, Items.Count, value, _rate.BytesPerSecond);
            int width = Math.Max(20, SafeWindowWidth() - 1);
            Console.Error.Write("\r" + (line.Length > width ? line[..width] : line.PadRight(width)));
            _drawn = true;
        }
    }

    /// <summary>The progress line: verb, n/N (when <paramref name="count"/> is known), item, percent, bytes, rate and ETA (once there is a rate).</summary>
    internal static string FormatLine(string verb, int number, int count, ByteProgress value, double? bytesPerSecond)
    {
        double percent = value.TotalBytes == 0 ? 100 : 100.0 * value.DoneBytes / value.TotalBytes;
        string position = count > 0 ? $" {Math.Min(number, count)}/{count}" : "";
        string detail = value.Detail is null ? "" : "  " + value.Detail;
        string line = $"{verb}{position} {value.Item}{detail}  {percent,5:F1}%  {Sizes.Format(value.DoneBytes)} / {Sizes.Format(value.TotalBytes)}";
        if (bytesPerSecond is { } rate)
        {
            line += $"  {Sizes.Rate(rate)}";
            if (rate > 0 && value.DoneBytes < value.TotalBytes)
            {
                line += $"  ETA {Sizes.Clock(TimeSpan.FromSeconds((value.TotalBytes - value.DoneBytes) / rate))}";
            }
        }
        return line;
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

    private static int IndexOf(IReadOnlyList<string> items, string item)
    {
        for (int i = 0; i < items.Count; i++)
        {
            if (items[i] == item)
            {
                return i;
            }
        }
        return -1;
    }

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
