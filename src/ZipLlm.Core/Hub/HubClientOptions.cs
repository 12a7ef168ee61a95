using ZipLlm.Config;
using ZipLlm.Domain;
namespace ZipLlm.Hub;

/// <summary>Where the hub is and how patiently to talk to it.</summary>
internal sealed record HubClientOptions
{
    /// <summary>The public Hugging Face hub.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Environment variable overriding the endpoint (as <c>huggingface_hub</c> reads it).</summary>
    public const string EndpointVariable = "HF_ENDPOINT";

    /// <summary>Environment variable holding the access token.</summary>
    public const string TokenVariable = "HF_TOKEN";

    /// <summary>Environment variable naming the token file (as <c>huggingface_hub</c> reads it).</summary>
    public const string TokenPathVariable = "HF_TOKEN_PATH";

    /// <summary>Environment variable of the Hugging Face home folder (default <c>$XDG_CACHE_HOME/huggingface</c>, else <c>~/.cache/huggingface</c>).</summary>
    public const string HomeVariable = "HF_HOME";

    /// <summary>Environment variable that, set to 1 (or true, yes, on), forbids every request to the hub.</summary>
    public const string OfflineVariable = "HF_HUB_OFFLINE";

    /// <summary>Most files downloaded at once (<see cref="MaxConcurrentDownloads"/>).</summary>
    public const int MaxDownloads = 32;

    /// <summary>A token file holds one token; anything larger is not one.</summary>
    public const int MaxTokenFileSize = 4096;

    /// <summary>Base address of the hub, without a trailing slash.</summary>
    public Uri Endpoint { get; init; } = new(DefaultEndpoint);

    /// <summary>Access token sent as <c>Authorization: Bearer</c> to the endpoint's host; none when <see langword="null"/>.</summary>
    public string? Token { get; init; }

    /// <summary>Where <see cref="Token"/> came from, for messages (<c>HF_TOKEN</c>, or the token file's path).</summary>
    public string TokenSource { get; init; } = TokenVariable;

    /// <summary>No request may reach the hub (<c>HF_HUB_OFFLINE</c>): setup uses what is on disk.</summary>
    public bool Offline { get; init; }

    /// <summary>Which files of a repository to download.</summary>
    public HubFileSelection Files { get; init; } = HubFileSelection.Default;

    /// <summary>Branch, tag or commit to download.</summary>
    public string Revision { get; init; } = "main";

    /// <summary>Files downloaded at once.</summary>
    public int MaxConcurrentDownloads { get; init; } = 4;

    /// <summary>Attempts per request (the first included) before a transient failure becomes an error.</summary>
    public int MaxAttempts { get; init; } = 6;

    /// <summary>Wait before the second attempt; doubled for each further one.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between attempts from backoff alone.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Longest <c>Retry-After</c> honoured; a server asking for more is waited on this long.</summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Time allowed for a response's headers to arrive.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Time allowed between two reads of a response body before the transfer counts as stalled.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Options from the environment, as <c>huggingface_hub</c> reads it: <c>HF_ENDPOINT</c>; the token from
    /// <c>HF_TOKEN</c> (or the older <c>HUGGING_FACE_HUB_TOKEN</c>), else from the file <c>hf auth login</c> writes
    /// (<see cref="TokenFilePath"/>); <c>HF_HUB_OFFLINE</c>.
    /// </summary>
    /// <exception cref="ArgumentException"><c>HF_ENDPOINT</c> is not an absolute http(s) address.</exception>
    public static HubClientOptions FromEnvironment()
    {
        string? endpoint = Environment.GetEnvironmentVariable(EndpointVariable);
        string source = TokenVariable;
        string? token = Environment.GetEnvironmentVariable(TokenVariable);
        if (string.IsNullOrWhiteSpace(token))
        {
            source = "HUGGING_FACE_HUB_TOKEN";
            token = Environment.GetEnvironmentVariable(source);
        }
        if (string.IsNullOrWhiteSpace(token))
        {
            source = TokenFilePath();
            token = ReadTokenFile(source);
        }
        return new HubClientOptions
        {
            Endpoint = string.IsNullOrWhiteSpace(endpoint) ? new Uri(DefaultEndpoint) : ParseEndpoint(endpoint),
            Token = string.IsNullOrWhiteSpace(token) ? null : token.Trim(),
            TokenSource = string.IsNullOrWhiteSpace(token) ? TokenVariable : source,
            Offline = IsTrue(Environment.GetEnvironmentVariable(OfflineVariable)),
        };
    }

    /// <summary>
    /// The token file <c>hf auth login</c> writes: <c>$HF_TOKEN_PATH</c>, else <c>$HF_HOME/token</c>, else
    /// <c>$XDG_CACHE_HOME/huggingface/token</c>, else <c>~/.cache/huggingface/token</c>.
    /// </summary>
    public static string TokenFilePath()
    {
        if (Environment.GetEnvironmentVariable(TokenPathVariable) is { Length: > 0 } path)
        {
            return ExpandHome(path);
        }
        return Path.Combine(HomeFolder(), "token");
    }

    /// <summary>The Hugging Face home folder: <c>$HF_HOME</c>, else <c>$XDG_CACHE_HOME/huggingface</c>, else <c>~/.cache/huggingface</c>.</summary>
    public static string HomeFolder()
    {
        if (Environment.GetEnvironmentVariable(HomeVariable) is { Length: > 0 } home)
        {
            return ExpandHome(home);
        }
        string cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? ExpandHome(xdg)
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "huggingface");
    }

    /// <summary>Whether an environment flag is set the way huggingface_hub reads one: 1, true, yes or on, in any case.</summary>
    public static bool IsTrue(string? value) =>
        value?.Trim().ToUpperInvariant() is "1" or "TRUE" or "YES" or "ON";

    /// <summary>The token in <paramref name="path"/>, trimmed; <see langword="null"/> when the file is missing, empty, unreadable or too large.</summary>
    private static string? ReadTokenFile(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Length > MaxTokenFileSize)
            {
                return null;
            }
            string token = File.ReadAllText(path).Trim();
            // A token is one word of printable ASCII; anything else would not make a valid header.
            return token.Length == 0 || !token.All(c => c is > ' ' and <= '~') ? null : token;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 2 ? path[2..] : "")
            : path;

    /// <summary>Parses an endpoint address.</summary>
    /// <exception cref="ArgumentException"><paramref name="endpoint"/> is not an absolute http or https address.</exception>
    public static Uri ParseEndpoint(string endpoint)
    {
        if (!Uri.TryCreate(endpoint.Trim().TrimEnd('/'), UriKind.Absolute, out Uri? uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new UsageException($"Hub endpoint \"{endpoint}\" is not an absolute http(s) address.", nameof(endpoint));
        }
        return uri;
    }
}
