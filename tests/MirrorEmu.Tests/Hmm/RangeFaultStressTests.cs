using System.Diagnostics;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Hmm;

/// <summary>
/// Race tests: one thread changes the address space (munmap, mmap, mprotect,
/// DONTNEED, COW after fork) while another runs the driver loop; every result the driver accepts
/// (read_retry false under the driver lock) must match the CPU page table exactly — -EBUSY, never a
/// wrong pfn (docs/design.md, invariant 2). Time-boxed; CI runs a short budget.
/// </summary>
[Trait("Category", "Stress")]
public class RangeFaultStressTests
{
    private const int PageCount = 256;

    [Fact]
    public void AcceptedResultsNeverDisagreeWithThePageTable()
    {
        int seed = TestSeeds.Get();
        using var mm = new AddressSpace();
        mm.MmapAnonymous(Pages.Bytes(PageCount), Prot.ReadWrite, MapFlags.Private, out ulong a).ThrowIfError();
        var ops = new SeqNotifierOps();
        var notifier = new MmuIntervalNotifier(ops);
        Assert.Equal(0, mm.Notifiers.Insert(notifier, a, Pages.Bytes(PageCount)).Code);
        var range = new HmmRange(mm, notifier, a, a + Pages.Bytes(PageCount)) { DefaultFlags = 0, PfnFlagsMask = HmmPfn.ReqFault | HmmPfn.ReqWrite };
        long budget = Stopwatch.Frequency; // one second
        using var stop = new CancellationTokenSource();
        long changes = 0;
        var mutator = new Worker(() =>
        {
            var rng = new Random(seed);
            while (!stop.IsCancellationRequested)
            {
                int page = rng.Next(PageCount);
                int len = rng.Next(1, 8);
                len = Math.Min(len, PageCount - page);
                ulong at = a + Pages.Bytes(page);
                switch (rng.Next(5))
                {
                    case 0:
                        mm.Munmap(at, Pages.Bytes(len)).ThrowIfError();
                        mm.Mmap(at, Pages.Bytes(len), Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).ThrowIfError();
                        break;
                    case 1:
                        mm.Mprotect(at, Pages.Bytes(len), rng.Next(2) == 0 ? Prot.Read : Prot.ReadWrite).ThrowIfError();
                        break;
                    case 2:
                        mm.Madvise(at, Pages.Bytes(len), Advice.DontNeed).ThrowIfError();
                        break;
                    case 3:
                        mm.Mprotect(at, Pages.Bytes(len), Prot.ReadWrite).ThrowIfError();
                        mm.CpuWrite(at, new byte[] { (byte)page });
                        break;
                    default:
                        using (AddressSpace child = mm.Fork())
                        {
                            mm.Mprotect(at, Pages.Bytes(len), Prot.ReadWrite).ThrowIfError();
                            mm.CpuWrite(at, new byte[] { 1 }); // COW: CLEAR over the page
                        }

                        break;
                }

                Interlocked.Increment(ref changes);
                Thread.Sleep(rng.Next(2)); // leave the driver windows in which a result can be accepted
            }
        });

        var rngReq = new Random(seed + 1);
        ulong[] requested = new ulong[PageCount];
        long accepted = 0;
        long busy = 0;
        long t0 = Stopwatch.GetTimestamp();
        // One second, or longer (up to ten) until a few results were accepted on a slow machine.
        while (Stopwatch.GetTimestamp() - t0 < budget || (accepted < 20 && Stopwatch.GetTimestamp() - t0 < 10 * budget))
        {
            for (int i = 0; i < PageCount; i++)
            {
                range.HmmPfns[i] = requested[i] = rngReq.Next(3) switch { 0 => 0, 1 => HmmPfn.ReqFault, _ => HmmPfn.ReqFault | HmmPfn.ReqWrite };
            }

            range.NotifierSeq = notifier.ReadBegin(5000, TestContext.Current.CancellationToken);
            mm.MmapLock.ReadLock();
            int rc;
            try
            {
                rc = HmmFault.RangeFault(range).Code;
            }
            finally
            {
                mm.MmapLock.ReadUnlock();
            }

            if (rc == -Errno.EBUSY)
            {
                busy++;
                continue;
            }

            // -EFAULT (a hole between munmap and the new mmap) and -EPERM (a read-only window under a write
            // request) are true answers for the layout the walk saw; only success results are checked.
            Assert.True(rc is 0 or -Errno.EPERM or -Errno.EFAULT, $"unexpected {Errno.Name(rc)} (seed {seed})");
            if (rc != 0)
            {
                continue;
            }

            using (ops.DriverLock.Hold())
            {
                if (notifier.ReadRetry(range.NotifierSeq))
                {
                    busy++;
                    continue;
                }

                // No invalidation can start while we hold the driver lock, so the page table is what the result describes.
                for (int i = 0; i < PageCount; i++)
                {
                    var p = new HmmPfn(range.HmmPfns[i]);
                    Pte pte = mm.PageTable.Read(a + Pages.Bytes(i));
                    if (p.IsValid)
                    {
                        Assert.True(pte.IsPresent && pte.Pfn == p.Pfn, $"page {i}: accepted pfn 0x{p.Pfn:x} but the page table has {pte} (seed {seed})");
                        Assert.True(!p.IsWritable || pte.IsWritable, $"page {i}: accepted WRITE on a read-only entry (seed {seed})");
                    }
                    else
                    {
                        Assert.False(pte.IsPresent, $"page {i}: reported not valid but the page table maps it: {pte} (seed {seed})");
                    }

                    // A successful call made every requested page valid, and writable where a write was requested.
                    Assert.True((requested[i] & HmmPfn.ReqFault) == 0 || p.IsValid, $"page {i}: fault requested, not valid after success (seed {seed})");
                    Assert.True((requested[i] & HmmPfn.ReqWrite) == 0 || p.IsWritable, $"page {i}: write requested, not writable after success (seed {seed})");
                }

                accepted++;
            }
        }

        stop.Cancel();
        Assert.True(mutator.Join(), "the mutator did not stop");
        Assert.Null(mutator.Error);
        TestContext.Current.TestOutputHelper?.WriteLine($"{accepted} accepted, {busy} retried, {changes} changes");
        Assert.True(accepted > 0, "no result was ever accepted");
        Assert.True(changes > 0);
    }
}
