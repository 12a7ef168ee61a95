using ZipLlm.Hub;

namespace ZipLlm.Tests.TestSupport;

/// <summary>Hub client options and endpoints for tests: quick retries, and an address nothing listens on.</summary>
internal static class HubTestOptions
{
    /// <summary>Three attempts, millisecond backoff, short timeouts.</summary>
    public static HubClientOptions Fast(Uri endpoint, string? token = null) => new()
    {
        Endpoint = endpoint,
        Token = token,
        MaxAttempts = 3,
        InitialBackoff = TimeSpan.FromMilliseconds(1),
        MaxBackoff = TimeSpan.FromMilliseconds(5),
        MaxRetryAfter = TimeSpan.FromMilliseconds(50),
        RequestTimeout = TimeSpan.FromSeconds(5),
        ReadTimeout = TimeSpan.FromSeconds(5),
    };

    /// <summary>A loopback address whose port was just free, so connecting to it is refused.</summary>
    public static Uri ClosedPortEndpoint()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}");
    }
}
