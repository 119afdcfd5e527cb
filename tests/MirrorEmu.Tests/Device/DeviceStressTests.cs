using System.Diagnostics;
using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.DeviceHelpers;

namespace MirrorEmu.Tests.Device;

/// <summary>
/// The race test of docs/design.md, invariant 1, per launcher: two CPU threads munmap/mmap, mprotect,
/// DONTNEED, write and fork over a buffer while device kernels read it and write it, and a checker holds every result
/// against a sequential model. The first half of each page is the CPU's (stamped with page and generation), the second
/// half the device's (stamped with page and launch). A device read must return, for every element, a value the page
/// held at some instant of the launch (no stale read); after a device write the CPU must find the written value unless
/// the page was zapped since the launch began (no lost write); freed frames hold canaries that no device read may
/// return and no device write may change (no access to a freed frame). -EFAULT (a munmap window), -EPERM (a read-only
/// window) and -EBUSY are answers, never a wrong page. The budget is one second; MIRROREMU_STRESS_SECONDS sets a longer one.
/// </summary>
[Trait("Category", "Stress")]
public abstract class DeviceStressTests(LauncherFixture fixture)
{
    private const int Half = PageElements / 2;
    private const ulong CpuTag = 0xC000_0000_0000_0000UL;
    private const ulong DeviceTag = 0xD000_0000_0000_0000UL;
    private const ulong Canary = 0xCDCD_CDCD_CDCD_CDCDUL;

    private long _clock;
    private readonly object _model = new(); // guards the model below

    /// <summary>Per page, the values its CPU half has held: (value, from, until), until = long.MaxValue for the current one.</summary>
    private List<(ulong Value, long From, long Until)>[] _history = [];

    /// <summary>Per page, when its last zap (munmap, DONTNEED) ended; long.MaxValue while one runs. A zap may take effect
    /// at any instant of its run, so a device value written after the zap began may still be wiped.</summary>
    private long[] _zapEnd = [];

    /// <summary>The clock when the read launch being checked began: history that ended before it is no longer needed.</summary>
    private long _checkFrom;

    private long Tick() => Interlocked.Increment(ref _clock);

