using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Tests.Notifier;

/// <summary>The interval-notifier sequence protocol (mm/mmu_notifier.c).</summary>
public class MmuNotifierSubscriptionsTests
{
    private sealed class Recorder(Func<MmuIntervalNotifier, NotifierRange, ulong, bool>? body = null) : IMmuIntervalNotifierOps
    {
        public List<(NotifierRange Range, ulong Seq)> Calls { get; } = [];

        public bool Invalidate(MmuIntervalNotifier subscription, in NotifierRange range, ulong curSeq)
        {
            lock (Calls)
            {
                Calls.Add((range, curSeq));
            }

            subscription.SetSeq(curSeq);
            return body?.Invoke(subscription, range, curSeq) ?? true;
        }
    }

    private static (MmuNotifierSubscriptions Subs, MmuIntervalNotifier Sub, Recorder Rec) Subscribe(ulong start = 0x1000, ulong length = 0x1000)
    {
        var subs = new MmuNotifierSubscriptions();
        var rec = new Recorder();
        var sub = new MmuIntervalNotifier(rec);
        Assert.Equal(0, subs.Insert(sub, start, length).Code);
        return (subs, sub, rec);
    }

    [Fact]
    public void SequenceStartsEvenAndAnIdleInsertGetsGlobalMinusOne()
    {
        (MmuNotifierSubscriptions subs, MmuIntervalNotifier sub, _) = Subscribe();
        Assert.Equal(2UL, subs.InvalidateSeq);
        Assert.Equal(1UL, sub.InvalidateSeq);
        Assert.Equal(1UL, sub.ReadBegin(1000, TestContext.Current.CancellationToken));
    }

    [Fact]
    public void InvalidateStartMakesTheSequenceOddBeforeTheCallbackAndEndMakesItEven()
    {
        var subs = new MmuNotifierSubscriptions();
        ulong seenGlobal = 0;
        var sub = new MmuIntervalNotifier(new Recorder((s, r, seq) =>
        {
            seenGlobal = subs.InvalidateSeq;
            return true;
        }));
        subs.Insert(sub, 0x1000, 0x1000);
        var range = new NotifierRange(0x1000, 0x2000, NotifierEvent.Unmap);
        Assert.Equal(0, subs.InvalidateRangeStart(range));
        Assert.Equal(3UL, seenGlobal);
        Assert.Equal(3UL, sub.InvalidateSeq);
        subs.InvalidateRangeEnd(range);
        Assert.Equal(4UL, subs.InvalidateSeq);
        Assert.True(sub.ReadRetry(1), "a read begun before the invalidation must retry");
        Assert.False(sub.ReadRetry(sub.ReadBegin(1000, TestContext.Current.CancellationToken)));
    }

    [Fact]
    public void ConcurrentInvalidationsShareOneOddPeriod()
    {
        (MmuNotifierSubscriptions subs, MmuIntervalNotifier sub, Recorder rec) = Subscribe();
        var a = new NotifierRange(0x1000, 0x1800, NotifierEvent.Clear);
        var b = new NotifierRange(0x1800, 0x2000, NotifierEvent.Clear);
        subs.InvalidateRangeStart(a);
        subs.InvalidateRangeStart(b);
        Assert.Equal(rec.Calls[0].Seq, rec.Calls[1].Seq);
        subs.InvalidateRangeEnd(a);
        Assert.Equal(3UL, subs.InvalidateSeq); // still odd: b is active
        subs.InvalidateRangeEnd(b);
        Assert.Equal(4UL, subs.InvalidateSeq);
        Assert.Equal(1, subs.Stats[NotifierStat.OddPeriods]);
    }

    [Fact]
    public void InvalidationThatHitsNothingLeavesTheSequenceEven()
    {
        (MmuNotifierSubscriptions subs, _, Recorder rec) = Subscribe();
        var miss = new NotifierRange(0x2000, 0x3000, NotifierEvent.Unmap);
        subs.InvalidateRangeStart(miss);
        Assert.Equal(2UL, subs.InvalidateSeq);
        subs.InvalidateRangeEnd(miss);
        Assert.Equal(2UL, subs.InvalidateSeq);
        Assert.Empty(rec.Calls);
        Assert.Equal(1, subs.Events[NotifierEvent.Unmap]);
    }

    [Fact]
    public void IntervalEdgesAreHalfOpen()
    {
        (MmuNotifierSubscriptions subs, _, Recorder rec) = Subscribe(0x1000, 0x1000);
        var inside = new NotifierRange(0x1FFF, 0x2000, NotifierEvent.Clear);
        subs.InvalidateRangeStart(inside);
        subs.InvalidateRangeEnd(inside);
        var after = new NotifierRange(0x2000, 0x3000, NotifierEvent.Clear);
        subs.InvalidateRangeStart(after);
        subs.InvalidateRangeEnd(after);
        Assert.Single(rec.Calls);
        Assert.Equal(0x1FFFUL, rec.Calls[0].Range.Start);
    }

    [Fact]
    public void BlockedReadBeginIsReleasedByRangeEnd()
    {
        (MmuNotifierSubscriptions subs, MmuIntervalNotifier sub, _) = Subscribe();
        var range = new NotifierRange(0x1000, 0x2000, NotifierEvent.Unmap);
        subs.InvalidateRangeStart(range);
        ulong got = 0;
        var reader = new Thread(() => got = sub.ReadBegin());
        reader.Start();
        Assert.False(reader.Join(100), "ReadBegin returned while the invalidation was running");
        subs.InvalidateRangeEnd(range);
        Assert.True(reader.Join(5000), "ReadBegin stayed blocked after range end");
        Assert.Equal(3UL, got);
        Assert.False(sub.ReadRetry(got));
        Assert.Equal(1, subs.Stats[NotifierStat.ReadBeginWaits]);
    }

