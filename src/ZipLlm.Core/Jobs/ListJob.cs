using ZipLlm.Config;
using ZipLlm.Store;

namespace ZipLlm.Jobs;

/// <summary>What a store holds.</summary>
/// <param name="Manifests">Every intact model, ordered by id.</param>
/// <param name="DamagedManifests">One line for each manifest that does not read or check.</param>
/// <param name="StoredBytes">Bytes of every object at rest.</param>
internal sealed record StoreListing(IReadOnlyList<Manifest> Manifests, IReadOnlyList<string> DamagedManifests, long StoredBytes)
{
    /// <summary>Bytes of the models' files.</summary>
    public long OriginalBytes => Manifests.Sum(m => m.OriginalBytes);

    /// <summary>Each model's role as the store holds it now (<see cref="Manifest.RolesAmong"/>).</summary>
    public IReadOnlyDictionary<ModelId, ModelRoleKind> Roles { get; } = Manifest.RolesAmong(Manifests);
}

/// <summary>The <c>list</c> job: the models a store holds and the bytes it takes, under the store lock held shared.</summary>
internal sealed class ListJob(ZipLlmConfig config)
{
    /// <summary>Runs the job.</summary>
    public StoreListing Run(CancellationToken cancellationToken = default)
    {
        ModelStore store = StoreAccess.Open(config, create: false);
        // Shared, as readers take it: a remove or gc under way would otherwise delete objects as they are counted.
        using IDisposable storeLock = store.LockStore(exclusive: false, cancellationToken);
        ManifestScan scan = store.ScanManifests();
        long stored = store.Objects.List().Sum(o => o.Stat.Length);
        return new StoreListing(scan.Manifests, scan.Damaged.Select(d => d.Problem).ToList(), stored);
    }
}
