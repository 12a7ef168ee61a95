namespace ZipLlm.Serve.Mirror;

/// <summary>
/// How <c>zipllm serve --upstream URL</c> mirrors a hub: what it may fetch, where it stages files, how much it fetches
/// at once, and how often it looks for new commits.
/// </summary>
public sealed class MirrorOptions
{
    /// <summary>Most <see cref="MaxGigabytes"/> accepted.</summary>
    public const int MaxMaxGigabytes = 1 << 20;

    /// <summary>Most <see cref="RefreshMinutes"/> accepted: a week.</summary>
    public const int MaxRefreshMinutes = 7 * 24 * 60;

    /// <summary>The hub mirrored (<c>https://huggingface.co</c>, or another mirror).</summary>
    public required Uri Upstream { get; init; }

    /// <summary>Models that may be fetched (<c>*</c>, <c>org/*</c>, <c>org/name</c>); every model when empty.</summary>
    public IReadOnlyList<string> Allow { get; init; } = [];

    /// <summary>Models that are never fetched, whatever <see cref="Allow"/> says.</summary>
    public IReadOnlyList<string> Deny { get; init; } = [];

    /// <summary>Never contact the upstream: a model not stored is <c>RepoNotFound</c>.</summary>
    public bool Offline { get; init; }

    /// <summary>Pass a client's own token upstream (for gated models); what it fetched is then served only to tokens upstream accepted.</summary>
    public bool ForwardTokens { get; init; }

    /// <summary>The server's own token for the upstream (<c>HF_TOKEN</c> or the token file), or null.</summary>
    public string? UpstreamToken { get; init; }

    /// <summary>Gigabytes of revisions being fetched at once, at most (a miss beyond it waits for room, then is a 503 with <c>Retry-After</c>).</summary>
    public int MaxGigabytes { get; init; } = 100;

    /// <summary>Revisions being fetched (or compressed) at once, at most.</summary>
    public int MaxModelsInFlight { get; init; } = 2;

    /// <summary>How long a miss beyond the limits waits for a fetch to end before it is answered 503 with <c>Retry-After</c>.</summary>
    public TimeSpan AdmissionWait { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Minutes between looks at upstream <c>main</c> of the models stored; 0 never looks.</summary>
    public int RefreshMinutes { get; init; }

    /// <summary>Where revisions are staged while they arrive (<c>model_dir/.zipllm-mirror</c>), and gated models' accepted tokens are kept.</summary>
    public required string StagingFolder { get; init; }

    /// <summary>Attempts per upstream request or file before the client gets an error.</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>Longest <c>Retry-After</c> (or backoff) the mirror waits itself before answering the client with it instead.</summary>
    public TimeSpan MaxRetryWait { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long an upstream read may bring nothing before the attempt counts as failed.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The byte budget, <see cref="MaxGigabytes"/> in bytes.</summary>
    public long MaxBytesInFlight => MaxGigabytes * (1L << 30);

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">The upstream is not an absolute http(s) address, a pattern is malformed, or a number is out of range.</exception>
    public void Validate()
    {
        if (!Upstream.IsAbsoluteUri || Upstream.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(Upstream.Query) || !string.IsNullOrEmpty(Upstream.Fragment))
        {
            throw new ArgumentException($"--upstream must be an http or https address without query, like https://huggingface.co, not '{Upstream}'.");
        }
        foreach ((string option, IReadOnlyList<string> patterns) in (ReadOnlySpan<(string, IReadOnlyList<string>)>)[("--mirror-allow", Allow), ("--mirror-deny", Deny)])
        {
            if (patterns.FirstOrDefault(p => !TokenTable.IsPattern(p)) is { } bad)
            {
                throw new ArgumentException($"{option} takes patterns '*', 'org/*' or 'org/name', not '{bad}'.");
            }
        }
        if (MaxGigabytes is < 1 or > MaxMaxGigabytes)
        {
            throw new ArgumentException($"--mirror-max-gb must be from 1 to {MaxMaxGigabytes}, not {MaxGigabytes}.");
        }
        if (RefreshMinutes is < 0 or > MaxRefreshMinutes)
        {
            throw new ArgumentException($"--refresh must be from 0 (never) to {MaxRefreshMinutes} minutes, not {RefreshMinutes}.");
        }
        if (MaxModelsInFlight < 1 || MaxAttempts < 1 || AdmissionWait < TimeSpan.Zero || MaxRetryWait < TimeSpan.Zero || ReadTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("The mirror's limits must be positive.");
        }
        ArgumentException.ThrowIfNullOrWhiteSpace(StagingFolder);
    }

    /// <summary>Whether <paramref name="modelId"/> may be fetched: allowed (or no allow list), and not denied.</summary>
    public bool Permits(string modelId) =>
        (Allow.Count == 0 || new TokenGrant([.. Allow]).Covers(modelId)) && (Deny.Count == 0 || !new TokenGrant([.. Deny]).Covers(modelId));
}
