using ZipLlm.Config;
using ZipLlm.Domain;
namespace ZipLlm.Store.Backends;

/// <summary>
/// A store in an S3 bucket, <c>s3://BUCKET/PREFIX</c>, and the keys of everything in it:
/// <code>
/// PREFIX/FORMAT                    the format marker, as in a folder
/// PREFIX/objects/abcdef...         immutable encoded objects named by the SHA-256 of their original bytes
/// PREFIX/manifests/org/name.json   one per stored model, created last with a conditional PUT (If-None-Match: *)
/// PREFIX/locks/NAME/exclusive      the lease of an exclusive holder of the lock NAME
/// PREFIX/locks/NAME/shared.ID      the lease of each shared holder
/// </code>
/// </summary>
internal sealed class S3Location
{
    /// <summary>The scheme a <c>storage_dir</c> starts with to name a bucket.</summary>
    public const string Scheme = "s3://";

    private S3Location(string bucket, string prefix)
    {
        Bucket = bucket;
        Prefix = prefix;
    }

    /// <summary>The bucket.</summary>
    public string Bucket { get; }

    /// <summary>The prefix of every key of the store: empty, or ending in <c>/</c>.</summary>
    public string Prefix { get; }

    /// <summary>The store's URL, <c>s3://BUCKET/PREFIX</c> (no trailing slash).</summary>
    public string Url => $"{Scheme}{Bucket}/{Prefix.TrimEnd('/')}".TrimEnd('/');

    /// <summary>Key of the format marker.</summary>
    public string FormatKey => Prefix + "FORMAT";

    /// <summary>Prefix of every object's key.</summary>
    public string ObjectsPrefix => Prefix + "objects/";

    /// <summary>Prefix of every manifest's key.</summary>
    public string ManifestsPrefix => Prefix + "manifests/";

    /// <summary>Prefix of every lock's leases.</summary>
    public string LocksPrefix => Prefix + "locks/";

    /// <summary>Key of the space kept for leases at a full quota (<see cref="S3Locks.ReserveBytes"/> of zeros).</summary>
    public string ReserveKey => LocksPrefix + "reserve";

    /// <summary>Whether <paramref name="storageDir"/> names a bucket rather than a folder.</summary>
    public static bool IsS3(string storageDir) => storageDir.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses <c>s3://BUCKET[/PREFIX]</c>.</summary>
    /// <exception cref="ArgumentException">Not such a URL, or the bucket name is not one S3 allows.</exception>
    public static S3Location Parse(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (!IsS3(url))
        {
            throw new UsageException($"{url} is not an s3:// URL.", nameof(url));
        }
        string rest = url[Scheme.Length..];
        int slash = rest.IndexOf('/');
        string bucket = slash < 0 ? rest : rest[..slash];
        string prefix = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
        if (!IsBucketName(bucket))
        {
            throw new UsageException($"{url}: \"{bucket}\" is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens).", nameof(url));
        }
        if (prefix.Split('/').Any(part => part is "." or ".." || (part.Length == 0 && prefix.Length > 0)) || prefix.Any(char.IsControl))
        {
            throw new UsageException($"{url}: the prefix \"{prefix}\" has an empty, \".\" or \"..\" part, or a control character.", nameof(url));
        }
        return new S3Location(bucket, prefix.Length == 0 ? "" : prefix + "/");
    }

    /// <summary>Key of the object named <paramref name="hash"/>.</summary>
    public string ObjectKey(ContentHash hash) => ObjectsPrefix + hash.Hex;

    /// <summary>Key of the manifest stored under <paramref name="key"/> (<c>org/name.json</c>).</summary>
    public string ManifestKey(string key) => ManifestsPrefix + key;

    /// <summary>Prefix of the leases of the lock <paramref name="name"/>.</summary>
    public string LockPrefix(string name) => $"{LocksPrefix}{name}/";

    /// <summary>The URL of <paramref name="key"/>, for messages.</summary>
    public string UrlOf(string key) => $"{Scheme}{Bucket}/{key}";

    /// <inheritdoc/>
    public override string ToString() => Url;

    private static bool IsBucketName(string name) =>
        name.Length is >= 3 and <= 63
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-')
        && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1]);
}
