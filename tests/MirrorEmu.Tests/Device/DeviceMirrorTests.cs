using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.DeviceHelpers;

namespace MirrorEmu.Tests.Device;

/// <summary>
/// hmm-tests' mirroring tests (tools/testing/selftests/mm/hmm-tests.c) on the device's
/// dmirror-style Read, Write and Snapshot: the data, the return codes and the cpages/faults counters as the selftests
/// assert them, written once and run on every launcher.
/// </summary>
public abstract class DeviceMirrorTests(LauncherFixture fixture)
{
    /// <summary>Pages of a buffer (skips the test first when the launcher is absent).</summary>
    private int N => fixture.Launcher is not null ? fixture.BufferPages : 0;

    private ulong Bytes => Pages.Bytes(N);

    [Fact]
    public void AnonReadMirrorsEveryPageInOneFaultRound()
    {
        // hmm.anon_read: fill pages 2..N, mprotect(READ), CPU-read page 1 (zero page), READ all.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, N);
        byte[] data = Pattern(N, k => k / PageElements < 2 ? 0 : (ulong)k);
        mm.CpuWrite(a + Pages.Bytes(2), data.AsSpan((int)Pages.Bytes(2)));
        Ok(mm.Mprotect(a, Bytes, Prot.Read));
        Assert.Equal(0UL, mm.CpuReadUInt64(a + Pages.Size));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N);
        var buffer = new byte[Bytes];
        Ok(dev.Read(ref cmd, buffer, TestContext.Current.CancellationToken));
        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(1UL, cmd.Faults);
        Assert.Equal(data, buffer);
    }

    [Fact]
    public void AnonReadOfProtNoneFailsWithEfaultAndLeavesTheBufferUntouched()
    {
        // hmm.anon_read_prot: fill, mirror buffer = -i, mprotect(NONE), READ → -EFAULT; CPU data unchanged.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, N);
        byte[] data = Pattern(N, k => (ulong)k);
        mm.CpuWrite(a, data);
        Ok(mm.Mprotect(a, Bytes, Prot.None));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N) { Cpages = 77, Faults = 88 };
        byte[] mirror = Pattern(N, k => unchecked((ulong)-k));
        byte[] before = (byte[])mirror.Clone();
        KResult r = dev.Read(ref cmd, mirror, TestContext.Current.CancellationToken);
        Assert.Equal(-Errno.EFAULT, r.Code);
        Assert.Contains($"0x{a:X16}", r.Message);
        Assert.Equal(before, mirror);
        Assert.Equal(77UL, cmd.Cpages);
        Assert.Equal(88UL, cmd.Faults);
        Ok(mm.Mprotect(a, Bytes, Prot.Read));
        Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
    }

    [Fact]
    public void AnonWriteIsSeenByTheCpu()
    {
        // hmm.anon_write: fresh anon RW, WRITE all → 0, cpages = npages, faults = 1; the CPU sees the device's data.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, N);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        byte[] data = Pattern(N, k => (ulong)k * 3);
        var cmd = new DmirrorCmd(a, (ulong)N);
        Ok(dev.Write(ref cmd, data, TestContext.Current.CancellationToken));
        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(1UL, cmd.Faults);
        Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
    }

    [Fact]
    public void AnonWriteToReadOnlyMemoryFailsWithEpermUntilMprotect()
    {
        // hmm.anon_write_prot: PROT_READ anon; READ 1 page → cpages 1, faults 1; WRITE all → -EPERM, memory still 0;
        // mprotect(RW); WRITE → 0, faults 1, the zero page replaced, data = i.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, N, Prot.Read);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var one = new DmirrorCmd(a, 1);
        var page = new byte[Pages.Size];
        Ok(dev.Read(ref one, page, TestContext.Current.CancellationToken));
        Assert.Equal(1UL, one.Cpages);
        Assert.Equal(1UL, one.Faults);
        Assert.True(page.AsSpan().IndexOfAnyExcept((byte)0) < 0);

        byte[] data = Pattern(N, k => (ulong)k + 1);
        var cmd = new DmirrorCmd(a, (ulong)N);
        KResult r = dev.Write(ref cmd, data, TestContext.Current.CancellationToken);
        Assert.Equal(-Errno.EPERM, r.Code);
        Assert.Equal(0UL, cmd.Cpages);
        Assert.True(Pages.Read(mm, a, (int)Bytes).AsSpan().IndexOfAnyExcept((byte)0) < 0, "a refused device write changed memory");

        Ok(mm.Mprotect(a, Bytes, Prot.ReadWrite));
        Ok(dev.Write(ref cmd, data, TestContext.Current.CancellationToken));
        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(1UL, cmd.Faults);
        Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
        Assert.NotEqual(PhysicalMemory.ZeroPfn, mm.PageTable.Read(a).Pfn);
    }

    [Fact]
    public void ChildDeviceWritesItsOwnCopyAfterFork()
    {
        // hmm.anon_write_child (no migration): fill, fork; the child's own device WRITEs (cpages = npages, faults = 1)
        // and sees the new data; the parent's buffer is unchanged (COW).
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, N);
        byte[] parentData = Pattern(N, k => (ulong)k);
        mm.CpuWrite(a, parentData);
        using MirrorDevice parentDev = NewDevice(mm, fixture.Launcher);
        var read = new DmirrorCmd(a, (ulong)N);
        Ok(parentDev.Read(ref read, new byte[Bytes], TestContext.Current.CancellationToken));

        using AddressSpace child = mm.Fork();
        using MirrorDevice childDev = NewDevice(child, fixture.Launcher);
        byte[] childData = Pattern(N, k => unchecked((ulong)-k));
        var cmd = new DmirrorCmd(a, (ulong)N);
        Ok(childDev.Write(ref cmd, childData, TestContext.Current.CancellationToken));
        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(1UL, cmd.Faults);
        Assert.Equal(childData, Pages.Read(child, a, (int)Bytes));
        Assert.Equal(parentData, Pages.Read(mm, a, (int)Bytes));

        // The parent's device still reads the parent's data (fork cleared its write-protected entries).
        var again = new DmirrorCmd(a, (ulong)N);
        var buffer = new byte[Bytes];
        Ok(parentDev.Read(ref again, buffer, TestContext.Current.CancellationToken));
        Assert.Equal(parentData, buffer);
    }

    [Fact]
    public void ChildDeviceWriteToSharedMemoryIsSeenByTheParent()
    {
        // hmm.anon_write_child_shared: MAP_SHARED anon, fork, the child device-WRITEs -i → the parent sees -i.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, N, Prot.ReadWrite, MapFlags.Shared);
        mm.CpuWrite(a, Pattern(N, k => (ulong)k));
        using AddressSpace child = mm.Fork();
        using MirrorDevice childDev = NewDevice(child, fixture.Launcher);
        byte[] data = Pattern(N, k => unchecked((ulong)-k));
        var cmd = new DmirrorCmd(a, (ulong)N);
        Ok(childDev.Write(ref cmd, data, TestContext.Current.CancellationToken));
        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(1UL, cmd.Faults);
        Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
    }

    [Fact]
    public void HugeMappingIsMirroredByOneHugeEntry()
    {
        // hmm.anon_write_huge: a 2 x PMD mapping, its aligned PMD half MADV_HUGEPAGE, WRITE → faults = 1, data ok;
        // the device maps the half with one huge entry, and Snapshot reports PMD mappings.
        using var mm = new AddressSpace();
        int pmdPages = 1 << PageGeometry.PmdOrder;
        ulong map = Pages.MapAnon(mm, 2 * pmdPages);
        ulong a = (map + PageGeometry.PmdMask) & ~PageGeometry.PmdMask;
        Ok(mm.Madvise(a, PageGeometry.PmdSize, Advice.HugePage));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        int pages = Math.Min(pmdPages, N);
        byte[] data = Pattern(pages, k => (ulong)k + 5);
        var cmd = new DmirrorCmd(a, (ulong)pages);
        Ok(dev.Write(ref cmd, data, TestContext.Current.CancellationToken));
        Assert.Equal(1UL, cmd.Faults);
        Assert.Equal(data, Pages.Read(mm, a, data.Length));
        Assert.Equal(1, dev.Table.HugeEntries);
        Assert.Equal(1, dev.Counters[DeviceEvent.HugeMapped]);
        Assert.Equal(9, dev.Lookup(a + Pages.Bytes(pages - 1)).Order);
        var perms = new byte[pages];
        var snap = new DmirrorCmd(a, (ulong)pages);
        Ok(dev.Snapshot(ref snap, perms, TestContext.Current.CancellationToken));
        Assert.All(perms, p => Assert.Equal(SnapshotProt.Write | SnapshotProt.Pmd, p));
    }

    [Fact]
    public void FileReadSeesTheFilesBytes()
    {
        // hmm.file_read: a file holding i, MAP_SHARED read-only, READ → faults 1, data i.
        using var mm = new AddressSpace();
        using var file = new MemFile(mm.Memory, Bytes, "hmm-file");
        byte[] data = Pattern(N, k => (ulong)k ^ 0x5A5A);
        Assert.Equal(0, file.Write(0, data));
        Ok(mm.Mmap(0, Bytes, Prot.Read, MapFlags.Shared, file, 0, out ulong a));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N);
        var buffer = new byte[Bytes];
        Ok(dev.Read(ref cmd, buffer, TestContext.Current.CancellationToken));
        Assert.Equal(1UL, cmd.Faults);
        Assert.Equal(data, buffer);
    }

    [Fact]
    public void FileWriteReachesTheCpuAndThePageCache()
    {
        // hmm.file_write: MAP_SHARED RW file, WRITE → the CPU sees it and a read of the file (pread) sees it.
        using var mm = new AddressSpace();
        using var file = new MemFile(mm.Memory, Bytes, "hmm-file");
        Ok(mm.Mmap(0, Bytes, Prot.ReadWrite, MapFlags.Shared, file, 0, out ulong a));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        byte[] data = Pattern(N, k => (ulong)k * 7);
        var cmd = new DmirrorCmd(a, (ulong)N);
        Ok(dev.Write(ref cmd, data, TestContext.Current.CancellationToken));
        Assert.Equal(1UL, cmd.Faults);
        Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
        var pread = new byte[Bytes];
        file.Read(0, pread);
        Assert.Equal(data, pread);
    }

    [Fact]
    public void RepeatedReadsOfFreshBuffersTakeOneFaultRoundEach()
    {
        // hmm.anon_read_multiple: 10 times a fresh buffer holding i + c; READ → faults 1, data ok.
        using var mm = new AddressSpace();
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        for (int c = 0; c < 10; c++)
        {
            ulong a = Pages.MapAnon(mm, N);
            byte[] data = Pattern(N, k => (ulong)(k + c));
            mm.CpuWrite(a, data);
            var cmd = new DmirrorCmd(a, (ulong)N);
            var buffer = new byte[Bytes];
            Ok(dev.Read(ref cmd, buffer, TestContext.Current.CancellationToken));
            Assert.Equal(1UL, cmd.Faults);
            Assert.Equal((ulong)N, cmd.Cpages);
            Assert.Equal(data, buffer);
            Ok(mm.Munmap(a, Bytes));
        }
    }

    [Fact]
    public void ConcurrentMunmapDuringReadEndsWithDataOrAnErrorNeverAHang()
    {
        // hmm.anon_teardown: 10 times, a thread sleeps a random time below 32 µs and munmaps the second half during READ;
        // a 0 return has cpages = npages, faults = 1 and the data; an error is allowed; a hang or a crash is not.
        int seed = TestSeeds.Get();
        var rng = new Random(seed);
        for (int round = 0; round < 10; round++)
        {
            using var mm = new AddressSpace();
            ulong a = Pages.MapAnon(mm, N);
            byte[] data = Pattern(N, k => (ulong)(k + round));
            mm.CpuWrite(a, data);
            using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
            int delayTicks = rng.Next(32) * (int)(System.Diagnostics.Stopwatch.Frequency / 1_000_000);
            var unmapper = new Worker(() =>
            {
                long until = System.Diagnostics.Stopwatch.GetTimestamp() + delayTicks;
                while (System.Diagnostics.Stopwatch.GetTimestamp() < until)
                {
                    Thread.SpinWait(10);
                }

                mm.Munmap(a + (Bytes / 2), Bytes / 2).ThrowIfError();
            });
            var cmd = new DmirrorCmd(a, (ulong)N);
            var buffer = new byte[Bytes];
            KResult r = dev.Read(ref cmd, buffer, TestContext.Current.CancellationToken);
            Assert.True(unmapper.Join(), $"the munmap thread hung (seed {seed}, round {round})");
            Assert.Null(unmapper.Error);
            if (r.IsOk)
            {
                Assert.Equal((ulong)N, cmd.Cpages);
                Assert.Equal(1UL, cmd.Faults);
                Assert.Equal(data, buffer);
            }
            else
            {
                Assert.Equal(-Errno.EFAULT, r.Code);
            }
        }
    }

    [Fact]
    public void SnapshotOfADeviceMappedPageIsRead()
    {
        // hmm.mixedmap: mmap of the device (VM_MIXEDMAP, MAP_PRIVATE RW, zeroed pages inserted), SNAPSHOT 1 page → READ.
        using var mm = new AddressSpace();
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        Ok(dev.Mmap(Pages.Size, Prot.ReadWrite, out ulong a));
        var perms = new byte[1];
        var cmd = new DmirrorCmd(a, 1);
        Ok(dev.Snapshot(ref cmd, perms, TestContext.Current.CancellationToken));
        Assert.Equal(1UL, cmd.Cpages);
        Assert.Equal(SnapshotProt.Read, perms[0]);
    }

    [Fact]
    public void SnapshotReportsTheCpuPermissionOfEveryPageWithDmirrorsCodes()
    {
        // hmm2.snapshot without migration: p0 PROT_NONE → ERROR; p1 unmapped → ERROR; p2 read-only zero page → ZERO|READ;
        // p3 read-only written → READ; p4 read-write written → WRITE.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 5);
        mm.CpuWrite(a + Pages.Bytes(3), [1]);
        mm.CpuWrite(a + Pages.Bytes(4), [1]);
        Ok(mm.Munmap(a + Pages.Bytes(1), Pages.Size));
        Ok(mm.Mprotect(a, Pages.Size, Prot.None));
        Ok(mm.Mprotect(a + Pages.Bytes(2), Pages.Bytes(2), Prot.Read));
        Assert.Equal(0UL, mm.CpuReadUInt64(a + Pages.Bytes(2)));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var perms = new byte[5];
        var cmd = new DmirrorCmd(a, 5);
        Ok(dev.Snapshot(ref cmd, perms, TestContext.Current.CancellationToken));
        Assert.Equal(5UL, cmd.Cpages);
        Assert.Equal(new byte[] { SnapshotProt.Error, SnapshotProt.Error, SnapshotProt.Zero | SnapshotProt.Read, SnapshotProt.Read, SnapshotProt.Write }, perms);
        Assert.Equal(0, dev.Table.ValidEntries); // a snapshot never maps anything
    }

    [Fact]
    public void TwoDevicesMirrorTheSameAddressSpace()
    {
        // hmm2.double_map without migration: 6 pages read-only; dev0 READ and dev1 READ both ok, faults = 1 each.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 6);
        byte[] data = Pattern(6, k => (ulong)k);
        mm.CpuWrite(a, data);
        Ok(mm.Mprotect(a, Pages.Bytes(6), Prot.Read));
        using MirrorDevice dev0 = NewDevice(mm, fixture.Launcher);
        using MirrorDevice dev1 = NewDevice(mm, fixture.Launcher);
        foreach (MirrorDevice dev in new[] { dev0, dev1 })
        {
            var cmd = new DmirrorCmd(a, 6);
            var buffer = new byte[Pages.Bytes(6)];
            Ok(dev.Read(ref cmd, buffer, TestContext.Current.CancellationToken));
            Assert.Equal(1UL, cmd.Faults);
            Assert.Equal(6UL, cmd.Cpages);
            Assert.Equal(data, buffer);
        }

        // One munmap invalidates both mirrors.
        Ok(mm.Munmap(a, Pages.Bytes(6)));
        Assert.False(dev0.Lookup(a).IsValid);
        Assert.False(dev1.Lookup(a).IsValid);
    }

    [Theory]
    [InlineData(0x1001UL, 1UL, "not page aligned")]
    [InlineData(0x10000UL, 0UL, "npages=0")]
    [InlineData(0x10000UL, 1UL << 40, "overflows")]
    [InlineData(0xFFFF_FFFF_F000UL, 2UL, "overflows")]
    public void BadCommandsFailWithEinvalAndChangeNothing(ulong addr, ulong npages, string why)
    {
        using var mm = new AddressSpace();
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var buffer = Pages.Filled(0xEE, 2 * (int)Pages.Size);
        foreach (Func<DmirrorCmd, (KResult, DmirrorCmd)> op in new Func<DmirrorCmd, (KResult, DmirrorCmd)>[]
        {
            c => (dev.Read(ref c, buffer, TestContext.Current.CancellationToken), c),
            c => (dev.Write(ref c, buffer, TestContext.Current.CancellationToken), c),
            c => (dev.Snapshot(ref c, buffer, TestContext.Current.CancellationToken), c),
        })
        {
            var cmd = new DmirrorCmd(addr, npages) { Cpages = 5, Faults = 6 };
            (KResult r, DmirrorCmd after) = op(cmd);
            Assert.Equal(-Errno.EINVAL, r.Code);
            Assert.Contains(why, r.Message);
            Assert.Equal(cmd, after);
        }

        Assert.True(buffer.AsSpan().IndexOfAnyExcept((byte)0xEE) < 0, "a refused command wrote the buffer");
        Assert.Equal(0, dev.Counters[DeviceEvent.Launches]);
    }

    [Fact]
    public void ABufferSmallerThanTheRangeFailsWithEfaultBeforeAnythingRuns()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, 4);
        KResult r = dev.Read(ref cmd, new byte[Pages.Bytes(3)], TestContext.Current.CancellationToken);
        Assert.Equal(-Errno.EFAULT, r.Code);
        Assert.Contains("smaller than npages=0x4", r.Message);
        Assert.Equal(0, dev.Counters[DeviceEvent.Launches]);
        Assert.Equal(0, mm.Memory.FramesInUse);
    }
}

/// <summary>hmm-tests mirroring shapes on ILGPU's CPU accelerator.</summary>
public sealed class CpuDeviceMirrorTests(CpuLauncherFixture fixture) : DeviceMirrorTests(fixture), IClassFixture<CpuLauncherFixture>;

/// <summary>hmm-tests mirroring shapes on the direct launcher.</summary>
public sealed class DirectDeviceMirrorTests(DirectLauncherFixture fixture) : DeviceMirrorTests(fixture), IClassFixture<DirectLauncherFixture>;

/// <summary>hmm-tests mirroring shapes on CUDA (skipped without a GPU that can address host frames).</summary>
public sealed class CudaDeviceMirrorTests(CudaLauncherFixture fixture) : DeviceMirrorTests(fixture), IClassFixture<CudaLauncherFixture>;

/// <summary>hmm-tests mirroring shapes on OpenCL (skipped: ILGPU's OpenCL cannot address host frames in place).</summary>
public sealed class OpenClDeviceMirrorTests(OpenClLauncherFixture fixture) : DeviceMirrorTests(fixture), IClassFixture<OpenClLauncherFixture>;
