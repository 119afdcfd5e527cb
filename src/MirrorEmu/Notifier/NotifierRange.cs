namespace MirrorEmu.Notifier;

/// <summary>
/// One invalidation (struct mmu_notifier_range): the half-open [<see cref="Start"/>, <see cref="End"/>),
/// the event, the owner cookie and whether callbacks may sleep.
/// </summary>
/// <param name="Start">First address, page aligned.</param>
/// <param name="End">Half-open end; <see cref="ulong.MaxValue"/> stands for "to the top" (RELEASE).</param>
/// <param name="Event">Why.</param>
/// <param name="Owner">For MIGRATE and EXCLUSIVE, who caused it (drivers skip their own); else null.</param>
/// <param name="Blockable">MMU_NOTIFIER_RANGE_BLOCKABLE: callbacks may sleep (take a mutex).</param>
public readonly record struct NotifierRange(ulong Start, ulong End, NotifierEvent Event, object? Owner = null, bool Blockable = true)
{
    /// <summary>True if [start, end) overlaps this range.</summary>
    /// <param name="start">First address.</param>
    /// <param name="end">Half-open end.</param>
    public bool Overlaps(ulong start, ulong end) => start < End && Start < end;

    /// <inheritdoc/>
    public override string ToString() => $"{Event} [0x{Start:x}, 0x{End:x}){(Blockable ? string.Empty : " nonblock")}";
}
