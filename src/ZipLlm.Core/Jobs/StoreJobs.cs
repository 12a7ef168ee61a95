using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Session;
using ZipLlm.Store;

namespace ZipLlm.Jobs;

/// <summary>The <c>restore</c> job: the config's store, its lock shared, one model rebuilt (<see cref="StoreSession.Restore"/>).</summary>
internal sealed class RestoreJob(ZipLlmConfig config)
{
    /// <summary>Reports bytes restored.</summary>
    public IProgress<ByteProgress>? Progress { get; init; }

    /// <summary>Check each file's SHA-256 instead of its XXH3-128.</summary>
    public bool CheckSha256 { get; init; }

    /// <summary>Runs the job; <paramref name="force"/> replaces what is in the folder (never the config's model folder).</summary>
    /// <inheritdoc cref="ModelRestorer.Restore" path="/exception"/>
    public RestoreResult Run(ModelId modelId, string outputDir, bool force, CancellationToken cancellationToken = default)
    {
        using StoreSession session = StoreSession.Open(config, new StoreSessionOptions());
        using IDisposable storeLock = session.LockStore(exclusive: false, cancellationToken);
        return session.UnderLock(storeLock, $"restoring {modelId}",
            () => session.Restore(modelId, outputDir, new RestoreRequest(force, CheckSha256, [config.ModelDir]), Progress, cancellationToken));
    }
}

/// <summary>The <c>verify</c> job: the config's store, its lock shared, one model or all checked (<see cref="StoreSession.Verify"/>).</summary>
internal sealed class VerifyJob(ZipLlmConfig config)
{
    /// <summary>Reports bytes checked.</summary>
    public IProgress<ByteProgress>? Progress { get; init; }

    /// <summary>Called as each model's check is done, with its problems (none when intact).</summary>
    public Action<ModelId, IReadOnlyList<string>>? ModelChecked { get; init; }

    /// <summary>Runs the job on <paramref name="modelId"/>, or on every stored model when null.</summary>
    /// <exception cref="KeyNotFoundException">The model named is not stored.</exception>
    public VerifyReport Run(ModelId? modelId, CancellationToken cancellationToken = default)
    {
        using StoreSession session = StoreSession.Open(config, new StoreSessionOptions());
        using IDisposable storeLock = session.LockStore(exclusive: false, cancellationToken);
        // What it found missing, if the lease was lost meanwhile, another process's remove or gc explains: no verdict.
        return session.UnderLock(storeLock, "verifying", () => session.Verify(modelId, Progress, ModelChecked, cancellationToken),
            report => report.FirstProblem);
    }
}

/// <summary>The <c>list</c> job: the config's store, its lock shared (a remove or gc would delete objects as they are counted).</summary>
internal sealed class ListJob(ZipLlmConfig config)
{
    /// <summary>Runs the job.</summary>
    public StoreListing Run(CancellationToken cancellationToken = default)
    {
        using StoreSession session = StoreSession.Open(config, new StoreSessionOptions());
        using IDisposable storeLock = session.LockStore(exclusive: false, cancellationToken);
        return session.List();
    }
}

/// <summary>The <c>remove</c> job (<see cref="StoreSession.Remove"/>).</summary>
internal sealed class RemoveJob(ZipLlmConfig config, ILogger logger)
{
    /// <summary>Runs the job.</summary>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    public GarbageReport Run(ModelId modelId, CancellationToken cancellationToken = default)
    {
        using StoreSession session = StoreSession.Open(config, new StoreSessionOptions { Logger = logger });
        return session.Remove(modelId, cancellationToken);
    }
}

/// <summary>The <c>gc</c> job (<see cref="StoreSession.CollectGarbage"/>).</summary>
internal sealed class GcJob(ZipLlmConfig config, ILogger logger)
{
    /// <summary>Runs the job: deletes (or with <paramref name="dryRun"/> lists) what nothing needs and is older than <paramref name="grace"/>.</summary>
    public GarbageReport Run(bool dryRun, TimeSpan grace, CancellationToken cancellationToken = default)
    {
        using StoreSession session = StoreSession.Open(config, new StoreSessionOptions { Logger = logger });
        return session.CollectGarbage(dryRun, grace, cancellationToken);
    }
}
