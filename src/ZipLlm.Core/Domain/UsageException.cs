namespace ZipLlm.Domain;

/// <summary>
/// What the user asked for cannot be done as asked: a malformed model id or option, an output folder a restore must not
/// sweep, an endpoint that is not an address. An <see cref="ArgumentException"/> (the library's contract for a caller's
/// mistake); the <c>zipllm</c> command answers it, and only it among argument errors, with exit code 2: any other
/// <see cref="ArgumentException"/> from the engine is a bug.
/// </summary>
internal sealed class UsageException : ArgumentException
{
    /// <summary>Creates the exception with a message for the user.</summary>
    public UsageException(string message, string? paramName = null)
        : base(message, paramName)
    {
    }
}
