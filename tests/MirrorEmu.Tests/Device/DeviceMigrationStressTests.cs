using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.DeviceHelpers;

namespace MirrorEmu.Tests.Device;

/// <summary>
/// The race test of device memory, per launcher: two devices migrate random ranges to their
/// memory and back and release everything, a CPU thread reads and rewrites pages (faulting them back from whichever device
/// holds them) and the devices' kernels rewrite pages, both against a sequential model, an invalidator write-protects
/// ranges, zaps pages and forks, and the devices' kernels read the buffer. Checked: the CPU always finds the value the model says (no data lost by a migration), a
/// device read returns only values of the page it reads (never another page's, nor a freed frame's canary), after the
/// run no page is left on a device, and every frame of the system pool and of both device pools was freed exactly once
/// (allocations equal frees, none in use, no canary overwritten). The budget is one second; MIRROREMU_STRESS_SECONDS sets
/// a longer one.
/// </summary>
[Trait("Category", "Stress")]
public abstract class DeviceMigrationStressTests(LauncherFixture fixture)
{
    private const int PageIdShift = 40;

    /// <summary>What every element of page <paramref name="page"/> holds at generation <paramref name="generation"/>
    /// (generation 0: a page never written, or zapped: zeros).</summary>
    private static ulong Stamp(int page, long generation) => generation == 0 ? 0 : ((ulong)(page + 1) << PageIdShift) | (ulong)generation;

