using MirrorEmu.Mm;
using MirrorEmu.Notifier;

namespace MirrorEmu.Tests.Helpers;

/// <summary>An interval-notifier subscriber that records every invalidation it is called for (and records the sequence).</summary>
public class NotifierRecorder : IMmuIntervalNotifierOps
{
    /// <summary>The ranges it was called for, in order.</summary>
    public List<NotifierRange> Calls { get; } = [];

    /// <summary>Subscribes a new recorder to the whole of <paramref name="mm"/>.</summary>
    public static NotifierRecorder Watch(AddressSpace mm)
    {
        var rec = new NotifierRecorder();
        Assert.Equal(0, mm.Notifiers.Insert(new MmuIntervalNotifier(rec), 0, PageGeometry.AddressSpaceSize).Code);
        return rec;
    }

    /// <inheritdoc/>
    public bool Invalidate(MmuIntervalNotifier subscription, in NotifierRange range, ulong curSeq)
    {
        lock (Calls)
        {
            Calls.Add(range);
        }

        subscription.SetSeq(curSeq);
        return true;
    }
}
