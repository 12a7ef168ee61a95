using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace ZipLlm.Store.Backends;

/// <summary>
/// The S3 client of a store and the gate every request passes: at most <see cref="MaxRequests"/> in flight
/// (<c>--threads</c>). Calls are synchronous over the SDK's asynchronous API, since the seam is; each failure
/// becomes the library's exception (<see cref="IOException"/>, with the request and the server's message).
/// </summary>
internal sealed class S3Connection : IDisposable
{
    /// <summary>Environment variable naming the endpoint of S3 alone (checked first), as the AWS tools read it.</summary>
    public const string EndpointS3Variable = "AWS_ENDPOINT_URL_S3";

    /// <summary>Environment variable naming the endpoint of every AWS service, as the AWS tools read it.</summary>
    public const string EndpointVariable = "AWS_ENDPOINT_URL";

    /// <summary>How long one try of a request may take, from sending it (connecting included) to the last byte of the answer.</summary>
    public static readonly TimeSpan DefaultTryTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Tries of a request that times out, cannot connect, or gets a 5xx answer, before it is given up.</summary>
    public const int DefaultTries = 3;

    /// <summary>The first pause between tries; each next one doubles it, with jitter.</summary>
    private static readonly TimeSpan s_firstBackoff = TimeSpan.FromMilliseconds(500);

    private readonly SemaphoreSlim _gate;

