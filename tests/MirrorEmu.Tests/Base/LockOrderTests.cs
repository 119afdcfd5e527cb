using System.Text.RegularExpressions;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.HmmHelpers;

namespace MirrorEmu.Tests.Base;

/// <summary>The lock-order checker: on in every test, it reports a lock taken against the documented order, lets
/// trylocks through, and the order it checks is the one written at the top of Mm/AddressSpace.cs.</summary>
public partial class LockOrderTests
{
    [Fact]
    public void TheCheckerIsOnInTheTestSuite() =>
        Assert.True(LockOrder.Enabled, "the test project must set MirrorEmu.CheckLockOrder");

    [Fact]
    public void TouchingMemoryFromTheDriverLoopCallbackIsReportedAsAnInversion()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        HmmRange range = NewRange(mm, a, 4, HmmPfn.ReqFault);
        var ops = (SeqNotifierOps)range.Notifier.Ops;
        var e = Assert.Throws<LockOrderException>(() => HmmDriverLoop.Run(range, ops.DriverLock, 5000, r => r.Mm.CpuReadUInt64(r.Start), TestContext.Current.CancellationToken));
        Assert.Contains("taking MmapLock", e.Message, StringComparison.Ordinal);
        Assert.Contains("holding DriverLock", e.Message, StringComparison.Ordinal);
        Assert.False(ops.DriverLock.IsHeldByCurrentThread, "the driver lock leaked past the exception");
        Assert.Empty(LockOrder.HeldByCurrentThread());
        Assert.Equal(0, DriverLoop(range)); // and the loop still works afterwards
    }

    [Fact]
    public void TheRightOrderPassesAndIsUnwound()
    {
        using var mm = new AddressSpace();
        var driver = new DriverLock("test");
        mm.MmapLock.ReadLock();
        using (driver.Hold())
        {
            Assert.Equal([LockRank.MmapLock, LockRank.DriverLock], LockOrder.HeldByCurrentThread());
        }

        mm.MmapLock.ReadUnlock();
        Assert.Empty(LockOrder.HeldByCurrentThread());
    }

    [Fact]
    public void ATrylockOutOfOrderIsAllowedButABlockingLockIsNot()
    {
        using var mm = new AddressSpace();
        var driver = new DriverLock("test");
        using (driver.Hold())
        {
            Assert.True(mm.MmapLock.TryReadLock()); // cannot wait, so cannot deadlock
            mm.MmapLock.ReadUnlock();
            Assert.Throws<LockOrderException>(() => mm.MmapLock.ReadLock());
        }

        Assert.Empty(LockOrder.HeldByCurrentThread());
    }

    [Fact]
    public void TwoMmapLocksOfOneClassAreAnInversion()
    {
        using var a = new AddressSpace();
        using var b = new AddressSpace();
        a.MmapLock.ReadLock();
        try
        {
            Assert.Throws<LockOrderException>(() => b.MmapLock.WriteLock());
        }
        finally
        {
            a.MmapLock.ReadUnlock();
        }
    }

    [Fact]
    public void DriverLockDoesNotRecurseAndItsTrylockFailsForTheHolder()
    {
        var driver = new DriverLock("mirror");
        driver.Enter();
        Assert.False(driver.TryEnter(), "mutex_trylock by the holder must fail");
        var e = Assert.Throws<InvalidOperationException>(() => driver.Enter());
        Assert.Contains("mirror", e.Message, StringComparison.Ordinal);
        driver.Exit();
        Assert.Throws<InvalidOperationException>(() => driver.Exit());
        Assert.True(driver.TryEnter());
        driver.Exit();
    }

    [Fact]
    public void ANonBlockableInvalidationFromInsideTheDriverLockIsRefused()
    {
        var ops = new SeqNotifierOps();
        var notifier = new MmuIntervalNotifier(ops);
        var subs = new MmuNotifierSubscriptions();
        Assert.Equal(0, subs.Insert(notifier, 0x1000, 0x1000).Code);
        using (ops.DriverLock.Hold())
        {
            var range = new NotifierRange(0x1000, 0x2000, NotifierEvent.Clear, Blockable: false);
            Assert.Equal(-Errno.EAGAIN, subs.InvalidateRangeStart(range)); // a kernel mutex_trylock fails here too
        }
    }

    [Fact]
    public void WaitingWhileHoldingALockIsReported()
    {
        var driver = new DriverLock("test");
        using (driver.Hold())
        {
            var e = Assert.Throws<LockOrderException>(() => LockOrder.AssertNoneHeldFrom(LockRank.MmapLock, "waiting for a userfaultfd monitor"));
            Assert.Contains("waiting for a userfaultfd monitor", e.Message, StringComparison.Ordinal);
        }

        LockOrder.AssertNoneHeldFrom(LockRank.MmapLock, "waiting");
    }

    [Fact]
    public void TheDocumentedOrderIsTheCheckedOrder()
    {
        string source = File.ReadAllText(Path.Combine(RepoPaths.Root, "src", "MirrorEmu", "Mm", "AddressSpace.cs"));
        string block = source[..source.IndexOf("/// <summary>", StringComparison.Ordinal)];
        string[] documented = RankLine().Matches(block).Select(m => m.Groups[1].Value).ToArray();
        Assert.Equal(Enum.GetNames<LockRank>(), documented);
        LockRank[] ranks = Enum.GetValues<LockRank>();
        Assert.True(ranks.Zip(ranks.Skip(1)).All(p => p.First < p.Second), "LockRank values must grow in declaration order");
    }

    [GeneratedRegex(@"^//   ([A-Z][A-Za-z]+)\s{2,}", RegexOptions.Multiline)]
    private static partial Regex RankLine();
}
