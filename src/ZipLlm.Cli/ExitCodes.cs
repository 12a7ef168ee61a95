namespace ZipLlm.Cli;

/// <summary>The process exit codes of <c>zipllm</c>; 0 only on full success.</summary>
public static class ExitCodes
{
    /// <summary>Everything asked for was done.</summary>
    public const int Success = 0;

    /// <summary>An unexpected failure (a bug): the message and stack trace are logged.</summary>
    public const int InternalError = 1;

    /// <summary>The command line was wrong (unknown verb, missing argument).</summary>
    public const int UsageError = 2;

    /// <summary>An input file is malformed, truncated or unsupported.</summary>
    public const int InvalidInput = 3;

    /// <summary>A file or folder could not be read or written.</summary>
    public const int IoError = 4;

    /// <summary>Some models or files failed while others succeeded.</summary>
    public const int PartialFailure = 5;

    /// <summary>Stored data failed verification (a hash mismatch or a missing object).</summary>
    public const int VerificationFailed = 6;

    /// <summary>The run was cancelled: SIGINT (Ctrl+C) or SIGTERM; the verb cleaned up first unless signalled twice.</summary>
    public const int Cancelled = 130;
}
