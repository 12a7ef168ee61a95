using System.CommandLine;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Lineage;

namespace ZipLlm.Cli.Commands;

/// <summary>Arguments and options several verbs share.</summary>
internal static class CommonOptions
{
    /// <summary>Creates the config.json argument (arguments cannot be shared between commands).</summary>
    public static Argument<FileInfo> ConfigArgument() => new("config")
    {
        Description = "Path of config.json (model_dir, storage_dir, models_to_process, base_ft_path, threads).",
    };

    /// <summary>
    /// Creates the model id argument (<c>org/name</c>, checked as the command line is parsed; a bare name is left to
    /// the verb, which suggests the stored ids of that name); optional when <paramref name="optional"/>.
    /// </summary>
    public static Argument<string> ModelArgument(string description, bool optional = false)
    {
        var argument = new Argument<string>("model")
        {
            Description = description,
            Arity = optional ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne,
        };
        argument.Validators.Add(result =>
        {
            if (result.Tokens is [{ } token] && !ModelId.TryParse(token.Value, out _, out string? problem)
                && token.Value.Contains('/') && !LooksLikeConfig(token.Value))
            {
                result.AddError($"Invalid model id: {problem}");
            }
        });
        return argument;
    }

    /// <summary>
    /// Turns arguments given in the wrong order into one usage error that says so: the config where the model goes
    /// (<c>restore org/model config.json OUT</c>), or the output folder where the model goes (<c>restore config.json OUT org/model</c>).
    /// </summary>
    public static void RequireOrder(Command command, Argument<FileInfo> config, Argument<string> model, Argument<DirectoryInfo>? output = null)
    {
        command.Validators.Add(result =>
        {
            string? configText = TokenOf(result, config), modelText = TokenOf(result, model), outputText = output is null ? null : TokenOf(result, output);
            string usage = output is null ? $"zipllm {command.Name} CONFIG MODEL" : $"zipllm {command.Name} CONFIG MODEL OUTPUT";
            if (configText is not null && modelText is not null && IsModelId(configText) && !LooksLikeConfig(configText) && LooksLikeConfig(modelText))
            {
                result.AddError($"{UsageErrors.WrongOrder}: the config comes first, then the model ({usage}); got the model '{configText}' where the config goes");
            }
            else if (modelText is not null && outputText is not null && !IsModelId(modelText) && IsModelId(outputText) && !Directory.Exists(outputText))
            {
                result.AddError($"{UsageErrors.WrongOrder}: the model comes before the output folder ({usage}); got '{modelText}' where the model goes");
            }
        });
    }

    /// <summary>Creates the --json option of a verb whose result can be one JSON document (schema: docs/json.md).</summary>
    public static Option<bool> JsonOption() => new("--json")
    {
        Description = "Print the result as one JSON document on stdout instead of text (schema: docs/json.md); logs stay on stderr.",
    };

    /// <summary>Creates the --threads option: 1 to <see cref="ZipLlmConfig.MaxThreads"/>, checked as the command line is parsed, before any work.</summary>
    public static Option<int?> ThreadsOption() => new("--threads", "-t")
    {
        Description = $"Worker threads, 1 to {ZipLlmConfig.MaxThreads} (default: threads from config.json, else all cores).",
        CustomParser = result =>
        {
            string text = result.Tokens is [{ } token] ? token.Value : "";
            if (!int.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int value))
            {
                result.AddError($"--threads must be a whole number from 1 to {ZipLlmConfig.MaxThreads}, not '{text}'.");
                return null;
            }
            if (value is < 1 or > ZipLlmConfig.MaxThreads)
            {
                result.AddError($"--threads must be from 1 to {ZipLlmConfig.MaxThreads}, not {value}.");
                return null;
            }
            return value;
        },
    };

    /// <summary>Creates the --bases option of the verbs that choose bases: how base_ft.json is taken.</summary>
    public static Option<BasesMode> BasesOption() => new("--bases")
    {
        Description = "How base_ft.json is taken: 'auto' (default) checks it, and each model card's base_model, against the other models and "
            + "stores each model against the one it is smallest against (or alone); 'strict' takes base_ft.json as law (required then).",
        DefaultValueFactory = _ => BasesMode.Auto,
        CustomParser = result =>
        {
            string text = result.Tokens is [{ } token] ? token.Value : "";
            switch (text.ToLowerInvariant())
            {
                case "auto":
                    return BasesMode.Auto;
                case "strict":
                    return BasesMode.Strict;
                default:
                    result.AddError($"--bases must be 'auto' or 'strict', not '{text}'.");
                    return BasesMode.Auto;
            }
        },
    };

    /// <summary>Creates the --max-depth option: the longest chain of bases, 1 to <see cref="LineagePlanner.MaxMaxDepth"/>.</summary>
    public static Option<int> MaxDepthOption() => new("--max-depth")
    {
        Description = $"Longest chain of bases a model may end (a finetune of a finetune of a base is 2), 1 to {LineagePlanner.MaxMaxDepth}; "
            + $"a model whose best base is already that deep is stored against an ancestor. Default {LineagePlanner.DefaultMaxDepth}.",
        DefaultValueFactory = _ => LineagePlanner.DefaultMaxDepth,
        CustomParser = result =>
        {
            string text = result.Tokens is [{ } token] ? token.Value : "";
            if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value)
                || value is < 1 or > LineagePlanner.MaxMaxDepth)
            {
                result.AddError($"--max-depth must be a whole number from 1 to {LineagePlanner.MaxMaxDepth}, not '{text}'.");
                return LineagePlanner.DefaultMaxDepth;
            }
            return value;
        },
    };

    private static string? TokenOf(System.CommandLine.Parsing.CommandResult result, Argument argument) =>
        result.GetResult(argument) is { Tokens: [{ } token] } ? token.Value : null;

    private static bool IsModelId(string text) => ModelId.TryParse(text, out _, out _);

    private static bool LooksLikeConfig(string text) =>
        text.EndsWith(".json", StringComparison.OrdinalIgnoreCase);

    /// <summary>The config with its thread count replaced by <paramref name="threads"/> when the option was given.</summary>
    /// <exception cref="ArgumentException">The option is out of range (the parser's validator reports it first).</exception>
    public static ZipLlmConfig WithThreads(ZipLlmConfig config, int? threads)
    {
        if (threads is not { } value)
        {
            return config;
        }
        if (value is < 1 or > ZipLlmConfig.MaxThreads)
        {
            throw new UsageException($"--threads must be from 1 to {ZipLlmConfig.MaxThreads}, not {value}.");
        }
        return config.WithThreads(value);
    }
}
