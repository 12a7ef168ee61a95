using Amazon.S3.Model;

namespace ZipLlm.Store.Backends;

/// <summary>The catalog's files in a bucket: <c>PREFIX/catalog/NAME</c>, roots created by conditional PUT.</summary>
internal sealed partial class S3Backend
{
    private const string CatalogFolder = "catalog/";

    /// <summary>Most bytes a catalog file may be (a segment of every model of a large store).</summary>
    public const long MaxCatalogBytes = 1L << 30;

    private string CatalogPrefix => Store.Prefix + CatalogFolder;

    private static string ManifestVersionOf(string? etag, long? length) =>
        FormattableString.Invariant($"{etag}:{length}");

    /// <inheritdoc/>
    public IEnumerable<(string Key, string Version)> ListManifestVersions() =>
        ListAll(Store.ManifestsPrefix).Select(o => (o.Key[Store.ManifestsPrefix.Length..], ManifestVersionOf(o.ETag, o.Size))).ToList();

    /// <inheritdoc/>
    public IEnumerable<string> ListCatalog() => ListAll(CatalogPrefix).Select(o => o.Key[CatalogPrefix.Length..]).ToList();

    /// <inheritdoc/>
    public byte[]? ReadCatalog(string name)
    {
        try
        {
            return Get(CatalogPrefix + name, MaxCatalogBytes);
        }
        catch (S3RequestException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Not fenced by the leases: a root is created only where no root of its generation is (If-None-Match: *), so one
    /// that lands late either finds its generation taken and is refused, or is still the next one; and a segment is
    /// named by its bytes.
    /// </remarks>
    public bool CreateCatalog(string name, ReadOnlySpan<byte> bytes)
    {
        byte[] body = bytes.ToArray();
        string key = CatalogPrefix + name;
        while (true)
        {
            try
            {
                _connection.Call($"PUT {key} (If-None-Match: *)", (client, token) => client.PutObjectAsync(new PutObjectRequest
                {
                    BucketName = Store.Bucket,
                    Key = key,
                    InputStream = new MemoryStream(body, writable: false),
                    IfNoneMatch = "*",
                }, token));
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
    public void DeleteCatalog(string name)
    {
        string key = CatalogPrefix + name;
        try
        {
            _connection.Call($"DELETE {key}", (client, token) => client.DeleteObjectAsync(Store.Bucket, key, token));
        }
        catch (S3RequestException ex) when (ex.IsNotFound)
        {
            // Gone already.
        }
    }

    /// <inheritdoc/>
    /// <remarks>A lease is deleted when it is released: nothing stays behind.</remarks>
    public void ForgetLock(string name)
    {
    }
}
