using ScottPlot;
using SkiaSharp;

namespace ZipLlm.Throughput;

/// <summary>
/// The PNG: left, throughput (MB/s, as the CLI prints it) against threads, the median line and the min-max band over
/// the runs of each series, zstd dashed as the reference; right, speedup over one thread with the ideal y = x line.
/// One colour per (mode, model); ours solid with circles, zstd dashed with squares. Under both, the caption
/// (<see cref="Analysis.Caption"/>): runs per point, what the bands are, the data, warm or cold cache, and a warning in
/// red when runs were so short that process start-up weighs in them.
/// </summary>
internal static class PlotWriter
{
    private const int PanelWidth = 900;
    private const int PanelHeight = 760;

    /// <summary>Font families tried in order; the first one the system has is used (DejaVu Sans is in Debian's fonts-dejavu-core).</summary>
    private static readonly string[] s_fonts = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"];

    private const int CaptionLineHeight = 26;

    public static void Write(string path, IReadOnlyList<Measurement> measurements, string title, RunContext? context = null)
    {
        List<Summary> summaries = Analysis.Summarize(measurements);
        List<string> caption = Analysis.Caption(summaries, context ?? RunContext.Unknown);
        var series = summaries
            .GroupBy(s => (s.Mode, s.Model, s.Tool))
            .Select(g => (g.Key.Mode, g.Key.Model, g.Key.Tool, Points: g.OrderBy(s => s.Threads).ToList()))
            .ToList();
        var keys = series.Select(s => (s.Mode, s.Model)).Distinct().ToList();
        double[] allThreads = summaries.Select(s => (double)s.Threads).Distinct().Order().ToArray();
        string? font = PickFont();

        Plot throughput = NewPlot(font, $"{title}: throughput", "threads", "MB/s (10^6 bytes/s)", allThreads);
        Plot speedup = NewPlot(font, "Speedup over 1 thread", "threads", "speedup (x)", allThreads);

        double maxThreads = allThreads.Length > 0 ? allThreads[^1] : 1;
        var ideal = speedup.Add.Line(1, 1, maxThreads, maxThreads);
        ideal.LineColor = Colors.Gray;
        ideal.LinePattern = LinePattern.Dashed;
        ideal.LineWidth = 1.5f;
        ideal.LegendText = "ideal (y = x)";

        foreach (var s in series)
        {
            Color color = Palette(keys.IndexOf((s.Mode, s.Model)));
            bool ours = s.Tool == Measurement.ZipLlm;
            double[] xs = s.Points.Select(p => (double)p.Threads).ToArray();
            string label = $"{s.Mode} {s.Model} ({s.Tool})";

            if (ours && xs.Length > 1)
            {
                var band = throughput.Add.FillY(xs, s.Points.Select(p => p.MinGbps * 1000).ToArray(), s.Points.Select(p => p.MaxGbps * 1000).ToArray());
                band.FillColor = color.WithAlpha(0.18);
                band.LineWidth = 0;
                int[] runs = s.Points.Select(p => p.Runs).Distinct().Order().ToArray();
                band.LegendText = $"{s.Mode} {s.Model}: min-max of {(runs.Length == 1 ? runs[0].ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{runs[0]}-{runs[^1]}")} runs";
            }
            Style(throughput.Add.Scatter(xs, s.Points.Select(p => p.MedianGbps * 1000).ToArray()), color, ours, label + ", median");

