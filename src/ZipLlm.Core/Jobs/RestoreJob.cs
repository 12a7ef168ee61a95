using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Store;

namespace ZipLlm.Jobs;

/// <summary>
/// The <c>restore</c> job: opens the store, holds its lock shared (so no remove or gc deletes what it reads), and
/// rebuilds one model's folder on the run's workers, every file checked before it is put in place.
/// </summary>
internal sealed class RestoreJob(ZipLlmConfig config)
{
    /// <summary>Reports bytes restored.</summary>
    public IProgress<ByteProgress>? Progress { get; init; }

    /// <summary>Check each file's SHA-256 instead of its XXH3-128.</summary>
    public bool CheckSha256 { get; init; }

    /// <summary>Runs the job.</summary>
    /// <param name="modelId">The stored model.</param>
    /// <param name="outputDir">Folder to write.</param>
    /// <param name="force">Replace what is in the folder (see <see cref="ModelRestorer.Restore"/>).</param>
    /// <param name="cancellationToken">Stops the work; nothing of the files not yet in place is left.</param>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="StoreDamageException">The store is damaged.</exception>
    /// <exception cref="IOException">The output folder cannot be written, or is refused.</exception>
    public RestoreResult Run(ModelId modelId, string outputDir, bool force, CancellationToken cancellationToken = default)
    {
        ModelStore store = StoreAccess.Open(config, create: false);
        using IDisposable storeLock = store.LockStore(exclusive: false, cancellationToken);
        using var pool = new WorkerPool(config.Threads);
        var restorer = new ModelRestorer(store, pool)
        {
            Progress = Progress,
            CheckSha256 = CheckSha256,
            // --force sweeps the output folder: never one holding the models the config compresses from.
            ProtectedFolders = [config.ModelDir],
        };
        return restorer.Restore(modelId, outputDir, force, cancellationToken);
    }
}
