using Microsoft.Extensions.Logging;

namespace ZipLlm.Hub;

/// <summary>
/// One retried unit of hub work (a listing page, a file): what to call it in messages, and the attempt
/// it is on. The transport's retries of requests and the caller's retries of bodies draw on the same
/// attempts, so <see cref="HubClientOptions.MaxAttempts"/> bounds the unit as a whole.
/// </summary>
/// <param name="subject">The model, or <c>model: file</c>, as errors about a response name it.</param>
/// <param name="activity">What is being done to it, when the subject alone does not say (<c>listing files</c>).</param>
internal sealed class HubOperation(string subject, string? activity = null)
{
    /// <summary>Names the model (and file) in errors about a response.</summary>
    public string Subject { get; } = subject;

    /// <summary>Names the work in retry warnings and in the error after the last attempt.</summary>
    public string Description { get; } = activity is null ? subject : $"{subject}: {activity}";

    /// <summary>The attempt under way, from 1.</summary>
    public int Attempt { get; set; } = 1;
}

/// <summary>A failure worth retrying: timeouts, dropped connections, short transfers, 408, 429 and 5xx.</summary>
internal sealed class HubTransientException(string message, Exception? inner, TimeSpan? retryAfter = null) : Exception(message, inner)
{
    /// <summary>The wait the server asked for (<c>Retry-After</c>), if it did.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}

/// <summary>Exponential backoff with jitter, a capped <c>Retry-After</c>, and a bounded number of attempts.</summary>
internal sealed class HubRetryPolicy(HubClientOptions options, ILogger logger)
{
    /// <summary>Runs <paramref name="attempt"/> until it succeeds, a non-transient error escapes, or the attempts run out.</summary>
    /// <exception cref="HubException">Every attempt failed transiently (<see cref="HubErrorKind.Network"/>).</exception>
    public async Task<T> RunAsync<T>(HubOperation operation, Func<CancellationToken, Task<T>> attempt, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                return await attempt(cancellationToken).ConfigureAwait(false);
            }
            catch (HubTransientException ex)
            {
                await BackOffAsync(operation, ex, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// After <paramref name="failure"/>: waits and moves <paramref name="operation"/> to its next
    /// attempt, or, when it was the last, throws.
    /// </summary>
    /// <exception cref="HubException">That was the last attempt (<see cref="HubErrorKind.Network"/>).</exception>
    public async Task BackOffAsync(HubOperation operation, HubTransientException failure, CancellationToken cancellationToken)
    {
        int number = operation.Attempt;
        if (number >= options.MaxAttempts)
        {
            throw new HubException(HubErrorKind.Network, $"{operation.Description}: {failure.Message}; gave up after {number} attempts.", null, failure);
        }
        double backoff = Math.Min(options.MaxBackoff.TotalMilliseconds, options.InitialBackoff.TotalMilliseconds * Math.Pow(2, number - 1));
        backoff *= 0.8 + 0.4 * Random.Shared.NextDouble();
        TimeSpan delay = TimeSpan.FromMilliseconds(backoff);
        if (failure.RetryAfter is TimeSpan asked)
        {
            delay = asked > options.MaxRetryAfter ? options.MaxRetryAfter : asked;
        }
        logger.LogWarning("{What}: {Reason}; retrying in {Seconds:F1} s (attempt {Next} of {Max})",
            operation.Description, failure.Message, delay.TotalSeconds, number + 1, options.MaxAttempts);
        await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        operation.Attempt = number + 1;
    }
}
