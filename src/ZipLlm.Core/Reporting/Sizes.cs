using System.Globalization;

namespace ZipLlm.Reporting;

/// <summary>Byte counts, ratios, rates and durations as people read them, in the CLI's and the jobs' messages.</summary>
internal static class Sizes
{
    /// <summary>
    /// A ratio at least this high (the model added under 0.1% of its bytes: a re-upload whose weights were all
    /// stored already, with a new README) reads as <see cref="DedupRatio"/>; a figure like 122480.02x says nothing more.
    /// </summary>
    public const double DedupThreshold = 1000;

    /// <summary>The ratio of a model whose bytes were (all but a sliver) already stored.</summary>
    public const string DedupRatio = "dedup";

    private static readonly string[] s_units = ["B", "KB", "MB", "GB", "TB"];

    /// <summary>Bytes in decimal units (1 KB = 1000 bytes, as the hub and disk makers count): "512 B", "1.9 GB", "549.4 MB".</summary>
    public static string Format(long bytes)
    {
        if (bytes is > -1000 and < 1000)
        {
            return bytes.ToString(CultureInfo.InvariantCulture) + " B";
        }
        double value = bytes;
        int unit = 0;
        // Rounded as it will be shown before the unit is kept, so 999_960 bytes reads "1.0 MB" rather than "1000.0 KB".
        while (unit < s_units.Length - 1 && Math.Abs(Math.Round(value, unit == 0 ? 0 : 1)) >= 1000)
        {
            value /= 1000;
            unit++;
        }
        return value.ToString("F1", CultureInfo.InvariantCulture) + " " + s_units[unit];
    }

    /// <summary>A rate in the units of <see cref="Format"/>, per second: "312.4 MB/s".</summary>
    public static string Rate(double bytesPerSecond) =>
        double.IsFinite(bytesPerSecond) ? Format((long)Math.Round(bytesPerSecond)) + "/s" : "-";

    /// <summary>
    /// Original bytes over the bytes a model added: "3.41x"; <see cref="DedupRatio"/> from <see cref="DedupThreshold"/>
    /// up (nothing added, or next to nothing); "-" for an empty model.
    /// </summary>
    public static string Ratio(long originalBytes, long addedBytes)
    {
        if (originalBytes <= 0)
        {
            return "-";
        }
        double ratio = (double)originalBytes / addedBytes;
        return addedBytes <= 0 || ratio >= DedupThreshold ? DedupRatio : ratio.ToString("F2", CultureInfo.InvariantCulture) + "x";
    }

    /// <summary>Whether <see cref="Ratio"/> reads <see cref="DedupRatio"/> for these bytes.</summary>
    public static bool IsDedup(long originalBytes, long addedBytes) => Ratio(originalBytes, addedBytes) == DedupRatio;

    /// <summary>Original bytes over added bytes as a number; <see langword="null"/> when nothing was added (or nothing was there).</summary>
    public static double? RatioValue(long originalBytes, long addedBytes) =>
        originalBytes <= 0 || addedBytes <= 0 ? null : (double)originalBytes / addedBytes;

    /// <summary>A duration as a clock reads: "0:07", "12:30", "1:02:03".</summary>
    public static string Clock(TimeSpan duration)
    {
        // Capped at 99:59:59: an estimate past that is no estimate.
        long seconds = (long)Math.Ceiling(Math.Clamp(duration.TotalSeconds, 0, 359_999));
        return seconds >= 3600
            ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600}:{seconds / 60 % 60:00}:{seconds % 60:00}")
            : string.Create(CultureInfo.InvariantCulture, $"{seconds / 60}:{seconds % 60:00}");
    }
}
