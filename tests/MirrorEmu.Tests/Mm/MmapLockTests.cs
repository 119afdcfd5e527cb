using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Tests.Mm;

/// <summary>The mmap_lock: shared readers, exclusive writers, writer preference, trylock, killable waits, the sequence.</summary>
public class MmapLockTests
{
    private static MmapLock NewLock() => new(new CounterSet<MmEvent>());

    [Fact]
    public void ReadersShareAndExcludeWriters()
    {
        MmapLock l = NewLock();
        l.ReadLock();
        Assert.True(l.TryReadLock());
        Assert.False(l.TryWriteLock());
        l.ReadUnlock();
        l.ReadUnlock();
        Assert.True(l.TryWriteLock());
        Assert.False(l.TryReadLock());
        l.WriteUnlock();
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void WriteUnlockAdvancesTheSequenceSoDroppersRevalidate()
    {
        MmapLock l = NewLock();
        long before = l.Sequence;
        l.ReadLock();
        l.ReadUnlock();
        Assert.Equal(before, l.Sequence);
        l.WriteLock();
        l.WriteUnlock();
        Assert.Equal(before + 1, l.Sequence);
    }

    [Fact]
    public void AWaitingWriterHoldsOffNewReadersAndGetsTheLock()
    {
        MmapLock l = NewLock();
        l.ReadLock();
        var writerHas = new ManualResetEventSlim();
        var writer = new Thread(() =>
        {
            l.WriteLock();
            writerHas.Set();
            l.WriteUnlock();
        });
        writer.Start();
        // Writer preference: once the writer waits, a new reader is turned away although only readers hold the lock.
        Assert.True(SpinWait.SpinUntil(() => !l.TryReadLockThenRelease(), 5000), "a new reader got in while a writer was waiting");
        Assert.False(writerHas.IsSet, "the writer got in while a reader held the lock");
        Assert.True(l.IsReadLocked && !l.IsWriteLocked);
        l.ReadUnlock();
        Assert.True(writerHas.Wait(5000, TestContext.Current.CancellationToken), "writer never got the lock after the last reader left");
        writer.Join();
    }

    [Fact]
    public void DowngradeKeepsWritersOutButLetsReadersIn()
    {
        MmapLock l = NewLock();
        l.WriteLock();
        long before = l.Sequence;
        l.Downgrade();
        Assert.Equal(before + 1, l.Sequence); // the VMAs may have changed under the write hold: droppers revalidate
        Assert.True(l.IsReadLocked && !l.IsWriteLocked);
        Assert.True(l.TryReadLockThenRelease(), "a reader could not join a downgraded hold");
        Assert.False(l.TryWriteLock(), "a writer got in while the downgraded read hold was still there");
        l.ReadUnlock();
        Assert.True(l.TryWriteLock());
        l.WriteUnlock();
    }

    [Fact]
    public void KillableWriteWaitEndsWithEintrAndLetsReadersThroughAgain()
    {
        MmapLock l = NewLock();
        var reader = new Thread(() => l.ReadLock()); // a read hold of another thread
        reader.Start();
        reader.Join();
        using var cts = new CancellationTokenSource(50);
        Assert.Equal(-Errno.EINTR, l.WriteLockKillable(cts.Token));
        Assert.False(l.IsWriteLocked);
        Assert.True(l.TryReadLockThenRelease(), "the cancelled writer's waiting bit still holds readers off");
        l.ReadUnlock();
        Assert.Equal(0, l.WriteLockKillable(CancellationToken.None));
        Assert.True(l.IsWriteLocked);
        l.WriteUnlock();
    }

    [Fact]
    public void KillableWaitEndsWithEintrOnCancellation()
    {
        MmapLock l = NewLock();
        var writer = new Thread(() => l.WriteLock()); // held by another thread, as a reader waiting for a writer finds it
        writer.Start();
        writer.Join();
        using var cts = new CancellationTokenSource(50);
        Assert.Equal(-Errno.EINTR, l.ReadLockKillable(cts.Token));
        Assert.False(l.TryReadLock(10));
        Assert.Empty(LockOrder.HeldByCurrentThread()); // the failed waits hold nothing
        l.WriteUnlock();
        Assert.Equal(0, l.ReadLockKillable(CancellationToken.None));
        l.ReadUnlock();
    }
}

internal static class MmapLockTestExtensions
{
    /// <summary>True if a reader could get in right now (and leaves again).</summary>
    public static bool TryReadLockThenRelease(this MmapLock l)
    {
        if (l.TryReadLock())
        {
            l.ReadUnlock();
            return true;
        }

        return false;
    }
}
