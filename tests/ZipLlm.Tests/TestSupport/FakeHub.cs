using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ZipLlm.Tests.TestSupport;

/// <summary>
/// Plays the Hugging Face hub's revision, tree and resolve endpoints over <see cref="FakeHttpServer"/>. Each model has
/// a <c>main</c> branch (<see cref="Models"/>) and any other revisions added with <see cref="AddRevision"/>; every
/// revision has a commit (<see cref="Commit"/>), and the tree and resolve endpoints answer for a revision's name and
/// for its commit alike. File names may hold folders (<c>original/params.json</c>); a revision may hold slashes
/// (<c>refs/pr/1</c>), escaped in the address as one segment, the way routes are read here.
/// </summary>
internal sealed class FakeHub : IAsyncDisposable
{
    private readonly FakeHttpServer _server;

    public FakeHub()
    {
        _server = new FakeHttpServer(Handle);
    }

    public Uri Endpoint => _server.Endpoint;

    public IEnumerable<FakeRequest> Requests => _server.Requests;

    /// <summary>Model id to (file path to content) on its main branch.</summary>
    public ConcurrentDictionary<string, Dictionary<string, byte[]>> Models { get; } = new();

    /// <summary>Model id to (revision other than main to (file path to content)).</summary>
    public ConcurrentDictionary<string, Dictionary<string, Dictionary<string, byte[]>>> Revisions { get; } = new();

    /// <summary>Models that need <c>Authorization: Bearer {Token}</c>.</summary>
    public HashSet<string> Gated { get; } = [];

    public string Token { get; set; } = "secret-token";

    /// <summary>Whether the tree listing honours <c>recursive=true</c>; when false, it lists the top level only, as without it.</summary>
    public bool Recursive { get; set; } = true;

    /// <summary>Answers served before the normal one, per request path (e.g. <see cref="ResolvePath"/>).</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<FakeResponse>> Faults { get; } = new();

    /// <summary>SHA-256 values the listing reports instead of the true ones, per "model/file".</summary>
    public Dictionary<string, string> ListedShaOverride { get; } = [];

    /// <summary>Files served as LFS objects (sha256 in the listing): by default *.safetensors.</summary>
    public Func<string, bool> IsLfs { get; set; } = name => name.EndsWith(".safetensors", StringComparison.Ordinal);

    /// <summary>Path prefix under which resolve answers redirect elsewhere, when set.</summary>
    public Uri? RedirectResolveTo { get; set; }

    /// <summary>Resolve requests in flight at most at one time, so far.</summary>
    public int PeakConcurrentResolves => _peak;

    /// <summary>How long each resolve answer waits before it is sent (to see downloads overlap).</summary>
    public TimeSpan ResolveDelay { get; set; }

    /// <summary>Models whose <c>main</c> has moved to another revision (added with <see cref="AddRevision"/>): model id to that revision's name.</summary>
    public ConcurrentDictionary<string, string> MainIs { get; } = new();

    private int _inFlight, _peak;

    public void Add(string model, params (string Name, byte[] Content)[] files) =>
        Models[model] = files.ToDictionary(f => f.Name, f => f.Content);

    public void AddRevision(string model, string revision, params (string Name, byte[] Content)[] files) =>
        Revisions.GetOrAdd(model, _ => [])[revision] = files.ToDictionary(f => f.Name, f => f.Content);

