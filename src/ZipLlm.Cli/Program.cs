using System.CommandLine;
using System.CommandLine.Invocation;
using ZipLlm.Cli.Commands;
using ZipLlm.Codecs;

namespace ZipLlm.Cli;

/// <summary>Entry point of the <c>zipllm</c> command.</summary>
public static class Program
{
    /// <summary>Builds the verb tree; tests invoke it through <c>Parse(...).InvokeAsync()</c>.</summary>
    public static RootCommand CreateRootCommand()
    {
        var root = new RootCommand("ZipLLM: store families of LLM checkpoints (safetensors) compactly and restore them bit for bit.");
        root.Options.Add(BaseCommand.VerbosityOption);
        root.Options.Add(BaseCommand.QuietOption);
        root.Subcommands.Add(new CompressCommand());
        root.Subcommands.Add(new RestoreCommand());
        root.Subcommands.Add(new ListCommand());
        root.Subcommands.Add(new BasesCommand());
        root.Subcommands.Add(new VerifyCommand());
        root.Subcommands.Add(new RemoveCommand());
        root.Subcommands.Add(new GcCommand());
        root.Subcommands.Add(new ModelsCommand());
        root.Subcommands.Add(new BitxCommand());
        root.Subcommands.Add(new ServeCommand());
        root.Subcommands.Add(new MountCommand());
        return root;
    }

    /// <summary>Runs the command line and returns the process exit code.</summary>
    public static async Task<int> Main(string[] args)
    {
        // SIGINT and SIGTERM are handled by every verb (TerminationSignals): System.CommandLine's own handler would
        // end the process a fixed time after the signal, cleaned up or not.
        return await InvokeAsync(args, new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
    }

    /// <summary>
    /// Parses and runs <paramref name="args"/>. A malformed command line is one line and a pointer to the verb's help
    /// on <see cref="InvocationConfiguration.Error"/>, and exit code 2 (System.CommandLine's own report is every
    /// error, with .NET type names, then the whole help text, and exit code 1, which here means an internal error).
    /// </summary>
    public static async Task<int> InvokeAsync(string[] args, InvocationConfiguration invocation)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        ParseResult parseResult = CreateRootCommand().Parse(args);
        if (parseResult.Action is ParseErrorAction)
        {
            UsageErrors.Write(parseResult, invocation.Error);
            return ExitCodes.UsageError;
        }
        int exitCode = await parseResult.InvokeAsync(invocation).ConfigureAwait(false);
        return parseResult.Errors.Count > 0 && exitCode != ExitCodes.Success ? ExitCodes.UsageError : exitCode;
    }
}
