using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Codecs;
using ZipLlm.Domain;
using ZipLlm.Tools.BitxFileTool;
using ZipLlm.Config;

namespace ZipLlm.Cli.Commands;

/// <summary>
/// <c>zipllm bitx</c>: the standalone BitX tool of the original ZipLLM. Compresses a finetune file against
/// its base into an exponent-stream file and a sign+mantissa-stream file (both plain .zst), and back.
/// </summary>
internal sealed class BitxCommand : BaseCommand
{
    public static readonly Argument<string> BaseArgument = new("BASE")
    {
        Description = "The base model file (safetensors; any file works byte for byte).",
    };

    public static readonly Argument<string?> FinetuneArgument = new("FT")
    {
        Description = "The finetune file to compress (with --compress only).",
        Arity = ArgumentArity.ZeroOrOne,
    };

    public static readonly Option<bool> CompressOption = new("--compress")
    {
        Description = "Compress FT against BASE into --compressed-exp and --compressed-sm.",
    };

    public static readonly Option<bool> DecompressOption = new("--decompress")
    {
        Description = "Rebuild the finetune from BASE, --compressed-exp and --compressed-sm into --output.",
    };

    public static readonly Option<string?> ExponentOption = new("--compressed-exp")
    {
        Description = "The exponent-stream file (.zst). Required.",
    };

    public static readonly Option<string?> SignMantissaOption = new("--compressed-sm")
    {
        Description = "The sign+mantissa-stream file (.zst). Required.",
    };

    public static readonly Option<string?> OutputOption = new("--output", "-o")
    {
        Description = "Where to write the rebuilt finetune (with --decompress only).",
    };

    public static readonly Option<int> ThreadsOption = new("--threads")
    {
        Description = $"Worker threads, 0 to {WorkerPool.MaxThreads}; 0 (the default) uses all cores.",
        DefaultValueFactory = _ => 0,
    };

    public static readonly Option<int> LevelOption = new("--level")
    {
        Description = "zstd level of both streams, -7 to 22 (with --compress only).",
        DefaultValueFactory = _ => BitxOptions.Default.Level,
    };

    public BitxCommand()
        : base("bitx", "Compress a finetune file against its base with BitX (XOR, split exponent from sign+mantissa, zstd each), or decompress it.")
    {
        Arguments.Add(BaseArgument);
        Arguments.Add(FinetuneArgument);
        Options.Add(CompressOption);
        Options.Add(DecompressOption);
        Options.Add(ExponentOption);
        Options.Add(SignMantissaOption);
        Options.Add(OutputOption);
        Options.Add(ThreadsOption);
        Options.Add(LevelOption);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        bool compress = parseResult.GetValue(CompressOption), decompress = parseResult.GetValue(DecompressOption);
        string basePath = parseResult.GetRequiredValue(BaseArgument);
        string? finetune = parseResult.GetValue(FinetuneArgument), output = parseResult.GetValue(OutputOption);
        string exponent = parseResult.GetValue(ExponentOption) ?? throw new UsageException("--compressed-exp is required.");
        string signMantissa = parseResult.GetValue(SignMantissaOption) ?? throw new UsageException("--compressed-sm is required.");
        if (compress == decompress)
        {
            throw new UsageException("Give exactly one of --compress and --decompress.");
        }
        var options = new BitxOptions { Threads = parseResult.GetValue(ThreadsOption), Level = parseResult.GetValue(LevelOption) };
        if (options.Threads is < 0 or > WorkerPool.MaxThreads || options.Level is < -7 or > 22)
        {
            throw new UsageException($"--threads must be from 0 to {WorkerPool.MaxThreads} and --level between -7 and 22.");
        }
        TextWriter stdout = parseResult.InvocationConfiguration.Output;

        if (compress)
        {
            if (finetune is null || output is not null)
            {
                throw new UsageException("--compress takes BASE and FT, and no --output.");
            }
            BitxResult result = BitxFile.Compress(basePath, finetune, exponent, signMantissa, options, logger, cancellationToken);
            Report(stdout, result, "compressed");
        }
        else
        {
            if (finetune is not null || output is null)
            {
                throw new UsageException("--decompress takes BASE only, and --output.");
            }
            BitxResult result = BitxFile.Decompress(basePath, exponent, signMantissa, output, options, logger, cancellationToken);
            Report(stdout, result, "decompressed");
        }
        return Task.FromResult(ExitCodes.Success);
    }

    private static void Report(TextWriter output, BitxResult result, string verb)
    {
        string mode = result.Mode == BitxMode.Tensors ? $"tensors ({result.PairedTensors} paired with the base)" : "raw (byte for byte)";
        output.WriteLine($"mode:           {mode}");
        output.WriteLine($"original:       {result.OriginalLength,15:N0} bytes");
        output.WriteLine($"exponent:       {result.ExponentLength,15:N0} bytes");
        output.WriteLine($"sign+mantissa:  {result.SignMantissaLength,15:N0} bytes");
        output.WriteLine($"total:          {result.CompressedLength,15:N0} bytes");
        output.WriteLine($"ratio:          {result.Ratio,15:F3}");
        output.WriteLine($"{verb + ":",-16}{result.Elapsed.TotalSeconds,15:F2} s ({result.MegabytesPerSecond:F0} MB/s)");
    }
}
