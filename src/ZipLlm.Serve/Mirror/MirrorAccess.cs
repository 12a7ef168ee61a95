using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace ZipLlm.Serve.Mirror;

/// <summary>
/// With <c>--forward-tokens</c>: which mirrored models upstream gates (fetched only with a client's token), and which
/// tokens upstream accepted for each, by their SHA-256 (kept in <c>access/ORG/NAME</c> under the staging folder, so a
/// restart forgets none). A gated model is served only to a token upstream accepted; a token not yet seen is asked
/// about upstream once, and the answer remembered.
/// </summary>
internal sealed class MirrorAccess(MirrorOptions options, UpstreamHub upstream)
{
    private readonly ConcurrentDictionary<string, HubStoreRefusal> _refused = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Remembers that upstream gates <paramref name="modelId"/> and accepted <paramref name="token"/> for it.</summary>
    public void Accept(string modelId, string token)
    {
        string path = FileOf(modelId);
        lock (_gate)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (!Accepted(modelId).Contains(Hash(token)))
            {
                File.AppendAllText(path, Hash(token) + "\n");
            }
        }
    }

    /// <summary>Lets the request through, or throws what upstream said (or would say) to its token.</summary>
    /// <exception cref="HubStoreRefusal">The model is gated and the request's token is missing or refused upstream.</exception>
    public async Task CheckAsync(string modelId, string? token, CancellationToken cancellationToken)
    {
        if (!options.ForwardTokens || !File.Exists(FileOf(modelId)))
        {
            return;
        }
        if (token is null)
        {
            throw UpstreamHub.Refuse(401, "GatedRepo", $"Access to model {modelId} is restricted upstream: send a token the upstream hub accepts.");
        }
        string hash = Hash(token);
        HashSet<string> accepted;
        lock (_gate)
        {
            accepted = Accepted(modelId);
        }
        if (accepted.Contains(hash))
        {
            return;
        }
        if (_refused.TryGetValue($"{modelId}\n{hash}", out HubStoreRefusal? refused))
        {
            throw refused;
        }
        try
        {
            await upstream.CheckAccessAsync(modelId, token, cancellationToken).ConfigureAwait(false);
        }
        catch (HubStoreRefusal refusal) when (refusal.Status is 401 or 403 or 404)
        {
            _refused[$"{modelId}\n{hash}"] = refusal;
            throw;
        }
        Accept(modelId, token);
    }

    private HashSet<string> Accepted(string modelId)
    {
        string path = FileOf(modelId);
        return File.Exists(path) ? [.. File.ReadAllLines(path).Where(l => l.Length == 64)] : [];
    }

    private string FileOf(string modelId) => Path.Combine(options.StagingFolder, "access", modelId.Replace('/', Path.DirectorySeparatorChar));

    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
