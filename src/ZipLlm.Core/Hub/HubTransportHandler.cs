using System.Net.Http.Headers;

namespace ZipLlm.Hub;

/// <summary>
/// The hub's HTTP transport, under <see cref="HubClient"/>'s <see cref="HttpClient"/>: for a request
/// that carries a <see cref="HubOperation"/> (<see cref="OperationKey"/>) it follows redirects by hand,
/// sends the token to the hub's own origin only, bounds the wait for each response's headers, and
/// retries timeouts, dropped connections, 408, 429 and 5xx with backoff. Any other request passes
/// through untouched.
/// </summary>
/// <remarks>
/// Redirects are followed here rather than by the socket handler so the token goes to the hub's host
/// only (the CDN addresses it redirects to are signed) and survives same-host redirects of renamed
/// repositories. The final response is returned whatever its status, except a transient one.
/// </remarks>
internal sealed class HubTransportHandler : DelegatingHandler
{
    /// <summary>Redirects followed for one request before it fails.</summary>
    public const int MaxRedirects = 8;

    /// <summary>Marks a request as hub work and names it; without it the request passes through.</summary>
    public static readonly HttpRequestOptionsKey<HubOperation> OperationKey = new("ZipLlm.Hub.Operation");

    private readonly HubClientOptions _options;
    private readonly HubRetryPolicy _retry;

    /// <summary>Creates the transport over <paramref name="inner"/>, which must not follow redirects itself.</summary>
    public HubTransportHandler(HubClientOptions options, HubRetryPolicy retry, HttpMessageHandler inner)
        : base(inner)
    {
        _options = options;
        _retry = retry;
    }

    /// <inheritdoc/>
    /// <exception cref="HubException">More than <see cref="MaxRedirects"/> redirects, or every attempt failed transiently.</exception>
    /// <exception cref="NotSupportedException">A hub request with a body.</exception>
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!request.Options.TryGetValue(OperationKey, out HubOperation? operation))
        {
            return base.SendAsync(request, cancellationToken);
        }
        if (request.Content is not null)
        {
            throw new NotSupportedException("The hub transport sends requests without a body only.");
        }
        return _retry.RunAsync(operation, ct => SendOnceAsync(request, operation, ct), cancellationToken);
    }

    /// <summary>One attempt: follows redirects to a final answer, and throws a transient failure as <see cref="HubTransientException"/>.</summary>
    private async Task<HttpResponseMessage> SendOnceAsync(HttpRequestMessage original, HubOperation operation, CancellationToken cancellationToken)
    {
        Uri current = original.RequestUri ?? throw new ArgumentException("The request has no address.", nameof(original));
        for (int hop = 0; ; hop++)
        {
            HttpRequestMessage request = Copy(original, current);
            if (_options.Token is not null && HubRequests.SameOrigin(current, _options.Endpoint))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.Token);
            }

            HttpResponseMessage response;
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                cts.CancelAfter(_options.RequestTimeout);
                try
                {
                    response = await base.SendAsync(request, cts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new HubTransientException($"no answer within {_options.RequestTimeout.TotalSeconds:F0} s", ex);
                }
                catch (HttpRequestException ex)
                {
                    throw new HubTransientException(ex.Message, ex);
                }
            }

            int status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is not null)
            {
                response.Dispose();
                if (hop == MaxRedirects)
                {
                    throw new HubException(HubErrorKind.Protocol, $"{operation.Subject}: more than {MaxRedirects} redirects.");
                }
                current = new Uri(current, response.Headers.Location);
                continue;
            }
            if (status is 408 or 429 or >= 500)
            {
                using (response)
                {
                    throw new HubTransientException($"the hub answered {status} {response.ReasonPhrase}", null, RetryAfter(response));
                }
            }
            return response;
        }
    }

    /// <summary>The request to send to <paramref name="url"/>: the original's headers, less any authorization.</summary>
    private static HttpRequestMessage Copy(HttpRequestMessage original, Uri url)
    {
        // Bodiless, so a copy holds nothing to dispose.
        var copy = new HttpRequestMessage(original.Method, url) { Version = original.Version, VersionPolicy = original.VersionPolicy };
        foreach (KeyValuePair<string, IEnumerable<string>> header in original.Headers)
        {
            if (!string.Equals(header.Key, "Authorization", StringComparison.OrdinalIgnoreCase))
            {
                copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }
        return copy;
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        RetryConditionHeaderValue? retry = response.Headers.RetryAfter;
        if (retry?.Delta is TimeSpan delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }
        if (retry?.Date is DateTimeOffset date)
        {
            TimeSpan wait = date - DateTimeOffset.UtcNow;
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }
        return null;
    }
}
