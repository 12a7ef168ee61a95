using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ZipLlm.Tests.TestSupport;

/// <summary>
/// A TCP proxy on 127.0.0.1 in front of an HTTP server, playing a network that can stall: once a request whose bytes
/// hold a given text passes, it and everything sent after it, on any connection, are held (a partition) until
/// <see cref="Release"/>, then delivered in order, even for a client that has given up and closed its connection
/// meanwhile, as a network can deliver a request its sender no longer waits for.
/// </summary>
internal sealed class HoldingProxy : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _answered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _match;
    private int _partitioned;

    /// <summary>Starts the proxy in front of <paramref name="upstream"/> (http://HOST:PORT).</summary>
    public HoldingProxy(Uri upstream)
    {
        _upstream = upstream;
        _listener.Start();
        _ = AcceptAsync();
    }

    /// <summary>The proxy's own URL, to give the client instead of the server's.</summary>
    public Uri Endpoint => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

    /// <summary>Completes when the request that starts the partition has been caught.</summary>
    public Task Held => _held.Task;

    /// <summary>Completes when the server has answered that request, after <see cref="Release"/>.</summary>
    public Task Answered => _answered.Task;

    /// <summary>From now on, the first request holding <paramref name="text"/> (<c>DELETE /bucket/key</c>) starts a partition.</summary>
    public void HoldFrom(string text) => Volatile.Write(ref _match, text);

    /// <summary>Ends the partition: everything held is delivered.</summary>
    public void Release() => _released.TrySetResult();

    public void Dispose()
    {
        _released.TrySetResult();
        _stop.Cancel();
        _listener.Stop();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        using (var server = new TcpClient())
        {
            try
            {
                await server.ConnectAsync(_upstream.Host, _upstream.Port, _stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                return;
            }
            var carries = new StrongBox();
            Task up = PumpUpAsync(client.GetStream(), server.GetStream(), carries);
            Task down = PumpDownAsync(server.GetStream(), client.GetStream(), carries);
            await up;
            // The client may be gone; the server's answer to what was delivered is still awaited, as a network would carry it.
            await Task.WhenAny(down, Task.Delay(TimeSpan.FromSeconds(30)));
        }
    }

    /// <summary>Client to server: where requests are caught and held.</summary>
    private async Task PumpUpAsync(NetworkStream from, NetworkStream to, StrongBox carries)
    {
        byte[] buffer = new byte[64 << 10];
        while (true)
        {
            int read;
            try
            {
                read = await from.ReadAsync(buffer, _stop.Token);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                read = 0;
            }
            if (read == 0)
            {
                return; // what was read is delivered; nothing more comes
            }
            if (Volatile.Read(ref _partitioned) == 0 && Volatile.Read(ref _match) is { } match
                && Encoding.ASCII.GetString(buffer, 0, read).Contains(match, StringComparison.Ordinal)
                && Interlocked.Exchange(ref _partitioned, 1) == 0)
            {
                carries.Value = true;
                _held.TrySetResult();
            }
            if (Volatile.Read(ref _partitioned) == 1)
            {
                await _released.Task;
            }
            try
            {
                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
        }
    }

    /// <summary>Server to client: the caught request's answer is noted; a client that left is no matter.</summary>
    private async Task PumpDownAsync(NetworkStream from, NetworkStream to, StrongBox carries)
    {
        byte[] buffer = new byte[64 << 10];
        while (true)
        {
            int read;
            try
            {
                read = await from.ReadAsync(buffer, _stop.Token);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            if (read == 0)
            {
                return;
            }
            if (carries.Value && _released.Task.IsCompleted)
            {
                _answered.TrySetResult();
            }
            try
            {
                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // The client gave up on it; keep reading, so the answer is seen.
            }
        }
    }

    private sealed class StrongBox
    {
        public volatile bool Value;
    }
}
