using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Store;

namespace ZipLlm.Jobs;

/// <summary>The <c>gc</c> job: deletes every object no stored model needs (see <see cref="ModelStore.CollectGarbage(bool, TimeSpan, ILogger?, CancellationToken)"/>).</summary>
internal sealed class GcJob(ZipLlmConfig config, ILogger logger)
{
    /// <summary>Runs the job.</summary>
    /// <param name="dryRun">Only count what would be deleted.</param>
    /// <param name="grace">Unneeded objects younger than this are kept.</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <exception cref="StoreDamageException">A manifest is damaged; nothing was deleted.</exception>
    public GarbageReport Run(bool dryRun, TimeSpan grace, CancellationToken cancellationToken = default) =>
        StoreAccess.Open(config, create: false).CollectGarbage(dryRun, grace, logger, cancellationToken);
}
