using System.CommandLine;
using ZipLlm.Config;

namespace ZipLlm.Cli.Commands;

/// <summary>Arguments and options several verbs share.</summary>
internal static class CommonOptions
{
    /// <summary>Creates the config.json argument (arguments cannot be shared between commands).</summary>
    public static Argument<FileInfo> ConfigArgument() => new("config")
    {
        Description = "Path of config.json (model_dir, storage_dir, models_to_process, base_ft_path, threads).",
    };

    /// <summary>Creates the model id argument.</summary>
    public static Argument<string> ModelArgument(string description) => new("model")
    {
        Description = description,
    };

    /// <summary>Creates the --threads option: 1 to <see cref="ZipLlmConfig.MaxThreads"/>, checked as the command line is parsed, before any work.</summary>
    public static Option<int?> ThreadsOption()
    {
        var option = new Option<int?>("--threads", "-t")
        {
            Description = $"Worker threads, 1 to {ZipLlmConfig.MaxThreads} (default: threads from config.json, else all cores).",
        };
        option.Validators.Add(result =>
        {
            // Read from the token: a value that is not a number is reported by the parser itself, and reading it
            // through GetValueOrDefault would throw here.
            if (result.Tokens is [{ } token] && int.TryParse(token.Value, System.Globalization.CultureInfo.InvariantCulture, out int value)
                && value is < 1 or > ZipLlmConfig.MaxThreads)
            {
                result.AddError($"--threads must be from 1 to {ZipLlmConfig.MaxThreads}, not {value}.");
            }
        });
        return option;
    }

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
            throw new ArgumentException($"--threads must be from 1 to {ZipLlmConfig.MaxThreads}, not {value}.");
        }
        return config.WithThreads(value);
    }
}
