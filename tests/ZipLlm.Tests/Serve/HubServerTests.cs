using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Serve;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

/// <summary>The routes, statuses and headers, on a server over <see cref="FakeHubStore"/> on a free port of 127.0.0.1.</summary>
public sealed class HubServerTests : IAsyncLifetime
{
    private const string Tokens = "tok_acme acme/*\ntok_other other/*\n";
    private static readonly byte[] s_shard = Enumerable.Range(0, 50_000).Select(i => (byte)(i * 7 + i / 251)).ToArray();
    private static readonly byte[] s_config = Encoding.UTF8.GetBytes("{\"model_type\": \"llama\"}\n");
    private readonly FakeHubStore _store = new();
    private HubServer? _server;
    private HubServer? _guarded;
    private HttpClient _http = null!;
    private HttpClient _guardedHttp = null!;
    private HubModel _model = null!;

    public async Task InitializeAsync()
    {
        _model = _store.Add("acme/llama", ("model.safetensors", s_shard), ("config.json", s_config), ("sub/dir/notes.txt", "hi"u8.ToArray()),
            ("broken.safetensors", s_shard));
        _store.Add("other/model", ("config.json", s_config));
        _store.Add("damaged/model", ("bad.json", s_config));
        _store.Add("moved/model", ("replaced.safetensors", s_shard));
        _store.FailFrom("broken.safetensors", 8192);
        _store.FailFrom("bad.json", 0);
        _store.LoseLockOn("replaced.safetensors");
        _server = HubServer.Create(_store, new HubServerOptions { Port = 0 }, NullLoggerFactory.Instance);
        _http = new HttpClient { BaseAddress = await _server.StartAsync(CancellationToken.None) };
        _guarded = HubServer.Create(_store, new HubServerOptions { Port = 0, Tokens = TokenTable.Parse(Tokens, "tokens") }, NullLoggerFactory.Instance);
        _guardedHttp = new HttpClient { BaseAddress = await _guarded.StartAsync(CancellationToken.None) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        _guardedHttp.Dispose();
        await _server!.DisposeAsync();
        await _guarded!.DisposeAsync();
    }

    [Fact]
    public async Task Resolve_WholeFile_BytesAndHubHeaders()
    {
        using HttpResponseMessage response = await _http.GetAsync("/acme/llama/resolve/main/model.safetensors");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(s_shard, await response.Content.ReadAsByteArrayAsync());
        HubFile file = _model.FindFile("model.safetensors")!;
        Assert.Equal($"\"{file.Sha256}\"", response.Headers.ETag!.Tag);
        Assert.Equal($"\"{file.Sha256}\"", Single(response, "X-Linked-Etag"));
        Assert.Equal(s_shard.Length.ToString(), Single(response, "X-Linked-Size"));
        Assert.Equal(_model.Commit, Single(response, "X-Repo-Commit"));
        Assert.Equal("bytes", Assert.Single(response.Headers.AcceptRanges));
        Assert.Equal(s_shard.Length, response.Content.Headers.ContentLength);
        Assert.Equal(new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero), response.Content.Headers.LastModified);
    }

    [Fact]
    public async Task Resolve_SmallFile_ETagIsGitBlobIdAndNoLinkedHeaders()
    {
        using HttpResponseMessage response = await _http.GetAsync("/acme/llama/raw/main/config.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"\"{GitBlobIds.Of(s_config)}\"", response.Headers.ETag!.Tag);
        Assert.False(response.Headers.Contains("X-Linked-Etag"));
        Assert.Equal(s_config, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public void GitBlobIds_Of_MatchesGit()
    {
        // git hash-object of "hello\n".
        Assert.Equal("ce013625030ba8dba906f756967f9e9ca394464a", GitBlobIds.Of("hello\n"u8));
    }

    [Theory]
    [InlineData("bytes=0-9", 0, 9)]
    [InlineData("bytes=4090-4200", 4090, 4200)]
    [InlineData("bytes=-100", 49_900, 49_999)]
    [InlineData("bytes=49990-", 49_990, 49_999)]
    public async Task Resolve_Range_PartialWithContentRange(string range, long first, long last)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/acme/llama/resolve/main/model.safetensors");
        request.Headers.TryAddWithoutValidation("Range", range);
        using HttpResponseMessage response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal($"bytes {first}-{last}/{s_shard.Length}", response.Content.Headers.ContentRange!.ToString());
        Assert.Equal(s_shard[(int)first..(int)(last + 1)], await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData("bytes=50000-")]
    [InlineData("bytes=-0")]
    public async Task Resolve_UnsatisfiableRange_416WithSize(string range)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/acme/llama/resolve/main/model.safetensors");
        request.Headers.TryAddWithoutValidation("Range", range);
        using HttpResponseMessage response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, response.StatusCode);
        Assert.Equal($"bytes */{s_shard.Length}", response.Content.Headers.ContentRange!.ToString());
    }

