using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Jobs;
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

    public RestoreCommand()
        : base("restore", "Rebuild a stored model's folder bit for bit; every file is checked against the hash recorded at ingest before it is put in place.")
    {
        Arguments.Add(s_config);
        Arguments.Add(s_model);
        Arguments.Add(s_output);
        Options.Add(s_threads);
        Options.Add(s_force);
        Options.Add(s_sha256);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = CommonOptions.WithThreads(ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName), parseResult.GetValue(s_threads));
        ModelId modelId = ModelId.Parse(parseResult.GetValue(s_model));
        using ProgressDisplay? progress = ProgressDisplay.ForTerminal("restore");
        logger = new ClearingLogger(logger, progress);
        RestoreResult result = new RestoreJob(config) { Progress = progress, CheckSha256 = parseResult.GetValue(s_sha256) }
            .Run(modelId, parseResult.GetValue(s_output)!.FullName, parseResult.GetValue(s_force), cancellationToken);
        logger.LogInformation("Restored {Model}: {Files} files, {MB:F1} MB verified, {Seconds:F2} s, {MBps:F0} MB/s",
            modelId, result.Files, result.Bytes / 1e6, result.Elapsed.TotalSeconds, result.MegabytesPerSecond);
        return Task.FromResult(ExitCodes.Success);
    }
}