    /// <summary>The commit a revision of a model points at: a fixed function of both.</summary>
    public static string Commit(string model, string revision = "main") =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes($"{model}@{revision}")));

    /// <summary>The path the client fetches a file of a model's revision by: at the revision's commit.</summary>
    public static string ResolvePath(string model, string file, string revision = "main") => $"/{model}/resolve/{Commit(model, revision)}/{file}";

    /// <summary>The path of the tree listing of a model's revision, at its commit.</summary>
    public static string TreePath(string model, string revision = "main") => $"/api/models/{model}/tree/{Commit(model, revision)}";

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
        if (request.Method == "HEAD" && HeadOfResolve(request) is { } head)
        {
            return head;
        }
        if (request.Method == "HEAD")
        {
            return new FakeResponse(200, []);
        }
        const string api = "/api/models/";
        if (request.Path.StartsWith(api, StringComparison.Ordinal))
        {
            // /api/models/ORG/NAME/revision/REV or /api/models/ORG/NAME/tree/REV[/PATH], each segment escaped
            string[] parts = request.EscapedPath[api.Length..].Split('/').Select(Uri.UnescapeDataString).ToArray();
            if (parts.Length < 4)
            {
                return FakeResponse.Text(404, "no route");
            }
            string model = parts[0] + "/" + parts[1];
            FakeResponse? denied = Access(model, request);
            if (denied is not null)
            {
                return denied;
            }
            if (FilesAt(model, parts[3], out string revision) is not { } files)
            {
                return FakeResponse.Text(404, "Invalid rev id", new Dictionary<string, string> { ["X-Error-Code"] = "RevisionNotFound" });
            }
            return parts[2] switch
            {
                "revision" => new FakeResponse(200, JsonSerializer.SerializeToUtf8Bytes(new { id = model, sha = Commit(model, revision), siblings = files.Keys.Select(k => new { rfilename = k }) })),
                "tree" => Tree(model, files, string.Join('/', parts.Skip(4)), request.Query.Contains("recursive=true", StringComparison.OrdinalIgnoreCase) && Recursive),
                _ => FakeResponse.Text(404, "no route"),
            };
        }
        // /ORG/NAME/resolve/REV/PATH, the revision one escaped segment
        int resolve = request.EscapedPath.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve > 0)
        {
            string model = Uri.UnescapeDataString(request.EscapedPath[1..resolve]);
            string rest = request.EscapedPath[(resolve + "/resolve/".Length)..];
            int slash = rest.IndexOf('/');
            FakeResponse? denied = Access(model, request);
            if (denied is not null)
            {
                return denied;
            }
            if (slash < 0 || FilesAt(model, Uri.UnescapeDataString(rest[..slash]), out _) is not { } files)
            {
                return FakeResponse.Text(404, "Invalid rev id", new Dictionary<string, string> { ["X-Error-Code"] = "RevisionNotFound" });
            }
            string file = Uri.UnescapeDataString(rest[(slash + 1)..]);
            if (!files.TryGetValue(file, out byte[]? content))
            {
                return FakeResponse.Text(404, "Entry not found", new Dictionary<string, string> { ["X-Error-Code"] = "EntryNotFound" });
            }
            if (RedirectResolveTo is not null)
            {
                return new FakeResponse(302, [], new Dictionary<string, string> { ["Location"] = new Uri(RedirectResolveTo, $"cdn/{model}/{file}").AbsoluteUri });
            }
            int now = Interlocked.Increment(ref _inFlight);
            try
            {
                int peak;
                while (now > (peak = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak)
                {
                }
                if (ResolveDelay > TimeSpan.Zero)
                {
                    Thread.Sleep(ResolveDelay);
                }
                return Serve(content, request);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }
        return FakeResponse.Text(404, "no route");
    }

    /// <summary>A HEAD of a file as the hub answers it: its commit in <c>X-Repo-Commit</c>, no body; null for other paths.</summary>
    private FakeResponse? HeadOfResolve(FakeRequest request)
    {
        int resolve = request.EscapedPath.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve <= 0)
        {
            return null;
        }
        string model = Uri.UnescapeDataString(request.EscapedPath[1..resolve]);
        string rest = request.EscapedPath[(resolve + "/resolve/".Length)..];
        int slash = rest.IndexOf('/');
        if (Access(model, request) is { } denied)
        {
            return denied;
        }
        if (slash < 0 || FilesAt(model, Uri.UnescapeDataString(rest[..slash]), out string revision) is null)
        {
            return FakeResponse.Text(404, "Invalid rev id", new Dictionary<string, string> { ["X-Error-Code"] = "RevisionNotFound" });
        }
        return new FakeResponse(200, [], new Dictionary<string, string> { ["X-Repo-Commit"] = Commit(model, revision) });
    }

    /// <summary>The files of a model at a revision name or commit; null when it has no such revision.</summary>
    private Dictionary<string, byte[]>? FilesAt(string model, string revisionOrCommit, out string revision)
    {
        var all = new Dictionary<string, Dictionary<string, byte[]>> { ["main"] = Models[model] };
        foreach ((string name, Dictionary<string, byte[]> files) in Revisions.TryGetValue(model, out var more) ? more : [])
        {
            all[name] = files;
        }
        if (revisionOrCommit == "main" && MainIs.TryGetValue(model, out string? moved))
        {
            revisionOrCommit = moved;
        }
        foreach ((string name, Dictionary<string, byte[]> files) in all)
        {
            if (name == revisionOrCommit || Commit(model, name) == revisionOrCommit)
            {
                revision = name;
                return files;
            }
        }
        revision = "";
        return null;
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

    /// <summary>The tree under <paramref name="under"/> ("" for the top): its files and folders, or with <paramref name="recursive"/> everything below.</summary>
    private FakeResponse Tree(string model, Dictionary<string, byte[]> files, string under, bool recursive)
    {
        string prefix = under.Length == 0 ? "" : under + "/";
        var entries = new List<object>();
        var folders = new SortedSet<string>(StringComparer.Ordinal) { prefix + "original" };
        foreach ((string name, byte[] content) in files.Where(f => f.Key.StartsWith(prefix, StringComparison.Ordinal)))
        {
            string[] parts = name[prefix.Length..].Split('/');
            for (int i = 1; i < parts.Length; i++)
            {
                folders.Add(prefix + string.Join('/', parts.Take(i)));
            }
            if (parts.Length > 1 && !recursive)
            {
                continue;
            }
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
        foreach (string folder in folders.Where(f => recursive || !f[prefix.Length..].Contains('/')))
        {
            entries.Add(new { type = "directory", oid = new string('0', 40), size = 0, path = folder });
        }
        return new FakeResponse(200, JsonSerializer.SerializeToUtf8Bytes(entries), new Dictionary<string, string> { ["Content-Type"] = "application/json" });
    }

    public static string GitOid(byte[] content) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {content.Length}\0"), .. content]));

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