    public S3Connection(IAmazonS3 client, int maxRequests)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRequests);
        Client = client;
        MaxRequests = maxRequests;
        _gate = new SemaphoreSlim(maxRequests, maxRequests);
    }

    /// <summary>How long one try of a request may take (<see cref="DefaultTryTimeout"/>; tests shorten it).</summary>
    public TimeSpan TryTimeout { get; init; } = DefaultTryTimeout;

    /// <summary>Tries of a request before it is given up (<see cref="DefaultTries"/>).</summary>
    public int Tries { get; init; } = DefaultTries;

    public IAmazonS3 Client { get; }

    /// <summary>Requests in flight at most.</summary>
    public int MaxRequests { get; }

    /// <summary>
    /// A client configured the way the AWS tools are, from <paramref name="environment"/> (the process's variables
    /// when null): credentials from <c>AWS_ACCESS_KEY_ID</c> / <c>AWS_SECRET_ACCESS_KEY</c> /
    /// <c>AWS_SESSION_TOKEN</c>, else the SDK's default chain (<c>AWS_PROFILE</c> and the shared credentials file,
    /// then the rest); region from <c>AWS_REGION</c> / <c>AWS_DEFAULT_REGION</c> or the profile; endpoint from
    /// <c>AWS_ENDPOINT_URL_S3</c> or <c>AWS_ENDPOINT_URL</c>, addressed path-style (what servers other than AWS's serve).
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// An endpoint variable holds no http(s) URL, or neither a region (variables, profile) nor an endpoint is set: the
    /// message names the variables to set.
    /// </exception>
    public static IAmazonS3 CreateClient(int maxConnections, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string? Variable(string name) => environment(name) is { Length: > 0 } value ? value : null;
        var config = new AmazonS3Config
        {
            // Checksums only where an API requires them: RADOS Gateway 16 refuses the SDK's default trailing
            // checksums (XAmzContentSHA256Mismatch). Objects carry their own checksums, checked on every read.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxConnectionsPerServer = maxConnections,
            // Tries, their timeouts and the pauses between them are the connection's own (SendAsync), stated in its errors.
            MaxErrorRetry = 0,
            Timeout = DefaultTryTimeout + TimeSpan.FromSeconds(5),
        };
        string? region = Variable("AWS_REGION") ?? Variable("AWS_DEFAULT_REGION");
        if (region is not null)
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(region);
        }
        string? endpointVariable = Variable(EndpointS3Variable) is not null ? EndpointS3Variable : Variable(EndpointVariable) is not null ? EndpointVariable : null;
        if (region is null && endpointVariable is null)
        {
            // The SDK would fail at the first request with a stack trace ("No RegionEndpoint or ServiceURL configured").
            config.RegionEndpoint = ProfileRegion(Variable("AWS_PROFILE") ?? "default")
                ?? throw new InvalidDataException(
                    $"No AWS region for an s3:// store: set AWS_REGION (or AWS_DEFAULT_REGION, or region in the AWS profile), " +
                    $"or {EndpointS3Variable} (or {EndpointVariable}) for a server that is not AWS's.");
        }
        if (endpointVariable is not null)
        {
            string endpoint = Variable(endpointVariable)!;
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out Uri? uri) || uri.Scheme is not ("http" or "https"))
            {
                throw new InvalidDataException($"{endpointVariable}={endpoint} is not an http(s) URL.");
            }
            config.ServiceURL = endpoint;
            config.ForcePathStyle = true;
            // Requests to an endpoint of one's own are still signed for a region: the configured one, or AWS's default.
            config.AuthenticationRegion = region ?? "us-east-1";
        }
        if (Variable("AWS_ACCESS_KEY_ID") is { } keyId && Variable("AWS_SECRET_ACCESS_KEY") is { } secret)
        {
            AWSCredentials credentials = Variable("AWS_SESSION_TOKEN") is { } session
                ? new SessionAWSCredentials(keyId, secret, session)
                : new BasicAWSCredentials(keyId, secret);
            return new AmazonS3Client(credentials, config);
        }
        return new AmazonS3Client(config);
    }

    /// <summary>The region of the AWS profile <paramref name="name"/> (<c>~/.aws/config</c>, <c>~/.aws/credentials</c>), when it sets one.</summary>
    private static Amazon.RegionEndpoint? ProfileRegion(string name)
    {
        try
        {
            return new Amazon.Runtime.CredentialManagement.CredentialProfileStoreChain().TryGetProfile(name, out var profile) ? profile.Region : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or AmazonClientException or ArgumentException or InvalidDataException)
        {
            return null; // an unreadable profile file sets no region
        }
    }

    /// <summary>Runs one request through the gate and waits for it.</summary>
    /// <exception cref="S3RequestException">The server answered with an error, or the request failed.</exception>
    public T Call<T>(string what, Func<IAmazonS3, CancellationToken, Task<T>> request, CancellationToken cancellationToken = default)
    {
        try
        {
            return SendAsync(what, request, gated: true, cancellationToken).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
    }

    /// <summary>
    /// Runs one request beside the gate and waits for it: for leases, whose renewals must not queue behind a
    /// full gate of uploads (the client keeps connections for them beyond <see cref="MaxRequests"/>).
    /// </summary>
    /// <param name="what">The request, for messages.</param>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels it.</param>
    /// <param name="tries">Tries at most (<see cref="Tries"/> when null): a release tries once, and gives up in seconds.</param>
    /// <exception cref="S3RequestException">The server answered with an error, or the request failed.</exception>
    public T CallUngated<T>(string what, Func<IAmazonS3, CancellationToken, Task<T>> request, CancellationToken cancellationToken = default, int? tries = null)
    {
        try
        {
            return SendAsync(what, request, gated: false, cancellationToken, tries).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
    }

    /// <summary>Every key under <paramref name="prefix"/>, a page (a request) at a time.</summary>
    /// <exception cref="S3RequestException">A page could not be listed.</exception>
    public IEnumerable<S3Object> ListAll(string bucket, string prefix, bool gated, CancellationToken cancellationToken)
    {
        string? continuation = null;
        do
        {
            string? token = continuation;
            ListObjectsV2Response page = SendAsync($"LIST {prefix}", (client, t) => client.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = bucket,
                Prefix = prefix,
                ContinuationToken = token,
            }, t), gated, cancellationToken).GetAwaiter().GetResult();
            foreach (S3Object entry in page.S3Objects ?? [])
            {
                yield return entry;
            }
            continuation = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (continuation is not null);
    }

    /// <summary>Runs one request through the gate.</summary>
    /// <exception cref="S3RequestException">The server answered with an error, or the request failed.</exception>
    public Task<T> CallAsync<T>(string what, Func<IAmazonS3, CancellationToken, Task<T>> request, CancellationToken cancellationToken = default) =>
        SendAsync(what, request, gated: true, cancellationToken);

    /// <summary>
    /// Sends a request, each try bounded by <see cref="TryTimeout"/> (connecting, waiting for the answer and reading it), and
    /// tries again, after a pause that doubles, when it timed out, could not reach the server or got a 5xx answer, up to
    /// <see cref="Tries"/> times. The error names the request, the timeout and the tries.
    /// </summary>
    private async Task<T> SendAsync<T>(string what, Func<IAmazonS3, CancellationToken, Task<T>> request, bool gated, CancellationToken cancellationToken, int? maxTries = null)
    {
        int tries = Math.Max(1, maxTries ?? Tries);
        TimeSpan backoff = s_firstBackoff;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await TryOnceAsync(what, request, gated, cancellationToken, attempt, tries).ConfigureAwait(false);
            }
            catch (S3RequestException ex) when (ex.IsTransient && attempt < tries)
            {
                await Task.Delay(backoff + TimeSpan.FromMilliseconds(Random.Shared.Next((int)backoff.TotalMilliseconds)), cancellationToken).ConfigureAwait(false);
                backoff *= 2;
            }
        }
    }

    private async Task<T> TryOnceAsync<T>(string what, Func<IAmazonS3, CancellationToken, Task<T>> request, bool gated, CancellationToken cancellationToken, int attempt, int tries)
    {
        if (gated)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TryTimeout);
        // A try cut off by its own deadline (not the caller's), however the SDK reports it.
        bool timedOut() => deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested;
        string Tried(string problem) =>
            tries == 1 ? problem : FormattableString.Invariant($"{problem}, {attempt} {(attempt == 1 ? "try" : "tries")}");
        try
        {
            return await request(Client, deadline.Token).ConfigureAwait(false);
        }
        catch (AmazonServiceException ex) when (!timedOut())
        {
            throw new S3RequestException(what, ex.StatusCode, ex.ErrorCode, attempt > 1 ? Tried(ex.Message) : ex.Message, ex);
        }
        catch (Exception ex) when (ex is AmazonClientException or HttpRequestException or IOException && !timedOut())
        {
            throw new S3RequestException(what, null, null, Tried(ex.Message), ex, transient: true);
        }
        catch (Exception ex) when (ex is OperationCanceledException or AmazonClientException or HttpRequestException or IOException && timedOut())
        {
            throw new S3RequestException(what, null, null, Tried(FormattableString.Invariant($"timed out after {TryTimeout.TotalSeconds:0.#} s")), ex, transient: true);
        }
        finally
        {
            if (gated)
            {
                _gate.Release();
            }
        }
    }

    public void Dispose()
    {
        Client.Dispose();
        _gate.Dispose();
    }
}

