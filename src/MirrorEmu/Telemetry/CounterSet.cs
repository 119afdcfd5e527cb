using System.Runtime.CompilerServices;

namespace MirrorEmu.Telemetry;

/// <summary>
/// A set of event counters indexed by an enum, one cache line each. Every figure a report prints
/// comes from one of these, incremented by the code path that does the work (docs/design.md, invariant 3).
/// </summary>
/// <typeparam name="TEvent">An enum whose values are 0..N-1.</typeparam>
/// <remarks>
/// <para>Concurrency model:</para> each increment is one <see cref="Interlocked.Add(ref long, long)"/>;
/// a <see cref="Snapshot"/> reads each counter once, so counters of one snapshot may come from
/// slightly different instants while other threads are counting.
/// </remarks>
public sealed class CounterSet<TEvent>
    where TEvent : struct, Enum
{
    private static readonly TEvent[] s_events = Enum.GetValues<TEvent>();
    private readonly PaddedCounter[] _slots = new PaddedCounter[s_events.Length];

    /// <summary>Adds one to a counter.</summary>
    /// <param name="e">The event.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Increment(TEvent e) => Interlocked.Increment(ref _slots[Unsafe.As<TEvent, int>(ref e)].Value);

    /// <summary>Adds <paramref name="count"/> to a counter.</summary>
    /// <param name="e">The event.</param>
    /// <param name="count">How many events.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(TEvent e, long count)
    {
        if (count != 0)
        {
            Interlocked.Add(ref _slots[Unsafe.As<TEvent, int>(ref e)].Value, count);
        }
    }

    /// <summary>The current value of a counter.</summary>
    /// <param name="e">The event.</param>
    public long this[TEvent e] => Volatile.Read(ref _slots[Unsafe.As<TEvent, int>(ref e)].Value);

    /// <summary>Sets every counter to zero.</summary>
    public void Reset()
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            Volatile.Write(ref _slots[i].Value, 0);
        }
    }

    /// <summary>Reads every counter once, in enum order, as (name, value) pairs.</summary>
    public IReadOnlyList<KeyValuePair<string, long>> Snapshot()
    {
        var result = new KeyValuePair<string, long>[s_events.Length];
        for (int i = 0; i < s_events.Length; i++)
        {
            result[i] = new(s_events[i].ToString(), Volatile.Read(ref _slots[i].Value));
        }

        return result;
    }
}
