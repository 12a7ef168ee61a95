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

    /// <summary>Base address of the hub, without a trailing slash.</summary>
    public Uri Endpoint { get; init; } = new(DefaultEndpoint);

    /// <summary>Access token sent as <c>Authorization: Bearer</c> to the endpoint's host; none when <see langword="null"/>.</summary>
    public string? Token { get; init; }

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

    /// <summary>Options from <c>HF_ENDPOINT</c> and <c>HF_TOKEN</c> (or the older <c>HUGGING_FACE_HUB_TOKEN</c>).</summary>
    /// <exception cref="ArgumentException"><c>HF_ENDPOINT</c> is not an absolute http(s) address.</exception>
    public static HubClientOptions FromEnvironment()
    {
        string? endpoint = Environment.GetEnvironmentVariable(EndpointVariable);
        string? token = Environment.GetEnvironmentVariable(TokenVariable);
        if (string.IsNullOrWhiteSpace(token))
        {
            token = Environment.GetEnvironmentVariable("HUGGING_FACE_HUB_TOKEN");
        }
        return new HubClientOptions
        {
            Endpoint = string.IsNullOrWhiteSpace(endpoint) ? new Uri(DefaultEndpoint) : ParseEndpoint(endpoint),
            Token = string.IsNullOrWhiteSpace(token) ? null : token.Trim(),
        };
    }

    /// <summary>Parses an endpoint address.</summary>
    /// <exception cref="ArgumentException"><paramref name="endpoint"/> is not an absolute http or https address.</exception>
    public static Uri ParseEndpoint(string endpoint)
    {
        if (!Uri.TryCreate(endpoint.Trim().TrimEnd('/'), UriKind.Absolute, out Uri? uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"Hub endpoint \"{endpoint}\" is not an absolute http(s) address.", nameof(endpoint));
        }
        return uri;
    }
}
