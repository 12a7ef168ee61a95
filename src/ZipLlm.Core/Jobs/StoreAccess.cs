using ZipLlm.Config;
using ZipLlm.Store;
using ZipLlm.Store.Backends;

namespace ZipLlm.Jobs;

/// <summary>The one place a job turns a config's <c>storage_dir</c> into an open store (and so into a backend).</summary>
public static class StoreAccess
{
    /// <summary>Opens the store <paramref name="config"/> names, creating it when <paramref name="create"/> is set.</summary>
    /// <exception cref="DirectoryNotFoundException">There is no store there and <paramref name="create"/> is not set.</exception>
    /// <exception cref="NotSupportedException">The store is of a newer or unknown format.</exception>
    /// <exception cref="IOException">The location holds something that is not a store.</exception>
    public static ModelStore Open(ZipLlmConfig config, bool create) => ModelStore.Open(new FolderBackend(config.StorageDir), create);
}