    [Theory]
    [InlineData("bytes=5-2")]
    [InlineData("bytes=0-0,5-9")]
    public async Task Resolve_InvalidOrMultiRange_WholeFile200(string range)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/acme/llama/resolve/main/model.safetensors");
        request.Headers.TryAddWithoutValidation("Range", range);
        using HttpResponseMessage response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(s_shard, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Resolve_IfNoneMatchCurrent_304WithoutBody()
    {
        HubFile file = _model.FindFile("model.safetensors")!;
        using var request = new HttpRequestMessage(HttpMethod.Get, "/acme/llama/resolve/main/model.safetensors");
        request.Headers.TryAddWithoutValidation("If-None-Match", $"\"other\", \"{file.Sha256}\"");
        using HttpResponseMessage response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData(true, HttpStatusCode.PartialContent)]
    [InlineData(false, HttpStatusCode.OK)]
    public async Task Resolve_IfRange_RangeOnlyWhenTagMatches(bool current, HttpStatusCode expected)
    {
        HubFile file = _model.FindFile("model.safetensors")!;
        using var request = new HttpRequestMessage(HttpMethod.Get, "/acme/llama/resolve/main/model.safetensors");
        request.Headers.TryAddWithoutValidation("Range", "bytes=10-19");
        request.Headers.TryAddWithoutValidation("If-Range", current ? $"\"{file.Sha256}\"" : "\"0000\"");
        using HttpResponseMessage response = await _http.SendAsync(request);
        Assert.Equal(expected, response.StatusCode);
        Assert.Equal(current ? s_shard[10..20] : s_shard, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Head_File_HeadersAndNoRead()
    {
        int opens = _store.Opens;
        using var request = new HttpRequestMessage(HttpMethod.Head, "/acme/llama/resolve/main/model.safetensors");
        using HttpResponseMessage response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(s_shard.Length, response.Content.Headers.ContentLength);
        Assert.Equal(opens, _store.Opens);
    }

    [Theory]
    [InlineData("/acme/llama/resolve/main/missing.bin", HttpStatusCode.NotFound, "EntryNotFound")]
    [InlineData("/acme/nope/resolve/main/config.json", HttpStatusCode.NotFound, "RepoNotFound")]
    [InlineData("/acme/llama/resolve/v2/config.json", HttpStatusCode.NotFound, "RevisionNotFound")]
    [InlineData("/api/models/acme/nope", HttpStatusCode.NotFound, "RepoNotFound")]
    [InlineData("/api/models/acme/llama/revision/0123456789012345678901234567890123456789", HttpStatusCode.NotFound, "RevisionNotFound")]
    [InlineData("/api/models/acme/llama/tree/main/nothing-here", HttpStatusCode.NotFound, "EntryNotFound")]
    public async Task Errors_AsTheHubWritesThem_CodeHeaderAndJsonBody(string url, HttpStatusCode status, string code)
    {
        using HttpResponseMessage response = await _http.GetAsync(url);
        Assert.Equal(status, response.StatusCode);
        Assert.Equal(code, Single(response, "X-Error-Code"));
        using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("error").GetString()));
    }

    [Theory]
    [InlineData("/acme/llama/resolve/main/..%2F..%2Fetc%2Fpasswd")]
    [InlineData("/acme/llama/resolve/main/%2Fetc%2Fpasswd")]
    [InlineData("/acme/llama/resolve/main/sub%5C..%5C..%5Cconfig.json")]
    [InlineData("/acme/llama/resolve/main/sub/..%2F..%2Fconfig.json")]
    public async Task Resolve_HostilePath_400(string url)
    {
        using HttpResponseMessage response = await SendRawAsync(url);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Resolve_DamagedFirstChunk_500NamingNothing()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/acme/llama/resolve/main/broken.safetensors");
        request.Headers.TryAddWithoutValidation("Range", "bytes=9000-9999");
        using HttpResponseMessage response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        string body = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("1234abcd", body);
    }

    [Fact]
    public async Task Resolve_StoreLockLostBeforeTheFirstByte_503RetryAfterNotDamage()
    {
        // Another process's remove or gc changed the model under a lost lease: the next request reads it anew.
        using HttpResponseMessage response = await _http.GetAsync("/moved/model/resolve/main/replaced.safetensors");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
        Assert.DoesNotContain("1234abcd", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("/api/models/damaged/model")]
    [InlineData("/api/models/damaged/model/tree/main")]
    [InlineData("/damaged/model/resolve/main/bad.json")]
    public async Task AnyRoute_SmallFileUnreadable_500NamingNothing(string url)
    {
        // A file that is not LFS is named by its git blob id, which only its bytes give.
        using HttpResponseMessage response = await _http.GetAsync(url);
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.DoesNotContain("1234abcd", await response.Content.ReadAsStringAsync());
        // And the server goes on.
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/api/models/acme/llama")).StatusCode);
    }

    [Fact]
    public async Task Resolve_DamagedLaterChunk_ConnectionCutNeverA200Body()
    {
        // The first 8 KiB read back; then the "damage": the response has started, so the connection is cut short.
        await Assert.ThrowsAnyAsync<HttpRequestException>(async () =>
        {
            using HttpResponseMessage response = await _http.GetAsync("/acme/llama/resolve/main/broken.safetensors");
            await response.Content.ReadAsByteArrayAsync();
        });
    }

    [Fact]
    public async Task ModelInfo_Revision_HubFields()
    {
        using JsonDocument info = JsonDocument.Parse(await _http.GetStringAsync($"/api/models/acme/llama/revision/{_model.Commit}?expand=sha&expand=siblings"));
        JsonElement root = info.RootElement;
        Assert.Equal("acme/llama", root.GetProperty("id").GetString());
        Assert.Equal(_model.Commit, root.GetProperty("sha").GetString());
        Assert.False(root.GetProperty("private").GetBoolean());
        Assert.Equal(24, root.GetProperty("_id").GetString()!.Length);
        Assert.Equal("2025-01-02T03:04:05.000Z", root.GetProperty("lastModified").GetString());
        JsonElement[] siblings = [.. root.GetProperty("siblings").EnumerateArray()];
        Assert.Equal(_model.Files.Select(f => f.Path), siblings.Select(s => s.GetProperty("rfilename").GetString()));
        JsonElement shard = siblings.Single(s => s.GetProperty("rfilename").GetString() == "model.safetensors");
        Assert.Equal(_model.FindFile("model.safetensors")!.Sha256, shard.GetProperty("lfs").GetProperty("sha256").GetString());
        JsonElement config = siblings.Single(s => s.GetProperty("rfilename").GetString() == "config.json");
        Assert.Equal(GitBlobIds.Of(s_config), config.GetProperty("blobId").GetString());
        Assert.False(config.TryGetProperty("lfs", out _));
    }

    [Fact]
    public async Task Tree_RootNotRecursive_FoldersThenFiles()
    {
        using JsonDocument tree = JsonDocument.Parse(await _http.GetStringAsync("/api/models/acme/llama/tree/main"));
        Assert.Equal(["directory:sub", "file:broken.safetensors", "file:config.json", "file:model.safetensors"],
            tree.RootElement.EnumerateArray().Select(e => $"{e.GetProperty("type").GetString()}:{e.GetProperty("path").GetString()}"));
    }

    [Fact]
    public async Task Tree_RecursivePaged_LinkHeaderWalksEveryEntryOnce()
    {
        var seen = new List<string>();
        string? url = "/api/models/acme/llama/tree/main?recursive=true&limit=2";
        while (url is not null)
        {
            using HttpResponseMessage response = await _http.GetAsync(url);
            response.EnsureSuccessStatusCode();
            using JsonDocument page = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            seen.AddRange(page.RootElement.EnumerateArray().Select(e => e.GetProperty("path").GetString()!));
            url = response.Headers.TryGetValues("Link", out var link) ? link.Single().Split('<', '>')[1] : null;
        }
        Assert.Equal(["sub", "sub/dir", "broken.safetensors", "config.json", "model.safetensors", "sub/dir/notes.txt"], seen);
    }

    [Fact]
    public async Task Tree_SubFolder_ItsEntriesWithLfs()
    {
        using JsonDocument tree = JsonDocument.Parse(await _http.GetStringAsync("/api/models/acme/llama/tree/main/sub/dir"));
        JsonElement entry = Assert.Single(tree.RootElement.EnumerateArray());
        Assert.Equal("sub/dir/notes.txt", entry.GetProperty("path").GetString());
        Assert.Equal(GitBlobIds.Of("hi"u8), entry.GetProperty("oid").GetString());
    }

    [Fact]
    public async Task PathsInfo_JsonAndForm_FoundPathsOnly()
    {
        using var json = new StringContent("""{"paths": ["config.json", "sub", "missing", "../x"], "expand": true}""", Encoding.UTF8, "application/json");
        using HttpResponseMessage jsonResponse = await _http.PostAsync("/api/models/acme/llama/paths-info/main", json);
        using JsonDocument fromJson = JsonDocument.Parse(await jsonResponse.Content.ReadAsStringAsync());
        Assert.Equal(["config.json", "sub"], fromJson.RootElement.EnumerateArray().Select(e => e.GetProperty("path").GetString()));
        Assert.Equal(_model.Commit, fromJson.RootElement[0].GetProperty("lastCommit").GetProperty("id").GetString());

        using var form = new FormUrlEncodedContent([new("paths", "model.safetensors"), new("paths", "config.json"), new("expand", "True")]);
        using HttpResponseMessage formResponse = await _http.PostAsync("/api/models/acme/llama/paths-info/main", form);
        using JsonDocument fromForm = JsonDocument.Parse(await formResponse.Content.ReadAsStringAsync());
        JsonElement shard = fromForm.RootElement.EnumerateArray().Single(e => e.GetProperty("path").GetString() == "model.safetensors");
        Assert.Equal(_model.FindFile("model.safetensors")!.Sha256, shard.GetProperty("lfs").GetProperty("oid").GetString());
    }

    [Fact]
    public async Task PathsInfo_BodyOverTheLimit_RefusedAndServerGoesOn()
    {
        string paths = string.Join(",", Enumerable.Repeat("\"config.json\"", HubEndpoints.MaxPathsInfoBody / 10));
        using var content = new StringContent($"{{\"paths\": [{paths}]}}", Encoding.UTF8, "application/json");
        // Sent chunked, without a Content-Length to refuse it by.
        content.Headers.ContentLength = null;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/models/acme/llama/paths-info/main") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using HttpResponseMessage response = await _http.SendAsync(request);
        Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge, response.StatusCode.ToString());
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/api/models/acme/llama")).StatusCode);
    }

    [Fact]
    public async Task ListModels_SearchAndAuthor_Filter()
    {
        Assert.Equal(["acme/llama", "damaged/model", "moved/model", "other/model"], await ListedAsync(_http, "/api/models"));
        Assert.Equal(["other/model"], await ListedAsync(_http, "/api/models?author=other"));
        Assert.Equal(["acme/llama"], await ListedAsync(_http, "/api/models?search=llam"));
    }

    [Theory]
    [InlineData(null, HttpStatusCode.Unauthorized)]
    [InlineData("Bearer wrong", HttpStatusCode.Unauthorized)]
    [InlineData("Bearer tok_other", HttpStatusCode.NotFound)]
    [InlineData("Bearer tok_acme", HttpStatusCode.OK)]
    public async Task Tokens_OnlyTheCoveringTokenReadsOrLists(string? authorization, HttpStatusCode expected)
    {
        foreach (string url in new[] { "/acme/llama/resolve/main/config.json", "/api/models/acme/llama", "/api/models/acme/llama/tree/main" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (authorization is not null)
            {
                request.Headers.Authorization = AuthenticationHeaderValue.Parse(authorization);
            }
            using HttpResponseMessage response = await _guardedHttp.SendAsync(request);
            Assert.Equal(expected, response.StatusCode);
            if (expected != HttpStatusCode.OK)
            {
                Assert.Equal("RepoNotFound", Single(response, "X-Error-Code"));
            }
        }
        _guardedHttp.DefaultRequestHeaders.Authorization = authorization is null ? null : AuthenticationHeaderValue.Parse(authorization);
        string[] listed = await ListedAsync(_guardedHttp, "/api/models");
        Assert.Equal(expected == HttpStatusCode.OK ? ["acme/llama"] : authorization == "Bearer tok_other" ? ["other/model"] : [], listed);
    }

    [Fact]
    public void Options_PublicAddressWithoutTokens_Refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => HubServer.Create(_store, new HubServerOptions { Host = "0.0.0.0", Port = 0 }, NullLoggerFactory.Instance));
        Assert.Contains("--public", ex.Message);
    }

