using System.Diagnostics;
using System.Runtime.InteropServices;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>
/// Free late (docs/design.md, invariant 1): a frame whose entry is cleared or replaced while a CPU access
/// on another thread still copies through the old entry must not be handed out again until that copy is done.
/// Writers stamp their pages with an owner-and-generation canary, zappers MADV_DONTNEED those pages under them,
/// a forker makes copy-on-write breaks happen under readers, and checkers keep faulting fresh frames for pages only
/// they own and verify every word: a foreign canary in a checker's page is a write that landed in a reused frame,
/// a foreign canary in a reader's page is a read of a frame already given to someone else. Time-boxed
/// (MIRROREMU_STRESS_MS, default 2,500 ms); the pool is kept small so freed frames are reused within microseconds.
/// </summary>
[Trait("Category", "Stress")]
public class FrameReuseStressTests
{
    private const int PagesPerThread = 16;
    private const int Writers = 2;
    private const int Checkers = 2;
    private const ulong ChildOwner = 0xC0;

    [Fact]
    public void NoAccessReachesAFrameAfterItWasHandedOutAgain()
    {
        int seed = TestSeeds.Get();
        int budgetMs = int.TryParse(Environment.GetEnvironmentVariable("MIRROREMU_STRESS_MS"), out int ms) ? ms : 2500;
        int totalPages = (Writers + Checkers) * PagesPerThread;
        using var mm = new AddressSpace(memoryLimitBytes: Pages.Bytes(totalPages + 160));
        ulong writerBase = Pages.MapAnon(mm, Writers * PagesPerThread);
        ulong checkerBase = Pages.MapAnon(mm, Checkers * PagesPerThread);
        using var stop = new CancellationTokenSource(budgetMs);
        var corruptions = new System.Collections.Concurrent.ConcurrentQueue<string>();
        long writes = 0, zaps = 0, checks = 0, forks = 0, reads = 0;
        var threads = new List<Worker>();

        for (int w = 0; w < Writers; w++)
        {
            ulong owner = (ulong)(w + 1);
            ulong at = writerBase + Pages.Bytes(w * PagesPerThread);
            threads.Add(new Worker(() =>
            {
                var page = new ulong[PageGeometry.PageSizeInt / sizeof(ulong)];
                for (ulong gen = 1; !stop.IsCancellationRequested; gen++)
                {
                    Array.Fill(page, Stamp(owner, gen));
                    mm.CpuWrite(at + Pages.Bytes((int)(gen % PagesPerThread)), MemoryMarshal.AsBytes(page.AsSpan()));
                    Interlocked.Increment(ref writes);
                }
            }));
        }

        for (int z = 0; z < 2; z++)
        {
            var rng = new Random(seed + z);
            threads.Add(new Worker(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    int w = rng.Next(Writers);
                    int p = rng.Next(PagesPerThread);
                    mm.Madvise(writerBase + Pages.Bytes((w * PagesPerThread) + p), Pages.Size, Advice.DontNeed).ThrowIfError();
                    Interlocked.Increment(ref zaps);
                }
            }));
        }

        for (int c = 0; c < Checkers; c++)
        {
            ulong owner = (ulong)(0x10 + c);
            ulong at = checkerBase + Pages.Bytes(c * PagesPerThread);
            threads.Add(new Worker(() =>
            {
                var page = new ulong[PageGeometry.PageSizeInt / sizeof(ulong)];
                var back = new ulong[page.Length];
                for (ulong gen = 1; !stop.IsCancellationRequested; gen++)
                {
                    mm.Madvise(at, Pages.Bytes(PagesPerThread), Advice.DontNeed).ThrowIfError();
                    Array.Fill(page, Stamp(owner, gen));
                    for (int p = 0; p < PagesPerThread; p++)
                    {
                        mm.CpuWrite(at + Pages.Bytes(p), MemoryMarshal.AsBytes(page.AsSpan())); // a fresh frame, perhaps a reused one
                    }

                    for (int round = 0; round < 4; round++)
                    {
                        for (int p = 0; p < PagesPerThread; p++)
                        {
                            mm.CpuRead(at + Pages.Bytes(p), MemoryMarshal.AsBytes(back.AsSpan()));
                            int bad = Array.FindIndex(back, v => v != Stamp(owner, gen));
                            if (bad >= 0)
                            {
                                corruptions.Enqueue($"checker {owner:X}: page {p} word {bad} holds 0x{back[bad]:X16}, expected 0x{Stamp(owner, gen):X16}");
                            }
                        }
                    }

                    Interlocked.Increment(ref checks);
                }
            }));
        }

        // Copy-on-write under readers: the forker forks, writes the shared pages in the child (COW breaks there) and
        // in the parent; a reader in the parent checks that what it reads was written by a writer of the parent.
        threads.Add(new Worker(() =>
        {
            var page = new ulong[PageGeometry.PageSizeInt / sizeof(ulong)];
            Array.Fill(page, Stamp(ChildOwner, 1));
            while (!stop.IsCancellationRequested)
            {
                using AddressSpace child = mm.Fork();
                for (int p = 0; p < Writers * PagesPerThread; p += 3)
                {
                    child.CpuWrite(writerBase + Pages.Bytes(p), MemoryMarshal.AsBytes(page.AsSpan()));
                }

                Interlocked.Increment(ref forks);
            }
        }));
        threads.Add(new Worker(() =>
        {
            var back = new ulong[PageGeometry.PageSizeInt / sizeof(ulong)];
            var rng = new Random(seed + 99);
            while (!stop.IsCancellationRequested)
            {
                int p = rng.Next(Writers * PagesPerThread);
                mm.CpuRead(writerBase + Pages.Bytes(p), MemoryMarshal.AsBytes(back.AsSpan()));
                ulong expectedOwner = (ulong)(p / PagesPerThread) + 1;
                int bad = Array.FindIndex(back, v => v != 0 && v >> 48 != expectedOwner);
                if (bad >= 0)
                {
                    corruptions.Enqueue($"reader: writer page {p} word {bad} holds 0x{back[bad]:X16}, not a stamp of writer {expectedOwner}");
                }

                Interlocked.Increment(ref reads);
            }
        }));

        foreach (Worker t in threads)
        {
            Assert.True(t.Join(budgetMs + 30_000), "a stress thread did not stop");
            Assert.Null(t.Error);
        }

        string summary = $"{writes:N0} writes, {zaps:N0} zaps, {checks:N0} check rounds, {forks:N0} forks, {reads:N0} reads in {budgetMs} ms; "
            + $"{mm.Counters[MmEvent.TlbShootdowns]:N0} shootdowns waited {mm.Counters[MmEvent.TlbShootdownWaits]:N0} times; {corruptions.Count} corruptions";
        TestContext.Current.TestOutputHelper?.WriteLine(summary);
        Assert.True(corruptions.IsEmpty, summary + Environment.NewLine + string.Join(Environment.NewLine, corruptions.Take(10)));
        Assert.True(writes > 0 && zaps > 0 && checks > 0 && forks > 0 && reads > 0, "a role never ran: " + summary);
    }

    private static ulong Stamp(ulong owner, ulong generation) => (owner << 48) | (generation & 0xFFFF_FFFF_FFFFUL);
}
