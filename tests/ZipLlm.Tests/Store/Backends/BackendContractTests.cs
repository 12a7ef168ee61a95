using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store.Backends;

/// <summary>
/// What every backend promises, run against each: the folder store, its in-memory twin, and a bucket of a real S3
/// server (a Ceph RADOS Gateway on 127.0.0.1, started once for the test run).
/// </summary>
[Trait("Category", "S3")]
public class BackendContractTests
{
    public static TheoryData<string> Kinds => new() { "folder", "memory", "s3" };

    internal static IStoreBackend Make(string kind, TempDir dir) => kind switch
    {
        "folder" => new FolderBackend(dir.Combine("store")),
        "memory" => new MemoryBackend(),
        "s3" => RgwGateway.Shared.Backend(RgwGateway.NewStoreUrl()),
        _ => throw new ArgumentException(kind),
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Create_ThenReadFormat_GivesTheMarkerAndASecondCreateKeepsIt(string kind)
    {
        using var dir = new TempDir();
        IStoreBackend backend = Make(kind, dir);
        Assert.Null(backend.ReadFormat());
        backend.Create("zipllm-store 1\n"u8);
        backend.Create("zipllm-store 1\n"u8);
        Assert.Equal("zipllm-store 1\n"u8.ToArray(), backend.ReadFormat());
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void CreateObject_Committed_IsListedStatedAndReadByRange(string kind)
    {
        using var dir = new TempDir();
        IStoreBackend backend = Make(kind, dir);
        backend.Create("zipllm-store 1\n"u8);
        byte[] bytes = Enumerable.Range(0, 10_000).Select(i => (byte)(i * 7)).ToArray();
        ContentHash hash = ContentHash.Of(bytes);
        Assert.Null(backend.StatObject(hash));

        using (IObjectUpload upload = backend.CreateObject(hash))
        {
            upload.Stream.Write(bytes);
            Assert.Null(backend.StatObject(hash)); // not visible before the commit
            Assert.Equal(bytes.Length, upload.Commit());
        }

        Assert.Equal(bytes.Length, backend.StatObject(hash)!.Value.Length);
        Assert.InRange(backend.StatObject(hash)!.Value.WrittenAt, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(5));
        // The listing says what a stat says, without a request per object.
        ListedObject listed = Assert.Single(backend.ListObjects());
        Assert.Equal((hash, (long)bytes.Length), (listed.Hash, listed.Stat.Length));
        Assert.InRange(listed.Stat.WrittenAt - backend.StatObject(hash)!.Value.WrittenAt, TimeSpan.FromSeconds(-2), TimeSpan.FromSeconds(2));
        using IObjectReadSession session = backend.OpenReadSession();
        IObjectContent content = session.Open(hash);
        Assert.Equal(bytes.Length, content.Length);
        byte[] middle = new byte[100];
        content.Read(5000, middle);
        Assert.Equal(bytes.AsSpan(5000, 100).ToArray(), middle);
        Assert.Throws<EndOfStreamException>(() => content.Read(9950, new byte[100]));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void CreateObject_DisposedWithoutCommit_LeavesNothing(string kind)
    {
        using var dir = new TempDir();
        IStoreBackend backend = Make(kind, dir);
        backend.Create("zipllm-store 1\n"u8);
        ContentHash hash = ContentHash.Of([1]);
        using (IObjectUpload upload = backend.CreateObject(hash))
        {
            upload.Stream.Write([1]);
        }
        Assert.Null(backend.StatObject(hash));
        Assert.Empty(backend.ListObjects());
        backend.SweepTemporary();
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void DeleteObject_RemovesItAndOpeningItThenIsDamage(string kind)
    {
        using var dir = new TempDir();
        IStoreBackend backend = Make(kind, dir);
        backend.Create("zipllm-store 1\n"u8);
        ContentHash hash = Put(backend, [1, 2, 3]);
        backend.DeleteObject(hash);
        backend.DeleteObject(hash); // absent: no error
        Assert.Null(backend.StatObject(hash));
        using IObjectReadSession session = backend.OpenReadSession();
        var ex = Assert.Throws<StoreDamageException>(() => session.Open(hash));
        Assert.Equal(hash, ex.Object);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void CreateManifest_IsExclusiveAndItsVersionChangesWhenReplaced(string kind)
    {
        using var dir = new TempDir();
        IStoreBackend backend = Make(kind, dir);
        backend.Create("zipllm-store 1\n"u8);
        Assert.Null(backend.ManifestVersion("o/m.json"));
        Assert.Null(backend.ReadManifest("o/m.json"));

        Assert.True(backend.CreateManifest("o/m.json", "first"u8));
        Assert.False(backend.CreateManifest("o/m.json", "second"u8));
        Assert.Equal("first"u8.ToArray(), backend.ReadManifest("o/m.json"));
        Assert.Equal(["o/m.json"], backend.ListManifests());
        string? version = backend.ManifestVersion("o/m.json");
        Assert.NotNull(version);
        Assert.Equal(version, backend.ManifestVersion("o/m.json"));

        backend.DeleteManifest("o/m.json");
        Assert.Null(backend.ManifestVersion("o/m.json"));
        Assert.Empty(backend.ListManifests());
        Thread.Sleep(20); // a folder's version includes the file's time, which ticks with the kernel's coarse clock
        Assert.True(backend.CreateManifest("o/m.json", "third!"u8));
        Assert.NotEqual(version, backend.ManifestVersion("o/m.json"));
        Assert.Contains("o/m.json", backend.DescribeManifest("o/m.json").Replace('\\', '/'));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ListManifestVersions_GivesEachManifestWithTheVersionManifestVersionGives(string kind)
    {
        using var dir = new TempDir();
        IStoreBackend backend = Make(kind, dir);
        backend.Create("zipllm-store 1\n"u8);
        Assert.Empty(backend.ListManifestVersions());
        Assert.True(backend.CreateManifest("o/a.json", "a"u8));
        Assert.True(backend.CreateManifest("p/b.json", "bb"u8));

        var listed = backend.ListManifestVersions().OrderBy(m => m.Key, StringComparer.Ordinal).ToList();

        Assert.Equal(["o/a.json", "p/b.json"], listed.Select(m => m.Key));
        Assert.All(listed, m => Assert.Equal(backend.ManifestVersion(m.Key), m.Version));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void CatalogFiles_CreatedExclusivelyListedReadAndDeleted(string kind)
    {
        using var dir = new TempDir();
        IStoreBackend backend = Make(kind, dir);
        backend.Create("zipllm-store 1\n"u8);
        Assert.Empty(backend.ListCatalog());
        Assert.Null(backend.ReadCatalog("root-000000000001"));

        Assert.True(backend.CreateCatalog("root-000000000001", "one"u8));
        Assert.False(backend.CreateCatalog("root-000000000001", "two"u8));
        Assert.True(backend.CreateCatalog("seg-ab", "segment"u8));

        Assert.Equal("one"u8.ToArray(), backend.ReadCatalog("root-000000000001"));
        Assert.Equal(["root-000000000001", "seg-ab"], backend.ListCatalog().Order(StringComparer.Ordinal));
        backend.DeleteCatalog("seg-ab");
        backend.DeleteCatalog("seg-ab"); // gone already: nothing to do
        Assert.Equal(["root-000000000001"], backend.ListCatalog());
        // A store holding a catalog is still a store: creating it again (another creator at once) is fine.
        backend.Create("zipllm-store 1\n"u8);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Lock_SharedLocksCoexistAndAnExclusiveOneWaitsForThem(string kind)
    {
        using var dir = new TempDir();
        IStoreBackend backend = Make(kind, dir);
        backend.Create("zipllm-store 1\n"u8);
        IDisposable first = backend.Lock("store", exclusive: false, TimeSpan.FromSeconds(5), CancellationToken.None);
        IDisposable second = backend.Lock("store", exclusive: false, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Throws<TimeoutException>(() => backend.Lock("store", exclusive: true, TimeSpan.FromMilliseconds(100), CancellationToken.None));
        using (backend.Lock("other", exclusive: true, TimeSpan.FromSeconds(5), CancellationToken.None))
        {
            // Locks of other names are independent.
        }
        first.Dispose();
        second.Dispose();
        using IDisposable exclusive = backend.Lock("store", exclusive: true, TimeSpan.FromSeconds(5), CancellationToken.None);
        using var cancellation = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        Assert.ThrowsAny<OperationCanceledException>(() => backend.Lock("store", exclusive: false, TimeSpan.FromMinutes(1), cancellation.Token));
    }

    internal static ContentHash Put(IStoreBackend backend, byte[] bytes)
    {
        ContentHash hash = ContentHash.Of(bytes);
        using IObjectUpload upload = backend.CreateObject(hash);
        upload.Stream.Write(bytes);
        upload.Commit();
        return hash;
    }
}
