using System.Diagnostics;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

/// <summary>
/// The one bound on fault retries. A fault whose handler returns without the entry allowing the access
/// (it dropped the mmap lock for a userfaultfd wait and the monitor did not fill the page, a migration
/// entry that stays, a racing MADV_DONTNEED) is retried; the kernel retries for ever, an emulator must
/// not hang a test run, so a caller gives up once one address has made no progress for
/// <see cref="TimeoutMs"/> and reports which address and for how long. Every fault loop (CPU access,
/// populate, hmm_range_fault) uses this, with its own limit.
/// </summary>
/// <remarks>
/// Time rather than a count: one retry may be a userfaultfd round trip of a few microseconds or a wait
/// of seconds for a slow monitor, so no count fits both. The clock is read on every 16th retry only.
/// </remarks>
internal struct FaultRetry
{
    /// <summary>The limit of CPU accesses and populate, in milliseconds: longer than any wait inside one fault
    /// except a userfaultfd wait, which has its own limit (the context's fault timeout) and ends in SIGBUS.</summary>
    public const int DefaultTimeoutMs = 10_000;

    private readonly int _timeoutMs;
    private readonly CounterSet<MmEvent> _counters;
    private ulong _address;
    private long _since;
    private int _retries;

    /// <summary>Starts a budget.</summary>
    /// <param name="timeoutMs">How long one address may go without progress, in milliseconds.</param>
    /// <param name="counters">Where retries are counted (<see cref="MmEvent.FaultRetries"/>).</param>
    public FaultRetry(int timeoutMs, CounterSet<MmEvent> counters)
    {
        _timeoutMs = timeoutMs;
        _counters = counters;
        _address = ulong.MaxValue;
    }

    /// <summary>The address the last refusal was about.</summary>
    public readonly ulong Address => _address;

    /// <summary>Milliseconds without progress at <see cref="Address"/> so far.</summary>
    public readonly long StalledMs => _since == 0 ? 0 : (long)Stopwatch.GetElapsedTime(_since).TotalMilliseconds;

    /// <summary>Call before each fault at <paramref name="address"/>: true while another attempt there is allowed.</summary>
    /// <param name="address">The page about to be faulted (page aligned or not: the page counts).</param>
    /// <returns>False once the same page has been retried for <see cref="TimeoutMs"/> without moving on.</returns>
    public bool Allow(ulong address)
    {
        address = PageGeometry.PageDown(address);
        if (address != _address)
        {
            _address = address;
            _since = 0;
            _retries = 0;
            return true;
        }

        _counters.Increment(MmEvent.FaultRetries);
        if (++_retries == 1)
        {
            _since = Stopwatch.GetTimestamp();
            return true;
        }

        return (_retries & 15) != 0 || Stopwatch.GetElapsedTime(_since).TotalMilliseconds < _timeoutMs;
    }

    /// <summary>The limit, in milliseconds.</summary>
    public readonly int TimeoutMs => _timeoutMs;

    /// <summary>A one-line reason for a refusal, naming the address and the time.</summary>
    /// <param name="what">What the caller was doing ("a CPU write", "hmm_range_fault").</param>
    public readonly string Describe(string what) =>
        $"{what}: the fault at 0x{_address:X16} made no progress in {StalledMs} ms ({_retries} retries; limit {_timeoutMs} ms)";
}