    [Fact]
    public void ReadBeginTimesOutAndHonoursCancellation()
    {
        (MmuNotifierSubscriptions subs, MmuIntervalNotifier sub, _) = Subscribe();
        var range = new NotifierRange(0x1000, 0x2000, NotifierEvent.Unmap);
        subs.InvalidateRangeStart(range);
        Assert.Throws<TimeoutException>(() => sub.ReadBegin(30, TestContext.Current.CancellationToken));
        using var cts = new CancellationTokenSource(30);
        Assert.Equal(-Errno.EINTR, subs.TryReadBegin(sub, out _, Timeout.Infinite, cts.Token));
        subs.InvalidateRangeEnd(range);
    }

    [Fact]
    public void InsertDuringAnOddPeriodIsDeferredAndItsFirstReadBeginWaits()
    {
        (MmuNotifierSubscriptions subs, _, _) = Subscribe();
        var range = new NotifierRange(0x1000, 0x2000, NotifierEvent.Unmap);
        subs.InvalidateRangeStart(range);
        var late = new MmuIntervalNotifier(new Recorder());
        Assert.Equal(0, subs.Insert(late, 0x5000, 0x1000).Code);
        Assert.Equal(1, subs.Count); // deferred
        Assert.Equal(subs.InvalidateSeq, late.InvalidateSeq);
        Assert.Equal(-Errno.EBUSY, subs.TryReadBegin(late, out _, 20, TestContext.Current.CancellationToken));
        subs.InvalidateRangeEnd(range);
        Assert.Equal(2, subs.Count);
        Assert.Equal(1, subs.Stats[NotifierStat.DeferredInserts]);
    }

    [Fact]
    public void InsertDuringAPartiallyExcludedPeriodForcesTheSequenceOdd()
    {
        (MmuNotifierSubscriptions subs, _, _) = Subscribe();
        var miss = new NotifierRange(0x8000, 0x9000, NotifierEvent.Unmap);
        subs.InvalidateRangeStart(miss); // active, but even
        var late = new MmuIntervalNotifier(new Recorder());
        subs.Insert(late, 0x5000, 0x1000);
        Assert.Equal(3UL, subs.InvalidateSeq);
        Assert.Equal(2, subs.Count);
        Assert.Equal(3UL, late.InvalidateSeq);
        subs.InvalidateRangeEnd(miss);
        Assert.Equal(4UL, subs.InvalidateSeq);
    }

    [Fact]
    public void RemoveWaitsForTheRunningPeriodAndNoCallbackFollowsIt()
    {
        (MmuNotifierSubscriptions subs, MmuIntervalNotifier sub, Recorder rec) = Subscribe();
        var range = new NotifierRange(0x1000, 0x2000, NotifierEvent.Unmap);
        subs.InvalidateRangeStart(range);
        int rc = 1;
        var remover = new Thread(() => rc = subs.Remove(sub).Code);
        remover.Start();
        Assert.False(remover.Join(100), "Remove returned during the odd period");
        subs.InvalidateRangeEnd(range);
        Assert.True(remover.Join(5000));
        Assert.Equal(0, rc);
        Assert.Equal(0, subs.Count);
        int before = rec.Calls.Count;
        subs.InvalidateRangeStart(range);
        subs.InvalidateRangeEnd(range);
        Assert.Equal(before, rec.Calls.Count);
        Assert.Equal(1, subs.Stats[NotifierStat.DeferredRemoves]);
    }

    [Fact]
    public void RemoveOfADeferredInsertJustForgetsIt()
    {
        (MmuNotifierSubscriptions subs, _, _) = Subscribe();
        var range = new NotifierRange(0x1000, 0x2000, NotifierEvent.Unmap);
        subs.InvalidateRangeStart(range);
        var late = new MmuIntervalNotifier(new Recorder());
        subs.Insert(late, 0x5000, 0x1000);
        Assert.Equal(0, subs.Remove(late, 10, TestContext.Current.CancellationToken).Code);
        subs.InvalidateRangeEnd(range);
        Assert.Equal(1, subs.Count);
        Assert.Null(late.Subscriptions);
    }

    [Fact]
    public void NonBlockableRefusalReportsEagainAndEndsThePeriod()
    {
        var subs = new MmuNotifierSubscriptions();
        var sub = new MmuIntervalNotifier(new Recorder((s, r, q) => r.Blockable));
        subs.Insert(sub, 0x1000, 0x1000);
        var range = new NotifierRange(0x1000, 0x2000, NotifierEvent.Clear, Blockable: false);
        Assert.Equal(-Errno.EAGAIN, subs.InvalidateRangeStart(range));
        Assert.Equal(4UL, subs.InvalidateSeq); // back to even without a range end
        Assert.Equal(0, subs.ActiveInvalidations);
        Assert.Equal(1, subs.Stats[NotifierStat.WouldBlock]);
    }

    [Theory]
    [InlineData(0x1000UL, 0UL)]
    [InlineData(ulong.MaxValue - 10, 0x1000UL)]
    public void ZeroOrOverflowingLengthIsEoverflow(ulong start, ulong length)
    {
        var subs = new MmuNotifierSubscriptions();
        Assert.Equal(-Errno.EOVERFLOW, subs.Insert(new MmuIntervalNotifier(new Recorder()), start, length).Code);
        Assert.Equal(0, subs.Count);
    }
}
