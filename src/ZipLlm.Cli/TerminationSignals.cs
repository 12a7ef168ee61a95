using System.Runtime.InteropServices;

namespace ZipLlm.Cli;

/// <summary>
/// Turns SIGINT (Ctrl+C) and SIGTERM into the cancellation of one verb's run. The first signal cancels
/// <see cref="Token"/> and keeps the runtime from terminating the process, so the verb removes what it was
/// writing, logs "Cancelled." and exits with <see cref="ExitCodes.Cancelled"/>. A second signal while it
/// does so exits at once, with the same code.
/// </summary>
/// <remarks>
/// The only handler of these signals: <see cref="Program.Main"/> turns off System.CommandLine's own
/// (<c>ProcessTerminationTimeout</c>), which would otherwise end the process a fixed time after the signal,
/// whether or not the verb had finished cleaning up.
/// </remarks>
internal sealed class TerminationSignals : IDisposable
{
    private readonly CancellationTokenSource _cancellation;
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    /// <summary>Starts handling the signals; <paramref name="outer"/> cancels <see cref="Token"/> as well.</summary>
    public TerminationSignals(CancellationToken outer)
    {
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
        ];
    }

    /// <summary>Cancelled by the first signal (or by the outer token).</summary>
    public CancellationToken Token => _cancellation.Token;

    /// <summary>The first signal received, if any.</summary>
    public PosixSignal? Received { get; private set; }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations)
        {
            registration.Dispose();
        }
        _cancellation.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        if (Interlocked.Increment(ref _received) > 1)
        {
            // Asked twice: the user does not want to wait for the cleanup.
            Environment.Exit(ExitCodes.Cancelled);
        }
        Received = context.Signal;
        try
        {
            _cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The verb finished as the signal arrived.
        }
    }
}