    [Fact]
    public void DeviceKernelsNeverReadStaleDataLoseAWriteOrTouchAFreedFrameWhileTheCpuChangesTheMappings()
    {
        int seed = TestSeeds.Get();
        int pages = Math.Min(fixture.BufferPages, 32);
        double seconds = TestKnobs.Seconds("MIRROREMU_STRESS_SECONDS", 1.0);
        using var mm = new AddressSpace();
        mm.Memory.PoisonFreedFrames = true;
        ulong a = Pages.MapAnon(mm, pages);
        _history = new List<(ulong, long, long)>[pages];
        _zapEnd = new long[pages];
        for (int p = 0; p < pages; p++)
        {
            _history[p] = [(0, 0, long.MaxValue)];
        }

        using MirrorDevice dev = NewDevice(mm, fixture.Launcher, new DeviceOptions { SliceItems = 1024, Name = "stress device" });
        var violations = new List<string>();
        using var stop = new CancellationTokenSource();
        long cpuOps = 0;
        var mutators = new Worker[2];
        for (int t = 0; t < mutators.Length; t++)
        {
            int first = t * pages / 2;
            int count = pages / 2;
            int mutatorSeed = seed + t + 1;
            mutators[t] = new Worker(() => Mutate(mm, a, first, count, mutatorSeed, stop.Token, ref cpuOps));
        }

        var deviceValue = new ulong[pages];  // the device half's value after the last write launch, per page
        var lastWriteStart = new long[pages]; // when the last write launch that completed began
        var deviceLegal = new List<ulong>[pages]; // values the device half may hold
        for (int p = 0; p < pages; p++)
        {
            deviceLegal[p] = [0];
        }

        var output = new ulong[pages * PageElements];
        long reads = 0, writes = 0, refused = 0, checkedElements = 0;
        var rng = new Random(seed);
        long budget = (long)(seconds * Stopwatch.Frequency);
        long t0 = Stopwatch.GetTimestamp();
        for (int launch = 1; Stopwatch.GetTimestamp() - t0 < budget || reads + writes < 10; launch++)
        {
            if (rng.Next(2) == 0)
            {
                long r0 = Tick();
                Volatile.Write(ref _checkFrom, r0);
                KResult r = dev.LaunchRead(a, output, out _, TestContext.Current.CancellationToken);
                long r1 = Tick();
                if (!Accept(r, ref refused))
                {
                    continue;
                }

                reads++;
                lock (_model)
                {
                    for (int p = 0; p < pages; p++)
                    {
                        for (int k = 0; k < PageElements; k++)
                        {
                            ulong v = output[(p * PageElements) + k];
                            checkedElements++;
                            string? bad = v == Canary ? "read a freed frame's canary"
                                : k < Half ? CheckCpuHalf(p, v, r0, r1)
                                : deviceLegal[p].Contains(v) || (v == 0 && _zapEnd[p] > lastWriteStart[p]) ? null : "a stale or foreign device-half value (not what the last device write left)";
                            if (bad is not null && violations.Count < 20)
                            {
                                violations.Add($"launch {launch} read page {p} element {k} = 0x{v:X16}: {bad}");
                            }
                        }
                    }
                }
            }
            else
            {
                // A few random pages per write launch, so that most launches miss the munmap and read-only windows.
                int targets = rng.Next(1, 4);
                int[] chosen = [.. Enumerable.Range(0, targets).Select(_ => rng.Next(pages)).Distinct()];
                int[] slots = [.. chosen.SelectMany(p => Enumerable.Range((p * PageElements) + Half, Half))];
                ulong[] values = [.. slots.Select(k => DeviceTag | ((ulong)(k / PageElements) << 32) | (uint)launch)];
                long w0 = Tick();
                KResult r = dev.LaunchScatter(a, pages * PageElements, slots, values, out _, TestContext.Current.CancellationToken);
                bool ok = Accept(r, ref refused);
                lock (_model)
                {
                    foreach (int p in chosen)
                    {
                        ulong written = DeviceTag | ((ulong)p << 32) | (uint)launch;
                        if (ok)
                        {
                            deviceLegal[p].Clear();
                            deviceLegal[p].Add(written);
                            deviceValue[p] = written;
                            lastWriteStart[p] = w0;
                        }
                        else
                        {
                            deviceLegal[p].Add(written); // some work items may have completed
                        }
                    }
                }

                if (!ok)
                {
                    continue;
                }

                writes++;

                // No lost write: the CPU finds the value unless the page was zapped since the launch began.
                foreach (int p in chosen)
                {
                    ulong v;
                    try
                    {
                        v = mm.CpuReadUInt64(a + Pages.Bytes(p) + (Half * sizeof(ulong)));
                    }
                    catch (MemoryFaultException)
                    {
                        continue; // a munmap window: nothing to read
                    }

                    lock (_model)
                    {
                        bool zapped = _zapEnd[p] > w0;
                        if (v != deviceValue[p] && !(v == 0 && zapped) && violations.Count < 20)
                        {
                            violations.Add($"launch {launch} wrote 0x{deviceValue[p]:X16} to page {p} but the CPU reads 0x{v:X16}: a lost write");
                        }

                        if (zapped)
                        {
                            deviceLegal[p].Add(0);
                        }
                    }
                }
            }
        }

        stop.Cancel();
        foreach (Worker m in mutators)
        {
            Assert.True(m.Join(), "a mutator thread hung");
            Assert.Null(m.Error);
        }

        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{fixture.Kind}: {reads} reads, {writes} writes, {refused} refused (-EFAULT/-EPERM/-EBUSY), {cpuOps} CPU ops, {checkedElements} elements checked, " +
            $"{dev.Counters[DeviceEvent.Invalidations]} invalidations ({dev.Counters[DeviceEvent.InvalidationsDuringLaunch]} during launches, p50 {dev.InvalidationLatencyDuringLaunch.Percentile(0.5)?.TotalMicroseconds:F1} µs, p99 {dev.InvalidationLatencyDuringLaunch.Percentile(0.99)?.TotalMicroseconds:F1} µs)");
        Assert.True(violations.Count == 0, $"seed {seed}: " + string.Join(Environment.NewLine, violations));
        Assert.Equal(0, mm.Memory.CanaryViolations);
        Assert.True(reads > 0 && writes > 0, $"only {reads} reads and {writes} writes completed (seed {seed})");
        Assert.True(cpuOps > 0);
    }

    private static bool Accept(KResult r, ref long refused)
    {
        if (r.IsOk)
        {
            return true;
        }

        Assert.True(r.Code is -Errno.EFAULT or -Errno.EPERM or -Errno.EBUSY, $"unexpected launch result {r}");
        refused++;
        return false;
    }

    /// <summary>Null if <paramref name="v"/> was the CPU half's value of <paramref name="page"/> at some instant of [r0, r1].
    /// Call under <see cref="_model"/>.</summary>
    private string? CheckCpuHalf(int page, ulong v, long r0, long r1)
    {
        foreach ((ulong value, long from, long until) in _history[page])
        {
            if (value == v && from < r1 && until > r0)
            {
                return null;
            }
        }

        bool ownStamp = (v & 0xF000_0000_0000_0000UL) == CpuTag && (int)((v >> 32) & 0x0FFF_FFFF) == page;
        return ownStamp || v == 0 ? "a stale read (the value was replaced before the launch began)" : "a value of another page (a wrong page)";
    }

    /// <summary>One mutator: random CPU operations on pages [first, first + count), each recorded in the model with the
    /// clock ticks around it.</summary>
    private void Mutate(AddressSpace mm, ulong a, int first, int count, int seed, CancellationToken stop, ref long ops)
    {
        var rng = new Random(seed);
        var stamp = new ulong[Half];
        ulong generation = 0;
        while (!stop.IsCancellationRequested)
        {
            int p = first + rng.Next(count);
            int len = Math.Min(rng.Next(1, 4), first + count - p);
            ulong at = a + Pages.Bytes(p);
            ulong bytes = Pages.Bytes(len);
            int op = rng.Next(6);
            bool changes = op is 0 or 1 or 3 or 4;
            ulong nextGeneration = generation + 1;
            long c0 = Tick();
            if (changes)
            {
                // The new value may show from the start of the operation, the old one until its end: record the new
                // one now and end the old one's validity afterwards.
                lock (_model)
                {
                    for (int q = p; q < p + len; q++)
                    {
                        _history[q].Add((op <= 1 ? 0 : Stamp(q, nextGeneration), c0, long.MaxValue));
                        if (op <= 1)
                        {
                            _zapEnd[q] = long.MaxValue;
                        }
                    }
                }
            }

            switch (op)
            {
                case 0:
                    Ok(mm.Munmap(at, bytes));
                    Ok(mm.Mmap(at, bytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _));
                    break;
                case 1:
                    Ok(mm.Madvise(at, bytes, Advice.DontNeed));
                    break;
                case 2:
                    Ok(mm.Mprotect(at, bytes, rng.Next(2) == 0 ? Prot.Read : Prot.ReadWrite));
                    break;
                case 3:
                case 4:
                    generation = nextGeneration;
                    WriteStamps(mm, at, p, len, generation, stamp, fork: op == 4);
                    break;
                default:
                    Thread.Sleep(0);
                    break;
            }

            long c1 = Tick();
            if (changes)
            {
                lock (_model)
                {
                    for (int q = p; q < p + len; q++)
                    {
                        List<(ulong Value, long From, long Until)> h = _history[q];
                        h[^2] = h[^2] with { Until = c1 };
                        if (op <= 1)
                        {
                            _zapEnd[q] = c1;
                        }

                        long needed = Volatile.Read(ref _checkFrom);
                        h.RemoveAll(e => e.Until < needed); // ended before the read being checked began
                    }
                }
            }

            Interlocked.Increment(ref ops);
        }
    }

    /// <summary>The CPU half's value of page <paramref name="page"/> at <paramref name="generation"/>.</summary>
    private static ulong Stamp(int page, ulong generation) => CpuTag | ((ulong)page << 32) | generation;

    /// <summary>Stamps the CPU half of each page of [at, + len pages) with <paramref name="generation"/> (after making it
    /// writable; with <paramref name="fork"/>, while a fork child shares the pages, so each write breaks COW).</summary>
    private static void WriteStamps(AddressSpace mm, ulong at, int firstPage, int len, ulong generation, ulong[] stamp, bool fork)
    {
        AddressSpace? child = fork ? mm.Fork() : null;
        try
        {
            Ok(mm.Mprotect(at, Pages.Bytes(len), Prot.ReadWrite));
            for (int q = 0; q < len; q++)
            {
                Array.Fill(stamp, Stamp(firstPage + q, generation));
                mm.CpuWrite(at + Pages.Bytes(q), System.Runtime.InteropServices.MemoryMarshal.AsBytes(stamp.AsSpan()));
            }
        }
        finally
        {
            child?.Dispose();
        }
    }
}

/// <summary>The device race test on ILGPU's CPU accelerator.</summary>
public sealed class CpuDeviceStressTests(CpuLauncherFixture fixture) : DeviceStressTests(fixture), IClassFixture<CpuLauncherFixture>;

/// <summary>The device race test on the direct launcher.</summary>
public sealed class DirectDeviceStressTests(DirectLauncherFixture fixture) : DeviceStressTests(fixture), IClassFixture<DirectLauncherFixture>;

/// <summary>The device race test on CUDA (skipped without a GPU that can address host frames).</summary>
public sealed class CudaDeviceStressTests(CudaLauncherFixture fixture) : DeviceStressTests(fixture), IClassFixture<CudaLauncherFixture>;
