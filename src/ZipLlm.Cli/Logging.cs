using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace ZipLlm.Cli;

/// <summary>Builds the console logger every verb uses: one line per message, on standard error.</summary>
internal static class Logging
{
    public static ILoggerFactory CreateFactory(LogLevel minimumLevel) =>
        LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(minimumLevel);
            builder.AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.IncludeScopes = false;
                options.TimestampFormat = null;
                options.ColorBehavior = Console.IsErrorRedirected ? LoggerColorBehavior.Disabled : LoggerColorBehavior.Default;
            });
            // Everything goes to stderr, so stdout carries only a verb's results (tables, sizes).
            builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        });
}
