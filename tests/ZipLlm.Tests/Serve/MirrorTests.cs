using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;
using ZipLlm.Config;
using ZipLlm.Jobs;
using ZipLlm.Serve.Mirror;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary>
/// The mirror against a fake upstream hub (a real HTTP server): what clients get, what upstream is asked, and what
/// ends up in the store, through faults of every kind the issue names.
/// </summary>
[Collection("Serve processes")]
public sealed class MirrorTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Mirror_FamilyFileByFile_BytesExactStoredCompressedAndSecondDownloadAsksUpstreamNothing()
    {
        await using MirrorHarness mirror = await MirrorHarness.StartAsync();
        long plain = 0;
        foreach (SyntheticModel model in mirror.Family.Models)
        {
            foreach ((string name, byte[] content) in MirrorHarness.FilesOf(model.Folder))
            {
                Assert.Equal(content, await mirror.Http.GetByteArrayAsync($"/{model.Id}/resolve/main/{name}"));
                plain += content.Length;
            }
            // Each model stored before the next is asked for, so lineage finds its base stored.
            await mirror.Mirror.WhenFetchesDoneAsync();
        }
        IReadOnlyList<StoredModel> stored = await mirror.Store.ListModelsAsync();
        Assert.Equal(mirror.Family.Models.Select(m => m.Id.ToString()).Order(), stored.Select(m => m.Id).Order());
        Assert.All(stored, m => Assert.Equal(FakeHub.Commit(m.Id), m.Revision));
        Assert.Contains(stored, m => m.BaseId is not null);
        Assert.False(Directory.EnumerateFiles(mirror.Dir.Combine("mirror-staging"), "*", SearchOption.AllDirectories).Any(), "staging left behind");

        int upstream = mirror.UpstreamRequests;
        foreach (SyntheticModel model in mirror.Family.Models)
        {
            foreach ((string name, byte[] content) in MirrorHarness.FilesOf(model.Folder))
            {
                using HttpResponseMessage response = await mirror.Http.GetAsync($"/{model.Id}/resolve/main/{name}");
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal(FakeHub.Commit(model.Id.ToString()), response.Headers.GetValues("X-Repo-Commit").Single());
                Assert.Equal(content, await response.Content.ReadAsByteArrayAsync());
            }
        }
        Assert.Equal(upstream, mirror.UpstreamRequests);

        // The same folders compressed by the CLI's job: the mirror's store is within 2% of it.
        CompressReport report = new CompressJob(ZipLlmConfig.Load(mirror.Dir.Combine("config.json")), NullLogger.Instance).Run();
        Assert.Empty(report.Failures);
        long mirrored = MirrorHarness.StoredBytes(mirror.Dir.Combine("mirror-store"));
        long compressed = MirrorHarness.StoredBytes(mirror.Dir.Combine("store"));
        output.WriteLine($"tiny family: {plain} bytes of files (a plain-file mirror), {mirrored} stored by the mirror, {compressed} by compress; "
            + $"upstream requests: {upstream} for the first download, 0 for the second");
        Assert.True(Math.Abs(mirrored - compressed) <= compressed * 0.02, $"mirror {mirrored} bytes, compress {compressed}");
        Assert.True(mirrored < plain / 2, $"mirror {mirrored} bytes of {plain}");
    }

    [NeedsFact("curl")]
    public async Task Mirror_UpstreamSendsWrongBytes_ClientCutNeverA200AndNothingStored()
    {
        await using MirrorHarness mirror = await MirrorHarness.StartAsync();
        SyntheticModel model = mirror.Family.Models[0];
        (string shard, byte[] content) = Largest(model);
        string lie = Convert.ToHexStringLower(SHA256.HashData("not these bytes"u8));
        mirror.Hub.ListedShaOverride[$"{model.Id}/{shard}"] = lie;

        CurlResult result = await Curl.RunAsync(Url(mirror, $"/{model.Id}/resolve/main/{shard}"));
        // A 502 when the check failed before the first byte went out; else the 200's body is cut short (curl 18, or 56 on a reset).
        Assert.True(result.Status == 502 || result.ExitCode is 18 or 56, $"curl {result.ExitCode}, status {result.Status}, {result.Body.Length} bytes");
        Assert.True(result.Body.Length < content.Length);
        await mirror.Mirror.WhenFetchesDoneAsync();
        Assert.Equal(0, mirror.Mirror.FetchesInFlight);
        Assert.Empty(await mirror.Store.ListModelsAsync());
        Assert.DoesNotContain(Directory.EnumerateFiles(mirror.Dir.Combine("mirror-staging"), "*", SearchOption.AllDirectories),
            f => f.Contains(shard, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Mirror_UpstreamCutMidFileAnd503Once_RetriedAndClientGetsExactBytes()
    {
        await using MirrorHarness mirror = await MirrorHarness.StartAsync();
        SyntheticModel model = mirror.Family.Models[0];
        string id = model.Id.ToString();
        (string shard, byte[] content) = Largest(model);
        mirror.Hub.AddFault(FakeHub.ResolvePath(id, shard),
            new FakeResponse(200, content, SendBytes: content.Length / 2), FakeResponse.Text(503, "busy"));

        Assert.Equal(content, await mirror.Http.GetByteArrayAsync($"/{id}/resolve/main/{shard}"));
        await mirror.Mirror.WhenFetchesDoneAsync();
        Assert.Single(await mirror.Store.ListModelsAsync());
        // The retry after the cut asked for the rest only.
        Assert.Contains(mirror.Hub.Requests, r => r.Path == FakeHub.ResolvePath(id, shard) && r.Header("Range") == $"bytes={content.Length / 2}-");
    }

    [Fact]
    public async Task Mirror_UpstreamTooSlow_ClientGetsAnErrorNeverBytesAndNothingStored()
    {
        await using MirrorHarness mirror = await MirrorHarness.StartAsync(o => new MirrorOptions
        {
            Upstream = o.Upstream, StagingFolder = o.StagingFolder, ReadTimeout = TimeSpan.FromMilliseconds(300), MaxAttempts = 2,
        });
        // Every file waits longer than the mirror waits for an answer, on each attempt.
        mirror.Hub.ResolveDelay = TimeSpan.FromSeconds(2);
        string id = mirror.Family.Models[0].Id.ToString();
        using HttpResponseMessage response = await mirror.Http.GetAsync($"/{id}/resolve/main/config.json");
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.DoesNotContain("model_type", await response.Content.ReadAsStringAsync());
        mirror.Hub.ResolveDelay = TimeSpan.Zero;
        await mirror.Mirror.WhenFetchesDoneAsync();
        Assert.Empty(await mirror.Store.ListModelsAsync());
    }

    [Fact]
    public async Task Mirror_HostileIdOrUpstreamPath_NothingFetchedOrWrittenOutsideStaging()
    {
        await using MirrorHarness mirror = await MirrorHarness.StartAsync();
        using HttpResponseMessage dots = await mirror.Http.GetAsync("/%2E%2E/name/resolve/main/config.json");
        Assert.NotEqual(HttpStatusCode.OK, dots.StatusCode);
        Assert.Equal(0, mirror.UpstreamRequests);

        mirror.Hub.Add("evil/model", ("../../escaped.txt", "x"u8.ToArray()), ("config.json", "{}"u8.ToArray()));
        using HttpResponseMessage evil = await mirror.Http.GetAsync("/evil/model/resolve/main/config.json");
        Assert.Equal(HttpStatusCode.BadGateway, evil.StatusCode);
        Assert.Empty(Directory.EnumerateFiles(mirror.Dir.Path, "escaped.txt", SearchOption.AllDirectories));
        Assert.Empty(await mirror.Store.ListModelsAsync());
    }

    [Fact]
    public async Task Mirror_GatedUpstream_401WithHubErrorWithoutTokenAndBytesWithServerToken()
    {
        await using MirrorHarness open = await MirrorHarness.StartAsync();
        string id = open.Family.Models[0].Id.ToString();
        open.Hub.Gated.Add(id);
        using HttpResponseMessage refused = await open.Http.GetAsync($"/{id}/resolve/main/config.json");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("GatedRepo", refused.Headers.GetValues("X-Error-Code").Single());

        await using MirrorHarness withToken = await MirrorHarness.StartAsync(o => new MirrorOptions
        {
            Upstream = o.Upstream, StagingFolder = o.StagingFolder, UpstreamToken = "secret-token",
        });
        withToken.Hub.Gated.Add(id);
        SyntheticModel model = withToken.Family.Models[0];
        Assert.Equal(File.ReadAllBytes(Path.Combine(model.Folder, "config.json")), await withToken.Http.GetByteArrayAsync($"/{id}/resolve/main/config.json"));
    }

    [Fact]
    public async Task Mirror_ForwardTokens_GatedModelServedOnlyToTokensUpstreamAccepted()
    {
        await using MirrorHarness mirror = await MirrorHarness.StartAsync(o => new MirrorOptions
        {
            Upstream = o.Upstream, StagingFolder = o.StagingFolder, ForwardTokens = true,
        });
        SyntheticModel model = mirror.Family.Models[0];
        string id = model.Id.ToString();
        mirror.Hub.Gated.Add(id);
        byte[] config = File.ReadAllBytes(Path.Combine(model.Folder, "config.json"));

        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(mirror, id, null)).StatusCode);
        using (HttpResponseMessage accepted = await SendAsync(mirror, id, "secret-token"))
        {
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
            Assert.Equal(config, await accepted.Content.ReadAsByteArrayAsync());
        }
        await mirror.Mirror.WhenFetchesDoneAsync();
        Assert.Single(await mirror.Store.ListModelsAsync());

        // Stored now: no token, or one upstream refuses, gets nothing; the accepted one reads without asking upstream.
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(mirror, id, null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(mirror, id, "wrong-token")).StatusCode);
        int before = mirror.UpstreamRequests;
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(mirror, id, "wrong-token")).StatusCode);
        using (HttpResponseMessage again = await SendAsync(mirror, id, "secret-token"))
        {
            Assert.Equal(config, await again.Content.ReadAsByteArrayAsync());
        }
        Assert.Equal(before, mirror.UpstreamRequests);
    }

    [Fact]
    public async Task Mirror_429WithShortRetryAfter_WaitedAndServed_LongOnePassedToClient()
    {
        await using MirrorHarness mirror = await MirrorHarness.StartAsync();
        SyntheticModel model = mirror.Family.Models[0];
        string id = model.Id.ToString();
        string revisionPath = $"/api/models/{id}/revision/main";
        mirror.Hub.AddFault(revisionPath, FakeResponse.Text(429, "slow down", new Dictionary<string, string> { ["Retry-After"] = "1" }));
        Assert.Equal(File.ReadAllBytes(Path.Combine(model.Folder, "config.json")), await mirror.Http.GetByteArrayAsync($"/{id}/resolve/main/config.json"));
        Assert.Equal(2, mirror.Hub.Count(r => r.Path == revisionPath));

        string other = mirror.Family.Models[1].Id.ToString();
        mirror.Hub.AddFault($"/api/models/{other}/revision/main", FakeResponse.Text(429, "slow down", new Dictionary<string, string> { ["Retry-After"] = "3600" }));
        using HttpResponseMessage limited = await mirror.Http.GetAsync($"/{other}/resolve/main/config.json");
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.Equal(TimeSpan.FromHours(1), limited.Headers.RetryAfter?.Delta);
        await mirror.Mirror.WhenFetchesDoneAsync();
    }

    [Fact]
    public async Task Mirror_MoreModelsThanMayBeFetchedAtOnce_MissAnswered503WithRetryAfter()
    {
        await using MirrorHarness mirror = await MirrorHarness.StartAsync(o => new MirrorOptions
        {
            Upstream = o.Upstream, StagingFolder = o.StagingFolder, MaxModelsInFlight = 1, AdmissionWait = TimeSpan.Zero,
        });
        mirror.Hub.ResolveDelay = TimeSpan.FromSeconds(2);
        SyntheticModel first = mirror.Family.Models[0];
        Task<byte[]> slow = mirror.Http.GetByteArrayAsync($"/{first.Id}/resolve/main/config.json");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (mirror.Mirror.FetchesInFlight == 0 && !slow.IsCompleted && clock.Elapsed < TimeSpan.FromMinutes(1))
        {
            await Task.Delay(20);
        }
        Assert.Equal(1, mirror.Mirror.FetchesInFlight);
        using HttpResponseMessage busy = await mirror.Http.GetAsync($"/{mirror.Family.Models[1].Id}/resolve/main/config.json");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, busy.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(MirrorHubStore.BusyRetryAfterSeconds), busy.Headers.RetryAfter?.Delta);
        Assert.Equal(File.ReadAllBytes(Path.Combine(first.Folder, "config.json")), await slow);
        mirror.Hub.ResolveDelay = TimeSpan.Zero;
        await mirror.Mirror.WhenFetchesDoneAsync();
    }

    [Fact]
    public async Task Mirror_OfflineOrDenied_RepoNotFoundAndUpstreamNeverAsked()
    {
        await using MirrorHarness offline = await MirrorHarness.StartAsync(o => new MirrorOptions { Upstream = o.Upstream, StagingFolder = o.StagingFolder, Offline = true });
        string id = offline.Family.Models[0].Id.ToString();
        using HttpResponseMessage missing = await offline.Http.GetAsync($"/{id}/resolve/main/config.json");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("RepoNotFound", missing.Headers.GetValues("X-Error-Code").Single());
        Assert.Equal(0, offline.UpstreamRequests);

        await using MirrorHarness denied = await MirrorHarness.StartAsync(o => new MirrorOptions
        {
            Upstream = o.Upstream, StagingFolder = o.StagingFolder, Allow = ["synthetic/*"], Deny = [id],
        });
        Assert.Equal(HttpStatusCode.NotFound, (await denied.Http.GetAsync($"/{id}/resolve/main/config.json")).StatusCode);
        Assert.Equal(0, denied.UpstreamRequests);
        Assert.Equal(HttpStatusCode.OK, (await denied.Http.GetAsync($"/{denied.Family.Models[1].Id}/resolve/main/config.json")).StatusCode);
        await denied.Mirror.WhenFetchesDoneAsync();
    }

    [Fact]
    public async Task Mirror_RefreshAfterUpstreamMainMoved_NewCommitStoredAsRevisionOldOneByCommit()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using MirrorHarness mirror = await MirrorHarness.StartAsync(o => new MirrorOptions
        {
            Upstream = o.Upstream, StagingFolder = o.StagingFolder, RefreshMinutes = 10,
        }, time);
        SyntheticModel model = mirror.Family.Models[0];
        string id = model.Id.ToString();
        byte[] oldConfig = File.ReadAllBytes(Path.Combine(model.Folder, "config.json"));
        Assert.Equal(oldConfig, await mirror.Http.GetByteArrayAsync($"/{id}/resolve/main/config.json"));
        await mirror.Mirror.WhenFetchesDoneAsync();

        // Upstream main moves: one file changed.
        (string Name, byte[] Content)[] v2 = [.. MirrorHarness.FilesOf(model.Folder).Select(f => f.Name == "config.json" ? (f.Name, "{\"v\": 2}\n"u8.ToArray()) : f)];
        mirror.Hub.AddRevision(id, "v2", v2);
        mirror.Hub.MainIs[id] = "v2";
        time.Advance(TimeSpan.FromMinutes(9));
        Assert.True(mirror.Mirror.LastRefresh.IsCompleted);
        Assert.Equal(0, mirror.Hub.Count(r => r.Method == "HEAD"));
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, await mirror.Mirror.LastRefresh);
        await mirror.Mirror.WhenFetchesDoneAsync();

        using HttpResponseMessage main = await mirror.Http.GetAsync($"/{id}/resolve/main/config.json");
        Assert.Equal(FakeHub.Commit(id, "v2"), main.Headers.GetValues("X-Repo-Commit").Single());
        Assert.Equal("{\"v\": 2}\n"u8.ToArray(), await main.Content.ReadAsByteArrayAsync());
        Assert.Equal(oldConfig, await mirror.Http.GetByteArrayAsync($"/{id}/resolve/{FakeHub.Commit(id)}/config.json"));
        // Two revisions stored, one model listed; the second costs next to nothing against the first.
        IReadOnlyList<StoredModel> stored = await mirror.Store.ListModelsAsync();
        Assert.Equal(2, stored.Count);
        StoredModel revision = stored.Single(m => m.Id != id);
        Assert.True(revision.AddedBytes < revision.OriginalBytes / 20, $"{revision.AddedBytes} of {revision.OriginalBytes}");
        string listing = await mirror.Http.GetStringAsync("/api/models");
        Assert.DoesNotContain(".rev-", listing);
    }

    private static (string Name, byte[] Content) Largest(SyntheticModel model) => MirrorHarness.FilesOf(model.Folder).MaxBy(f => f.Content.Length);

    private static string Url(MirrorHarness mirror, string path) => mirror.Http.BaseAddress!.GetLeftPart(UriPartial.Authority) + path;

    private static async Task<HttpResponseMessage> SendAsync(MirrorHarness mirror, string id, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/{id}/resolve/main/config.json");
        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }
        return await mirror.Http.SendAsync(request);
    }
}
