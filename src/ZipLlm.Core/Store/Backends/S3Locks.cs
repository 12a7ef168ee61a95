using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Amazon.S3.Model;

namespace ZipLlm.Store.Backends;

/// <summary>
/// Locks of an S3 store, for machines that share no file system: each holder keeps a lease, a small object under
/// <c>locks/NAME/</c> that it rewrites (renews) every quarter of <see cref="LeaseDuration"/>, each time with new
/// bytes and so a new ETag; a lease another process has seen unchanged for a whole <see cref="LeaseDuration"/> is
/// stale, and so is one of a process on this machine that is no longer running. Shared and exclusive holders exclude each other by writing first and
/// looking second, which on a store that lists what it has just written (S3, RADOS Gateway) means two conflicting
/// takers cannot both miss each other:
/// <list type="bullet">
/// <item>exclusive: create <c>exclusive</c> with <c>If-None-Match: *</c> (one winner among exclusive takers), then
/// wait until no live <c>shared.*</c> lease remains (new shared takers back off meanwhile);</item>
/// <item>shared: write <c>shared.ID</c>, then list: if a live <c>exclusive</c> is there, delete it and wait.</item>
/// </list>
/// A stale lease is broken by replacing it with <c>If-Match</c> on the ETag it was seen with (so of two breakers
/// one wins, and a lease renewed meanwhile is left alone) and then deleting it. Renewals use <c>If-Match</c> too,
/// and each renewal's bytes differ, so a lease that was broken and taken by another can never be renewed by its
/// old holder. A holder trusts its lease for three quarters of <see cref="LeaseDuration"/> from the moment its last
/// renewal was sent, a quarter less than any other machine waits before breaking it; the store writes manifests
/// and deletes only while every lease it holds is trusted (<see cref="EnsureHeld"/>), so a process that stalls
/// (suspended, cut off) past its lease stops before another can take the lock.
/// </summary>
internal sealed class S3Locks(S3Connection connection, S3Location location, TimeSpan leaseDuration, string? hostKey, TimeSpan requestLifetime, TimeProvider time)
{
    private const string ExclusiveName = "exclusive";
    private const string SharedPrefix = "shared.";
    private const string RecordMagic = "zipllm-lease";

    private readonly ConcurrentDictionary<Lease, byte> _held = new();
    private readonly TimeProvider _time = time;
    private int _toldUnleased;
    // The version of each lease seen, what it says, and when this process first saw that version.
    private readonly ConcurrentDictionary<string, (string ETag, LeaseRecord? Record, long FirstSeen)> _records = new(StringComparer.Ordinal);

    /// <summary>
    /// How long an exclusive taker keeps its lease while it waits for shared holders to go; then it withdraws it, so new
    /// shared takers (list, restore) are not kept waiting behind it, and writes it again only once it sees no shared
    /// holder (looking every few seconds). A read waits at most this long, and then a second, for a waiting remove or gc.
    /// </summary>
    public static readonly TimeSpan ExclusiveWaitLimit = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Bytes kept in <see cref="S3Location.ReserveKey"/> so that a remove or gc can take its lease at a full quota: a
    /// gateway refuses every write there, an overwrite of a lease with the same bytes too (RADOS Gateway counts each
    /// object in 4 KiB units and does not subtract the one overwritten). Deleting the reserve makes room for the lease,
    /// its renewals and a few broken stale leases (16 such units); it is written again when the exclusive lock is let go.
    /// </summary>
    public const int ReserveBytes = 64 << 10;

    /// <summary>The store's lock (<c>ModelStore.LockStore</c>): taken exclusively by remove and gc alone, the takers the reserve is for.</summary>
    private const string StoreLockName = "store";

    /// <summary>How long a lease lasts without renewal before other holders may break it.</summary>
    public TimeSpan LeaseDuration { get; } = leaseDuration;

    /// <summary>
    /// How long a request can live after it is sent (<see cref="S3Backend.MaxRequestLifetime"/>): a lease of another
    /// machine is broken by time only after <see cref="LeaseDuration"/> and this, so that no request its holder sent
    /// while it trusted the lease, however long the network held it, lands after the break.
    /// </summary>
    public TimeSpan RequestLifetime { get; } = requestLifetime;

