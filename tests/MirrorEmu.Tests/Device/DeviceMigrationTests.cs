using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.DeviceHelpers;

namespace MirrorEmu.Tests.Device;

/// <summary>
/// hmm-tests' migration and device-exclusive tests (tools/testing/selftests/mm/hmm-tests.c: migrate, migrate_fault,
/// migrate_release, migrate_shared, migrate_mixed, migrate_multiple, snapshot, double_map, exclusive, exclusive_mprotect,
/// exclusive_cow, anon_write_child with migration; tools/testing/selftests/mm/hmm-tests.c) on the device's dmirror operations, plus
/// kernels on device-resident pages and the counters of where their accesses went. Written once, run on every launcher.
/// </summary>
public abstract class DeviceMigrationTests(LauncherFixture fixture)
{
    /// <summary>hmm-tests' NTIMES.</summary>
    private const int Times = 10;

    private int N => fixture.Launcher is not null ? fixture.BufferPages : 0;

    private ulong Bytes => Pages.Bytes(N);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A buffer of <paramref name="pages"/> pages whose element k holds k + <paramref name="bias"/>.</summary>
    private static (ulong Address, byte[] Data) Filled(AddressSpace mm, int pages, ulong bias = 0)
    {
        ulong a = Pages.MapAnon(mm, pages);
        byte[] data = Pattern(pages, k => (ulong)k + bias);
        mm.CpuWrite(a, data);
        return (a, data);
    }

    private static void AssertOnDevice(AddressSpace mm, MirrorDevice dev, ulong a, int pages)
    {
        for (int p = 0; p < pages; p++)
        {
            Pte pte = mm.PageTable.Read(a + Pages.Bytes(p));
            Assert.True(pte.IsDevicePrivate && dev.Pagemap.Contains(pte.Pfn), $"page {p} is not on the device: {pte}");
        }
    }

    [Fact]
    public void MigrateMovesEveryPageToDeviceMemoryAndReadsItBack()
    {
        // hmm.migrate: fill, MIGRATE_TO_DEV → 0, cpages = npages, the data the device read back.
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        long framesBefore = mm.Memory.FramesInUse;
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N);
        var mirror = new byte[Bytes];

