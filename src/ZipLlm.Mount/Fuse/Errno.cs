namespace ZipLlm.Mount.Fuse;

/// <summary>The Linux errno values the file system answers with (<c>asm-generic/errno-base.h</c>, <c>errno.h</c>).</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int EROFS = 30;
    public const int ERANGE = 34;
    public const int ENOSYS = 38;
    public const int ENODATA = 61;
    public const int EPROTO = 71;
    public const int ENOTCONN = 107;
}

/// <summary>A file-system operation refused with <see cref="Number"/> (an errno): what the FUSE layer answers the kernel.</summary>
internal sealed class FuseException(int number, string message) : Exception(message)
{
    /// <summary>The errno, positive (the reply carries it negated).</summary>
    public int Number { get; } = number;
}
