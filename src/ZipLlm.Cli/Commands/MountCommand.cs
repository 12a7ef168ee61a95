using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Mount.Fuse;
using ZipLlm.Mount.Models;

namespace ZipLlm.Cli.Commands;

/// <summary>
/// <c>zipllm mount config.json MOUNTPOINT</c>: every stored model as a read-only folder <c>MOUNTPOINT/ORG/NAME/</c>
/// (FUSE), decoded on read, until unmounted (<c>fusermount3 -u</c>: exit 0) or signalled (SIGINT, SIGTERM: exit 130).
/// </summary>
internal sealed class MountCommand : BaseCommand
{
    private static readonly TimeSpan s_initTimeout = TimeSpan.FromSeconds(30);
    private const int ReadaheadKilobytes = 1024;

    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Argument<DirectoryInfo> s_mountPoint = new("mountpoint")
    {
        Description = "An empty folder to show the store in: MOUNTPOINT/ORG/NAME/ holds each model's files.",
    };
    private static readonly Option<int?> s_threads = CommonOptions.ThreadsOption();
    private static readonly Option<int> s_cacheMegabytes = new("--cache-mb")
    {
        Description = "Megabytes of decoded chunks kept for the reads after them, one cache for every file (0 keeps none). Default 256.",
        DefaultValueFactory = _ => 256,
        CustomParser = result =>
        {
            string text = result.Tokens is [{ } token] ? token.Value : "";
            if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value) || value > 1 << 20)
            {
                result.AddError($"--cache-mb must be a whole number from 0 to {1 << 20}, not '{text}'.");
                return 256;
            }
            return value;
        },
    };
    private static readonly Option<bool> s_allowOther = new("--allow-other")
    {
        Description = "Let every user of the machine read the mount (by default only the user who mounted it).",
    };

    public MountCommand()
        : base("mount", "Show every stored model as a read-only folder (FUSE), decoded as it is read; runs until unmounted (fusermount3 -u) or Ctrl+C.")
    {
        Arguments.Add(s_config);
        Arguments.Add(s_mountPoint);
        Options.Add(s_threads);
        Options.Add(s_cacheMegabytes);
        Options.Add(s_allowOther);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = CommonOptions.WithThreads(ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName), parseResult.GetValue(s_threads));
        string mountPoint = Path.TrimEndingDirectorySeparator(parseResult.GetValue(s_mountPoint)!.FullName);
        FuseMount.CheckMountPoint(mountPoint);
        int cacheMegabytes = parseResult.GetValue(s_cacheMegabytes);
        using ZipLlmStore store = ZipLlmStore.Open(config.StorageDir, new ZipLlmStoreOptions
        {
            Threads = config.Threads,
            CacheMegabytes = cacheMegabytes,
            Logger = logger,
        });
        // Chunks decoded ahead of a reader wait in the cache: without one, they would be decoded for nothing.
        var fileSystem = new ModelFileSystem(new StoreModelSource(store), TimeProvider.System, logger, FuseNative.GetUid(), FuseNative.GetGid(),
            readAhead: cacheMegabytes == 0 ? 0 : ModelFileSystem.DefaultReadAhead);
        using FuseMount mount = FuseMount.Mount(mountPoint, fileSystem, parseResult.GetValue(s_allowOther), logger);
        try
        {
            await mount.Server.Initialized.WaitAsync(s_initTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new IOException($"The kernel did not set up the mount at {mountPoint} within {s_initTimeout.TotalSeconds:F0} s.");
        }
        mount.RaiseReadahead(ReadaheadKilobytes);
        logger.LogInformation("Mounted {Store} at {MountPoint}", store.Location, mountPoint);
        try
        {
            await mount.Server.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            mount.Unmount();
            logger.LogInformation("Unmounted {MountPoint}", mountPoint);
            throw;
        }
        logger.LogInformation("Unmounted {MountPoint}", mountPoint);
        return ExitCodes.Success;
    }
}
