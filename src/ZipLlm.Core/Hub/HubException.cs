namespace ZipLlm.Hub;

/// <summary>Why a hub operation failed.</summary>
internal enum HubErrorKind
{
    /// <summary>The hub could not be reached, or kept failing (timeouts, 429, 5xx) after every retry.</summary>
    Network,

    /// <summary>401 or 403: the model is gated or private and HF_TOKEN is missing or lacks access.</summary>
    Unauthorized,

    /// <summary>404: the model, revision or file does not exist.</summary>
    NotFound,

    /// <summary>A downloaded file's size or hash differs from the listing.</summary>
    Integrity,

    /// <summary>The local disk is full.</summary>
    DiskFull,

    /// <summary>A local file could not be written for another reason.</summary>
    LocalIo,

    /// <summary>The hub answered something this client does not understand.</summary>
    Protocol,
}

/// <summary>A hub operation failed; the message is one line a user can act on.</summary>
internal sealed class HubException : IOException
{
    /// <summary>Creates the exception.</summary>
    public HubException(HubErrorKind kind, string message, int? statusCode = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        StatusCode = statusCode;
    }

    /// <summary>Why the operation failed.</summary>
    public HubErrorKind Kind { get; }

    /// <summary>The HTTP status of the failing response, when there was one.</summary>
    public int? StatusCode { get; }

    /// <summary>Whether the failure is the network's (retrying later, or working offline, may help).</summary>
    public bool IsNetworkError => Kind == HubErrorKind.Network;
}
