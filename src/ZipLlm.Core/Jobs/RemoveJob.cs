using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Store;

namespace ZipLlm.Jobs;

/// <summary>The <c>remove</c> job: deletes a model and every object no other stored model needs, under the store lock held exclusively.</summary>
internal sealed class RemoveJob(ZipLlmConfig config, ILogger logger)
{
    /// <summary>Runs the job.</summary>
    /// <exception cref="KeyNotFoundException">The model is not stored (or another process removed it meanwhile).</exception>
    /// <exception cref="StoreDamageException">A manifest is damaged; nothing was removed.</exception>
    public GarbageReport Run(ModelId modelId, CancellationToken cancellationToken = default)
    {
        ModelStore store = StoreAccess.Open(config, create: false);
        // Checked before waiting for the lock, so a mistyped id fails at once; checked again under it by Remove.
        if (!store.Contains(modelId))
        {
            throw new KeyNotFoundException($"Model {modelId} is not in the store");
        }
        try
        {
            return store.Remove(modelId, logger, cancellationToken);
        }
        catch (KeyNotFoundException ex)
        {
            throw new KeyNotFoundException($"Model {modelId} is not in the store (removed by another process meanwhile)", ex);
        }
    }
}
