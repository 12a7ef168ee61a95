using Microsoft.Extensions.Logging;
using ZipLlm.Cli;

namespace ZipLlm.Tests.Cli;

/// <summary>
/// Tests that swap <see cref="Console.Error"/>, which is the whole process's: they run alone, so no other test's
/// logger writes into what they capture.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "Console";
}

[Collection(ConsoleCollection.Name)]
public class LoggingTests
{
    [Fact]
    public void DisposingTheFactory_FlushesEveryQueuedLine()
    {
        // The console provider writes from a background queue; a process exits right after the factory is
        // disposed, so a line still queued then is lost unless disposing the factory drains the queue.
        TextWriter original = Console.Error;
        var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            ILoggerFactory factory = Logging.CreateFactory(LogLevel.Information);
            ILogger logger = factory.CreateLogger("test");
            for (int i = 0; i < 2000; i++)
            {
                logger.LogInformation("line {Number}", i);
            }
            logger.LogError("the last word");
            factory.Dispose();
        }
        finally
        {
            Console.SetError(original);
        }
        string text = captured.ToString();
        Assert.Contains("line 1999" + Environment.NewLine, text, StringComparison.Ordinal);
        Assert.EndsWith("error: the last word" + Environment.NewLine, text, StringComparison.Ordinal);
    }

    [Fact]
    public void MinimumLevel_HidesLowerLevels()
    {
        TextWriter original = Console.Error;
        var captured = new StringWriter();
        Console.SetError(captured);
        try
        {
            using ILoggerFactory factory = Logging.CreateFactory(LogLevel.Warning);
            ILogger logger = factory.CreateLogger("test");
            logger.LogInformation("hidden");
            logger.LogWarning("shown");
        }
        finally
        {
            Console.SetError(original);
        }
        Assert.Equal("warning: shown" + Environment.NewLine, captured.ToString());
    }
}
