using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Serve;
using ZipLlm.Serve.Mirror;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary>
/// A mirror in this process: the tiny synthetic family on a <see cref="FakeHub"/> upstream (a real HTTP server on
/// 127.0.0.1), a <c>zipllm serve</c> hub server over an empty store mirroring it, and an HTTP client of the mirror.
/// </summary>
internal sealed class MirrorHarness : IAsyncDisposable
{
    private MirrorHarness(TempDir dir, FakeHub hub, SyntheticFamilyResult family)
    {
        Dir = dir;
        Hub = hub;
        Family = family;
    }

    public TempDir Dir { get; }

    public FakeHub Hub { get; }

    public SyntheticFamilyResult Family { get; }

    public ZipLlmStore Store { get; private set; } = null!;

    public MirrorHubStore Mirror { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    private ZipLlmHubStore _inner = null!;
    private HubServer _server = null!;

    /// <summary>The family written and put on a fake hub; the mirror started with <paramref name="configure"/>'s options.</summary>
    public static async Task<MirrorHarness> StartAsync(Func<MirrorOptions, MirrorOptions>? configure = null, TimeProvider? time = null)
    {
        var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        var hub = new FakeHub();
        foreach (SyntheticModel model in family.Models)
        {
            hub.Add(model.Id.ToString(), [.. FilesOf(model.Folder)]);
        }
        var harness = new MirrorHarness(dir, hub, family);
        var options = new MirrorOptions { Upstream = hub.Endpoint, StagingFolder = dir.Combine("mirror-staging"), MaxRetryWait = TimeSpan.FromSeconds(2) };
        harness.Store = ZipLlmStore.Open(dir.Combine("mirror-store"), new ZipLlmStoreOptions { CreateIfMissing = true, Threads = 2 });
        harness._inner = new ZipLlmHubStore(harness.Store);
        harness.Mirror = new MirrorHubStore(harness._inner, harness.Store, configure?.Invoke(options) ?? options, NullLogger.Instance, time);
        harness._server = HubServer.Create(harness.Mirror, new HubServerOptions { Port = 0 }, NullLoggerFactory.Instance);
        harness.Http = new HttpClient { BaseAddress = await harness._server.StartAsync(CancellationToken.None), Timeout = TimeSpan.FromMinutes(2) };
        return harness;
    }

    /// <summary>Every file of a model folder, by its path there.</summary>
    public static IEnumerable<(string Name, byte[] Content)> FilesOf(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => (Path.GetRelativePath(folder, f).Replace('\\', '/'), File.ReadAllBytes(f)));

    /// <summary>Requests upstream has seen so far.</summary>
    public int UpstreamRequests => Hub.Requests.Count();

    /// <summary>The bytes of the store's folder (objects and manifests).</summary>
    public static long StoredBytes(string storeFolder) =>
        Directory.EnumerateFiles(storeFolder, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".lock", StringComparison.Ordinal)).Sum(f => new FileInfo(f).Length);

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _server.DisposeAsync();
        await Mirror.DisposeAsync();
        _inner.Dispose();
        Store.Dispose();
        await Hub.DisposeAsync();
        Dir.Dispose();
    }
}
