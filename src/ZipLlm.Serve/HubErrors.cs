using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace ZipLlm.Serve;

/// <summary>
/// The errors the server answers, as the hub writes them (clients branch on <c>X-Error-Code</c>): one table from
/// our kinds to status, code and body.
/// </summary>
internal static class HubErrors
{
    public const string ErrorCodeHeader = "X-Error-Code";
    public const string ErrorMessageHeader = "X-Error-Message";

    public static Task RepoNotFound(HttpContext context, bool authenticated) =>
        // The hub answers 401 to a request without valid credentials, so a client asks for a token, 404 to one with.
        WriteAsync(context, authenticated ? StatusCodes.Status404NotFound : StatusCodes.Status401Unauthorized, "RepoNotFound",
            "Repository not found");

    public static Task EntryNotFound(HttpContext context, string path) =>
        WriteAsync(context, StatusCodes.Status404NotFound, "EntryNotFound", $"Entry not found: {path}");

    public static Task BadRequest(HttpContext context, string message) =>
        WriteAsync(context, StatusCodes.Status400BadRequest, null, message);

    public static Task NotFound(HttpContext context) =>
        WriteAsync(context, StatusCodes.Status404NotFound, null, "Not found");

    public static Task Internal(HttpContext context) =>
        WriteAsync(context, StatusCodes.Status500InternalServerError, null, "The stored file could not be read back; the server's log says why.");

    /// <summary>
    /// The store lock the read ran under was lost (another process's remove or gc may have changed the model): no damage,
    /// and the next request takes the lock anew, so the client is asked to retry at once.
    /// </summary>
    public static Task LockLost(HttpContext context)
    {
        context.Response.Headers.RetryAfter = "1";
        return WriteAsync(context, StatusCodes.Status503ServiceUnavailable, null, "The store changed while the file was read; retry.");
    }

    public static Task Unavailable(HttpContext context) =>
        WriteAsync(context, StatusCodes.Status503ServiceUnavailable, null, "The store could not be read; the server's log says why.");

    /// <summary>What the store (a mirror's upstream) refused, as it refused it: status, code, message, <c>Retry-After</c>.</summary>
    public static Task Refusal(HttpContext context, HubStoreRefusal refusal)
    {
        if (refusal.RetryAfterSeconds is { } seconds)
        {
            context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return WriteAsync(context, refusal.Status, refusal.ErrorCode, refusal.Message);
    }

    /// <summary>Whether <paramref name="ex"/> is the store failing to read (I/O, damage, malformed data) rather than a bug.</summary>
    public static bool IsStoreFailure(Exception ex) => ex is IOException or InvalidDataException or UnauthorizedAccessException or TimeoutException;

    public static async Task WriteAsync(HttpContext context, int status, string? code, string message)
    {
        HttpResponse response = context.Response;
        response.StatusCode = status;
        if (code is not null)
        {
            response.Headers[ErrorCodeHeader] = code;
        }
        response.Headers[ErrorMessageHeader] = message;
        await HubResponses.WriteJsonAsync(context, JsonSerializer.SerializeToUtf8Bytes(new ErrorJson { Error = message }, HubJsonContext.Default.ErrorJson));
    }
}

/// <summary>Response writing that counts what was sent, for the request's log line.</summary>
internal static class HubResponses
{
    public static Task WriteJsonAsync(HttpContext context, byte[] body)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.ContentLength = body.Length;
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return Task.CompletedTask;
        }
        return WriteAsync(context, body);
    }

    public static async Task WriteAsync(HttpContext context, ReadOnlyMemory<byte> bytes)
    {
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
        Sent(context, bytes.Length);
    }

    public static void Sent(HttpContext context, long bytes)
    {
        if (context.Features.Get<SentBytes>() is { } sent)
        {
            sent.Count += bytes;
        }
    }

    /// <summary>Bytes of body sent so far in a request.</summary>
    internal sealed class SentBytes
    {
        public long Count { get; set; }
    }
}
