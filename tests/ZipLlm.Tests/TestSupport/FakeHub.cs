using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ZipLlm.Tests.TestSupport;

/// <summary>Plays the Hugging Face hub's tree and resolve endpoints over <see cref="FakeHttpServer"/>.</summary>
internal sealed class FakeHub : IAsyncDisposable
{
    private readonly FakeHttpServer _server;

    public FakeHub()
    {
        _server = new FakeHttpServer(Handle);
    }

    public Uri Endpoint => _server.Endpoint;

    public IEnumerable<FakeRequest> Requests => _server.Requests;

    /// <summary>Model id to (file name to content).</summary>
    public ConcurrentDictionary<string, Dictionary<string, byte[]>> Models { get; } = new();

    /// <summary>Models that need <c>Authorization: Bearer {Token}</c>.</summary>
    public HashSet<string> Gated { get; } = [];

    public string Token { get; set; } = "secret-token";

    /// <summary>Answers served before the normal one, per request path (e.g. "/org/m/resolve/main/x").</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<FakeResponse>> Faults { get; } = new();

    /// <summary>SHA-256 values the listing reports instead of the true ones, per "model/file".</summary>
    public Dictionary<string, string> ListedShaOverride { get; } = [];

    /// <summary>Files served as LFS objects (sha256 in the listing): by default *.safetensors.</summary>
    public Func<string, bool> IsLfs { get; set; } = name => name.EndsWith(".safetensors", StringComparison.Ordinal);

    /// <summary>Path prefix under which resolve answers redirect elsewhere, when set.</summary>
    public Uri? RedirectResolveTo { get; set; }

    public void Add(string model, params (string Name, byte[] Content)[] files) =>
        Models[model] = files.ToDictionary(f => f.Name, f => f.Content);

    public void AddFault(string path, params FakeResponse[] responses)
    {
        var queue = Faults.GetOrAdd(path, _ => new ConcurrentQueue<FakeResponse>());
        foreach (FakeResponse r in responses)
        {
            queue.Enqueue(r);
        }
    }

    public int Count(Func<FakeRequest, bool> predicate) => Requests.Count(predicate);

    private FakeResponse Handle(FakeRequest request)
    {
        if (Faults.TryGetValue(request.Path, out var faults) && faults.TryDequeue(out FakeResponse? fault))
        {
            return fault;
        }
        if (request.Method == "HEAD")
        {
            return new FakeResponse(200, []);
        }
        const string api = "/api/models/";
        if (request.Path.StartsWith(api, StringComparison.Ordinal) && request.Path.EndsWith("/tree/main", StringComparison.Ordinal))
        {
            string model = request.Path[api.Length..^"/tree/main".Length];
            return Access(model, request) ?? Tree(model);
        }
        int resolve = request.Path.IndexOf("/resolve/main/", StringComparison.Ordinal);
        if (resolve > 0)
        {
            string model = request.Path[1..resolve];
            string file = request.Path[(resolve + "/resolve/main/".Length)..];
            FakeResponse? denied = Access(model, request);
            if (denied is not null)
            {
                return denied;
            }
            if (!Models[model].TryGetValue(file, out byte[]? content))
            {
                return FakeResponse.Text(404, "Entry not found", new Dictionary<string, string> { ["X-Error-Code"] = "EntryNotFound" });
            }
            if (RedirectResolveTo is not null)
            {
                return new FakeResponse(302, [], new Dictionary<string, string> { ["Location"] = new Uri(RedirectResolveTo, $"cdn/{model}/{file}").AbsoluteUri });
            }
            return Serve(content, request);
        }
        return FakeResponse.Text(404, "no route");
    }

    /// <summary>Serves a body, honouring <c>Range: bytes=N-</c>.</summary>
    public static FakeResponse Serve(byte[] content, FakeRequest request)
    {
        string? range = request.Header("Range");
        if (range is null)
        {
            return new FakeResponse(200, content);
        }
        long start = long.Parse(range["bytes=".Length..].TrimEnd('-'));
        if (start >= content.Length)
        {
            return new FakeResponse(416, [], new Dictionary<string, string> { ["Content-Range"] = $"bytes */{content.Length}" });
        }
        return new FakeResponse(206, content[(int)start..],
            new Dictionary<string, string> { ["Content-Range"] = $"bytes {start}-{content.Length - 1}/{content.Length}" });
    }

    private FakeResponse? Access(string model, FakeRequest request)
    {
        if (!Models.ContainsKey(model))
        {
            return FakeResponse.Text(404, "Repository not found", new Dictionary<string, string> { ["X-Error-Code"] = "RepoNotFound" });
        }
        if (Gated.Contains(model) && request.Header("Authorization") != $"Bearer {Token}")
        {
            return FakeResponse.Text(401, "Access to this model is restricted", new Dictionary<string, string> { ["X-Error-Code"] = "GatedRepo" });
        }
        return null;
    }

    private FakeResponse Tree(string model)
    {
        var entries = new List<object>();
        foreach ((string name, byte[] content) in Models[model])
        {
            if (IsLfs(name))
            {
                string sha = ListedShaOverride.TryGetValue($"{model}/{name}", out string? lie) ? lie : Convert.ToHexStringLower(SHA256.HashData(content));
                entries.Add(new { type = "file", oid = GitOid(Encoding.ASCII.GetBytes("pointer")), size = content.Length, path = name, lfs = new { oid = sha, size = content.Length, pointerSize = 134 } });
            }
            else
            {
                entries.Add(new { type = "file", oid = GitOid(content), size = content.Length, path = name });
            }
        }
        entries.Add(new { type = "directory", oid = new string('0', 40), size = 0, path = "original" });
        return new FakeResponse(200, JsonSerializer.SerializeToUtf8Bytes(entries), new Dictionary<string, string> { ["Content-Type"] = "application/json" });
    }

    public static string GitOid(byte[] content) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {content.Length}\0"), .. content]));

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
