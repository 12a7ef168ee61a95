using BenchmarkDotNet.Running;

namespace ZipLlm.Benchmarks;

/// <summary>
/// Runs the benchmarks: <c>dotnet run -c Release --project bench/ZipLlm.Benchmarks -- --filter '*'</c>.
/// <c>--ratios</c> prints compressed sizes and ratios; <c>--levels</c> the per-stream zstd level study;
/// <c>--bounds CONFIG</c> each model's stored bytes next to the entropy bounds of its codings.
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
            default:
                BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
                break;
        }
    }
}