    [Fact]
    public async Task Server_OneMegabyteRequestLine_RefusedAndOthersServed()
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _http.BaseAddress!.Port);
        NetworkStream stream = client.GetStream();
        byte[] line = Encoding.ASCII.GetBytes("GET /" + new string('a', 1 << 20) + " HTTP/1.1\r\nHost: x\r\n\r\n");
        try
        {
            await stream.WriteAsync(line);
        }
        catch (IOException)
        {
            // The server may close before the whole line is sent.
        }
        using HttpResponseMessage response = await _http.GetAsync("/acme/llama/resolve/main/config.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Log_OneLineARequest_EscapedPathNoTokenNoQuery()
    {
        var log = new ListLogger();
        await using HubServer server = HubServer.Create(_store, new HubServerOptions { Port = 0, Tokens = TokenTable.Parse(Tokens, "tokens") },
            new OneLoggerFactory(log));
        using var http = new HttpClient { BaseAddress = await server.StartAsync(CancellationToken.None) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "tok_acme");
        using HttpResponseMessage forged = await http.GetAsync("/acme/llama/resolve/main/x%0AGET%20/forged%20200?secret=q1");
        using HttpResponseMessage file = await http.GetAsync("/acme/llama/resolve/main/config.json");
        Assert.True(SpinWait.SpinUntil(() => log.Entries.Count >= 2, TimeSpan.FromSeconds(30)));
        Assert.Equal(2, log.Entries.Count);
        Assert.All(log.Entries, e => Assert.DoesNotContain('\n', e.Message));
        Assert.All(log.Entries, e => Assert.DoesNotContain("tok_acme", e.Message));
        Assert.All(log.Entries, e => Assert.DoesNotContain("q1", e.Message));
        Assert.Matches(@"^GET /acme/llama/resolve/main/config.json 200 24 [0-9.]+ ms$", log.Entries[1].Message);
    }

    private sealed class OneLoggerFactory(ListLogger logger) : Microsoft.Extensions.Logging.ILoggerFactory
    {
        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => categoryName.StartsWith("Microsoft", StringComparison.Ordinal)
            ? NullLogger.Instance : logger;

        public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }
    }

    private static async Task<string[]> ListedAsync(HttpClient http, string url)
    {
        using JsonDocument list = JsonDocument.Parse(await http.GetStringAsync(url));
        return [.. list.RootElement.EnumerateArray().Select(e => e.GetProperty("id").GetString()!)];
    }

    private static string Single(HttpResponseMessage response, string header) =>
        response.Headers.TryGetValues(header, out var values) ? values.Single()
        : response.Content.Headers.TryGetValues(header, out var content) ? content.Single()
        : throw new Xunit.Sdk.XunitException($"no {header} header");

    /// <summary>Sends the path exactly as written (HttpClient would otherwise resolve dot segments and escapes).</summary>
    private async Task<HttpResponseMessage> SendRawAsync(string path)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _http.BaseAddress!.Port);
        NetworkStream stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        string status = await reader.ReadLineAsync() ?? "";
        return new HttpResponseMessage((HttpStatusCode)int.Parse(status.Split(' ')[1]));
    }
}
