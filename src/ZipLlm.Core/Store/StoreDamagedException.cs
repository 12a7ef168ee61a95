namespace ZipLlm.Store;

/// <summary>
/// The store is damaged: an object is missing, unreadable or does not decode to the bytes it is named for, or a
/// manifest does not check. Not the user's input (<see cref="InvalidDataException"/> is kept for that): the CLI
/// reports it as a verification failure, naming what is damaged.
/// </summary>
public class StoreDamagedException : IOException
{
    /// <summary>Creates the exception with a message that names what is damaged.</summary>
    public StoreDamagedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message that names what is damaged, and its cause.</summary>
    public StoreDamagedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
