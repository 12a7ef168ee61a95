namespace ZipLlm;

/// <summary>
/// The store lock that an operation ran under was lost while it ran: its lease in the bucket was not renewed in time
/// (the process was paused, or cut off from the server) or was broken by another process, which may then have removed,
/// stored or collected what was being read or built on. What the operation found missing or changed says nothing of
/// the store's health, so this is not a <see cref="StoreDamageException"/>: run the operation again, and the lock is
/// taken anew. An <see cref="IOException"/> (the command exits with 4).
/// </summary>
public sealed class StoreLockLostException : IOException
{
    internal StoreLockLostException(string location, string what, Exception? innerException)
        : this($"Lost the store lock of {location} while {what}: its lease was not renewed in time or was broken by another process, " +
            "which may have removed or changed what was in use" +
            (innerException is null ? "" : $" (found: {innerException.Message.TrimEnd('.')})") + ". Nothing is wrong with the store; run it again.", innerException)
    {
    }

    internal StoreLockLostException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
