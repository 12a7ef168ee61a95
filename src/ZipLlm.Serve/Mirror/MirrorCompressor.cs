using Microsoft.Extensions.Logging;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Lineage;
using ZipLlm.Session;
using ZipLlm.Store;

namespace ZipLlm.Serve.Mirror;

/// <summary>
/// Stores a verified staging folder through the engine session, as <c>zipllm compress</c> stores a model: under the
/// store lock (shared) and the model's lock, the base chosen by lineage among the models stored (the card's
/// <c>base_model</c> a hint), the upstream commit recorded as the revision.
/// </summary>
internal sealed class MirrorCompressor(ZipLlmStore store, ILogger logger)
{
    /// <summary>Compresses <paramref name="folder"/> as <paramref name="modelId"/> at <paramref name="commit"/>; a model stored meanwhile by another server is skipped.</summary>
    /// <exception cref="IOException">The store cannot be written, or a file is malformed.</exception>
    public Task StoreAsync(string folder, string modelId, string commit, CancellationToken cancellationToken)
    {
        StoreSession session = store.Session;
        return session.RunAsync("mirror", () =>
        {
            ModelId id = ModelId.Parse(modelId);
            using IDisposable storeLock = session.LockStore(exclusive: false, cancellationToken);
            using var planner = new LineagePlanner(session.Store, session.Workers.Options, logger);
            BaseHint? hint = ListedFamily.CardHint(id, folder);
            ModelId? chosen = null;
            IngestResult result = session.Compress(id, folder, sketch =>
            {
                BaseDecision decision = planner.Choose(id, sketch, hint);
                chosen = decision.Base;
                return chosen is { } b ? new ModelRole(ModelRoleKind.Finetune, b) : ModelRole.Standalone;
            }, commit, null, cancellationToken);
            if (result.Skipped)
            {
                logger.LogInformation("Mirrored {Model} at {Commit}: already stored", modelId, commit);
            }
            else
            {
                logger.LogInformation("Mirrored {Model} at {Commit}{Base}: {In} bytes in, {Stored} bytes stored", modelId, commit,
                    chosen is { } b ? $" against {b}" : "", result.OriginalBytes, result.AddedBytes);
            }
            return result;
        });
    }
}