    /// <summary>How long a lease must be seen unchanged to be stale: <see cref="LeaseDuration"/> plus <see cref="RequestLifetime"/>.</summary>
    public TimeSpan StaleAfter => LeaseDuration + RequestLifetime;

    /// <summary>
    /// This machine's identity among lease holders (its boot id and process-id namespace on Linux): a lease
    /// recorded with the same one and a process that no longer runs is stale at once. Null: only time tells.
    /// </summary>
    public string? HostKey { get; } = hostKey;

    /// <summary>This machine's key: its boot id and pid namespace (pids of other namespaces mean nothing here), or null off Linux.</summary>
    public static string? LocalHostKey()
    {
        try
        {
            string boot = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            string? pidNamespace = new FileInfo("/proc/self/ns/pid").LinkTarget;
            return boot.Length > 0 && pidNamespace is { Length: > 0 } ? $"{boot}/{pidNamespace.Replace("pid:", "", StringComparison.Ordinal).Trim('[', ']')}" : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Takes the lock <paramref name="name"/> (see the class).</summary>
    /// <exception cref="TimeoutException">Not free within <paramref name="timeout"/>; the message names its holders.</exception>
    /// <exception cref="OperationCanceledException">Cancelled while waiting.</exception>
    /// <exception cref="IOException">The store cannot be reached, or (for an exclusive lock) the credentials may not write it.</exception>
    /// <remarks>
    /// Credentials that may read the bucket but not write it (a hub's read-only key) cannot write a lease: a shared lock
    /// is then held without one, and said so once. Such a reader is not seen by a <c>remove</c> or <c>gc</c> on another
    /// machine, which may delete objects under it: its restore then fails, as a damaged object fails it, and never
    /// gives wrong bytes (each file is checked against its hash before it is put in place).
    /// </remarks>
    public IDisposable Acquire(string name, bool exclusive, TimeSpan timeout, CancellationToken cancellationToken)
    {
        string prefix = location.LockPrefix(name);
        var lease = new Lease(this, name, exclusive ? prefix + ExclusiveName : prefix + SharedPrefix + Guid.NewGuid().ToString("N"), exclusive);
        long waitedSince = _time.GetTimestamp();
        long? blockingSince = null; // when this exclusive taker's lease started keeping new shared takers out
        bool gaveWay = false;
        bool reported = false;
        bool reserveSpent = false;
        int delay = 50;
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                IReadOnlyList<LeaseRecord>? blockers;
                if (exclusive && gaveWay)
                {
                    // Having given way, it writes its lease again only when no shared holder is seen: readers pass meanwhile.
                    List<LeaseRecord> shared = Live(List(lease.Name, cancellationToken).Where(l => l.Key.Contains("/" + SharedPrefix, StringComparison.Ordinal)), cancellationToken);
                    blockers = shared.Count > 0 ? shared : TakeExclusive(lease, ref reserveSpent, cancellationToken);
                }
                else
                {
                    blockers = exclusive ? TakeExclusive(lease, ref reserveSpent, cancellationToken) : TakeShared(lease, cancellationToken);
                }
                if (blockers is null)
                {
                    continue; // the lease in the way was stale and is broken, or was released: try again now
                }
                if (blockers.Count == 0)
                {
                    _held.TryAdd(lease, 0);
                    return lease;
                }
                if (exclusive && lease.Written)
                {
                    blockingSince ??= _time.GetTimestamp();
                    if (_time.GetElapsedTime(blockingSince.Value) >= ExclusiveWaitLimit)
                    {
                        // Waiting for shared holders (a compress of hours) must not keep every new reader out meanwhile.
                        lease.Withdraw();
                        blockingSince = null;
                        gaveWay = true;
                    }
                }
                if (_time.GetElapsedTime(waitedSince) >= timeout)
                {
                    throw new TimeoutException(
                        $"Timed out after {timeout.TotalSeconds:F0} s waiting for the {name} lock of {location}; held by {FileLockWait.Describe(blockers.Select(b => b.Holder).ToList())}.");
                }
                if (!reported)
                {
                    reported = true;
                    FileLock.ReportWait(new FileLockWait(location.UrlOf(prefix), exclusive, blockers.Select(b => b.Holder).ToList()));
                }
                Pause(TimeSpan.FromMilliseconds(delay + Random.Shared.Next(delay)), cancellationToken);
                cancellationToken.ThrowIfCancellationRequested();
                delay = Math.Min(delay * 2, gaveWay ? 5000 : 1000);
            }
        }
        catch (S3RequestException ex) when (!exclusive && ex.IsAccessDenied)
        {
            lease.Dispose();
            if (Interlocked.Exchange(ref _toldUnleased, 1) == 0)
            {
                FileLock.ReportNotice(
                    $"Reading {location} without a lease: these credentials may not write one in {location.UrlOf(prefix)} ({ex.Code ?? "403"}). " +
                    "A remove or gc elsewhere at the same time is not held back: it could make this run fail, never give wrong bytes.");
            }
            return Unleased.Instance;
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }

    /// <summary>Throws unless every lease this store holds is trusted; the time left on the one closest to its end otherwise.</summary>
    /// <exception cref="IOException">A lease was lost, or not renewed in time: nothing more may be written or deleted under it.</exception>
    public TimeSpan EnsureHeld()
    {
        TimeSpan left = Timeout.InfiniteTimeSpan;
        foreach (Lease lease in _held.Keys)
        {
            TimeSpan remaining = lease.Remaining;
            if (remaining <= TimeSpan.Zero)
            {
                throw new StoreLockLostException(
                    $"Lost the {lease.Name} lock of {location}: its lease {location.UrlOf(lease.Key)} was {(lease.Lost ? "taken over" : "not renewed in time")}; " +
                    "nothing more is written or deleted under it. Run the command again.", null);
            }
            left = left == Timeout.InfiniteTimeSpan || remaining < left ? remaining : left;
        }
        return left;
    }

    /// <summary>
    /// Asks the store whether every lease this store holds is still its own (<see cref="EnsureHeld"/> goes by this
    /// process's clock alone, and a process paused while another broke its lease learns of it only at its next renewal).
    /// </summary>
    /// <exception cref="StoreLockLostException">A lease was broken or taken over.</exception>
    public void ConfirmHeld()
    {
        foreach (Lease lease in _held.Keys)
        {
            if (!lease.ConfirmHeld())
            {
                throw new StoreLockLostException(
                    $"Lost the {lease.Name} lock of {location}: its lease {location.UrlOf(lease.Key)} was broken by another process; " +
                    "nothing more is written or deleted under it. Run the command again.", null);
            }
        }
    }

    /// <summary>
    /// <see cref="TakeExclusive(Lease, CancellationToken)"/>, and at a full quota (the lease's PUT refused) the reserve
    /// spent once to make room for it (null: try again at once). Only a remove or gc takes the lock exclusively, and
    /// what they do frees space; the reserve is kept again when they let go (<see cref="KeepReserve"/>).
    /// </summary>
    private IReadOnlyList<LeaseRecord>? TakeExclusive(Lease lease, ref bool reserveSpent, CancellationToken cancellationToken)
    {
        try
        {
            return TakeExclusive(lease, cancellationToken);
        }
        catch (S3RequestException ex) when (ex.IsQuotaExceeded && !reserveSpent && lease.Name == StoreLockName)
        {
            reserveSpent = true;
            Delete(location.ReserveKey, cancellationToken);
            FileLock.ReportNotice(
                $"The quota of {location} is full ({ex.Code}): the space kept for a lease ({location.UrlOf(location.ReserveKey)}) is used to take the " +
                $"{lease.Name} lock; it is kept again once the lock is let go.");
            return null;
        }
    }

    /// <summary>
    /// Writes the reserve (<see cref="ReserveBytes"/>) when it is missing: at a store's creation, and when a remove or gc
    /// lets go of its lock (it may have spent it, and stores made before it existed get one). Once, for seconds at most;
    /// a full quota leaves it missing (said once), to be written by the next remove or gc that frees space.
    /// </summary>
    public void KeepReserve()
    {
        using var keep = new CancellationTokenSource(ReleaseTimeout);
        try
        {
            connection.CallUngated($"PUT {location.ReserveKey} (If-None-Match: *)", (client, token) => client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = location.Bucket,
                Key = location.ReserveKey,
                InputStream = new MemoryStream(new byte[ReserveBytes], writable: false),
                IfNoneMatch = "*",
            }, token), keep.Token, tries: 1);
        }
        catch (S3RequestException ex) when (ex.IsPreconditionFailed || ex.IsConflict)
        {
            // Kept already.
        }
        catch (S3RequestException ex) when (ex.IsQuotaExceeded)
        {
            FileLock.ReportNotice(
                $"The quota of {location} is full: no space is kept for a lease ({location.UrlOf(location.ReserveKey)}), so a remove or gc at a full quota " +
                "cannot take its lock; free space (raise the quota, or delete other keys) and run gc.");
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            // Written by the next remove or gc.
        }
    }

    /// <summary>
    /// Creates the exclusive lease, then lists the shared holders it waits for (none: taken). Null when the lease
    /// held by another was found stale and broken, or gone: try again at once.
    /// </summary>
    private IReadOnlyList<LeaseRecord>? TakeExclusive(Lease lease, CancellationToken cancellationToken)
    {
        if (!lease.Written)
        {
            long sent = _time.GetTimestamp();
            if (TryCreate(lease.Key, lease.NextBody(), cancellationToken) is { } etag)
            {
                lease.Start(etag, sent);
            }
        }
        List<Seen> leases = List(lease.Name, cancellationToken);
        if (!lease.Written)
        {
            Seen? holder = leases.FirstOrDefault(l => l.Key == lease.Key);
            if (holder is not null && RecordOf(holder, cancellationToken) is { } record && record.Id == lease.Id)
            {
                lease.Start(holder.ETag, _time.GetTimestamp()); // our own create, answered late and retried by the SDK
            }
            else
            {
                List<LeaseRecord> blockers = holder is null ? [] : Live([holder], cancellationToken);
                return blockers.Count > 0 ? blockers : null;
            }
        }
        return Live(leases.Where(l => l.Key != lease.Key), cancellationToken);
    }

    /// <summary>Writes the shared lease, then lists the exclusive holder that keeps it (none: taken; else it is withdrawn).</summary>
    private IReadOnlyList<LeaseRecord> TakeShared(Lease lease, CancellationToken cancellationToken)
    {
        long sent = _time.GetTimestamp();
        string etag = Put(lease.Key, lease.NextBody(), ifMatch: null, cancellationToken)
            ?? throw new IOException($"S3 PUT {lease.Key}: the server did not take the lease.");
        lease.Start(etag, sent);
        List<LeaseRecord> blockers = Live(List(lease.Name, cancellationToken).Where(l => l.Key.EndsWith("/" + ExclusiveName, StringComparison.Ordinal)), cancellationToken);
        if (blockers.Count > 0)
        {
            lease.Withdraw(); // an exclusive taker is waiting for the shared holders to go: make way
        }
        return blockers;
    }

    /// <summary>The leases of the lock <paramref name="name"/>, with their ETags.</summary>
    private List<Seen> List(string name, CancellationToken cancellationToken) =>
        connection.ListAll(location.Bucket, location.LockPrefix(name), gated: false, cancellationToken).Select(entry => new Seen(entry.Key, Unquote(entry.ETag))).ToList();

    /// <summary>Of <paramref name="leases"/>, those of live holders; stale ones are broken on the way.</summary>
    private List<LeaseRecord> Live(IEnumerable<Seen> leases, CancellationToken cancellationToken)
    {
        var live = new List<LeaseRecord>();
        foreach (Seen lease in leases)
        {
            LeaseRecord? record = RecordOf(lease, cancellationToken);
            if (!_records.ContainsKey(lease.Key))
            {
                continue; // gone since it was listed
            }
            if (IsStale(lease, record))
            {
                Break(lease, cancellationToken);
                continue;
            }
            bool exclusive = lease.Key.EndsWith("/" + ExclusiveName, StringComparison.Ordinal);
            live.Add(record ?? new LeaseRecord("", "", 0, exclusive, DateTimeOffset.UtcNow, "",
                new FileLockHolder(0, $"a holder that left no readable record ({lease.Key})", exclusive, DateTimeOffset.UtcNow)));
        }
        return live;
    }

    /// <summary>
    /// Whether a lease is stale: its process, on this machine, is gone (killed); or this process has seen it
    /// unchanged (the same ETag) for longer than <see cref="StaleAfter"/> (a lease, and the life of a request its holder
    /// may still have in the network). Counted on this machine's clock from the first sight of that version, which was
    /// written no later than that: no two machines' clocks are compared.
    /// </summary>
    private bool IsStale(Seen lease, LeaseRecord? record)
    {
        if (record is not null && HostKey is not null && record.HostKey == HostKey && !FileLock.IsRunning(record.ProcessId, record.Since))
        {
            return true;
        }
        return _records.TryGetValue(lease.Key, out var known) && known.ETag == lease.ETag && _time.GetElapsedTime(known.FirstSeen) > StaleAfter;
    }

    /// <summary>
    /// The record of a listed lease, read once per version (ETag); null when it is not a lease. A lease gone since
    /// it was listed is forgotten.
    /// </summary>
    private LeaseRecord? RecordOf(Seen lease, CancellationToken cancellationToken)
    {
        if (_records.TryGetValue(lease.Key, out var known) && known.ETag == lease.ETag)
        {
            return known.Record;
        }
        if (ReadRecord(lease.Key, cancellationToken) is not var (etag, record))
        {
            _records.TryRemove(lease.Key, out _);
            return null;
        }
        // Read after it was listed: a newer version than listed is seen first now.
        _records[lease.Key] = (lease.ETag == etag ? etag : lease.ETag, record, _time.GetTimestamp());
        return record;
    }

    /// <summary>Breaks a stale lease: replaced only if unchanged since it was seen, then deleted.</summary>
    private void Break(Seen lease, CancellationToken cancellationToken)
    {
        string? taken = Put(lease.Key, System.Text.Encoding.UTF8.GetBytes($"broken {HostKey} {Environment.ProcessId}\n"), lease.ETag, cancellationToken);
        if (taken is not null)
        {
            Delete(lease.Key, cancellationToken);
        }
        _records.TryRemove(lease.Key, out _);
    }

    private (string ETag, LeaseRecord? Record)? ReadRecord(string key, CancellationToken cancellationToken)
    {
        try
        {
            return connection.CallUngated($"GET {key}", async (client, token) =>
            {
                using GetObjectResponse response = await client.GetObjectAsync(location.Bucket, key, token).ConfigureAwait(false);
                using var reader = new StreamReader(response.ResponseStream);
                string text = await reader.ReadToEndAsync(token).ConfigureAwait(false);
                return ((string ETag, LeaseRecord? Record)?)(Unquote(response.ETag), LeaseRecord.TryParse(text));
            }, cancellationToken);
        }
        catch (S3RequestException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }

    /// <summary>Creates <paramref name="key"/> unless it exists; its ETag, or null when it existed.</summary>
    private string? TryCreate(string key, byte[] body, CancellationToken cancellationToken) => Put(key, body, null, create: true, cancellationToken);

    /// <summary>Writes <paramref name="key"/>, when <paramref name="ifMatch"/> is set only over that version; its new ETag, or null when the condition failed.</summary>
    private string? Put(string key, byte[] body, string? ifMatch, CancellationToken cancellationToken) => Put(key, body, ifMatch, create: false, cancellationToken);

    private string? Put(string key, byte[] body, string? ifMatch, bool create, CancellationToken cancellationToken)
    {
        try
        {
            return connection.CallUngated(create ? $"PUT {key} (If-None-Match: *)" : $"PUT {key}", async (client, token) =>
                Unquote((await client.PutObjectAsync(new PutObjectRequest
                {
                    BucketName = location.Bucket,
                    Key = key,
                    InputStream = new MemoryStream(body, writable: false),
                    IfNoneMatch = create ? "*" : null,
                    // RADOS Gateway matches If-Match on PUT only against the bare ETag, without its quotes.
                    IfMatch = ifMatch,
                }, token).ConfigureAwait(false)).ETag), cancellationToken);
        }
        catch (S3RequestException ex) when ((create || ifMatch is not null) && (ex.IsPreconditionFailed || ex.IsConflict || (ifMatch is not null && ex.IsNotFound)))
        {
            return null;
        }
    }

    private void Delete(string key, CancellationToken cancellationToken, int? tries = null) =>
        connection.CallUngated($"DELETE {key}", (client, token) => client.DeleteObjectAsync(location.Bucket, key, token), cancellationToken, tries);

    /// <summary>How long the release of a lease may take before it is left to go stale.</summary>
    internal static readonly TimeSpan ReleaseTimeout = TimeSpan.FromSeconds(5);

    private static string Unquote(string? etag) => (etag ?? "").Trim('"');

    /// <summary>Blocks this thread for <paramref name="period"/> on the store's clock, or until cancelled.</summary>
    private void Pause(TimeSpan period, CancellationToken cancellationToken)
    {
        if (_time == TimeProvider.System)
        {
            // A wait handle, not a timer: a timer's callback needs a pool thread, and the renewals must not wait for one
            // while the pool is kept busy by the work the lock guards.
            cancellationToken.WaitHandle.WaitOne(period);
            return;
        }
        try
        {
            Task.Delay(period, _time, cancellationToken).Wait(CancellationToken.None);
        }
        catch (AggregateException ex) when (ex.InnerException is TaskCanceledException)
        {
            // Cancelled: the caller looks at its token.
        }
    }

    /// <summary>A shared lock held without a lease (see <see cref="Acquire"/>): nothing to release.</summary>
    private sealed class Unleased : IDisposable
    {
        public static readonly Unleased Instance = new();

        public void Dispose()
        {
        }
    }

    /// <summary>A lease listed in the bucket: its key and the ETag of its version.</summary>
    private sealed record Seen(string Key, string ETag);

    /// <summary>What a lease says of its holder; one line, <c>zipllm-lease ID KIND RENEWAL HOSTKEY PID SINCE MACHINE HOLDER</c>.</summary>
    internal sealed record LeaseRecord(string Id, string HostKey, int ProcessId, bool Exclusive, DateTimeOffset Since, string Machine, FileLockHolder Holder)
    {
        public static byte[] Format(string id, bool exclusive, long renewal, string? hostKey, DateTimeOffset since, string holder) =>
            System.Text.Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"{RecordMagic} {id} {(exclusive ? "exclusive" : "shared")} {renewal} {hostKey ?? "-"} {Environment.ProcessId} {since.UtcDateTime:O} {MachineName()} {holder}\n"));

        public static LeaseRecord? TryParse(string text)
        {
            string[] parts = text.TrimEnd('\n').Split(' ', 9);
            if (parts.Length != 9 || parts[0] != RecordMagic || parts[2] is not ("shared" or "exclusive")
                || !int.TryParse(parts[5], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                || !DateTimeOffset.TryParse(parts[6], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset since))
            {
                return null;
            }
            bool exclusive = parts[2] == "exclusive";
            return new LeaseRecord(parts[1], parts[4], pid, exclusive, since, parts[7], new FileLockHolder(pid, $"{parts[8]} on {parts[7]}", exclusive, since));
        }

        private static string MachineName() => Environment.MachineName is { Length: > 0 } name && !name.Contains(' ') ? name : "-";
    }

    /// <summary>One lease this process holds (or is taking): renewed in the background until released.</summary>
    private sealed class Lease(S3Locks locks, string name, string key, bool exclusive) : ILosableLock
    {
        private readonly Lock _gate = new();
        private readonly DateTimeOffset _since = locks._time.GetUtcNow();
        private readonly string _holder = FileLock.CurrentHolder.Replace(' ', '_');
        private CancellationTokenSource? _stop;
        private Thread? _renewing;
        private string? _etag;
        private long _renewal;
        private long _lastSent; // Stopwatch timestamp of the last write that the server took
        private bool _disposed;

        public string Name { get; } = name;

        public string Key { get; } = key;

        public bool Exclusive { get; } = exclusive;

        public string Id { get; } = Guid.NewGuid().ToString("N");

        public bool Written => _etag is not null;

        public bool Lost { get; private set; }

        /// <summary>Lost: taken over, or not renewed in time (no longer trusted). Its holder should take the lock again.</summary>
        public bool IsLost => Remaining <= TimeSpan.Zero;

        /// <summary>Time left before this holder stops trusting its lease: three quarters of a lease from the last renewal sent.</summary>
        public TimeSpan Remaining
        {
            get
            {
                lock (_gate)
                {
                    return Lost || _etag is null ? TimeSpan.Zero : locks.LeaseDuration * 0.75 - locks._time.GetElapsedTime(_lastSent);
                }
            }
        }

        /// <inheritdoc/>
        public bool ConfirmHeld()
        {
            if (IsLost)
            {
                return false;
            }
            try
            {
                // Read, not listed: a record that is still this holder's (its id) is the lease it wrote, renewed or not.
                using var ask = new CancellationTokenSource(ReleaseTimeout);
                if (locks.ReadRecord(Key, ask.Token) is (_, { } record) && record.Id == Id)
                {
                    return !IsLost;
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException)
            {
                return !IsLost; // not known otherwise
            }
            lock (_gate)
            {
                Lost = true; // gone, broken, or another holder's now: never renewed again
            }
            return false;
        }

        public byte[] NextBody()
        {
            return LeaseRecord.Format(Id, Exclusive, Interlocked.Increment(ref _renewal), locks.HostKey, _since, _holder);
        }

        /// <summary>The lease is written (as <paramref name="etag"/>, sent at <paramref name="sent"/>): renew it from now on.</summary>
        public void Start(string etag, long sent)
        {
            lock (_gate)
            {
                _etag = etag;
                _lastSent = sent;
                Lost = false;
                if (_renewing is null)
                {
                    var stop = new CancellationTokenSource();
                    _stop = stop;
                    _renewing = new Thread(() => RenewLoop(stop.Token)) { IsBackground = true, Name = "zipllm lease renewal" };
                    _renewing.Start();
                }
            }
        }

        /// <summary>Deletes the lease while it is still this holder's; stops renewing it.</summary>
        public void Withdraw()
        {
            StopRenewing();
            string? etag;
            bool trusted;
            lock (_gate)
            {
                etag = _etag;
                trusted = !Lost && etag is not null && locks._time.GetElapsedTime(_lastSent) < locks.LeaseDuration * 0.75;
                _etag = null;
            }
            // One no longer trusted may have been broken and taken by another holder: it is left to be broken again.
            if (trusted)
            {
                // Once, and for seconds at most: a server that does not answer must not hold up the end of a run.
                using var release = new CancellationTokenSource(ReleaseTimeout);
                try
                {
                    locks.Delete(Key, release.Token, tries: 1);
                }
                catch (Exception ex) when (ex is IOException or OperationCanceledException)
                {
                    // Left to go stale: others break it after a lease's time.
                }
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }
                _disposed = true;
            }
            bool held = locks._held.TryRemove(this, out _);
            Withdraw();
            if (held && Exclusive && Name == StoreLockName)
            {
                locks.KeepReserve(); // a remove or gc may have spent it, and has freed space
            }
        }

        private void StopRenewing()
        {
            Thread? renewing;
            lock (_gate)
            {
                _stop?.Cancel();
                renewing = _renewing;
                _renewing = null;
            }
            if (renewing is not null && renewing != Thread.CurrentThread)
            {
                renewing.Join();
            }
            lock (_gate)
            {
                _stop?.Dispose();
                _stop = null;
            }
        }

        /// <summary>
        /// Renews the lease every quarter of a lease until stopped or lost. It runs on a thread of its own, not the
        /// thread pool: a pool kept busy by the work the lock guards must not delay the renewal past the lease.
        /// </summary>
        private void RenewLoop(CancellationToken stop)
        {
            TimeSpan period = locks.LeaseDuration / 4;
            while (true)
            {
                locks.Pause(period, stop);
                if (stop.IsCancellationRequested)
                {
                    return;
                }
                string? etag;
                lock (_gate)
                {
                    etag = _etag;
                }
                if (etag is null || Lost)
                {
                    return;
                }
                long sent = locks._time.GetTimestamp();
                try
                {
                    string? renewed = locks.Put(Key, NextBody(), etag, stop);
                    lock (_gate)
                    {
                        if (renewed is null)
                        {
                            Lost = true; // broken and perhaps taken by another holder: never written again
                            return;
                        }
                        _etag = renewed;
                        _lastSent = sent;
                    }
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (IOException)
                {
                    // The next round tries again; the lease stays trusted only as long as the last renewal allows.
                }
            }
        }
    }
}
