using BenchmarkDotNet.Running;

namespace ZipLlm.Benchmarks;

/// <summary>
/// Runs the benchmarks: <c>dotnet run -c Release --project bench/ZipLlm.Benchmarks -- --filter '*'</c>.
/// <c>--ratios</c> prints compressed sizes and ratios; <c>--levels</c> the per-stream zstd level study.
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
            default:
                BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
                break;
        }
    }
}
