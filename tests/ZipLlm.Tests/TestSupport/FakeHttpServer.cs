using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ZipLlm.Tests.TestSupport;

/// <summary>
/// A request as the fake server saw it: the path unescaped, without its query (in <paramref name="Query"/>, after the
/// '?'), and as sent (<paramref name="EscapedPath"/>, where an escaped slash is still one segment's).
/// </summary>
internal sealed record FakeRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Query = "", string EscapedPath = "")
{
    public string? Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out string? value) ? value : null;
}

/// <summary>What the fake server answers. <paramref name="SendBytes"/> below the body length cuts the connection mid-body.</summary>
internal sealed record FakeResponse(int Status, byte[] Body, IReadOnlyDictionary<string, string>? Headers = null, int? SendBytes = null)
{
    public static FakeResponse Text(int status, string text, IReadOnlyDictionary<string, string>? headers = null) =>
        new(status, Encoding.UTF8.GetBytes(text), headers);
}

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1 with an ephemeral port: one request per connection,
/// <c>Connection: close</c>, no request bodies. Enough to play the hub in tests without a network.
/// </summary>
internal sealed class FakeHttpServer : IAsyncDisposable
{
    private const int MaxHeaderBytes = 64 * 1024;
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<FakeRequest, FakeResponse> _handler;
    private readonly Task _loop;

    public FakeHttpServer(Func<FakeRequest, FakeResponse> handler)
    {
        _handler = handler;
        _listener.Start();
        Endpoint = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");
        _loop = Task.Run(AcceptLoopAsync);
    }

    public Uri Endpoint { get; }

    public ConcurrentQueue<FakeRequest> Requests { get; } = new();

    private async Task AcceptLoopAsync()
    {
        var connections = new List<Task>();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
                connections.Add(Task.Run(() => ServeAsync(client)));
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
        await Task.WhenAll(connections);
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                NetworkStream stream = client.GetStream();
                FakeRequest? request = await ReadRequestAsync(stream, timeout.Token);
                if (request is null)
                {
                    return;
                }
                Requests.Enqueue(request);
                FakeResponse response = _handler(request);
                var head = new StringBuilder();
                head.Append($"HTTP/1.1 {response.Status} {Reason(response.Status)}\r\n");
                head.Append($"Content-Length: {response.Body.Length}\r\nConnection: close\r\n");
                foreach (KeyValuePair<string, string> header in response.Headers ?? new Dictionary<string, string>())
                {
                    head.Append($"{header.Key}: {header.Value}\r\n");
                }
                head.Append("\r\n");
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), timeout.Token);
                if (request.Method != "HEAD")
                {
                    int count = Math.Min(response.SendBytes ?? response.Body.Length, response.Body.Length);
                    await stream.WriteAsync(response.Body.AsMemory(0, count), timeout.Token);
                }
                await stream.FlushAsync(timeout.Token);
                client.Client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
            }
        }
    }

    private static async Task<FakeRequest?> ReadRequestAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var buffer = new List<byte>();
        var chunk = new byte[4096];
        while (buffer.Count < MaxHeaderBytes)
        {
            int n = await stream.ReadAsync(chunk, cancellationToken);
            if (n == 0)
            {
                return null;
            }
            buffer.AddRange(chunk.AsSpan(0, n));
            string text = Encoding.ASCII.GetString(buffer.ToArray());
            int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0)
            {
                continue;
            }
            string[] lines = text[..end].Split("\r\n");
            string[] requestLine = lines[0].Split(' ');
            var headers = new Dictionary<string, string>();
            foreach (string line in lines.Skip(1))
            {
                int colon = line.IndexOf(':');
                if (colon > 0)
                {
                    headers[line[..colon].Trim().ToLowerInvariant()] = line[(colon + 1)..].Trim();
                }
            }
            string target = requestLine[1];
            int question = target.IndexOf('?');
            return question < 0
                ? new FakeRequest(requestLine[0], Uri.UnescapeDataString(target), headers, EscapedPath: target)
                : new FakeRequest(requestLine[0], Uri.UnescapeDataString(target[..question]), headers, Uri.UnescapeDataString(target[(question + 1)..]), target[..question]);
        }
        return null;
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        _stop.Dispose();
    }
}
