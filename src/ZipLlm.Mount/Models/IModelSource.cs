namespace ZipLlm.Mount.Models;

/// <summary>What the mount reads from a store: its models, and ranges of their files. <see cref="ZipLlmStore"/> is one.</summary>
internal interface IModelSource
{
    /// <summary>Where the store is (for messages).</summary>
    string Location { get; }

    /// <summary>Every stored model with its files (<see cref="ZipLlmStore.ListModelsAsync"/>).</summary>
    Task<IReadOnlyList<StoredModel>> ListModelsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Bytes of the version of a stored file whose SHA-256 is <paramref name="sha256"/>
    /// (<see cref="ZipLlmStore.ReadFileVersionAsync"/>), with its
    /// failures: an <see cref="IOException"/> when the model stores other bytes at that path now.
    /// </summary>
    ValueTask<int> ReadFileAsync(string modelId, string path, string sha256, long offset, Memory<byte> destination, CancellationToken cancellationToken);
}

/// <summary>A <see cref="ZipLlmStore"/> as a <see cref="IModelSource"/>.</summary>
internal sealed class StoreModelSource(ZipLlmStore store) : IModelSource
{
    public string Location => store.Location;

    public Task<IReadOnlyList<StoredModel>> ListModelsAsync(CancellationToken cancellationToken) => store.ListModelsAsync(cancellationToken);

    public ValueTask<int> ReadFileAsync(string modelId, string path, string sha256, long offset, Memory<byte> destination, CancellationToken cancellationToken) =>
        store.ReadFileVersionAsync(modelId, path, sha256, offset, destination, cancellationToken);
}
