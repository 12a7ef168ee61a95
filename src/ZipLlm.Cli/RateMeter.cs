namespace ZipLlm.Cli;

/// <summary>
/// Bytes per second over the last few seconds of a run, from a running total. Measured from the newest sample at
/// or before the window's start, not from the window's start itself: work that reports in bursts (a file hashed
/// whole, then credited at once because it was deduplicated) is spread over the time it took, so the rate never
/// spikes when a burst lands, and a quiet spell shows as a lower rate rather than none.
/// </summary>
internal sealed class RateMeter(double windowSeconds = 5, double minimumSeconds = 1)
{
    private readonly Queue<(double Seconds, long Bytes)> _samples = new();

    /// <summary>Records that <paramref name="totalBytes"/> were done by <paramref name="seconds"/> into the run (both never decrease).</summary>
    public void Add(double seconds, long totalBytes)
    {
        _samples.Enqueue((seconds, totalBytes));
        // Keep one sample at or before the window's start: the anchor the rate is measured from.
        while (_samples.Count > 2 && _samples.ElementAt(1).Seconds <= seconds - windowSeconds)
        {
            _samples.Dequeue();
        }
    }

    /// <summary>Bytes per second since the anchor; <see langword="null"/> until the samples span <c>minimumSeconds</c>.</summary>
    public double? BytesPerSecond
    {
        get
        {
            if (_samples.Count < 2)
            {
                return null;
            }
            (double firstSeconds, long firstBytes) = _samples.Peek();
            (double lastSeconds, long lastBytes) = _samples.Last();
            double span = lastSeconds - firstSeconds;
            return span < minimumSeconds ? null : (lastBytes - firstBytes) / span;
        }
    }
}
