using MirrorEmu.Notifier;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>The interval-notifier subscriptions of this address space (mm->notifier_subscriptions).</summary>
    public MmuNotifierSubscriptions Notifiers { get; } = new();

    /// <summary>mmu_notifier_invalidate_range_start for a blockable range raised by an Mm operation.</summary>
    /// <remarks>Call before the PTEs change; pass the result to <see cref="InvalidateRangeEnd"/> after.</remarks>
    private NotifierRange InvalidateRangeStart(ulong start, ulong end, NotifierEvent ev, object? owner = null)
    {
        var range = new NotifierRange(start, end, ev, owner);
        Notifiers.InvalidateRangeStart(range);
        return range;
    }

    /// <summary>mmu_notifier_invalidate_range_end.</summary>
    private void InvalidateRangeEnd(in NotifierRange range) => Notifiers.InvalidateRangeEnd(range);

    /// <summary>mmu_notifier_release at teardown: RELEASE over everything.</summary>
    private void NotifyRelease() => Notifiers.Release();
}
