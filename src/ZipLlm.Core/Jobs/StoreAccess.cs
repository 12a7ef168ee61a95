using ZipLlm.Config;
using ZipLlm.Store;
using ZipLlm.Store.Backends;

namespace ZipLlm.Jobs;

/// <summary>The one place a job turns a config's <c>storage_dir</c> into an open store (and so into a backend).</summary>
internal static class StoreAccess
{
    /// <summary>
    /// Opens the store <paramref name="config"/> names, creating it when <paramref name="create"/> is set: a folder,
    /// or a bucket for a <c>storage_dir</c> of the form <c>s3://BUCKET/PREFIX</c> (the client configured from the
    /// AWS environment variables, with the config's thread count as the requests in flight).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">There is no store there and <paramref name="create"/> is not set.</exception>
    /// <exception cref="NotSupportedException">The store is of a newer or unknown format.</exception>
    /// <exception cref="IOException">The location holds something that is not a store, or cannot be reached.</exception>
    /// <exception cref="ArgumentException">The s3:// URL, or an AWS endpoint variable, is malformed.</exception>
    public static ModelStore Open(ZipLlmConfig config, bool create) => ModelStore.Open(OpenBackend(config), create);

    /// <summary>The backend of the store <paramref name="config"/> names, without opening the store.</summary>
    /// <exception cref="ArgumentException">The s3:// URL, or an AWS endpoint variable, is malformed.</exception>
    public static IStoreBackend OpenBackend(ZipLlmConfig config) => OpenBackend(config.StorageDir, config.Threads);

    /// <summary>The backend of the store at <paramref name="location"/>, a folder or <c>s3://BUCKET/PREFIX</c>, with <paramref name="threads"/> requests in flight for a bucket.</summary>
    /// <exception cref="ArgumentException">The s3:// URL, or an AWS endpoint variable, is malformed.</exception>
    public static IStoreBackend OpenBackend(string location, int threads) =>
        S3Location.IsS3(location)
            ? new S3Backend(S3Location.Parse(location), threads)
            : new FolderBackend(location);
}
