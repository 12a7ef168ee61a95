using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Hub;
using ZipLlm.Reporting;
using ZipLlm.Setup;
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
/// <c>zipllm models setup CONFIG [--synthetic] [--size tiny|small|default] [--seed N]</c>: downloads
/// every model of the config's list and writes base_ft.json; generates the synthetic family instead
/// only when asked, or when HF_TOKEN is unset and the hub cannot be reached, and then says so in a banner.
/// A download that fails otherwise is an error.
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

    public static readonly Option<int> SeedOption = new("--seed")
    {
        Description = "Seed of the synthetic family; the same seed and size give the same bytes.",
        DefaultValueFactory = _ => SyntheticFamily.DefaultSeed,
    };

    public static readonly Option<string?> EndpointOption = new("--endpoint")
    {
        Description = "Hub address (default: $HF_ENDPOINT, else https://huggingface.co). The token is read from $HF_TOKEN (or $HUGGING_FACE_HUB_TOKEN).",
    };

    public ModelsSetupCommand()
        : base("setup", "Download the models listed in the config (HF_TOKEN from the environment) and write base_ft.json, or generate a synthetic family offline.")
    {
        Arguments.Add(ConfigArgument);
        Options.Add(SyntheticOption);
        Options.Add(SizeOption);
        Options.Add(SeedOption);
        Options.Add(EndpointOption);
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
        var options = new ModelSetupOptions
        {
            Synthetic = parseResult.GetValue(SyntheticOption),
            Size = SyntheticSizes.Parse(parseResult.GetRequiredValue(SizeOption)),
            Seed = parseResult.GetValue(SeedOption),
            Hub = hub,
        };

        ModelSetupResult result = await ModelSetup.RunAsync(config, options, logger, cancellationToken).ConfigureAwait(false);

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
        return ExitCodes.Success;
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
