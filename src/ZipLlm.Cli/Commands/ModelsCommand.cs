using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Hub;
using ZipLlm.Reporting;
using ZipLlm.Setup;
using ZipLlm.Store;
using ZipLlm.Synthetic;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm models</c>: groups the verbs that fetch or make test models.</summary>
internal sealed class ModelsCommand : Command
{
    public ModelsCommand()
        : base("models", "Get the models a config lists: download them from the Hugging Face hub, or generate a synthetic family.")
    {
        Subcommands.Add(new ModelsSetupCommand());
    }
}

/// <summary>
/// <c>zipllm models setup CONFIG [--revision REV] [--include GLOB] [--exclude GLOB] [--downloads N] [--synthetic] [--size tiny|small|default] [--seed N]</c>:
/// downloads every model of the config's list and writes base_ft.json; generates the synthetic family instead
/// only when asked, or when no token is set and the hub cannot be reached (or HF_HUB_OFFLINE is set and models are
/// missing), and then says so in a banner. A download that fails otherwise is an error.
/// </summary>
internal sealed class ModelsSetupCommand : BaseCommand
{
    public static readonly Argument<string> ConfigArgument = new("CONFIG")
    {
        Description = "Path of config.json (relative paths inside it are resolved against its folder).",
        DefaultValueFactory = _ => "config.json",
        Arity = ArgumentArity.ZeroOrOne,
    };

    public static readonly Option<bool> SyntheticOption = new("--synthetic")
    {
        Description = "Generate the synthetic model family instead of downloading, even when the hub is reachable.",
    };

    public static readonly Option<string> SizeOption = CreateSizeOption();

    public static readonly Option<bool> RetrainedOption = new("--retrained")
    {
        Description = "With --synthetic: add synthetic/llama-retrained, a model retrained far from the base (for codec measurements).",
    };

    public static readonly Option<int> SeedOption = new("--seed")
    {
        Description = "Seed of the synthetic family; the same seed and size give the same bytes.",
        DefaultValueFactory = _ => SyntheticFamily.DefaultSeed,
    };

    public static readonly Option<string?> EndpointOption = new("--endpoint")
    {
        Description = "Hub address (default: $HF_ENDPOINT, else https://huggingface.co). The token is read from $HF_TOKEN (or $HUGGING_FACE_HUB_TOKEN), "
            + "else from the file 'hf auth login' writes ($HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token). "
            + "HF_HUB_OFFLINE=1 makes no request: the models already on disk are used.",
    };

    public static readonly Option<string?> RevisionOption = CreateRevisionOption();

    public static readonly Option<string[]> IncludeOption = new("--include")
    {
        Description = "Download only files matching this glob (the path in the repository; '*' crosses folders; 'dir/' is a whole folder). Repeatable. Default: every file.",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    public static readonly Option<string[]> ExcludeOption = new("--exclude")
    {
        Description = "Skip files matching this glob. Repeatable. Default: the other weight formats (*.bin *.pt *.pth *.ckpt *.gguf *.onnx *.h5 *.msgpack *.ot ...) "
            + "when the repository has safetensors; giving --exclude replaces that default. Hidden files (.gitattributes) are never downloaded.",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    public static readonly Option<int> DownloadsOption = CreateDownloadsOption();

    public ModelsSetupCommand()
        : base("setup", "Download the models listed in the config (the token from HF_TOKEN, or the file hf auth login writes) and write base_ft.json, or generate a synthetic family offline.")
    {
        Arguments.Add(ConfigArgument);
        Options.Add(SyntheticOption);
        Options.Add(RetrainedOption);
        Options.Add(SizeOption);
        Options.Add(SeedOption);
        Options.Add(EndpointOption);
        Options.Add(RevisionOption);
        Options.Add(IncludeOption);
        Options.Add(ExcludeOption);
        Options.Add(DownloadsOption);
    }

    private static Option<string?> CreateRevisionOption()
    {
        var option = new Option<string?>("--revision")
        {
            Description = "Branch, tag or commit to download (default: main) for every model the list does not pin as org/name@REV. "
                + "The commit it resolves to is recorded, and compress puts it in the manifest (shown by list).",
        };
        option.Validators.Add(result =>
        {
            if (result.Tokens is [{ } token] && HubRevision.Validate(token.Value) is { } problem)
            {
                result.AddError($"--revision: {problem}.");
            }
        });
        return option;
    }

    private static Option<int> CreateDownloadsOption()
    {
        var option = new Option<int>("--downloads")
        {
            Description = $"Files downloaded at once, 1 to {HubClientOptions.MaxDownloads}.",
            DefaultValueFactory = _ => 4,
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 1 or > HubClientOptions.MaxDownloads)
            {
                result.AddError($"--downloads must be from 1 to {HubClientOptions.MaxDownloads}, not {result.GetValueOrDefault<int>()}.");
            }
        });
        return option;
    }

