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

    /// <summary>Creates the --threads option.</summary>
    public static Option<int?> ThreadsOption() => new("--threads", "-t")
    {
        Description = "Worker threads (default: threads from config.json, else all cores).",
    };

    /// <summary>The config with its thread count replaced by <paramref name="threads"/> when the option was given.</summary>
    /// <exception cref="ArgumentException">The option is not positive.</exception>
    public static ZipLlmConfig WithThreads(ZipLlmConfig config, int? threads)
    {
        if (threads is not { } value)
        {
            return config;
        }
        if (value <= 0)
        {
            throw new ArgumentException($"--threads must be a positive number, not {value}.");
        }
        return config.WithThreads(value);
    }
}
