namespace ZipLlm.Mount.Fuse;

/// <summary>
/// A read-only file system as the FUSE layer serves it: the few operations a reader needs, by inode. Failures are
/// <see cref="FuseException"/> with the errno to answer; anything else is answered with <c>EIO</c> and logged.
/// The root directory is inode <see cref="RootInode"/>.
/// </summary>
internal interface IFuseFileSystem
{
    /// <summary>The root directory's inode (<c>FUSE_ROOT_ID</c>).</summary>
    const ulong RootInode = 1;

    /// <summary>The entry <paramref name="name"/> of directory <paramref name="parent"/>.</summary>
    ValueTask<FuseAttributes> LookupAsync(ulong parent, string name, CancellationToken cancellationToken);

    /// <summary>The attributes of <paramref name="inode"/>.</summary>
    ValueTask<FuseAttributes> GetAttributesAsync(ulong inode, CancellationToken cancellationToken);

    /// <summary>The entries of directory <paramref name="inode"/> (without <c>.</c> and <c>..</c>), as of now.</summary>
    ValueTask<IReadOnlyList<FuseDirectoryEntry>> ReadDirectoryAsync(ulong inode, CancellationToken cancellationToken);

    /// <summary>Opens file <paramref name="inode"/> for reading; <paramref name="flags"/> are those of <c>open(2)</c>. Returns the handle.</summary>
    ValueTask<ulong> OpenAsync(ulong inode, uint flags, CancellationToken cancellationToken);

    /// <summary>Copies bytes of open file <paramref name="handle"/> from <paramref name="offset"/>; fewer than asked only at its end.</summary>
    ValueTask<int> ReadAsync(ulong handle, long offset, Memory<byte> destination, CancellationToken cancellationToken);

    /// <summary>Closes a handle <see cref="OpenAsync"/> gave.</summary>
    void Release(ulong handle);

    /// <summary>What <c>statfs(2)</c> reports.</summary>
    ValueTask<FuseFileSystemStats> GetStatsAsync(CancellationToken cancellationToken);
}

/// <summary>A node's attributes.</summary>
/// <param name="Inode">Its inode number, stable for as long as the mount.</param>
/// <param name="IsDirectory">Whether it is a directory (else a regular file).</param>
/// <param name="Size">Bytes (a directory: 0).</param>
/// <param name="Mode">Its <c>st_mode</c>, type bits included.</param>
/// <param name="Links">Its <c>st_nlink</c>.</param>
/// <param name="ModifiedAt">Its mtime (also atime and ctime).</param>
/// <param name="Uid">Owner.</param>
/// <param name="Gid">Group.</param>
internal readonly record struct FuseAttributes(ulong Inode, bool IsDirectory, long Size, uint Mode, uint Links, DateTimeOffset ModifiedAt, uint Uid, uint Gid);

/// <summary>An entry of a directory listing.</summary>
internal readonly record struct FuseDirectoryEntry(string Name, ulong Inode, bool IsDirectory);

/// <summary>What <c>statfs(2)</c> reports: blocks of <see cref="BlockSize"/> bytes and files, none free (read-only).</summary>
internal readonly record struct FuseFileSystemStats(ulong Blocks, ulong Files, uint BlockSize);
