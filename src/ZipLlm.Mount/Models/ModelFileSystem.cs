using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using ZipLlm.Domain;
using ZipLlm.Mount.Fuse;

namespace ZipLlm.Mount.Models;

/// <summary>
/// Every stored model as a read-only folder: the root lists the orgs, an org its models, a model its files (in
/// sub-folders where their paths have them), exactly what <c>zipllm restore</c> writes. Files are 0444, folders 0555,
/// owned by the mounting user; a model's files and folder have its manifest's time (<see cref="StoredModel.StoredAt"/>).
/// Inodes are stable per path (and a file's content) for as long as the mount. The listing is read again once it is older than
/// <see cref="ListingLifetime"/>, so a model stored or removed meanwhile appears or disappears.
/// </summary>
internal sealed class ModelFileSystem : IFuseFileSystem
{
    /// <summary>How long a listing is used before the store is asked again, by default.</summary>
    public static readonly TimeSpan DefaultListingLifetime = TimeSpan.FromSeconds(2);

    private const uint DirectoryMode = 0x4000 | 0x16D; // S_IFDIR | 0555
    private const uint FileMode = 0x8000 | 0x124; // S_IFREG | 0444
    private const uint AccessModeMask = 3; // O_ACCMODE; O_RDONLY is 0
    private const uint TruncateFlag = 0x200; // O_TRUNC

    /// <summary>How far ahead of a sequential reader chunks are decoded, by default: four of the store's 4 MiB chunks (measured: 8 MiB gave 586-605 MB/s for cat of the base, 16 MiB 658-696).</summary>
    public const long DefaultReadAhead = 16 << 20;

    /// <summary>Read-ahead probes one byte every this many bytes: each chunk (4 MiB at most, a small tensor less) is asked for at least once.</summary>
    internal const long ReadAheadStride = 1 << 20;

    private readonly IModelSource _source;
    private readonly long _readAhead;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly uint _uid, _gid;
    private readonly ConcurrentDictionary<string, ulong> _inodes = new(StringComparer.Ordinal);
    // Inode to key: a folder's path, or a file's path and SHA-256 (see InodeOf).
    private readonly ConcurrentDictionary<ulong, string> _keys = new();
    private readonly ConcurrentDictionary<ulong, OpenFile> _open = new();
    private readonly Lock _refreshGate = new();
    private long _nextInode = (long)IFuseFileSystem.RootInode;
    private long _nextHandle;
    private Tree? _tree;
    private Task<Tree>? _refreshing;