    [Fact]
    public void MigrationsFaultsBackAndInvalidationsLoseNoDataStrandNoPageAndFreeEveryFrameOnce()
    {
        int seed = TestSeeds.Get();
        int pages = Math.Min(fixture.BufferPages, 64);
        double seconds = TestKnobs.Seconds("MIRROREMU_STRESS_SECONDS", 1.0);
        var mm = new AddressSpace();
        mm.Memory.PoisonFreedFrames = true;
        ulong a = Pages.MapAnon(mm, pages);
        var generation = new long[pages]; // the model: guarded by the page's lock
        var pageLocks = new object[pages];
        for (int p = 0; p < pages; p++)
        {
            pageLocks[p] = new object();
        }

        long nextGeneration = 0;
        MirrorDevice dev0 = NewDevice(mm, fixture.Launcher, new DeviceOptions { Name = "device 0", SliceItems = 1024 });
        MirrorDevice dev1 = NewDevice(mm, fixture.Launcher, new DeviceOptions { Name = "device 1", SliceItems = 1024, DeviceMemoryBytes = Pages.Bytes(pages / 2) });
        MirrorDevice[] devices = [dev0, dev1];
        foreach (MirrorDevice d in devices)
        {
            d.MemoryPool.PoisonFreedFrames = true;
        }

        using var stop = new CancellationTokenSource();
        CancellationToken token = stop.Token;
        long migrations = 0, deviceWrites = 0, cpuChecks = 0, cpuWrites = 0, refusedWrites = 0, zaps = 0, forks = 0, protects = 0, reads = 0, busyReads = 0;
        var violations = new List<string>();
        void Violation(string what)
        {
            lock (violations)
            {
                if (violations.Count < 20)
                {
                    violations.Add(what);
                }
            }
        }

        Worker migrator = new(() =>
        {
            var rng = new Random(seed + 1);
            while (!token.IsCancellationRequested)
            {
                MirrorDevice d = devices[rng.Next(2)];
                int first = rng.Next(pages);
                int count = rng.Next(1, Math.Min(16, pages - first) + 1);
                int op = rng.Next(10);
                KResult r;
                if (op < 6)
                {
                    r = d.MigrateToDevice(a + Pages.Bytes(first), (ulong)count, out _);
                }
                else if (op < 9)
                {
                    var cmd = new DmirrorCmd(a + Pages.Bytes(first), (ulong)count);
                    r = d.MigrateToSystem(ref cmd);
                }
                else
                {
                    r = d.Release();
                }

                if (!r.IsOk)
                {
                    Violation($"migration op {op} on {d.Options.Name}: {r}");
                }

                Interlocked.Increment(ref migrations);
            }
        });

        Worker cpu = new(() =>
        {
            var rng = new Random(seed + 2);
            var page = new byte[Pages.Size];
            while (!token.IsCancellationRequested)
            {
                int p = rng.Next(pages);
                ulong va = a + Pages.Bytes(p);
                lock (pageLocks[p])
                {
                    mm.CpuRead(va, page);
                    ulong expected = Stamp(p, generation[p]);
                    ulong[] seen = Elements(page);
                    int bad = Array.FindIndex(seen, v => v != expected);
                    if (bad >= 0)
                    {
                        Violation($"page {p}: element {bad} holds 0x{seen[bad]:X} where the model says 0x{expected:X} (data lost)");
                    }

                    long g = Interlocked.Increment(ref nextGeneration);
                    byte[] next = Pattern(1, _ => Stamp(p, g));
                    try
                    {
                        mm.CpuWrite(va, next);
                        generation[p] = g;
                        Interlocked.Increment(ref cpuWrites);
                    }
                    catch (MemoryFaultException e) when (e.Signal == Signal.SIGSEGV)
                    {
                        Interlocked.Increment(ref refusedWrites); // a write-protect window: nothing was written
                    }
                }

                Interlocked.Increment(ref cpuChecks);
            }
        });

        Worker invalidator = new(() =>
        {
            var rng = new Random(seed + 3);
            while (!token.IsCancellationRequested)
            {
                int p = rng.Next(pages);
                int op = rng.Next(10);
                if (op < 5)
                {
                    int count = rng.Next(1, Math.Min(8, pages - p) + 1);
                    mm.Mprotect(a + Pages.Bytes(p), Pages.Bytes(count), Prot.Read).ThrowIfError();
                    Thread.Yield();
                    mm.Mprotect(a + Pages.Bytes(p), Pages.Bytes(count), Prot.ReadWrite).ThrowIfError();
                    Interlocked.Increment(ref protects);
                }
                else if (op < 8)
                {
                    lock (pageLocks[p])
                    {
                        mm.Madvise(a + Pages.Bytes(p), Pages.Size, Advice.DontNeed).ThrowIfError();
                        generation[p] = 0;
                    }

                    Interlocked.Increment(ref zaps);
                }
                else
                {
                    using AddressSpace child = mm.Fork();
                    child.CpuRead(a + Pages.Bytes(p), new byte[8]); // faults the child's copy in (back from a device)
                    Interlocked.Increment(ref forks);
                }
            }
        });

        Worker reader = new(() =>
        {
            var rng = new Random(seed + 4);
            var output = new ulong[pages * PageElements];
            while (!token.IsCancellationRequested)
            {
                MirrorDevice d = devices[rng.Next(2)];
                int first = rng.Next(pages);
                int count = rng.Next(1, pages - first + 1);
                KResult r = d.LaunchRead(a + Pages.Bytes(first), output.AsSpan(0, count * PageElements), out _);
                if (r.Code == -Errno.EBUSY)
                {
                    Interlocked.Increment(ref busyReads); // the pages kept changing for a whole fault budget: an answer
                    continue;
                }

                if (!r.IsOk)
                {
                    Violation($"device read on {d.Options.Name}: {r}");
                    continue;
                }

                for (int k = 0; k < count * PageElements; k++)
                {
                    ulong v = output[k];
                    int page = first + (k / PageElements);
                    if (v != 0 && (int)(v >> PageIdShift) != page + 1)
                    {
                        Violation($"{d.Options.Name} read 0x{v:X} in page {page}: another page's value or a freed frame's");
                        break;
                    }
                }

                Interlocked.Increment(ref reads);
            }
        });

        Worker writer = new(() =>
        {
            var rng = new Random(seed + 5);
            var input = new ulong[PageElements];
            while (!token.IsCancellationRequested)
            {
                MirrorDevice d = devices[rng.Next(2)];
                int p = rng.Next(pages);
                lock (pageLocks[p])
                {
                    long g = Interlocked.Increment(ref nextGeneration);
                    Array.Fill(input, Stamp(p, g));
                    KResult r = d.LaunchWrite(a + Pages.Bytes(p), input, out _);
                    if (r.IsOk)
                    {
                        generation[p] = g;
                        Interlocked.Increment(ref deviceWrites);
                    }
                    else if (r.Code is not (-Errno.EPERM or -Errno.EBUSY))
                    {
                        Violation($"device write on {d.Options.Name}: {r}"); // -EPERM: a write-protect window; nothing was written
                    }
                }
            }
        });

        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        stop.Cancel();
        Worker[] workers = [migrator, cpu, invalidator, reader, writer];
        foreach (Worker w in workers)
        {
            Assert.True(w.Join(60_000), "a worker did not stop within 60 s (a hang)");
        }

        foreach (Worker w in workers)
        {
            Assert.Null(w.Error);
        }

        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{seconds} s: {migrations} migrations, {cpuChecks} CPU checks ({cpuWrites} writes, {refusedWrites} refused), {zaps} zaps, {forks} forks, {protects} write-protects, {reads} device reads ({busyReads} -EBUSY), {deviceWrites} device writes; " +
            $"to device {dev0.Counters[DeviceEvent.PagesMigratedToDevice] + dev1.Counters[DeviceEvent.PagesMigratedToDevice]}, back {dev0.Counters[DeviceEvent.PagesMigratedToSystem] + dev1.Counters[DeviceEvent.PagesMigratedToSystem]} (CPU faults {dev0.Counters[DeviceEvent.MigrateToRamCalls] + dev1.Counters[DeviceEvent.MigrateToRamCalls]}), busy {mm.Counters[MmEvent.MigrationBusy]}, device memory full {dev1.Counters[DeviceEvent.DeviceAllocationFailures]}");
        Assert.True(violations.Count == 0, string.Join("\n", violations));
        Assert.True(cpuChecks > 0 && migrations > 0 && reads > 0, "every worker made progress");

