using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;

namespace ZipLlm.Cli;

/// <summary>Maps the library's exception contract to exit codes.</summary>
internal static class ErrorMapping
{
    /// <summary>
    /// Whether <paramref name="ex"/> is an expected failure (bad input, I/O, verification) that
    /// deserves a one-line message rather than a stack trace.
    /// </summary>
    public static bool TryMap(Exception ex, out int exitCode)
    {
        exitCode = ex switch
        {
            StoreDamageException => ExitCodes.VerificationFailed,
            // Not damage: the lease was broken or ran out, and another process may have changed what was used. Run again.
            StoreLockLostException => ExitCodes.IoError,
            // A model the store does not hold: the command line named the wrong one. (Any other missing key is a bug: exit 1.)
            ModelNotFoundException => ExitCodes.UsageError,
            InvalidDataException or EndOfStreamException or NotSupportedException => ExitCodes.InvalidInput,
            // What the user asked for cannot be done as asked. (Any other argument error is the engine's bug: exit 1.)
            UsageException => ExitCodes.UsageError,
            FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException or TimeoutException => ExitCodes.IoError,
            _ => -1,
        };
        return exitCode >= 0;
    }

    /// <summary>The one-line message for <paramref name="ex"/>, without the parameter-name suffix of argument errors.</summary>
    public static string Describe(Exception ex) =>
        ex is ArgumentException { ParamName: { } name } argument
            ? argument.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal)
            : ex.Message;
}