    /// <param name="source">The store.</param>
    /// <param name="time">The clock the listing's age is measured with.</param>
    /// <param name="logger">Where damaged reads and failed listings are logged.</param>
    /// <param name="uid">The owner of every node.</param>
    /// <param name="gid">The group of every node.</param>
    /// <param name="listingLifetime">How long a listing is used; <see cref="DefaultListingLifetime"/> when null.</param>
    /// <param name="readAhead">
    /// Bytes past a sequential read whose chunks are decoded ahead of the reader (into the store's cache), so a lone
    /// reader keeps several workers busy; 0 decodes only what is asked (right when the store keeps no cache).
    /// </param>
    public ModelFileSystem(IModelSource source, TimeProvider time, ILogger logger, uint uid, uint gid, TimeSpan? listingLifetime = null,
        long readAhead = DefaultReadAhead)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(readAhead);
        _readAhead = readAhead;
        _source = source;
        _time = time;
        _logger = logger;
        _uid = uid;
        _gid = gid;
        ListingLifetime = listingLifetime ?? DefaultListingLifetime;
        _inodes[""] = IFuseFileSystem.RootInode;
        _keys[IFuseFileSystem.RootInode] = "";
    }

    /// <summary>How long a listing is used before the store is asked again.</summary>
    public TimeSpan ListingLifetime { get; }

    /// <summary>Files open now.</summary>
    public int OpenFiles => _open.Count;

    public async ValueTask<FuseAttributes> LookupAsync(ulong parent, string name, CancellationToken cancellationToken)
    {
        Tree tree = await GetTreeAsync(cancellationToken).ConfigureAwait(false);
        Node directory = NodeOf(tree, parent);
        if (!directory.IsDirectory)
        {
            throw new FuseException(Errno.ENOTDIR, $"Inode {parent} is not a folder.");
        }
        string path = directory.Path.Length == 0 ? name : directory.Path + "/" + name;
        return tree.Nodes.TryGetValue(path, out Node? node)
            ? AttributesOf(node)
            : throw new FuseException(Errno.ENOENT, $"No {path} in the store.");
    }

    public async ValueTask<FuseAttributes> GetAttributesAsync(ulong inode, CancellationToken cancellationToken) =>
        AttributesOf(NodeOf(await GetTreeAsync(cancellationToken).ConfigureAwait(false), inode));

    public async ValueTask<IReadOnlyList<FuseDirectoryEntry>> ReadDirectoryAsync(ulong inode, CancellationToken cancellationToken)
    {
        Tree tree = await GetTreeAsync(cancellationToken).ConfigureAwait(false);
        Node directory = NodeOf(tree, inode);
        if (!directory.IsDirectory)
        {
            throw new FuseException(Errno.ENOTDIR, $"{directory.Path} is not a folder.");
        }
        return directory.Children.Select(name =>
        {
            Node child = tree.Nodes[directory.Path.Length == 0 ? name : directory.Path + "/" + name];
            return new FuseDirectoryEntry(name, InodeOf(child), child.IsDirectory);
        }).ToList();
    }

    public async ValueTask<ulong> OpenAsync(ulong inode, uint flags, CancellationToken cancellationToken)
    {
        if ((flags & AccessModeMask) != 0 || (flags & TruncateFlag) != 0)
        {
            throw new FuseException(Errno.EROFS, "The mount is read-only.");
        }
        Node node = NodeOf(await GetTreeAsync(cancellationToken).ConfigureAwait(false), inode);
        if (node.IsDirectory)
        {
            throw new FuseException(Errno.EISDIR, $"{node.Path} is a folder.");
        }
        ulong handle = (ulong)Interlocked.Increment(ref _nextHandle);
        // The version opened: its reads come from it alone, whatever is stored under its path later.
        _open[handle] = new OpenFile(node.ModelId!, node.FilePath!, node.Sha256!, node.Size);
        return handle;
    }

    public async ValueTask<int> ReadAsync(ulong handle, long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (!_open.TryGetValue(handle, out OpenFile? file))
        {
            throw new FuseException(Errno.EBADF, $"No open file has handle {handle}.");
        }
        if (offset >= file.Size)
        {
            return 0;
        }
        // The file is as long as it was listed when opened: a read never goes past that, whatever the store holds now.
        Memory<byte> wanted = destination[..(int)Math.Min(destination.Length, file.Size - offset)];
        ReadAhead(file, offset, wanted.Length);
        try
        {
            int done = 0;
            while (done < wanted.Length)
            {
                int read = await _source.ReadFileAsync(file.ModelId, file.Path, file.Sha256, offset + done, wanted[done..], cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new FuseException(Errno.EIO, $"{file.ModelId}/{file.Path} ended at {offset + done} bytes; it was listed as {file.Size}.");
                }
                done += read;
            }
            return done;
        }
        catch (StoreDamageException ex)
        {
            _logger.LogError("Read of {Model}/{File} at {Offset} failed (EIO): {Message}", file.ModelId, file.Path, offset, ex.Message);
            throw new FuseException(Errno.EIO, ex.Message);
        }
        catch (Exception ex) when (ex is KeyNotFoundException or FileNotFoundException)
        {
            // Removed from the store since it was opened.
            throw new FuseException(Errno.ENOENT, ex.Message);
        }
        catch (IOException ex)
        {
            // Stored again with other bytes since it was opened (or the store cannot be read): never the other version's bytes.
            _logger.LogError("Read of {Model}/{File} at {Offset} failed (EIO): {Message}", file.ModelId, file.Path, offset, ex.Message);
            throw new FuseException(Errno.EIO, ex.Message);
        }
    }

    public void Release(ulong handle) => _open.TryRemove(handle, out _);

    /// <summary>
    /// When a read follows the last one of its handle (within a stride: the kernel's read-ahead sends several at once,
    /// not always in order), asks the store for one byte every <see cref="ReadAheadStride"/> up to
    /// <see cref="_readAhead"/> past it that no earlier read asked for: the chunks there decode on the store's idle
    /// workers while the reader is served, and wait in its cache. A random reader gets none of it.
    /// </summary>
    private void ReadAhead(OpenFile file, long offset, int length)
    {
        if (_readAhead == 0)
        {
            return;
        }
        long end = offset + length, from, to;
        lock (file)
        {
            bool sequential = offset == 0 || Math.Abs(offset - file.LastEnd) <= ReadAheadStride;
            file.LastEnd = end;
            if (!sequential)
            {
                file.ReadAheadTo = end;
                return;
            }
            from = Math.Max(file.ReadAheadTo, end);
            to = Math.Min(file.Size, end + _readAhead);
            if (from >= to)
            {
                return;
            }
            file.ReadAheadTo = to;
        }
        for (long probe = from; probe < to; probe += ReadAheadStride)
        {
            _ = ProbeAsync(file, probe);
        }
    }

    private async Task ProbeAsync(OpenFile file, long offset)
    {
        try
        {
            await _source.ReadFileAsync(file.ModelId, file.Path, file.Sha256, offset, new byte[1], CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The read that gets there reports it.
            _logger.LogDebug("Read-ahead of {Model}/{File} at {Offset} failed: {Message}", file.ModelId, file.Path, offset, ex.Message);
        }
    }

    public async ValueTask<FuseFileSystemStats> GetStatsAsync(CancellationToken cancellationToken)
    {
        Tree tree = await GetTreeAsync(cancellationToken).ConfigureAwait(false);
        const uint blockSize = 4096;
        return new FuseFileSystemStats((ulong)((tree.TotalBytes + blockSize - 1) / blockSize), (ulong)tree.Nodes.Count, blockSize);
    }

    /// <summary>The listing, read again when it is older than <see cref="ListingLifetime"/> (one read at a time; a failed read keeps the last listing).</summary>
    private async ValueTask<Tree> GetTreeAsync(CancellationToken cancellationToken)
    {
        Task<Tree> refreshing;
        lock (_refreshGate)
        {
            if (_tree is { } fresh && _time.GetUtcNow() - fresh.ListedAt < ListingLifetime)
            {
                return fresh;
            }
            // One listing at a time; a finished one that left the listing stale (or failed) is followed by a new one.
            if (_refreshing is null or { IsCompleted: true })
            {
                _refreshing = RefreshAsync();
            }
            refreshing = _refreshing;
        }
        return await refreshing.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<Tree> RefreshAsync()
    {
        try
        {
            DateTimeOffset now = _time.GetUtcNow();
            IReadOnlyList<StoredModel> models = await _source.ListModelsAsync(CancellationToken.None).ConfigureAwait(false);
            Tree tree = Build(models, now);
            lock (_refreshGate)
            {
                _tree = tree;
            }
            return tree;
        }
        catch (Exception ex)
        {
            lock (_refreshGate)
            {
                if (_tree is { } last)
                {
                    _logger.LogWarning("Listing the store {Store} failed; the last listing stands: {Message}", _source.Location, ex.Message);
                    return last;
                }
            }
            throw new FuseException(Errno.EIO, $"Listing the store {_source.Location} failed: {ex.Message}");
        }
    }

    private Tree Build(IReadOnlyList<StoredModel> models, DateTimeOffset now)
    {
        var nodes = new Dictionary<string, Node>(StringComparer.Ordinal);
        var children = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal) { [""] = new(StringComparer.Ordinal) };
        var times = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal) { [""] = DateTimeOffset.UnixEpoch };
        long total = 0;

        void AddDirectory(string path, DateTimeOffset storedAt)
        {
            // Each folder up to the root: its parent lists it, and it is as recent as the newest model in it.
            while (true)
            {
                times[path] = times.TryGetValue(path, out DateTimeOffset known) && known > storedAt ? known : storedAt;
                if (path.Length == 0)
                {
                    return;
                }
                children.TryAdd(path, new(StringComparer.Ordinal));
                int slash = path.LastIndexOf('/');
                string parent = slash < 0 ? "" : path[..slash];
                if (!children.TryGetValue(parent, out SortedSet<string>? siblings))
                {
                    children[parent] = siblings = new(StringComparer.Ordinal);
                }
                siblings.Add(path[(slash + 1)..]);
                path = parent;
            }
        }

        foreach (StoredModel model in models)
        {
            // Ids are org/name, each part a plain name (ModelId checks it); file paths were checked when stored.
            string modelPath = model.Id;
            AddDirectory(modelPath, model.StoredAt);
            foreach (StoredModelFile file in model.Files)
            {
                string path = modelPath + "/" + file.Path;
                int slash = path.LastIndexOf('/');
                if (!IsPlainRelativePath(file.Path) || children.ContainsKey(path) || nodes.ContainsKey(path) || HasFileAbove(nodes, path))
                {
                    _logger.LogWarning("Left out of the mount: {Model} file \"{File}\" (not a plain relative path, or a file's and a folder's path at once)", model.Id, file.Path);
                    continue;
                }
                AddDirectory(path[..slash], model.StoredAt);
                children[path[..slash]].Add(path[(slash + 1)..]);
                nodes[path] = new Node(path, false, file.Length, model.StoredAt, model.Id, file.Path, file.Sha256, []);
                total += file.Length;
            }
        }
        foreach ((string path, SortedSet<string> names) in children)
        {
            nodes[path] = new Node(path, true, 0, times[path], null, null, null, [.. names]);
        }
        return new Tree(nodes, now, total);
    }

    private static bool HasFileAbove(Dictionary<string, Node> nodes, string path)
    {
        for (int slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
        {
            if (nodes.ContainsKey(path[..slash]))
            {
                return true;
            }
        }
        return false;
    }

    private static bool IsPlainRelativePath(string path) =>
        path.Length > 0 && !path.Contains('\0') && path.Split('/').All(part => part is not ("" or "." or ".."));

    /// <summary>The node <paramref name="inode"/> names in <paramref name="tree"/>: a folder at its path, a file at its path with the same content.</summary>
    private Node NodeOf(Tree tree, ulong inode) =>
        _keys.TryGetValue(inode, out string? key) && tree.Nodes.TryGetValue(key.Split('\0')[0], out Node? node) && KeyOf(node) == key
            ? node
            : throw new FuseException(Errno.ENOENT, $"Inode {inode} is not in the store (any more).");

    /// <summary>
    /// The inode of <paramref name="node"/>: a folder's is its path's, a file's its path's and content's (SHA-256), so
    /// a model stored again with other bytes under the same name gets new inodes and no page the kernel kept of the old
    /// ones is read as the new. The same for as long as the mount; a new one for a key never seen.
    /// </summary>
    private ulong InodeOf(Node node) => _inodes.GetOrAdd(KeyOf(node), static (key, self) =>
    {
        ulong inode = (ulong)Interlocked.Increment(ref self._nextInode);
        self._keys[inode] = key;
        return inode;
    }, this);

    private static string KeyOf(Node node) => node.IsDirectory ? node.Path : node.Path + "\0" + node.Sha256;

    private FuseAttributes AttributesOf(Node node) => node.IsDirectory
        ? new FuseAttributes(InodeOf(node), true, 0, DirectoryMode, 2, node.ModifiedAt, _uid, _gid)
        : new FuseAttributes(InodeOf(node), false, node.Size, FileMode, 1, node.ModifiedAt, _uid, _gid);

    private sealed record Node(string Path, bool IsDirectory, long Size, DateTimeOffset ModifiedAt, string? ModelId, string? FilePath, string? Sha256, string[] Children);

    private sealed record Tree(Dictionary<string, Node> Nodes, DateTimeOffset ListedAt, long TotalBytes);

    private sealed record OpenFile(string ModelId, string Path, string Sha256, long Size)
    {
        /// <summary>Where the last read ended (guarded by the instance's lock).</summary>
        public long LastEnd { get; set; }

        /// <summary>How far read-ahead has asked for (guarded by the instance's lock).</summary>
        public long ReadAheadTo { get; set; }
    }
}