        foreach (MirrorDevice d in devices)
        {
            Ok(d.Release());
            Assert.Equal(0, d.DevicePagesInUse);
            Assert.Equal(0, d.MemoryPool.CanaryViolations);
        }

        for (int p = 0; p < pages; p++)
        {
            Pte pte = mm.PageTable.Read(a + Pages.Bytes(p));
            Assert.False(pte.IsDevicePrivate || pte.IsMigration, $"page {p} stranded: {pte}");
            Assert.Equal(Stamp(p, generation[p]), mm.CpuReadUInt64(a + Pages.Bytes(p) + 8));
        }

        dev0.Dispose();
        dev1.Dispose();
        Ok(mm.Munmap(a, Pages.Bytes(pages)));
        Assert.Equal(0, mm.Memory.FramesInUse);
        Assert.Equal(mm.Counters[MmEvent.FramesAllocated], mm.Counters[MmEvent.FramesFreed]);
        Assert.Equal(0, mm.Memory.CanaryViolations);
        foreach (MirrorDevice d in devices)
        {
            Assert.Equal(d.MemoryPool.Counters[MmEvent.FramesAllocated], d.MemoryPool.Counters[MmEvent.FramesFreed]);
        }

        mm.Dispose();
    }
}

/// <summary>On ILGPU's CPU accelerator.</summary>
public sealed class CpuDeviceMigrationStressTests(CpuLauncherFixture fixture) : DeviceMigrationStressTests(fixture), IClassFixture<CpuLauncherFixture>;

/// <summary>On the direct launcher.</summary>
public sealed class DirectDeviceMigrationStressTests(DirectLauncherFixture fixture) : DeviceMigrationStressTests(fixture), IClassFixture<DirectLauncherFixture>;

/// <summary>On CUDA (skipped without a GPU that can reach the frames in place).</summary>
public sealed class CudaDeviceMigrationStressTests(CudaLauncherFixture fixture) : DeviceMigrationStressTests(fixture), IClassFixture<CudaLauncherFixture>;
