using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Store;

namespace ZipLlm.Jobs;

/// <summary>What verify found: each model checked with its problems (none when intact), and damaged manifests.</summary>
/// <param name="Models">Each model checked, in order, with one line per problem.</param>
/// <param name="DamagedManifests">One line for each manifest that does not read or check.</param>
internal sealed record VerifyReport(IReadOnlyList<(ModelId ModelId, IReadOnlyList<string> Problems)> Models, IReadOnlyList<string> DamagedManifests)
{
    /// <summary>Whether everything checked is intact.</summary>
    public bool Intact => DamagedManifests.Count == 0 && Models.All(m => m.Problems.Count == 0);
}

/// <summary>
/// The <c>verify</c> job: holds the store lock shared and decodes every file of one model, or of every stored model,
/// checking each against the hashes recorded at ingest; damage is reported and the rest still checked.
/// </summary>
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
        ModelStore store = StoreAccess.Open(config, create: false);
        using IDisposable storeLock = store.LockStore(exclusive: false, cancellationToken);
        List<ModelId> models;
        IReadOnlyList<string> damaged = [];
        if (modelId is { } named)
        {
            if (!store.Contains(named))
            {
                throw new KeyNotFoundException($"Model {named} is not in the store");
            }
            models = [named];
        }
        else
        {
            ManifestScan scan = store.ScanManifests();
            models = scan.Manifests.Select(m => m.Id).ToList();
            damaged = scan.Damaged.Select(d => d.Problem).ToList();
        }
        using var pool = new WorkerPool(config.Threads);
        var restorer = new ModelRestorer(store, pool);
        var results = new List<(ModelId, IReadOnlyList<string>)>();
        foreach (ModelId model in models)
        {
            IReadOnlyList<string> problems = restorer.Verify(model, Progress, cancellationToken);
            ModelChecked?.Invoke(model, problems);
            results.Add((model, problems));
        }
        return new VerifyReport(results, damaged);
    }
}
