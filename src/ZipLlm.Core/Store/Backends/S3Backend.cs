using Amazon.S3.Model;
using ZipLlm.Domain;

namespace ZipLlm.Store.Backends;

/// <summary>
/// A store in an S3 bucket under a prefix, laid out as <see cref="S3Location"/> says, for many machines at once:
/// objects are checked for (HEAD) before they are written and, named by their content, harmless to write twice;
/// large ones go up in parts (<see cref="S3Upload"/>), and reads are ranged GETs (<see cref="S3ReadSession"/>),
/// so no object is ever whole in memory. A manifest is created with a single conditional PUT
/// (<c>If-None-Match: *</c>): of two writers one wins. Locks are leases in the bucket (<see cref="S3Locks"/>),
/// and manifests are written and anything deleted only while the leases this store holds are trusted.
/// Every request passes one gate of <see cref="MaxRequests"/> (<c>--threads</c>).
/// </summary>
internal sealed partial class S3Backend : IStoreBackend, IDisposable
{
    /// <summary>Bytes of each part of a multipart upload (S3 wants at least 5 MiB but for the last).</summary>
    public const int DefaultPartSize = 8 << 20;

    /// <summary>How long a lease lasts without renewal before other machines may break it.</summary>
    public static readonly TimeSpan DefaultLeaseDuration = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The longest a request can live after it is sent, however long the network holds it: S3 (and RADOS Gateway) refuse
    /// a signed request whose date is more than 15 minutes from theirs (<c>RequestTimeTooSkewed</c>), and 5 minutes more
    /// allow for the sender's clock running ahead of the server's. A lease is broken by time only this long after it
    /// would otherwise be stale, so no request of its holder can land after another process took the lock.
    /// </summary>
    public static readonly TimeSpan MaxRequestLifetime = TimeSpan.FromMinutes(20);

    /// <summary>Objects under this prefix (<c>refreshed/HASH</c>, empty) say when an object was last reused by a compress.</summary>
    private const string RefreshedFolder = "refreshed/";

    /// <summary>Multipart uploads older than this are taken for those of killed writers and aborted.</summary>
    public static readonly TimeSpan StaleUploadAge = TimeSpan.FromHours(6);

    /// <summary>Largest manifest read (a manifest of a model of 100,000 tensors is about 30 MB).</summary>
    public const long MaxManifestBytes = 256 << 20;

    private static readonly string[] s_storeEntries = ["FORMAT", "objects/", "manifests/", "locks/", RefreshedFolder, CatalogFolder];

    private readonly S3Connection _connection;
    private readonly S3Locks _locks;

    /// <summary>
    /// A backend for the store at <paramref name="location"/>, reached through a client configured from the
    /// environment as the AWS tools are (see <see cref="S3Connection.CreateClient"/>).
    /// </summary>
    /// <param name="location">The bucket and prefix.</param>
    /// <param name="maxRequests">Requests in flight at most (the run's thread count).</param>
    /// <param name="leaseDuration">How long a lease lasts unrenewed; <see cref="DefaultLeaseDuration"/> when null.</param>
    /// <exception cref="ArgumentException">An endpoint variable holds no URL.</exception>
    public S3Backend(S3Location location, int maxRequests, TimeSpan? leaseDuration = null)
        : this(location, maxRequests, null, leaseDuration, S3Locks.LocalHostKey())
    {
    }

