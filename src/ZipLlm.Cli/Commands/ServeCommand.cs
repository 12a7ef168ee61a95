using System.CommandLine;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Serve;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm serve config.json</c>: answer as a Hugging Face hub over the store, until SIGINT or SIGTERM.</summary>
internal sealed class ServeCommand : BaseCommand
{
    /// <summary>Most <c>--cache-mb</c> accepted: 1 TiB of decoded chunks.</summary>
    public const int MaxCacheMegabytes = 1 << 20;

    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Option<string> s_host = new("--host")
    {
        Description = "Address to listen on: an IP address or localhost (default 127.0.0.1). Any other than loopback needs --tokens or --public.",
        DefaultValueFactory = _ => "127.0.0.1",
    };
    private static readonly Option<int> s_port = new("--port", "-p")
    {
        Description = $"Port to listen on, 0 for any free one (default {HubServerOptions.DefaultPort}); the port taken is printed.",
        DefaultValueFactory = _ => HubServerOptions.DefaultPort,
    };
    private static readonly Option<FileInfo?> s_tokens = new("--tokens")
    {
        Description = "Token file: lines 'TOKEN PATTERN...' (patterns org/name, org/* or *). A request then needs 'Authorization: Bearer TOKEN' "
            + "(HF_TOKEN in the clients) and sees only the models its token covers.",
    };
    private static readonly Option<bool> s_public = new("--public")
    {
        Description = "Serve every model to anyone on an address other machines reach, without --tokens.",
    };
    private static readonly Option<int> s_cacheMb = new("--cache-mb")
    {
        Description = "Megabytes of decoded chunks kept for the requests to share (default 256).",
        DefaultValueFactory = _ => 256,
        CustomParser = result =>
        {
            string text = result.Tokens is [{ } token] ? token.Value : "";
            if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value) || value > MaxCacheMegabytes)
            {
                result.AddError($"--cache-mb must be a whole number from 0 to {MaxCacheMegabytes}, not '{text}'.");
                return 256;
            }
            return value;
        },
    };
    private static readonly Option<int?> s_threads = CommonOptions.ThreadsOption();

    public ServeCommand()
        : base("serve", "Answer as a Hugging Face hub over the store (HF_ENDPOINT=http://HOST:PORT): model info, file trees, downloads with ranges; stops on Ctrl+C.")
    {
        Arguments.Add(s_config);
        Options.Add(s_host);
        Options.Add(s_port);
        Options.Add(s_tokens);
        Options.Add(s_public);
        Options.Add(s_cacheMb);
        Options.Add(s_threads);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = CommonOptions.WithThreads(ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName), parseResult.GetValue(s_threads));
        var options = new HubServerOptions
        {
            Host = parseResult.GetValue(s_host)!,
            Port = parseResult.GetValue(s_port),
            Public = parseResult.GetValue(s_public),
            Tokens = parseResult.GetValue(s_tokens) is { } tokens ? TokenTable.Load(tokens.FullName) : null,
        };
        // A wrong address or a public one without tokens is refused before the store is opened: the user's mistake (exit 2).
        try
        {
            options.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new UsageException(ex.Message);
        }
        using ZipLlmStore store = ZipLlmStore.Open(config.StorageDir,
            new ZipLlmStoreOptions { Threads = config.Threads, Logger = logger, CacheMegabytes = parseResult.GetValue(s_cacheMb) });
        using var hubStore = new ZipLlmHubStore(store);
        await using HubServer server = HubServer.Create(hubStore, options, new OneLoggerFactory(logger));
        Uri address;
        try
        {
            address = await server.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (AddressInUseException ex)
        {
            throw new IOException($"Cannot listen on {options.Host}:{options.Port}: {ex.Message}", ex);
        }
        await parseResult.InvocationConfiguration.Error.WriteLineAsync($"Listening on {address.GetLeftPart(UriPartial.Authority)}").ConfigureAwait(false);
        logger.LogInformation("Serving {Store} ({Tokens})", store.Location,
            options.Tokens is { } table ? $"{table.Count} tokens" : "no tokens: every model to every client");
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // SIGINT or SIGTERM: responses under way are cut, and the run ends with the cancellation's exit code.
        }
        await server.StopAsync().ConfigureAwait(false);
        return ExitCodes.Success;
    }

    /// <summary>The verb's logger under every category: the server's lines read like every other verb's.</summary>
    private sealed class OneLoggerFactory(ILogger logger) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => logger;

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("The serve verb's logger takes no providers.");

        public void Dispose()
        {
        }
    }
}
