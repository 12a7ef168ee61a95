using System.Runtime.InteropServices;

namespace ZipLlm.Mount.Fuse;

/// <summary>The libc calls the FUSE layer makes (Linux, x86-64 and arm64 share these signatures).</summary>
internal static unsafe partial class FuseNative
{
    public const int O_RDWR = 2;
    public const int O_CLOEXEC = 0x80000;
    public const ulong MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4;
    public const int MNT_DETACH = 2;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fileSystemType, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Unmount(string target, int flags);

    public const int AF_UNIX = 1, SOCK_STREAM = 1, SOL_SOCKET = 1, SCM_RIGHTS = 1;
    public const int F_SETFD = 2, FD_CLOEXEC = 1;

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    public static partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint ReceiveMessage(int fd, MessageHeader* message, int flags);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);

    /// <summary><c>struct msghdr</c> (LP64).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IoVector* Vectors;
        public nuint VectorCount;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary><c>struct iovec</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVector
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary><c>struct cmsghdr</c> (LP64) and one descriptor after it: what <c>CMSG_SPACE(sizeof(int))</c> holds.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ControlWithDescriptor
    {
        public nuint Length;
        public int Level;
        public int Type;
        public int Descriptor;
        private readonly int _padding;
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUid();

    [LibraryImport("libc", EntryPoint = "getuid")]
    public static partial uint GetUid();

    [LibraryImport("libc", EntryPoint = "getgid")]
    public static partial uint GetGid();

    /// <summary>The errno of the last call, and its text.</summary>
    public static (int Errno, string Message) LastError() => (Marshal.GetLastPInvokeError(), Marshal.GetLastPInvokeErrorMessage());
}