/// <summary>An S3 request that failed: the server's status and code when it answered.</summary>
internal sealed class S3RequestException : IOException
{
    private const string QuotaExceededCode = "QuotaExceeded";

    /// <summary>Creates the exception.</summary>
    public S3RequestException(string request, HttpStatusCode? status, string? code, string message, Exception? innerException, bool transient = false)
        : base(Describe(request, status, code, message), innerException)
    {
        Status = status;
        Code = code;
        IsTransient = transient || (int?)status is >= 500 and <= 599;
    }

    /// <summary>Worth another try: no answer in time, no connection, or a 5xx answer (the server's trouble, not the request's).</summary>
    public bool IsTransient { get; }

    /// <summary>The HTTP status the server answered with, or null when none came.</summary>
    public HttpStatusCode? Status { get; }

    /// <summary>The server's error code (<c>NoSuchKey</c>, <c>PreconditionFailed</c>), when it sent one.</summary>
    public string? Code { get; }

    private static string Describe(string request, HttpStatusCode? status, string? code, string message)
    {
        string answer = status is { } s ? $"{(int)s} {code ?? s.ToString()}" : "";
        string detail = string.IsNullOrWhiteSpace(message) ? "" : message.Trim();
        if (status == HttpStatusCode.Forbidden)
        {
            // A 403 is not always a matter of rights: a full quota is one too, and no other key would help.
            string meaning = code == QuotaExceededCode
                ? "the bucket's or the user's quota is full: remove models or run gc to free space"
                : "these credentials may not do this";
            detail = detail.Length == 0 ? meaning : $"{detail} ({meaning})";
        }
        return $"S3 {request}: {string.Join(": ", new[] { answer, detail }.Where(part => part.Length > 0))}";
    }

    /// <summary>The key or bucket is not there.</summary>
    public bool IsNotFound => Status == HttpStatusCode.NotFound;

    /// <summary>The credentials may not do this (AccessDenied): read-only keys asked to write, say. Not a full quota.</summary>
    public bool IsAccessDenied => Status == HttpStatusCode.Forbidden && !IsQuotaExceeded;

    /// <summary>The bucket's or the user's quota is full (RADOS Gateway's and MinIO's <c>QuotaExceeded</c>, a 403).</summary>
    public bool IsQuotaExceeded => Code == QuotaExceededCode;

    /// <summary>A condition of the request (If-Match, If-None-Match) did not hold.</summary>
    public bool IsPreconditionFailed => Status == HttpStatusCode.PreconditionFailed;

    /// <summary>Another conditional write of the key was under way (AWS's ConditionalRequestConflict): try again.</summary>
    public bool IsConflict => Status == HttpStatusCode.Conflict && Code == "ConditionalRequestConflict";
}
