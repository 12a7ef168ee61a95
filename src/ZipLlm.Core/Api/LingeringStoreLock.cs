using ZipLlm.Store.Backends;

namespace ZipLlm;

/// <summary>
/// The store lock the library's reads hold shared: taken by the first read, shared by every read that overlaps it or
/// comes within <see cref="Linger"/> of the last one, and released once that long passes with no read. Reading tensor
/// after tensor from a bucket then costs one lease (three requests) in all rather than one each; a <c>remove</c> or
/// <c>gc</c> waits at most <see cref="Linger"/> longer for the reads to finish.
/// </summary>
/// <remarks>
/// While it is held without a break, no manifest can be removed or changed (that takes the lock exclusively; a new
/// model's manifest is only ever added), so what was read of one under it stays true: <see cref="Epoch"/> says when.
/// A lock that is lost while held (a bucket's lease not renewed in time, or broken by another process after a pause)
/// ends its epoch: the next read takes the lock again, in a new epoch, so nothing read under the lost one is reused;
/// <see cref="WasLost"/> tells a read that failed under it that the lock, not the store, is to blame.
/// </remarks>
internal sealed class LingeringStoreLock : IDisposable
{
    private readonly Func<CancellationToken, IDisposable> _take;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _taking = new(1, 1);
    private readonly ITimer _idle;
    private IDisposable? _held;
    private int _users;
    private long _epoch;
    private bool _disposed;

    private readonly HashSet<long> _lostEpochs = [];

    /// <summary>Creates the lock; <paramref name="take"/> takes the store lock shared; the linger is timed by <paramref name="time"/> (the system's clock when null).</summary>
    public LingeringStoreLock(Func<CancellationToken, IDisposable> take, TimeSpan linger, TimeProvider? time = null)
    {
        _take = take;
        Linger = linger;
        _idle = (time ?? TimeProvider.System).CreateTimer(static state => ((LingeringStoreLock)state!).ReleaseIfIdle(), this,
            Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>How long the lock stays held after the last read lets go of it.</summary>
    public TimeSpan Linger { get; }

    /// <summary>Changes each time the lock is taken anew: what was read under one epoch holds for as long as it lasts.</summary>
    public long Epoch
    {
        get
        {
            lock (_gate)
            {
                return _epoch;
            }
        }
    }

    /// <summary>A share of the lock when it is held already, without waiting; null when it would have to be taken.</summary>
    public IDisposable? TryEnter() => TryShare() ? new Use(this) : null;

    /// <summary>Holds the lock for one read until the result is disposed; takes it when it is not held.</summary>
    /// <exception cref="ObjectDisposedException">The store is disposed.</exception>
    public IDisposable Enter(CancellationToken cancellationToken)
    {
        if (TryShare())
        {
            return new Use(this);
        }
        // One taker at a time, cancellable while it waits; the others then share what it took.
        _taking.Wait(cancellationToken);
        try
        {
            if (TryShare())
            {
                return new Use(this);
            }
            IDisposable taken = _take(cancellationToken);
            lock (_gate)
            {
                if (_disposed)
                {
                    taken.Dispose();
                    throw new ObjectDisposedException(nameof(ZipLlmStore));
                }
                _held = taken;
                _epoch++;
                _users++;
            }
            return new Use(this);
        }
        finally
        {
            _taking.Release();
        }
    }

    /// <summary>Releases the lock now, whatever reads are under way (the store is closing).</summary>
    public void Dispose()
    {
        IDisposable? held;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            held = _held;
            _held = null;
        }
        _idle.Dispose();
        held?.Dispose();
    }

    /// <summary>
    /// Whether the lock held in <paramref name="epoch"/> was lost while held: a read under it that found objects missing
    /// or a manifest changed met another process's remove or gc, not a damaged store.
    /// </summary>
    /// <remarks>
    /// A lease that another process broke while this one was paused may not be known lost yet (its next renewal has
    /// not failed): the store is asked (<see cref="ILosableLock.ConfirmHeld"/>), so a read that found objects missing
    /// is never taken for damage while its lock is in fact gone.
    /// </remarks>
    public bool WasLost(long epoch)
    {
        ILosableLock? current;
        lock (_gate)
        {
            if (_lostEpochs.Contains(epoch))
            {
                return true;
            }
            current = epoch == _epoch ? _held as ILosableLock : null;
        }
        // Asked outside the gate: it may be a request to the store.
        if (current is null || current.ConfirmHeld())
        {
            return false;
        }
        lock (_gate)
        {
            _lostEpochs.Add(epoch);
        }
        return true;
    }

    /// <summary>
    /// The error for a read that failed while the lock it ran under was lost (<see cref="WasLost"/>): the store lock
    /// was lost, which another process's remove or gc explains; the store is not said to be damaged. The next read
    /// takes the lock again and reads the manifests anew.
    /// </summary>
    public static StoreLockLostException LostDuring(string location, string what, Exception inner) => new(location, what, inner);

    private bool TryShare()
    {
        IDisposable? lost = null;
        try
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, nameof(ZipLlmStore));
                if (_held is ILosableLock { IsLost: true } losable)
                {
                    // Its epoch ends: the next taker takes the lock again and reads every manifest anew.
                    _lostEpochs.Add(_epoch);
                    lost = losable;
                    _held = null;
                }
                if (_held is null)
                {
                    return false;
                }
                _users++;
                _idle.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                return true;
            }
        }
        finally
        {
            lost?.Dispose();
        }
    }

    private void Exit()
    {
        lock (_gate)
        {
            if (--_users == 0 && !_disposed)
            {
                _idle.Change(Linger, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void ReleaseIfIdle()
    {
        IDisposable? held = null;
        lock (_gate)
        {
            if (_users == 0 && !_disposed)
            {
                held = _held;
                _held = null;
            }
        }
        held?.Dispose();
    }

    private sealed class Use(LingeringStoreLock owner) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                owner.Exit();
            }
        }
    }
}
