using System.Net;

namespace ZipLlm.Serve;

/// <summary>How <see cref="HubServer"/> listens and whom it serves.</summary>
public sealed class HubServerOptions
{
    /// <summary>Port <see cref="Port"/> takes when not set: the one hub mirrors commonly use.</summary>
    public const int DefaultPort = 8080;

    /// <summary>Most entries of a <c>/tree</c> page (the hub's own page size); a request's <c>limit</c> may ask for fewer.</summary>
    public const int MaxTreePage = 1000;

    /// <summary>Address to listen on: an IP address, or <c>localhost</c>. Default 127.0.0.1.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>Port to listen on, 0 for any free one (<see cref="HubServer.Address"/> says which). Default <see cref="DefaultPort"/>.</summary>
    public int Port { get; set; } = DefaultPort;

    /// <summary>Who may read which models; everyone reads everything when null.</summary>
    public TokenTable? Tokens { get; set; }

    /// <summary>Allows listening on an address other machines reach without <see cref="Tokens"/>.</summary>
    public bool Public { get; set; }

    /// <summary>How long in-flight responses get to finish once the server stops (they are cut after it).</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The address to bind, checked: loopback, or any address with tokens or <see cref="Public"/>.</summary>
    /// <exception cref="ArgumentException">The host is not an IP address or <c>localhost</c>, the port is out of range, or the address is not loopback and neither tokens nor <see cref="Public"/> are set.</exception>
    public IPAddress Validate()
    {
        if (Port is < 0 or > IPEndPoint.MaxPort)
        {
            throw new ArgumentException($"--port must be from 0 to {IPEndPoint.MaxPort}, not {Port}.");
        }
        IPAddress address = string.Equals(Host, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : IPAddress.TryParse(Host, out IPAddress? parsed) ? parsed
            : throw new ArgumentException($"--host must be an IP address or localhost, not '{Host}'.");
        if (!IPAddress.IsLoopback(address) && Tokens is null && !Public)
        {
            throw new ArgumentException(
                $"--host {Host} is reachable from other machines and no --tokens file says who may read what: give --tokens FILE, or --public to serve every model to anyone.");
        }
        return address;
    }
}