            double[] sp = s.Points.Select(p => p.Speedup).ToArray();
            if (sp.Any(double.IsFinite))
            {
                int[] ok = Enumerable.Range(0, sp.Length).Where(i => double.IsFinite(sp[i])).ToArray();
                Style(speedup.Add.Scatter(ok.Select(i => xs[i]).ToArray(), ok.Select(i => sp[i]).ToArray()), color, ours, label);
            }
        }

        throughput.Axes.AutoScale();
        throughput.Axes.SetLimitsY(0, Math.Max(0.01, summaries.Count == 0 ? 1 : summaries.Max(s => s.MaxGbps) * 1000 * 1.15));
        throughput.ShowLegend(Edge.Bottom);
        double maxSpeedup = summaries.Select(s => s.Speedup).Where(double.IsFinite).DefaultIfEmpty(1).Max();
        speedup.Axes.SetLimitsY(0, Math.Max(maxThreads, maxSpeedup) * 1.1);
        speedup.ShowLegend(Edge.Bottom);
        foreach (Plot p in new[] { throughput, speedup })
        {
            p.Axes.SetLimitsX(allThreads.Length > 0 ? allThreads[0] - 0.3 : 0, maxThreads + 0.3);
        }

        using SKBitmap left = SKBitmap.Decode(throughput.GetImageBytes(PanelWidth, PanelHeight, ImageFormat.Png));
        using SKBitmap right = SKBitmap.Decode(speedup.GetImageBytes(PanelWidth, PanelHeight, ImageFormat.Png));
        using SKTypeface typeface = font is null ? SKTypeface.Default : SKTypeface.FromFamilyName(font);
        using var text = new SKFont(typeface, 17);
        List<(string Text, bool Warning)> lines = caption
            .SelectMany(line => Wrap(line, text, 2 * PanelWidth - 48).Select(part => (part, line.StartsWith("Warning", StringComparison.Ordinal))))
            .ToList();
        int captionHeight = lines.Count * CaptionLineHeight + 20;
        using var surface = SKSurface.Create(new SKImageInfo(2 * PanelWidth, PanelHeight + captionHeight));
        surface.Canvas.Clear(SKColors.White);
        surface.Canvas.DrawBitmap(left, 0, 0);
        surface.Canvas.DrawBitmap(right, PanelWidth, 0);
        using (var ink = new SKPaint { IsAntialias = true })
        {
            for (int i = 0; i < lines.Count; i++)
            {
                ink.Color = lines[i].Warning ? new SKColor(0xC0, 0x10, 0x10) : SKColors.Black;
                surface.Canvas.DrawText(lines[i].Text, 24, PanelHeight + 10 + (i + 1) * CaptionLineHeight - 6, SKTextAlign.Left, text, ink);
            }
        }
        using SKImage image = surface.Snapshot();
        using SKData data = image.Encode(SKEncodedImageFormat.Png, 100);
        using FileStream file = File.Create(path);
        data.SaveTo(file);
    }

    /// <summary>Splits <paramref name="line"/> at spaces into pieces no wider than <paramref name="width"/> pixels (a word wider than that stands alone).</summary>
    private static List<string> Wrap(string line, SKFont font, float width)
    {
        var pieces = new List<string>();
        string current = "";
        foreach (string word in line.Split(' '))
        {
            string candidate = current.Length == 0 ? word : current + " " + word;
            if (current.Length > 0 && font.MeasureText(candidate) > width)
            {
                pieces.Add(current);
                current = "    " + word;
            }
            else
            {
                current = candidate;
            }
        }
        pieces.Add(current);
        return pieces;
    }

    private static Plot NewPlot(string? font, string title, string x, string y, double[] threads)
    {
        var plot = new Plot();
        if (font is not null)
        {
            plot.Font.Set(font);
        }
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        if (threads.Length > 0)
        {
            plot.Axes.Bottom.SetTicks(threads, threads.Select(t => t.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        }
        return plot;
    }

    private static void Style(ScottPlot.Plottables.Scatter scatter, Color color, bool ours, string label)
    {
        scatter.Color = color;
        scatter.LineWidth = ours ? 2.5f : 1.5f;
        scatter.LinePattern = ours ? LinePattern.Solid : LinePattern.Dashed;
        scatter.MarkerShape = ours ? MarkerShape.FilledCircle : MarkerShape.OpenSquare;
        scatter.MarkerSize = ours ? 9 : 8;
        scatter.LegendText = label;
    }

    private static Color Palette(int i)
    {
        Color[] colors = [Colors.C0, Colors.C1, Colors.C2, Colors.C3, Colors.C4, Colors.C5, Colors.C6, Colors.C7];
        return colors[i % colors.Length];
    }

    private static string? PickFont()
    {
        using SKFontManager manager = SKFontManager.CreateDefault();
        string[] installed = manager.FontFamilies.ToArray();
        return s_fonts.FirstOrDefault(f => installed.Contains(f, StringComparer.OrdinalIgnoreCase));
    }
}
