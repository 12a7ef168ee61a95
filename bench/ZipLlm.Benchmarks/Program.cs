using BenchmarkDotNet.Running;

namespace ZipLlm.Benchmarks;

/// <summary>
/// Runs the benchmarks: <c>dotnet run -c Release --project bench/ZipLlm.Benchmarks -- --filter '*'</c>.
/// <c>--ratios</c> prints compressed sizes and ratios; <c>--levels</c> the per-stream zstd level study;
/// <c>--bounds CONFIG</c> each model's stored bytes next to the entropy bounds of its codings; <c>--lineage CONFIG</c>
/// the time lineage detection adds to compress with 1, 10 and 100 candidates.
/// </summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static void Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "--ratios":
                Studies.Ratios();
                break;
            case "--levels":
                Studies.Levels();
                break;
            case "--bounds" when args.Length == 2:
                BoundsStudy.Run(args[1]);
                break;
            case "--lineage" when args.Length == 2:
                LineageStudy.Run(args[1]);
                break;
            default:
                BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
                break;
        }
    }
}