    /// <summary>
    /// A backend configured from <paramref name="environment"/> rather than the process's variables, and with a
    /// host key of the caller's (tests: another machine is another host key, or none), a request lifetime
    /// (<see cref="MaxRequestLifetime"/> when null; tests shorten it, and their network with it) and a clock.
    /// </summary>
    internal S3Backend(S3Location location, int maxRequests, Func<string, string?>? environment, TimeSpan? leaseDuration, string? hostKey,
        TimeSpan? requestLifetime = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRequests);
        Store = location;
        // Connections beyond the gate's requests serve the leases' renewals.
        _connection = new S3Connection(S3Connection.CreateClient(maxRequests + 4, environment), maxRequests);
        _locks = new S3Locks(_connection, location, leaseDuration ?? DefaultLeaseDuration, hostKey, requestLifetime ?? MaxRequestLifetime, time ?? TimeProvider.System);
    }

    /// <summary>The bucket and prefix.</summary>
    public S3Location Store { get; }

    /// <summary>Requests in flight at most.</summary>
    public int MaxRequests => _connection.MaxRequests;

    /// <summary>Bytes of each part of a multipart upload.</summary>
    public int PartSize { get; init; } = DefaultPartSize;

    /// <inheritdoc/>
    public string Location => Store.Url;

    /// <inheritdoc/>
    public string? LocalRoot => null;

    /// <inheritdoc/>
    /// <exception cref="InvalidDataException">The prefix lies under another store's.</exception>
    public byte[]? ReadFormat()
    {
        // A FORMAT at any shorter prefix (a store above this one): one GET per level, a 404 each when all is well.
        string[] parts = Store.Prefix.TrimEnd('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int depth = 0; depth < parts.Length; depth++)
        {
            string outer = depth == 0 ? "" : string.Join('/', parts[..depth]) + "/";
            byte[]? marker;
            try
            {
                marker = Get(outer + "FORMAT", 4096);
            }
            catch (S3RequestException ex) when (ex.IsNotFound || ex.IsAccessDenied)
            {
                continue; // none there, or not this key's to read (a policy that grants the store's prefix alone)
            }
            catch (InvalidDataException)
            {
                continue; // too large to be a store's marker
            }
            if (marker.AsSpan().StartsWith(StoreLayout.FormatMagic))
            {
                throw StoreLayout.NestedStore(Location, $"{S3Location.Scheme}{Store.Bucket}/{outer.TrimEnd('/')}".TrimEnd('/'));
            }
        }
        try
        {
            return Get(Store.FormatKey, 4096);
        }
        catch (S3RequestException ex) when (ex.IsNotFound)
        {
            return null; // no such key, or no such bucket
        }
    }

    /// <inheritdoc/>
    public void Create(ReadOnlySpan<byte> format)
    {
        byte[] marker = format.ToArray();
        ListObjectsV2Response listing;
        try
        {
            listing = List(Store.Prefix, delimiter: "/", maxKeys: 100);
        }
        catch (S3RequestException ex) when (ex.IsNotFound && ex.Code == "NoSuchBucket")
        {
            _connection.Call($"create bucket {Store.Bucket}", (client, token) => client.PutBucketAsync(Store.Bucket, token));
            listing = List(Store.Prefix, delimiter: "/", maxKeys: 100);
        }
        // Another process may be creating the store at this very moment: its FORMAT and folders are expected here.
        IEnumerable<string> entries = (listing.S3Objects ?? []).Select(o => o.Key).Concat(listing.CommonPrefixes ?? []).Select(k => k[Store.Prefix.Length..]);
        if (entries.Any(e => !s_storeEntries.Contains(e)))
        {
            throw new IOException($"{Location} holds keys that are not a zipllm store's; refusing to write into it.");
        }
        try
        {
            _connection.Call($"PUT {Store.FormatKey}", (client, token) => client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = Store.Bucket,
                Key = Store.FormatKey,
                InputStream = new MemoryStream(marker, writable: false),
                IfNoneMatch = "*",
            }, token));
        }
        catch (S3RequestException ex) when (ex.IsPreconditionFailed || ex.IsConflict)
        {
            // Made by another creator, with the same bytes.
        }
        _locks.KeepReserve();
    }

    /// <inheritdoc/>
    public ObjectStat? StatObject(ContentHash hash)
    {
        try
        {
            GetObjectMetadataResponse head = _connection.Call($"HEAD {Store.ObjectKey(hash)}", (client, token) =>
                client.GetObjectMetadataAsync(Store.Bucket, Store.ObjectKey(hash), token));
            return new ObjectStat(head.ContentLength, WrittenAt(head.LastModified));
        }
        catch (S3RequestException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public IObjectUpload CreateObject(ContentHash hash) => new S3Upload(_connection, Store.Bucket, Store.ObjectKey(hash), PartSize);

    /// <inheritdoc/>
    public IObjectReadSession OpenReadSession() => new S3ReadSession(_connection, Store);

    /// <inheritdoc/>
    /// <remarks>An object's write time is the later of its own and that of its <c>refreshed/</c> marker (see <see cref="RefreshObject"/>).</remarks>
    public IEnumerable<ListedObject> ListObjects()
    {
        var refreshed = new Dictionary<ContentHash, DateTimeOffset>();
        foreach (S3Object entry in ListAll(RefreshedPrefix))
        {
            if (ContentHash.TryParse(entry.Key[RefreshedPrefix.Length..], out ContentHash hash))
            {
                refreshed[hash] = WrittenAt(entry.LastModified);
            }
        }
        foreach (S3Object entry in ListAll(Store.ObjectsPrefix))
        {
            if (ContentHash.TryParse(entry.Key[Store.ObjectsPrefix.Length..], out ContentHash hash))
            {
                DateTimeOffset written = WrittenAt(entry.LastModified);
                if (refreshed.TryGetValue(hash, out DateTimeOffset reused) && reused > written)
                {
                    written = reused;
                }
                yield return new ListedObject(hash, new ObjectStat(entry.Size ?? 0, written));
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// An object cannot be rewritten in place without copying its bytes (a self-copy of one over 5 GB needs a multipart
    /// copy): an empty marker, <c>refreshed/HASH</c>, says when it was reused instead, and the listing reads it.
    /// </remarks>
    public void RefreshObject(ContentHash hash)
    {
        string key = RefreshedPrefix + hash.Hex;
        _connection.Call($"PUT {key}", (client, token) => client.PutObjectAsync(new PutObjectRequest
        {
            BucketName = Store.Bucket,
            Key = key,
            InputStream = new MemoryStream([], writable: false),
        }, token));
    }

    /// <inheritdoc/>
    /// <exception cref="IOException">A lease this store holds is no longer trusted, or the request was not answered while it was.</exception>
    public void DeleteObject(ContentHash hash)
    {
        Fenced(Store.ObjectKey(hash), "DELETE", (client, token) => client.DeleteObjectAsync(Store.Bucket, Store.ObjectKey(hash), token));
        string marker = RefreshedPrefix + hash.Hex;
        Fenced(marker, "DELETE", (client, token) => client.DeleteObjectAsync(Store.Bucket, marker, token));
    }

    private string RefreshedPrefix => Store.Prefix + RefreshedFolder;

    /// <summary>
    /// Sends a request that changes the store on the strength of the leases held: it must be answered before the
    /// nearest one stops being trusted, or it is given up (the SDK's retries with it). One still held up in the network
    /// after that cannot land once another process has broken the lease: leases are broken only
    /// <see cref="MaxRequestLifetime"/> after they would otherwise be stale.
    /// </summary>
    /// <exception cref="IOException">A lease is no longer trusted, or the request was not answered in time.</exception>
    private T Fenced<T>(string key, string verb, Func<Amazon.S3.IAmazonS3, CancellationToken, Task<T>> request, string? detail = null)
    {
        TimeSpan left = _locks.EnsureHeld();
        using var deadline = new CancellationTokenSource();
        if (left != Timeout.InfiniteTimeSpan)
        {
            deadline.CancelAfter(left);
        }
        try
        {
            return _connection.Call($"{verb} {key}{detail}", request, deadline.Token);
        }
        catch (OperationCanceledException ex) when (deadline.IsCancellationRequested)
        {
            throw new IOException(
                $"S3 {verb} {key}: not answered before the store's lock lease ran out ({left.TotalSeconds:F0} s); nothing more is written or deleted. Run the command again.", ex);
        }
    }

    /// <inheritdoc/>
    /// <remarks>An object is durable once its PUT (or the completion of its upload) is answered: nothing to do.</remarks>
    public void FlushObjects()
    {
    }

    /// <inheritdoc/>
    public string? ManifestVersion(string key)
    {
        try
        {
            GetObjectMetadataResponse head = _connection.Call($"HEAD {Store.ManifestKey(key)}", (client, token) =>
                client.GetObjectMetadataAsync(Store.Bucket, Store.ManifestKey(key), token));
            // A manifest is written whole by one PUT, so its ETag (an MD5 of its bytes) changes with it; a listing
            // gives the same two (ListManifestVersions), where its time is given to another precision than a HEAD's.
            return ManifestVersionOf(head.ETag, head.ContentLength);
        }
        catch (S3RequestException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public byte[]? ReadManifest(string key)
    {
        try
        {
            return Get(Store.ManifestKey(key), MaxManifestBytes);
        }
        catch (S3RequestException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public IEnumerable<string> ListManifests() => ListAll(Store.ManifestsPrefix).Select(o => o.Key[Store.ManifestsPrefix.Length..]).ToList();

    /// <inheritdoc/>
    /// <exception cref="IOException">A lease this store holds is no longer trusted, or the server cannot be reached.</exception>
    public bool CreateManifest(string key, ReadOnlySpan<byte> bytes)
    {
        byte[] body = bytes.ToArray();
        // A model is stored from this moment: not on the strength of a lease that another process broke unseen.
        _locks.ConfirmHeld();
        while (true)
        {
            try
            {
                // The PUT must land while the leases hold: it is given up when the nearest one runs out.
                Fenced(Store.ManifestKey(key), "PUT", (client, token) => client.PutObjectAsync(new PutObjectRequest
                {
                    BucketName = Store.Bucket,
                    Key = Store.ManifestKey(key),
                    InputStream = new MemoryStream(body, writable: false),
                    IfNoneMatch = "*",
                }, token), " (If-None-Match: *)");
                return true;
            }
            catch (S3RequestException ex) when (ex.IsPreconditionFailed)
            {
                return false;
            }
            catch (S3RequestException ex) when (ex.IsConflict)
            {
                Thread.Sleep(Random.Shared.Next(50, 200)); // another conditional write of it was under way
            }
        }
    }

    /// <inheritdoc/>
    /// <exception cref="IOException">A lease this store holds is no longer trusted, or the request was not answered while it was.</exception>
    public void DeleteManifest(string key) =>
        Fenced(Store.ManifestKey(key), "DELETE", (client, token) => client.DeleteObjectAsync(Store.Bucket, Store.ManifestKey(key), token));

    /// <inheritdoc/>
    public string DescribeManifest(string key) => Store.UrlOf(Store.ManifestKey(key));

    /// <inheritdoc/>
    public IDisposable Lock(string name, bool exclusive, TimeSpan timeout, CancellationToken cancellationToken) =>
        _locks.Acquire(name, exclusive, timeout, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>
    /// Aborts multipart uploads begun more than <see cref="StaleUploadAge"/> ago (by this machine's clock): what
    /// killed writers left. A live writer's upload of one object takes seconds.
    /// </remarks>
    public void SweepTemporary()
    {
        DateTime before = DateTime.UtcNow - StaleUploadAge;
        string? keyMarker = null, uploadMarker = null;
        while (true)
        {
            string? key = keyMarker, upload = uploadMarker;
            ListMultipartUploadsResponse page = _connection.Call($"list uploads under {Store.ObjectsPrefix}", (client, token) =>
                client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest
                {
                    BucketName = Store.Bucket,
                    Prefix = Store.ObjectsPrefix,
                    KeyMarker = key,
                    UploadIdMarker = upload,
                }, token));
            foreach (MultipartUpload stale in (page.MultipartUploads ?? []).Where(u => (u.Initiated ?? DateTime.MaxValue).ToUniversalTime() < before))
            {
                try
                {
                    _connection.Call($"abort upload of {stale.Key}", (client, token) => client.AbortMultipartUploadAsync(Store.Bucket, stale.Key, stale.UploadId, token));
                }
                catch (S3RequestException ex) when (ex.IsNotFound)
                {
                    // Completed or aborted meanwhile.
                }
            }
            if (page.IsTruncated != true)
            {
                return;
            }
            (keyMarker, uploadMarker) = (page.NextKeyMarker, page.NextUploadIdMarker);
        }
    }

    /// <summary>Closes the client.</summary>
    public void Dispose() => _connection.Dispose();

    private static DateTimeOffset WrittenAt(DateTime? modified) =>
        modified is { } time ? new DateTimeOffset(time.ToUniversalTime(), TimeSpan.Zero) : DateTimeOffset.MinValue;

    /// <summary>The bytes of <paramref name="key"/>, refused past <paramref name="maxBytes"/>.</summary>
    private byte[] Get(string key, long maxBytes) => _connection.Call($"GET {key}", async (client, token) =>
    {
        using GetObjectResponse response = await client.GetObjectAsync(Store.Bucket, key, token).ConfigureAwait(false);
        if (response.ContentLength > maxBytes)
        {
            throw new InvalidDataException($"{Store.UrlOf(key)} is {response.ContentLength} bytes, more than the {maxBytes} it may be.");
        }
        byte[] bytes = new byte[response.ContentLength];
        await response.ResponseStream.ReadExactlyAsync(bytes, token).ConfigureAwait(false);
        return bytes;
    });

    private ListObjectsV2Response List(string prefix, string? delimiter, int maxKeys) =>
        _connection.Call($"LIST {prefix}", (client, token) => client.ListObjectsV2Async(new ListObjectsV2Request
        {
            BucketName = Store.Bucket,
            Prefix = prefix,
            Delimiter = delimiter,
            MaxKeys = maxKeys,
        }, token));

    private IEnumerable<S3Object> ListAll(string prefix) => _connection.ListAll(Store.Bucket, prefix, gated: true, CancellationToken.None);
}
