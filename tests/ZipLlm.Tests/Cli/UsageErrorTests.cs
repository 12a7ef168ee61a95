using ZipLlm.Cli;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>A malformed command line, run as a process: one line, a pointer to the verb's help, exit 2, and no .NET type names.</summary>
public class UsageErrorTests
{
    [Theory]
    [InlineData("list", "'bogus' is not a log level", "list", "c.json", "-v", "bogus")]
    [InlineData("restore", "--threads must be a whole number from 1 to 1024, not 'x'", "restore", "c.json", "a/b", "out", "--threads", "x")]
    [InlineData("restore", "restore takes CONFIG MODEL OUTPUT: CONFIG and MODEL and OUTPUT are missing", "restore")]
    [InlineData("restore", "restore takes CONFIG MODEL OUTPUT: MODEL and OUTPUT are missing", "restore", "c.json")]
    [InlineData("verify", "verify takes CONFIG MODEL: CONFIG is missing", "verify")]
    [InlineData("list", "unknown option '--bogus'", "list", "c.json", "--bogus")]
    [InlineData("list", "unexpected argument 'b' (too many arguments)", "list", "a.json", "b", "c")]
    [InlineData("", "unknown verb 'compresss'; did you mean compress?", "compresss", "c.json")]
    [InlineData("", "give a verb: compress, restore, list", "")]
    [InlineData("models", "models takes a verb: setup", "models")]
    [InlineData("models setup", "--size: 'huge' is not one of tiny, small, default", "models", "setup", "--size", "huge")]
    [InlineData("gc", "--grace: 'z' is not a whole number", "gc", "c.json", "--grace", "z")]
    [InlineData("bitx", "--level: 'q' is not a whole number", "bitx", "a", "--level", "q")]
    [InlineData("list", "--quiet and --verbosity say the same thing", "list", "c.json", "-q", "-v", "debug")]
    [InlineData("compress", "--bases must be 'auto' or 'strict', not 'maybe'", "compress", "c.json", "--bases", "maybe")]
    [InlineData("bases", "--max-depth must be a whole number from 1 to 8, not '0'", "bases", "c.json", "--max-depth", "0")]
    [InlineData("compress", "--max-depth must be a whole number from 1 to 8, not '9'", "compress", "c.json", "--max-depth", "9")]
    [InlineData("restore", "Invalid model id: \"org/a/b\" has more than one '/'", "restore", "c.json", "org/a/b", "out")]
    public async Task Cli_MalformedCommandLine_OneLineAndTheVerbsHelpAndExit2(string verb, string message, params string[] args)
    {
        string[] arguments = args is [""] ? [] : args;
        CliResult result = await CliProcess.RunAsync(arguments);
        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        Assert.Equal("", result.StandardOutput);
        string[] lines = result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 2, result.StandardError);
        Assert.StartsWith("zipllm: ", lines[0]);
        Assert.Contains(message, lines[0]);
        Assert.Equal(verb.Length == 0 ? "see 'zipllm --help'" : $"see 'zipllm {verb} --help'", lines[1]);
        Assert.DoesNotContain("System.", result.StandardError);
        Assert.DoesNotContain("Microsoft.", result.StandardError);
    }

    [Theory]
    [InlineData("the config comes first", "restore", "org/model", "config.json", "out")]
    [InlineData("the model comes before the output folder", "restore", "config.json", "out", "org/model")]
    [InlineData("the config comes first", "remove", "org/model", "config.json")]
    [InlineData("the config comes first", "verify", "org/model", "config.json")]
    public async Task Cli_ArgumentsInTheWrongOrder_UsageErrorSaysSo(string message, params string[] args)
    {
        using var dir = new TempDir();
        dir.Write("config.json", "{}");
        CliResult result = await CliProcess.RunAsync(args, dir.Path);
        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        string first = result.StandardError.Split('\n')[0];
        Assert.Contains(UsageErrors.WrongOrder, first);
        Assert.Contains(message, first);
        Assert.False(Directory.Exists(dir.Combine("out")));
    }

    [Theory]
    [InlineData("restore", "synthetic/llama-ful-ft", "synthetic/llama-full-ft")]
    [InlineData("verify", "llama-vocab-ext", "synthetic/llama-vocab-ext")]
    [InlineData("remove", "Synthetic/Llama-Base", "synthetic/llama-base")]
    public async Task Cli_ModelNotInTheStore_SuggestsTheClosestStoredIds(string verb, string asked, string suggested)
    {
        using var dir = new TempDir();
        (SyntheticFamilyResult family, string config) = await CompressedFamily.CreateAsync(dir);

        string[] args = verb == "restore" ? [verb, config, asked, dir.Combine("out")] : [verb, config, asked];
        CliResult result = await CliProcess.RunAsync(args);
        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        Assert.Contains(asked.Contains('/') ? $"{asked} is not in the store" : $"Invalid model id: \"{asked}\" is not of the form org/name", result.StandardError);
        Assert.Contains($"did you mean {suggested}", result.StandardError);
        Assert.False(Directory.Exists(dir.Combine("out")));
        Assert.Equal(family.Models.Count, CompressedFamily.StoredModels(dir));
    }

    [Fact]
    public async Task Cli_ModelNotInTheStoreNorNearAny_SaysOnlyThat()
    {
        using var dir = new TempDir();
        (_, string config) = await CompressedFamily.CreateAsync(dir);
        CliResult result = await CliProcess.RunAsync(["verify", config, "unrelated/thing"]);
        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        Assert.Equal("error: Model unrelated/thing is not in the store", result.StandardError.Split('\n').Single(l => l.StartsWith("error:", StringComparison.Ordinal)));
    }
}
