namespace ZipLlm.Store.Backends;

/// <summary>The one place a store's location (a config's <c>storage_dir</c>, a library caller's) becomes a backend.</summary>
internal static class StoreAccess
{
    /// <summary>
    /// The backend of the store at <paramref name="location"/>: a folder, or a bucket for <c>s3://BUCKET/PREFIX</c> (the
    /// client configured from the AWS environment variables, with <paramref name="threads"/> requests in flight, its
    /// leases timed by <paramref name="time"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The s3:// URL, or an AWS endpoint variable, is malformed.</exception>
    public static IStoreBackend OpenBackend(string location, int threads, TimeProvider? time = null) =>
        S3Location.IsS3(location)
            ? new S3Backend(S3Location.Parse(location), threads, null, null, S3Locks.LocalHostKey(), null, time)
            : new FolderBackend(location);
}