        Ok(dev.MigrateToDevice(ref cmd, mirror));

        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(data, mirror);
        AssertOnDevice(mm, dev, a, N);
        Assert.Equal(N, dev.DevicePagesInUse);
        Assert.Equal(framesBefore - N, mm.Memory.FramesInUse);
        Assert.Equal(N, dev.Counters[DeviceEvent.PagesMigratedToDevice]);
        Assert.Equal(N, dev.Table.ValidEntries);
    }

    [Fact]
    public void MigrateFaultBringsHalfBackOnCpuReadsAndMigratesTheMixAgain()
    {
        // hmm.migrate_fault: migrate, CPU-read the first half (faults it back), migrate again → cpages = npages.
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N);
        var mirror = new byte[Bytes];
        Ok(dev.MigrateToDevice(ref cmd, mirror));

        int half = Math.Max(N / 2, 1);
        Assert.Equal(data.AsSpan(0, (int)Pages.Bytes(half)).ToArray(), Pages.Read(mm, a, (int)Pages.Bytes(half)));
        Assert.Equal(half, dev.Counters[DeviceEvent.MigrateToRamCalls]);
        Assert.Equal(N - half, dev.DevicePagesInUse);
        Assert.True(mm.PageTable.Read(a).IsPresent);

        cmd = new DmirrorCmd(a, (ulong)N);
        Array.Clear(mirror);
        Ok(dev.MigrateToDevice(ref cmd, mirror));
        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(data, mirror);
        AssertOnDevice(mm, dev, a, N);
        Assert.Equal(N, dev.DevicePagesInUse);
    }

    [Fact]
    public void ReleaseEvictsEveryPageAndTheCpuReadsItsDataInPlace()
    {
        // hmm.migrate_release: migrate, RELEASE, the CPU reads correct data (no fault back needed).
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N);
        Ok(dev.MigrateToDevice(ref cmd, new byte[Bytes]));

        Ok(dev.Release());

        Assert.Equal(0, dev.DevicePagesInUse);
        Assert.Equal(dev.MemoryPool.Counters[MmEvent.FramesAllocated], dev.MemoryPool.Counters[MmEvent.FramesFreed]);
        Assert.True(mm.PageTable.Read(a + Pages.Bytes(N - 1)).IsPresent);
        Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
        Assert.Equal(0, dev.Counters[DeviceEvent.MigrateToRamCalls]);
        Assert.Equal(N, dev.Counters[DeviceEvent.PagesMigratedToSystem]);
    }

    [Fact]
    public void MigratingSharedAnonymousMemoryFindsNoPageOnTheDevice()
    {
        // hmm.migrate_shared: MAP_SHARED | MAP_ANONYMOUS, MIGRATE_TO_DEV → -ENOENT.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, N, flags: MapFlags.Shared);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N) { Cpages = 9 };
        var mirror = new byte[Bytes];

        KResult r = dev.MigrateToDevice(ref cmd, mirror);

        Assert.Equal(-Errno.ENOENT, r.Code);
        Assert.Contains($"0x{a:X16}", r.Message);
        Assert.Equal(9UL, cmd.Cpages);
        Assert.Equal(0, dev.DevicePagesInUse);
    }

    [Fact]
    public void MigrateMixedRefusesProtNoneAndHolesAndMovesZeroReadOnlyAndWritablePages()
    {
        // hmm2.migrate_mixed.
        using var mm = new AddressSpace();
        ulong p = Pages.MapAnon(mm, 6, Prot.None);
        using MirrorDevice dev0 = NewDevice(mm, fixture.Launcher);
        using MirrorDevice dev1 = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(p, 6);
        Assert.Equal(-Errno.EINVAL, dev1.MigrateToDevice(ref cmd, new byte[Pages.Bytes(6)]).Code); // PROT_NONE

        Ok(mm.Munmap(p + Pages.Size, Pages.Size));
        cmd = new DmirrorCmd(p, 3);
        KResult hole = dev1.MigrateToDevice(ref cmd, new byte[Pages.Bytes(3)]);
        Assert.Equal(-Errno.EINVAL, hole.Code);

        Ok(mm.Mprotect(p + Pages.Bytes(2), Pages.Size, Prot.Read));
        Assert.Equal(0UL, mm.CpuReadUInt64(p + Pages.Bytes(2))); // page 2: the zero page, read-only
        Ok(mm.Mprotect(p + Pages.Bytes(3), Pages.Size, Prot.ReadWrite));
        mm.CpuWriteUInt64(p + Pages.Bytes(3), 3);
        Ok(mm.Mprotect(p + Pages.Bytes(3), Pages.Size, Prot.Read)); // page 3: read-only
        Ok(mm.Mprotect(p + Pages.Bytes(4), Pages.Bytes(2), Prot.ReadWrite));
        mm.CpuWriteUInt64(p + Pages.Bytes(4), 3);
        mm.CpuWriteUInt64(p + Pages.Bytes(5), 3); // pages 4-5: read-write

        cmd = new DmirrorCmd(p + Pages.Bytes(2), 4);
        var mirror = new byte[Pages.Bytes(4)];
        Ok(dev1.MigrateToDevice(ref cmd, mirror));
        Assert.Equal(4UL, cmd.Cpages);
        AssertOnDevice(mm, dev1, p + Pages.Bytes(2), 4);
        Assert.Equal(SwapType.DevicePrivateRead, mm.PageTable.Read(p + Pages.Bytes(3)).Swap);
        Assert.Equal(SwapType.DevicePrivateWrite, mm.PageTable.Read(p + Pages.Bytes(4)).Swap);

        cmd = new DmirrorCmd(p + Pages.Bytes(5), 1);
        Assert.Equal(-Errno.ENOENT, dev0.MigrateToDevice(ref cmd, new byte[Pages.Size]).Code); // page 5 is on device 1
        Assert.True(dev1.Pagemap.Contains(mm.PageTable.Read(p + Pages.Bytes(5)).Pfn));
        Assert.Equal(0, dev0.DevicePagesInUse);
    }

    [Fact]
    public void MigrateMultipleTimesAndFaultBackEachTime()
    {
        // hmm.migrate_multiple: NTIMES x (fresh buffer, migrate, the CPU checks every page, faulting it back).
        using var mm = new AddressSpace();
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        for (int c = 0; c < Times; c++)
        {
            (ulong a, byte[] data) = Filled(mm, N, bias: (ulong)c);
            var cmd = new DmirrorCmd(a, (ulong)N);
            var mirror = new byte[Bytes];
            Ok(dev.MigrateToDevice(ref cmd, mirror));
            Assert.Equal((ulong)N, cmd.Cpages);
            Assert.Equal(data, mirror);
            Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
            Assert.Equal(0, dev.DevicePagesInUse);
            Ok(mm.Munmap(a, Bytes));
        }

        Assert.Equal((long)Times * N, dev.Counters[DeviceEvent.MigrateToRamCalls]);
    }

    [Fact]
    public void SnapshotShowsThisDevicesPagesAsLocalAndAnotherDevicesAsNone()
    {
        // hmm2.snapshot: p0 PROT_NONE, p1 unmapped, p2 zero page, p3 read-only, p4 writable, p5 on dev0, p6 on dev1.
        using var mm = new AddressSpace();
        ulong p = Pages.MapAnon(mm, 7, Prot.None);
        Ok(mm.Munmap(p + Pages.Size, Pages.Size));
        Ok(mm.Mprotect(p + Pages.Bytes(2), Pages.Size, Prot.Read));
        Assert.Equal(0UL, mm.CpuReadUInt64(p + Pages.Bytes(2)));
        Ok(mm.Mprotect(p + Pages.Bytes(3), Pages.Size, Prot.ReadWrite));
        mm.CpuWriteUInt64(p + Pages.Bytes(3), 3);
        Ok(mm.Mprotect(p + Pages.Bytes(3), Pages.Size, Prot.Read));
        Ok(mm.Mprotect(p + Pages.Bytes(4), Pages.Bytes(3), Prot.ReadWrite));
        mm.CpuWriteUInt64(p + Pages.Bytes(4), 3);
        using MirrorDevice dev0 = NewDevice(mm, fixture.Launcher);
        using MirrorDevice dev1 = NewDevice(mm, fixture.Launcher);
        var one = new DmirrorCmd(p + Pages.Bytes(5), 1);
        Ok(dev0.MigrateToDevice(ref one, new byte[Pages.Size]));
        Assert.Equal(1UL, one.Cpages);
        one = new DmirrorCmd(p + Pages.Bytes(6), 1);
        Ok(dev1.MigrateToDevice(ref one, new byte[Pages.Size]));
        Assert.Equal(1UL, one.Cpages);

        var perms = new byte[7];
        var cmd = new DmirrorCmd(p, 7);
        Ok(dev0.Snapshot(ref cmd, perms, Ct));

        Assert.Equal(7UL, cmd.Cpages);
        Assert.Equal(
            new byte[]
            {
                SnapshotProt.Error, SnapshotProt.Error, SnapshotProt.Zero | SnapshotProt.Read, SnapshotProt.Read, SnapshotProt.Write,
                SnapshotProt.DevPrivateLocal | SnapshotProt.Write, SnapshotProt.None,
            },
            perms);
        Assert.Equal(1, dev1.DevicePagesInUse); // a snapshot never faults another device's page back
    }

    [Fact]
    public void DoubleMapFaultsPagesBackFromTheOtherDevice()
    {
        // hmm2.double_map: 6 read-only pages; dev0 READ, dev1 READ (faults 1 each); migrate to dev1; dev0 READ → faults 1,
        // the data, and the pages back in system memory.
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, 6);
        Ok(mm.Mprotect(a, Pages.Bytes(6), Prot.Read));
        using MirrorDevice dev0 = NewDevice(mm, fixture.Launcher);
        using MirrorDevice dev1 = NewDevice(mm, fixture.Launcher);
        foreach (MirrorDevice dev in new[] { dev0, dev1 })
        {
            var read = new DmirrorCmd(a, 6);
            var buffer = new byte[Pages.Bytes(6)];
            Ok(dev.Read(ref read, buffer, Ct));
            Assert.Equal(1UL, read.Faults);
            Assert.Equal(data, buffer);
        }

        var cmd = new DmirrorCmd(a, 6);
        Ok(dev1.MigrateToDevice(ref cmd, new byte[Pages.Bytes(6)]));
        Assert.Equal(6UL, cmd.Cpages);
        AssertOnDevice(mm, dev1, a, 6);
        Assert.Equal(SwapType.DevicePrivateRead, mm.PageTable.Read(a).Swap);

        var again = new DmirrorCmd(a, 6);
        var mirror = new byte[Pages.Bytes(6)];
        Ok(dev0.Read(ref again, mirror, Ct));

        Assert.Equal(6UL, again.Cpages);
        Assert.Equal(1UL, again.Faults);
        Assert.Equal(data, mirror);
        Assert.Equal(0, dev1.DevicePagesInUse);
        Assert.Equal(6, dev1.Counters[DeviceEvent.MigrateToRamCalls]);
        Assert.True(mm.PageTable.Read(a).IsPresent);
    }

    [Fact]
    public void TheOwnerMapsItsDevicePagesWithoutFaultingThemBack()
    {
        // hmm_range_fault's dev_private_owner: the device's own pages are reported with their device pfn.
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        Ok(dev.MigrateToDevice(a, (ulong)N, out ulong moved));
        Assert.Equal((ulong)N, moved);
        Ok(mm.Mprotect(a, Bytes, Prot.Read)); // an invalidation: the device drops its entries, the pages stay

        Assert.Equal(0, dev.Table.ValidEntries);
        var output = new ulong[N * PageElements];
        Ok(dev.LaunchRead(a, output, out LaunchReport report, Ct));

        Assert.Equal(Elements(data), output);
        Assert.Equal(N, report.PagesMapped);
        Assert.Equal(0, dev.Counters[DeviceEvent.MigrateToRamCalls]);
        Assert.Equal(N, dev.DevicePagesInUse);
        Assert.Equal(N * PageElements, report.AccessesDevice);
        Assert.Equal(0, report.AccessesSystem);
        Assert.False(dev.Lookup(a).IsWritable); // mprotect made the device-private entries read-only
    }

    [Fact]
    public void KernelsReadAndWriteDeviceResidentPagesInDeviceMemoryAndCountWhereAccessesWent()
    {
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        int half = Math.Max(N / 2, 1);
        Ok(dev.MigrateToDevice(a, (ulong)half, out _));

        var output = new ulong[N * PageElements];
        Ok(dev.LaunchRead(a, output, out LaunchReport read, Ct));
        Assert.Equal(Elements(data), output);
        Assert.Equal((long)half * PageElements, read.AccessesDevice);
        Assert.Equal((long)(N - half) * PageElements, read.AccessesSystem);

        ulong[] twice = [.. output.Select(v => v * 2)];
        Ok(dev.LaunchWrite(a, twice, out LaunchReport write, Ct));
        Assert.Equal((long)half * PageElements, write.AccessesDevice);
        Assert.Equal(half, dev.DevicePagesInUse); // written in device memory, still there

        int[] indices = [0, 1, 1];
        Ok(dev.LaunchAtomicAdd(a, N * PageElements, indices, 5, out LaunchReport atomics, Ct));
        Assert.Equal(3, atomics.AccessesDevice);
        Ok(dev.LaunchCopy(a, a + Pages.Bytes(half), half * PageElements, out LaunchReport copy, Ct));
        Assert.Equal((long)half * PageElements, copy.AccessesDevice);
        Assert.Equal((long)half * PageElements, copy.AccessesSystem);

        ulong[] cpu = CpuElements(mm, a, N * PageElements); // faults the device's half back
        Assert.Equal(5UL, cpu[0]);
        Assert.Equal(12UL, cpu[1]);
        Assert.Equal(twice[2..(half * PageElements)], cpu[2..(half * PageElements)]);
        Assert.Equal(cpu[..(half * PageElements)], cpu[(half * PageElements)..(2 * half * PageElements)]);
        Assert.Equal(0, dev.DevicePagesInUse);
    }

    [Fact]
    public void MigrateToSystemMovesEveryPageBackExplicitly()
    {
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        Ok(dev.MigrateToDevice(a, (ulong)N, out _));
        var cmd = new DmirrorCmd(a, (ulong)N);

        Ok(dev.MigrateToSystem(ref cmd));

        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(0, dev.DevicePagesInUse);
        Assert.Equal(0, dev.Table.ValidEntries);
        Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
        Assert.Equal(0, dev.Counters[DeviceEvent.MigrateToRamCalls]);
    }

    [Fact]
    public void AFullDeviceMemoryLeavesTheRestInSystemMemory()
    {
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, 8);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher, new DeviceOptions { Name = "small", DeviceMemoryBytes = Pages.Bytes(4) });
        var cmd = new DmirrorCmd(a, 8);

        Assert.Equal(-Errno.ENOENT, dev.MigrateToDevice(ref cmd, new byte[Pages.Bytes(8)]).Code);

        Assert.Equal(4, dev.DevicePagesInUse);
        Assert.Equal(4, dev.Counters[DeviceEvent.DeviceAllocationFailures]);
        Assert.True(mm.PageTable.Read(a + Pages.Bytes(7)).IsPresent);
        Assert.Equal(data, Pages.Read(mm, a, data.Length));
    }

    [Fact]
    public void APinnedPageIsReportedBusyAndStaysInSystemMemory()
    {
        using var mm = new AddressSpace();
        (ulong a, _) = Filled(mm, 4);
        ulong pinned = mm.PageTable.Read(a + Pages.Size).Pfn;
        mm.Memory.Get(pinned);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);

        Ok(dev.MigrateToDevice(a, 4, out ulong moved));

        Assert.Equal(3UL, moved);
        Assert.Equal(1, dev.Counters[DeviceEvent.MigrationPagesBusy]);
        Assert.Equal(pinned, mm.PageTable.Read(a + Pages.Size).Pfn);
        mm.Memory.Put(pinned);
    }

    [Fact]
    public void ExclusiveMapsEveryPageForAtomicsUntilTheCpuTouchesIt()
    {
        // hmm.exclusive: EXCLUSIVE → cpages = npages, the data; the CPU increments every element (revoking exclusivity);
        // CHECK_EXCLUSIVE → 0 (and -EPERM before the CPU touched the pages).
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N);
        var mirror = new byte[Bytes];

        Ok(dev.MakeExclusive(ref cmd, mirror, Ct));

        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(data, mirror);
        Assert.Equal(SwapType.DeviceExclusive, mm.PageTable.Read(a).Swap);
        Assert.Equal(-Errno.EPERM, dev.CheckExclusive(new DmirrorCmd(a, (ulong)N)).Code);
        int[] one = [3];
        Ok(dev.LaunchAtomicAdd(a, N * PageElements, one, 10, out LaunchReport atomics, Ct));
        Assert.Equal(0, atomics.FaultsAppended); // the atomic entry lets the device's atomics through

        ulong[] cpu = CpuElements(mm, a, N * PageElements);
        for (int k = 0; k < cpu.Length; k++)
        {
            mm.CpuWriteUInt64(a + ((ulong)k * sizeof(ulong)), cpu[k] + 1);
        }

        ulong[] after = CpuElements(mm, a, N * PageElements);
        Assert.Equal(14UL, after[3]);
        Assert.Equal(Elements(data).Select((v, k) => k == 3 ? 14UL : v + 1), after);
        Ok(dev.CheckExclusive(new DmirrorCmd(a, (ulong)N)));
        Assert.True(mm.PageTable.Read(a).IsPresent);
    }

    [Fact]
    public void AWriteAfterExclusiveAndMprotectReadFailsWithEperm()
    {
        // hmm.exclusive_mprotect: EXCLUSIVE, mprotect(READ), WRITE → -EPERM.
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N);
        Ok(dev.MakeExclusive(ref cmd, new byte[Bytes], Ct));
        Ok(mm.Mprotect(a, Bytes, Prot.Read));

        var write = new DmirrorCmd(a, (ulong)N);
        Assert.Equal(-Errno.EPERM, dev.Write(ref write, data, Ct).Code);
        Ok(dev.CheckExclusive(new DmirrorCmd(a, (ulong)N))); // the mprotect cleared the atomic entries
    }

    [Fact]
    public void ExclusivePagesAreCopiedOnWriteByForkAndEachSideSeesItsIncrement()
    {
        // hmm.exclusive_cow: EXCLUSIVE, fork; parent and child each increment every element and see i + 1.
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var cmd = new DmirrorCmd(a, (ulong)N);
        Ok(dev.MakeExclusive(ref cmd, new byte[Bytes], Ct));

        using AddressSpace child = mm.Fork();

        ulong[] expected = [.. Elements(data).Select(v => v + 1)];
        foreach (AddressSpace space in new[] { mm, child })
        {
            ulong[] seen = CpuElements(space, a, N * PageElements);
            Assert.Equal(Elements(data), seen);
            for (int k = 0; k < seen.Length; k++)
            {
                space.CpuWriteUInt64(a + ((ulong)k * sizeof(ulong)), seen[k] + 1);
            }

            Assert.Equal(expected, CpuElements(space, a, N * PageElements));
        }

        Ok(dev.CheckExclusive(new DmirrorCmd(a, (ulong)N)));
    }

    [Fact]
    public void ChildDeviceWritesItsOwnCopyOfMigratedPagesAfterFork()
    {
        // hmm.anon_write_child with migrate = 1: fill, migrate, fork; the child's own device WRITEs (cpages = npages,
        // faults = 1); the parent's buffer is unchanged.
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        using MirrorDevice parentDev = NewDevice(mm, fixture.Launcher);
        var migrate = new DmirrorCmd(a, (ulong)N);
        Ok(parentDev.MigrateToDevice(ref migrate, new byte[Bytes]));
        Assert.Equal((ulong)N, migrate.Cpages);

        using AddressSpace child = mm.Fork();
        Assert.Equal(SwapType.DevicePrivateRead, child.PageTable.Read(a).Swap);
        Assert.Equal(data, Pages.Read(child, a, (int)Bytes)); // the child sees the parent's values (each faulted back)
        using MirrorDevice childDev = NewDevice(child, fixture.Launcher);
        byte[] childData = Pattern(N, k => unchecked((ulong)-k));
        var cmd = new DmirrorCmd(a, (ulong)N);

        Ok(childDev.Write(ref cmd, childData, Ct));

        Assert.Equal((ulong)N, cmd.Cpages);
        Assert.Equal(1UL, cmd.Faults);
        Assert.Equal(childData, Pages.Read(child, a, (int)Bytes));
        Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
        Assert.Equal(0, parentDev.DevicePagesInUse);
    }

    [Fact]
    public void DisposingADeviceEvictsItsPagesFirst()
    {
        using var mm = new AddressSpace();
        (ulong a, byte[] data) = Filled(mm, N);
        MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        Ok(dev.MigrateToDevice(a, (ulong)N, out _));
        using AddressSpace child = mm.Fork();

        dev.Dispose();

        Assert.True(mm.PageTable.Read(a).IsPresent);
        Assert.True(child.PageTable.Read(a).IsPresent, "a fork child's pages of the device come back too");
        Assert.Equal(data, Pages.Read(mm, a, (int)Bytes));
        Assert.Equal(data, Pages.Read(child, a, (int)Bytes));
    }
}

/// <summary>On ILGPU's CPU accelerator.</summary>
public sealed class CpuDeviceMigrationTests(CpuLauncherFixture fixture) : DeviceMigrationTests(fixture), IClassFixture<CpuLauncherFixture>;

/// <summary>On the direct launcher.</summary>
public sealed class DirectDeviceMigrationTests(DirectLauncherFixture fixture) : DeviceMigrationTests(fixture), IClassFixture<DirectLauncherFixture>;

/// <summary>On CUDA (skipped without a GPU that can reach the frames in place).</summary>
public sealed class CudaDeviceMigrationTests(CudaLauncherFixture fixture) : DeviceMigrationTests(fixture), IClassFixture<CudaLauncherFixture>;

/// <summary>On OpenCL (skipped, with the reason).</summary>
public sealed class OpenClDeviceMigrationTests(OpenClLauncherFixture fixture) : DeviceMigrationTests(fixture), IClassFixture<OpenClLauncherFixture>;
