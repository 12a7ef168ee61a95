using System.CommandLine;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Hub;
using ZipLlm.Serve;
using ZipLlm.Serve.Mirror;

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
    private static readonly Option<string?> s_upstream = new("--upstream")
    {
        Description = "Mirror this hub (https://huggingface.co, or another mirror): a model or revision the store does not hold is fetched once, "
            + "streamed to the client as it arrives, then stored compressed. The server's upstream token is HF_TOKEN or the token file, as for 'models setup'.",
        HelpName = "URL",
    };
    private static readonly Option<string[]> s_mirrorAllow = new("--mirror-allow")
    {
        Description = "Fetch only models these patterns cover (org/name, org/* or *); repeat the option or list several. Default: every model.",
        HelpName = "PATTERN",
        AllowMultipleArgumentsPerToken = true,
    };
    private static readonly Option<string[]> s_mirrorDeny = new("--mirror-deny")
    {
        Description = "Never fetch models these patterns cover, whatever --mirror-allow says.",
        HelpName = "PATTERN",
        AllowMultipleArgumentsPerToken = true,
    };
    private static readonly Option<bool> s_offline = new("--offline")
    {
        Description = "With --upstream: never contact it; a model not stored is RepoNotFound.",
    };
    private static readonly Option<bool> s_forwardTokens = new("--forward-tokens")
    {
        Description = "With --upstream: pass a client's own token upstream for gated models; what it fetched is then served only to tokens upstream accepted. Not with --tokens.",
    };
    private static readonly Option<int> s_mirrorMaxGb = new("--mirror-max-gb")
    {
        Description = "With --upstream: gigabytes of revisions fetched at once, at most (default 100); beyond it a miss waits up to 30 s for room, then gets 503 with Retry-After.",
        HelpName = "N",
        DefaultValueFactory = _ => 100,
    };
    private static readonly Option<int> s_refresh = new("--refresh")
    {
        Description = "With --upstream: every MINUTES, look at upstream main of each mirrored model (one HEAD) and store a new commit as a new revision. Default 0: never.",
        HelpName = "MINUTES",
        DefaultValueFactory = _ => 0,
    };

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
        Options.Add(s_upstream);
        Options.Add(s_mirrorAllow);
        Options.Add(s_mirrorDeny);
        Options.Add(s_offline);
        Options.Add(s_forwardTokens);
        Options.Add(s_mirrorMaxGb);
        Options.Add(s_refresh);
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
        MirrorOptions? mirror = MirrorOptionsOf(parseResult, config, options);
        using ZipLlmStore store = ZipLlmStore.Open(config.StorageDir,
            new ZipLlmStoreOptions { Threads = config.Threads, Logger = logger, CacheMegabytes = parseResult.GetValue(s_cacheMb), CreateIfMissing = mirror is not null });
        using var hubStore = new ZipLlmHubStore(store);
        await using MirrorHubStore? mirrorStore = mirror is null ? null : new MirrorHubStore(hubStore, store, mirror, logger);
        mirrorStore?.ResumeStaged();
        await using HubServer server = HubServer.Create(mirrorStore ?? (IHubStore)hubStore, options, new OneLoggerFactory(logger));
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
        if (mirror is not null)
        {
            logger.LogInformation("Mirroring {Upstream}{Offline}; staging in {Staging}", mirror.Upstream, mirror.Offline ? " (offline: never contacted)" : "", mirror.StagingFolder);
        }
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

    /// <summary>The mirror's options, or null without <c>--upstream</c>; a mirror option without it, or a bad value, is a usage error.</summary>
    private static MirrorOptions? MirrorOptionsOf(ParseResult parseResult, ZipLlmConfig config, HubServerOptions server)
    {
        string? upstream = parseResult.GetValue(s_upstream);
        string[] allow = parseResult.GetValue(s_mirrorAllow) ?? [], deny = parseResult.GetValue(s_mirrorDeny) ?? [];
        bool offline = parseResult.GetValue(s_offline), forward = parseResult.GetValue(s_forwardTokens);
        int maxGb = parseResult.GetValue(s_mirrorMaxGb), refresh = parseResult.GetValue(s_refresh);
        if (upstream is null)
        {
            if (allow.Length > 0 || deny.Length > 0 || offline || forward || parseResult.GetResult(s_mirrorMaxGb) is { Implicit: false } || parseResult.GetResult(s_refresh) is { Implicit: false })
            {
                throw new UsageException("--mirror-allow, --mirror-deny, --offline, --forward-tokens, --mirror-max-gb and --refresh need --upstream URL.");
            }
            return null;
        }
        if (forward && server.Tokens is not null)
        {
            throw new UsageException("--forward-tokens passes the clients' own tokens upstream, so it cannot go with --tokens (the server's tokens).");
        }
        if (!Uri.TryCreate(upstream, UriKind.Absolute, out Uri? url))
        {
            throw new UsageException($"--upstream must be an http or https address like https://huggingface.co, not '{upstream}'.");
        }
        string? token;
        try
        {
            token = offline ? null : HubClientOptions.FromEnvironment().Token;
        }
        catch (ArgumentException ex)
        {
            throw new UsageException(ex.Message);
        }
        var options = new MirrorOptions
        {
            Upstream = url,
            Allow = allow,
            Deny = deny,
            Offline = offline,
            ForwardTokens = forward,
            UpstreamToken = token,
            MaxGigabytes = maxGb,
            RefreshMinutes = refresh,
            StagingFolder = Path.Combine(config.ModelDir, ".zipllm-mirror"),
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new UsageException(ex.Message);
        }
        return options;
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
