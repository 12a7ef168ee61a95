using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ZipLlm.Serve;

/// <summary>
/// A store answered as a Hugging Face hub over HTTP (Kestrel, minimal APIs): any HF client reads from it with
/// <c>HF_ENDPOINT</c> set to <see cref="Address"/>. One log line per request (method, path, status, bytes sent,
/// milliseconds; the path escaped, so no request can forge a line); tokens and query strings are never logged.
/// </summary>
public sealed class HubServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();
    private readonly HubServerOptions _options;
    private int _stopped;

    private HubServer(WebApplication app, HubServerOptions options)
    {
        _app = app;
        _options = options;
    }

    /// <summary>Where the server listens, once started: <c>http://ADDR:PORT</c> with the port it got.</summary>
    public Uri? Address { get; private set; }

    /// <summary>Builds a server of <paramref name="store"/>; it listens once <see cref="StartAsync"/> is called.</summary>
    /// <param name="store">What it serves.</param>
    /// <param name="options">Address, port, tokens.</param>
    /// <param name="loggerFactory">Where the request lines and errors go; Kestrel's own messages below warning are dropped.</param>
    /// <exception cref="ArgumentException">The options are invalid (see <see cref="HubServerOptions"/>).</exception>
    public static HubServer Create(IHubStore store, HubServerOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        IPAddress address = options.Validate();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = Environments.Production,
        });
        // Nothing from the working folder or the environment (appsettings.json, ASPNETCORE_URLS) changes what runs.
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new ForwardingLoggerProvider(loggerFactory));
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        // The caller owns SIGINT and SIGTERM (the CLI's verbs all handle them the same way).
        builder.Services.AddSingleton<IHostLifetime, CallerLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // No route takes a larger body than a paths-info request.
            kestrel.Limits.MaxRequestBodySize = HubEndpoints.MaxPathsInfoBody;
            kestrel.Listen(address, options.Port);
        });
        WebApplication app = builder.Build();
        var server = new HubServer(app, options);
        ILogger logger = loggerFactory.CreateLogger("ZipLlm.Serve");
        app.Use(async (context, next) =>
        {
            long start = Stopwatch.GetTimestamp();
            var sent = new HubResponses.SentBytes();
            context.Features.Set(sent);
            try
            {
                await next(context);
            }
            catch (Exception ex) when (HubErrors.IsStoreFailure(ex))
            {
                // A store that cannot be read (a damaged manifest or file, an unreachable bucket) in any route: the log
                // says what, the client gets a 500 naming nothing, or a cut connection once bytes were sent.
                logger.LogError("{Method} {Path}: {Message}", context.Request.Method, context.Request.Path.ToUriComponent(), ex.Message);
                if (context.Response.HasStarted)
                {
                    context.Abort();
                }
                else
                {
                    context.Response.Clear();
                    await HubErrors.Internal(context);
                }
            }
            finally
            {
                logger.LogInformation("{Method} {Path} {Status} {Bytes} {Milliseconds:F1} ms", context.Request.Method, context.Request.Path.ToUriComponent(),
                    context.Response.StatusCode, sent.Count, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        });
        new HubEndpoints(store, options.Tokens, logger, server._stopping.Token).Map(app);
        return server;
    }

    /// <summary>Starts listening; returns once connections are accepted.</summary>
    /// <exception cref="IOException">The address cannot be bound (in use, not this machine's).</exception>
    public async Task<Uri> StartAsync(CancellationToken cancellationToken)
    {
        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        string bound = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("Kestrel reports no address.");
        Address = new Uri(bound);
        return Address;
    }

    /// <summary>Stops: responses under way are cut (their reads cancelled), then the listener closes.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(_options.ShutdownTimeout);
        await _app.StopAsync(timeout.Token).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>A host lifetime that leaves signals to the caller.</summary>
    private sealed class CallerLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Hands the host's loggers to the caller's factory (which it keeps owning).</summary>
    private sealed class ForwardingLoggerProvider(ILoggerFactory factory) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);

        public void Dispose()
        {
        }
    }
}
