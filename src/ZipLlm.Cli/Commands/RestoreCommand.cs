using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Jobs;
using ZipLlm.Reporting;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm restore config.json org/model OUT_DIR</c>: rebuild a model's folder bit for bit, verified.</summary>
internal sealed class RestoreCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Argument<string> s_model = CommonOptions.ModelArgument("The model to restore (org/name).");
    private static readonly Argument<DirectoryInfo> s_output = new("output")
    {
        Description = "Folder to write the model into; created when missing, must be empty unless --force. Locked while the restore runs.",
    };
    private static readonly Option<int?> s_threads = CommonOptions.ThreadsOption();
    private static readonly Option<bool> s_force = new("--force", "-f")
    {
        Description = "Write into a folder that is not empty: files in OUT that are not the model's are deleted, and what stands at the model's paths (files, folders, symlinks: the links, never their targets) is replaced. Refused for /, your home folder, and a folder holding the store or model_dir.",
    };
    private static readonly Option<bool> s_sha256 = new("--sha256")
    {
        Description = "Check each file's SHA-256 (the id the Hugging Face hub lists) instead of its XXH3-128; slower.",
    };
    private static readonly Option<bool> s_json = CommonOptions.JsonOption();

    public RestoreCommand()
        : base("restore", "Rebuild a stored model's folder bit for bit; every file is checked against the hash recorded at ingest before it is put in place.")
    {
        Arguments.Add(s_config);
        Arguments.Add(s_model);
        Arguments.Add(s_output);
        Options.Add(s_threads);
        Options.Add(s_force);
        Options.Add(s_sha256);
        Options.Add(s_json);
        CommonOptions.RequireOrder(this, s_config, s_model, s_output);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = CommonOptions.WithThreads(ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName), parseResult.GetValue(s_threads));
        string modelText = parseResult.GetValue(s_model)!;
        string outputDir = parseResult.GetValue(s_output)!.FullName;
        bool sha256 = parseResult.GetValue(s_sha256);
        using ProgressDisplay? progress = ProgressDisplay.ForTerminal("restore", parseResult);
        logger = new ClearingLogger(logger, progress);
        RestoreResult result = ModelSuggestions.Run(config, modelText, modelId =>
            new RestoreJob(config) { Progress = progress, CheckSha256 = sha256 }.Run(modelId, outputDir, parseResult.GetValue(s_force), cancellationToken));
        double seconds = result.Elapsed.TotalSeconds;
        logger.LogInformation("Restored {Model}: {Files} files, {Bytes} verified, {Seconds:F2} s, {Rate}",
            modelText, result.Files, Sizes.Format(result.Bytes), seconds, Sizes.Rate(seconds <= 0 ? 0 : result.Bytes / seconds));
        if (parseResult.GetValue(s_json))
        {
            JsonOutput.Write(parseResult.InvocationConfiguration.Output,
                new RestoreOutput(modelText, outputDir, result.Files, result.Bytes, seconds, seconds <= 0 ? 0 : result.Bytes / seconds, sha256 ? "sha256" : "xxh3-128"),
                CliJsonContext.Default.RestoreOutput);
        }
        return Task.FromResult(ExitCodes.Success);
    }
}