    private static Option<string> CreateSizeOption()
    {
        var option = new Option<string>("--size")
        {
            Description = "Size of each synthetic model: tiny (< 1 MB), small (~20 MB) or default (~250 MB).",
            DefaultValueFactory = _ => "default",
        };
        option.AcceptOnlyFromAmong([.. SyntheticSizes.Names]);
        return option;
    }

    protected override async Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetRequiredValue(ConfigArgument));
        HubClientOptions hub = HubClientOptions.FromEnvironment();
        string? endpoint = parseResult.GetValue(EndpointOption);
        if (endpoint is not null)
        {
            hub = hub with { Endpoint = HubClientOptions.ParseEndpoint(endpoint) };
        }
        string[] include = parseResult.GetValue(IncludeOption) ?? [], exclude = parseResult.GetValue(ExcludeOption) ?? [];
        hub = hub with
        {
            MaxConcurrentDownloads = parseResult.GetValue(DownloadsOption),
            Files = new HubFileSelection(include, parseResult.GetResult(ExcludeOption) is null ? null : exclude),
        };
        using ProgressDisplay? progress = ProgressDisplay.ForTerminal("download", parseResult);
        if (progress is not null)
        {
            progress.Items = ListedModels(config);
        }
        logger = new ClearingLogger(logger, progress);
        var options = new ModelSetupOptions
        {
            Synthetic = parseResult.GetValue(SyntheticOption),
            Size = SyntheticSizes.Parse(parseResult.GetRequiredValue(SizeOption)),
            Retrained = parseResult.GetValue(RetrainedOption),
            Seed = parseResult.GetValue(SeedOption),
            Hub = hub,
            Revision = parseResult.GetValue(RevisionOption),
            Progress = progress is null ? null : new TransferProgress(progress),
        };

        ModelSetupResult result = await ModelSetup.RunAsync(config, options, logger, cancellationToken).ConfigureAwait(false);
        progress?.Clear();

        TextWriter output = parseResult.InvocationConfiguration.Output;
        foreach (ModelSetupEntry entry in result.Models)
        {
            string role = entry.Role.Kind switch
            {
                ModelRoleKind.Finetune => $"finetune of {entry.Role.BaseId}",
                ModelRoleKind.Base => "base",
                _ => "standalone",
            };
            await output.WriteLineAsync($"{entry.ModelId}: {role}; {entry.Action}").ConfigureAwait(false);
        }
        logger.LogInformation("{Count} models ready in {ModelDir} ({Mode}); model list {List}; base/finetune map {BaseFt}",
            result.Models.Count, config.ModelDir, result.Mode, result.ModelListPath, result.BaseFtPath);
        if (result.Mode == ModelSetupMode.Synthetic && logger.IsEnabled(LogLevel.Warning))
        {
            await parseResult.InvocationConfiguration.Error.WriteAsync(SyntheticBanner(config, result)).ConfigureAwait(false);
        }
        else if (result.Mode == ModelSetupMode.Local)
        {
            logger.LogWarning("{Reason}", result.Reason);
        }
        return ExitCodes.Success;
    }

    /// <summary>The listed models, for the progress line's n/N; none when the list does not read (setup says why).</summary>
    private static IReadOnlyList<string> ListedModels(ZipLlmConfig config)
    {
        try
        {
            return File.Exists(config.ModelsToProcess) ? ModelList.Load(config.ModelsToProcess).Models.Select(m => m.ToString()).ToList() : [];
        }
        catch (InvalidDataException)
        {
            return [];
        }
    }

    /// <summary>A model's download as the progress line draws it: the model, its files n/N, bytes, rate and ETA.</summary>
    private sealed class TransferProgress(ProgressDisplay display) : IProgress<HubTransferProgress>
    {
        public void Report(HubTransferProgress value) =>
            display.Report(new ByteProgress(value.ModelId.ToString(), value.BytesDone, value.BytesTotal, $"files {value.FilesDone}/{value.FilesTotal}"));
    }

    /// <summary>The block on stderr that says the models are synthetic, why, and how to get the listed ones.</summary>
    internal static string SyntheticBanner(ZipLlmConfig config, ModelSetupResult result)
    {
        long bytes = result.Models.Sum(m => DirectorySize(m.Folder));
        string rule = new('*', 78);
        return string.Join('\n',
        [
            rule,
            "* SYNTHETIC MODELS, not the ones your list names.",
            $"* Why: {result.Reason}.",
            $"* Made: {result.Models.Count} synthetic models ({Sizes.Format(bytes)}) in {config.ModelDir}.",
            $"* Their list {result.ModelListPath} stands in for {config.ModelsToProcess}",
            "* (left as it was): compress reads it instead, and says so.",
            $"* For the real models: set {HubClientOptions.TokenVariable} (and be online), then run ./setup_test_models.sh again.",
            rule,
            "",
        ]);
    }

    private static long DirectorySize(string folder) =>
        Directory.Exists(folder) ? new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) : 0;
}
