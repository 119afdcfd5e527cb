using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;

namespace MirrorEmu.Tests.Helpers;

public static class HmmHelpers
{
    /// <summary>A range over [start, start + pages) with a notifier inserted over it.</summary>
    public static HmmRange NewRange(AddressSpace mm, ulong start, int pages, ulong defaultFlags = HmmPfn.ReqFault, ulong mask = 0)
    {
        var notifier = new MmuIntervalNotifier(new SeqNotifierOps());
        Assert.Equal(0, mm.Notifiers.Insert(notifier, start, Pages.Bytes(pages)).Code);
        return new HmmRange(mm, notifier, start, start + Pages.Bytes(pages)) { DefaultFlags = defaultFlags, PfnFlagsMask = mask };
    }

    /// <summary>read_begin → lock → hmm_range_fault → unlock, once.</summary>
    public static int FaultOnce(HmmRange range)
    {
        range.NotifierSeq = range.Notifier.ReadBegin(5000, TestContext.Current.CancellationToken);
        range.Mm.MmapLock.ReadLock();
        try
        {
            return HmmFault.RangeFault(range).Code;
        }
        finally
        {
            range.Mm.MmapLock.ReadUnlock();
        }
    }

    /// <summary>The dmirror loop (<see cref="HmmDriverLoop"/>) with the range's own driver lock.</summary>
    public static int DriverLoop(HmmRange range, int timeoutMs = 60_000) =>
        HmmDriverLoop.Run(range, ((SeqNotifierOps)range.Notifier.Ops).DriverLock, timeoutMs).Code;
}
