using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace MirrorEmu.Uffd;

/// <summary>Which side of a userfaultfd hand-off is waiting.</summary>
internal enum HandOffSide
{
    /// <summary>A faulting thread waiting for its resolution.</summary>
    Faulter,
    /// <summary>A monitor waiting for the next message.</summary>
    Monitor,
}

/// <summary>
/// When a side of a userfaultfd hand-off polls before it blocks. Polling makes a hand-off a cache-line
/// exchange (about a microsecond) instead of a sleep and a wake-up, but only while the other side is
/// running on another processor: with one processor, or when the other side is descheduled, every
/// microsecond spent polling delays the very answer it waits for. So a side polls only when more than
/// one processor is available to the process, and for an adaptive time: about four times what recent
/// successful polls took, halved after each poll that gave up. A side that gave up polls again only
/// now and then, for a short probe, so it finds out when the machine has become idle again.
/// </summary>
/// <remarks>
/// <para>Concurrency model:</para> one instance per context, read and written by its faulting threads
/// and monitors without a lock; the fields are hints (a lost update only changes one poll's length).
/// </remarks>
internal sealed class HandOffSpin
{
    /// <summary>The longest poll, in nanoseconds (a 512-page resolution takes about 80 µs here).</summary>
    internal const long MaxSpinNanos = 200_000;

    /// <summary>The poll a side that gave up makes every <see cref="ProbeEvery"/> waits, in nanoseconds.</summary>
    internal const long ProbeNanos = 4_000;

    /// <summary>How often a side that gave up probes.</summary>
    internal const int ProbeEvery = 16;

    private static readonly double s_ticksPerNano = Stopwatch.Frequency / 1e9;

    private readonly SideState[] _sides = [new SideState(), new SideState()];

    /// <summary>Polls <paramref name="condition"/> while polling can pay.</summary>
    /// <param name="side">Who is waiting.</param>
    /// <param name="condition">What ends the wait.</param>
    /// <param name="state">Its argument.</param>
    /// <returns>True as soon as it holds; false when the poll gave up (or was not worth starting): block then.</returns>
    public bool SpinUntil<T>(HandOffSide side, Func<T, bool> condition, T state)
    {
        if (condition(state))
        {
            return true;
        }

        SideState s = _sides[(int)side];
        if (AvailableProcessors.Count <= 1)
        {
            return false;
        }

        long budget = Volatile.Read(ref s.BudgetNanos);
        if (budget == 0)
        {
            if ((++s.Skips & (ProbeEvery - 1)) != 0)
            {
                return false;
            }

            budget = ProbeNanos;
        }

        long start = Stopwatch.GetTimestamp();
        long deadline = start + (long)(budget * s_ticksPerNano);
        long now;
        do
        {
            Thread.SpinWait(20);
            if (condition(state))
            {
                Succeeded(s, (long)((Stopwatch.GetTimestamp() - start) / s_ticksPerNano));
                return true;
            }

            now = Stopwatch.GetTimestamp();
        }
        while (now < deadline);

        GaveUp(s);
        return false;
    }

    /// <summary>The current poll budget of a side, in nanoseconds (0: it blocks at once, probing now and then).</summary>
    /// <param name="side">The side.</param>
    public long BudgetNanos(HandOffSide side) => Volatile.Read(ref _sides[(int)side].BudgetNanos);

    private static void Succeeded(SideState s, long nanos)
    {
        long avg = s.AverageNanos == 0 ? nanos : s.AverageNanos + ((nanos - s.AverageNanos) / 8);
        s.AverageNanos = avg;
        Volatile.Write(ref s.BudgetNanos, Math.Clamp(4 * avg, ProbeNanos, MaxSpinNanos));
    }

    private static void GaveUp(SideState s)
    {
        long next = Volatile.Read(ref s.BudgetNanos) / 2;
        Volatile.Write(ref s.BudgetNanos, next < ProbeNanos ? 0 : next);
    }

    private sealed class SideState
    {
        public long BudgetNanos = 50_000;
        public long AverageNanos;
        public int Skips;
    }
}

/// <summary>
/// The processors this process may run on now: the calling thread's affinity mask where the OS tells
/// it (Linux sched_getaffinity), so that a run restricted with taskset or a container's cpuset is seen
/// even after start-up; <see cref="Environment.ProcessorCount"/> elsewhere. Read again at most every
/// 100 ms.
/// </summary>
internal static class AvailableProcessors
{
    private const long RefreshMs = 100;
    private static int s_count = Environment.ProcessorCount;
    private static long s_readAt;

    /// <summary>Processors available to the calling thread (at least 1).</summary>
    public static int Count
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            long now = Environment.TickCount64;
            if (now - Volatile.Read(ref s_readAt) > RefreshMs)
            {
                Refresh(now);
            }

            return Volatile.Read(ref s_count);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Refresh(long now)
    {
        Volatile.Write(ref s_readAt, now);
        if (OperatingSystem.IsLinux() && Telemetry.LinuxAffinity.TryCount(out int n))
        {
            Volatile.Write(ref s_count, Math.Max(1, n));
        }
    }
}
