namespace MirrorEmu.Workloads;

/// <summary>One timed run of one policy over a fresh range: set up untimed, <see cref="Run"/> timed, then counted and
/// verified untimed, then disposed.</summary>
public interface ICompareTrial : IDisposable
{
    /// <summary>Faults the range (the timed part).</summary>
    /// <param name="cancellation">Ends the run early (the result is then -EINTR).</param>
    /// <returns>0, or the error the run ended with.</returns>
    KResult Run(CancellationToken cancellation);

    /// <summary>The counters after <see cref="Run"/>.</summary>
    TrialCounters Counters { get; }

    /// <summary>Checks every byte of the range after a successful <see cref="Run"/>.</summary>
    /// <returns>Null when every byte is as expected, else the first mismatch in words.</returns>
    string? Verify();
}
