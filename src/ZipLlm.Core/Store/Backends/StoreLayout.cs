using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Store.Backends;

/// <summary>
/// Where things live in a store, in one place:
/// <code>
/// FORMAT                      "zipllm-store 1": refused when newer or unknown
/// objects/ab/abcdef...        immutable encoded objects named by the SHA-256 of their original bytes
/// manifests/org/name.json     one per stored model, written last and atomically
/// catalog/                    what list, lineage, dedup, remove and gc need of every model: roots and segments
/// tmp/                        files being written (named by process id; stale ones are swept)
/// locks/                      advisory locks: the store (shared by writers, exclusive for removal) and each model
/// </code>
/// </summary>
internal sealed class StoreLayout(string root)
{
    /// <summary>Store format this build reads and writes.</summary>
    public const int FormatVersion = 1;

    /// <summary>First line of the FORMAT file this build writes.</summary>
    public static readonly string FormatLine = $"zipllm-store {FormatVersion}";

    /// <summary>How every store's FORMAT begins, whatever its version: what tells a store from another file of that name.</summary>
    public static ReadOnlySpan<byte> FormatMagic => "zipllm-store "u8;

    /// <summary>The message refusing a store at <paramref name="location"/> inside the store at <paramref name="outer"/>.</summary>
    public static InvalidDataException NestedStore(string location, string outer) =>
        new($"{location} lies inside the zipllm store {outer}: a store inside a store is refused (the outer store's verify would " +
            "report its files as damage, and its remove and gc would refuse to run). Choose a place outside it.");

    /// <summary>The store's root folder.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>The format-version file.</summary>
    public string FormatFile => Path.Combine(Root, "FORMAT");

    /// <summary>Folder of objects.</summary>
    public string ObjectsDir => Path.Combine(Root, "objects");

    /// <summary>Folder of manifests.</summary>
    public string ManifestsDir => Path.Combine(Root, "manifests");

    /// <summary>Folder of files being written.</summary>
    public string TempDir => Path.Combine(Root, "tmp");

    /// <summary>Folder of the catalog: its roots and segments (<see cref="Catalog.StoreCatalog"/>).</summary>
    public string CatalogDir => Path.Combine(Root, "catalog");

    /// <summary>Path of the catalog file <paramref name="name"/>.</summary>
    public string CatalogPath(string name) => Path.Combine(CatalogDir, name);

    /// <summary>Folder of lock files.</summary>
    public string LocksDir => Path.Combine(Root, "locks");

    /// <summary>Path of the object named <paramref name="hash"/>.</summary>
    public string ObjectPath(ContentHash hash) => Path.Combine(ObjectsDir, hash.Hex[..2], hash.Hex);

    /// <summary>Path of the manifest of <paramref name="modelId"/> (<c>org/name</c>: one folder per org, so ids never collide).</summary>
    public string ManifestPath(ModelId modelId) => ManifestPathOfKey(ManifestKey.Of(modelId));

    /// <summary>Path of the manifest stored under <paramref name="key"/> (<c>org/name.json</c>).</summary>
    public string ManifestPathOfKey(string key) => Path.Combine(ManifestsDir, key.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>Path of the lock file of the lock named <paramref name="name"/>.</summary>
    public string LockPath(string name) => Path.Combine(LocksDir, name + ".lock");
}
