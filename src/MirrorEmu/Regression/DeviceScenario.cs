using MirrorEmu.Device;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Uffd;

namespace MirrorEmu.Regression;

/// <summary>What a <see cref="DeviceScenario"/> runs.</summary>
internal enum DeviceScenarioKind
{
    /// <summary>The write kernel over a fresh regular range, one replay after the fault buffer is drained.</summary>
    FirstTouchOnce,

    /// <summary>The same under UVM's default policy: a replay after each batch, pending entries flushed first.</summary>
    FirstTouchBatchFlush,

    /// <summary>The read kernel over a fresh userfaultfd range, the driver's runs under the Batched policy.</summary>
    UffdBatched,

    /// <summary>The read kernel over a mirrored range, MADV_DONTNEED of a quarter of it (the device's invalidate
    /// callback clears those entries), and the read kernel again (those pages fault again).</summary>
    InvalidateRefault,

    /// <summary>The write kernel over a fresh range, every page migrated to device memory, the read kernel there (no
    /// faults: device-resident), CPU reads of a quarter (each a fault handed to migrate_to_ram), the rest migrated back.</summary>
    MigrateRoundTrip,
}

/// <summary>
/// The device (lib/test_hmm.c's dmirror, NVIDIA UVM's fault servicing) on the <c>direct</c> launcher: kernels translate
/// every access through the device page table, misses go to the fault buffer, the driver services them in batches of
/// 256 and replays. Every counter but time is the same on every launcher and every run (the fault buffer is sorted before
/// it is cut into batches).
/// </summary>
internal sealed class DeviceScenario : CounterScenario
{
    /// <summary>Pages in the range.</summary>
    public const int Pages = 1024;

    private const int PageElements = PageGeometry.PageSizeInt / sizeof(ulong);

    private readonly DeviceScenarioKind _kind;

    /// <summary>The scenario of one kind.</summary>
    /// <param name="kind">What runs.</param>
    public DeviceScenario(DeviceScenarioKind kind) => _kind = kind;

    /// <inheritdoc/>
    public override string Name => _kind switch
    {
        DeviceScenarioKind.FirstTouchOnce => "device/first-touch-once",
        DeviceScenarioKind.FirstTouchBatchFlush => "device/first-touch-batchflush",
        DeviceScenarioKind.UffdBatched => "device/uffd-batched",
        DeviceScenarioKind.MigrateRoundTrip => "device/migrate-roundtrip",
        _ => "device/invalidate-refault",
    };

    /// <inheritdoc/>
    public override string Description => _kind switch
    {
        DeviceScenarioKind.FirstTouchOnce => $"write kernel over every element of {Pages} fresh pages, replay Once, direct launcher",
        DeviceScenarioKind.FirstTouchBatchFlush => $"write kernel over {Pages} fresh pages, replay BatchFlush (UVM's default), direct launcher",
        DeviceScenarioKind.UffdBatched => $"read kernel over {Pages} fresh userfaultfd pages, Batched policy, monitor blocks of {HmmPolicyScenario.BlockPages}, direct launcher",
        DeviceScenarioKind.MigrateRoundTrip => $"write kernel over {Pages} fresh pages, all migrated to the device, read kernel there, CPU reads of {Pages / 4} (migrate_to_ram), the rest migrated back, direct launcher",
        _ => $"read kernel over {Pages} mirrored pages, MADV_DONTNEED of {Pages / 4}, read kernel again, direct launcher",
    };

    /// <inheritdoc/>
    public override IReadOnlyList<CounterFigure> Run()
    {
        bool uffd = _kind == DeviceScenarioKind.UffdBatched;
        using var space = new ScenarioSpace(Pages, uffd ? UffdResolution.Block : null, HmmPolicyScenario.BlockPages);
        using var launcher = new DirectLauncher();
        var options = new DeviceOptions
        {
            Name = Name,
            ReplayPolicy = _kind == DeviceScenarioKind.FirstTouchBatchFlush ? ReplayPolicy.BatchFlush : ReplayPolicy.Once,
            UffdPolicy = UffdFaultPolicy.Batched,
            DeviceMemoryBytes = _kind == DeviceScenarioKind.MigrateRoundTrip ? space.Bytes : DeviceOptions.MinDeviceMemoryBytes,
        };
        using var device = new MirrorDevice(space.Mm, launcher, options);
        var elements = new ulong[Pages * PageElements];
        LaunchReport first;
        switch (_kind)
        {
            case DeviceScenarioKind.FirstTouchOnce or DeviceScenarioKind.FirstTouchBatchFlush:
                for (int i = 0; i < elements.Length; i++)
                {
                    elements[i] = (ulong)i;
                }

                Launch(device.LaunchWrite(space.Start, elements, out first), "write");
                Require(space.Mm.CpuReadUInt64(space.Start + ((ulong)(elements.Length - 1) * sizeof(ulong))) == (ulong)(elements.Length - 1), "the CPU does not see the device's last write");
                return [.. Report(first), .. Totals(device)];
            case DeviceScenarioKind.UffdBatched:
                Launch(device.LaunchRead(space.Start, elements, out first), "read");
                Require(elements[0] == Fill64 && elements[^1] == Fill64, "the device did not read the monitor's bytes");
                return [.. Report(first), .. Totals(device), Figure("uffd.monitorRoundTrips", space.Ctx!.Stats[Telemetry.UffdStat.RoundTrips])];
            case DeviceScenarioKind.MigrateRoundTrip:
                return MigrateRoundTrip(space, device, elements);
            default:
                Launch(device.LaunchRead(space.Start, elements, out _), "first read");
                space.Mm.Madvise(space.Start, space.Bytes / 4, Advice.DontNeed).ThrowIfError();
                Launch(device.LaunchRead(space.Start, elements, out LaunchReport again), "read after MADV_DONTNEED");
                return [.. Report(again), .. Totals(device)];
        }
    }

    private IReadOnlyList<CounterFigure> MigrateRoundTrip(ScenarioSpace space, MirrorDevice device, ulong[] elements)
    {
        for (int i = 0; i < elements.Length; i++)
        {
            elements[i] = (ulong)i;
        }

        Launch(device.LaunchWrite(space.Start, elements, out _), "write");
        Require(device.MigrateToDevice(space.Start, Pages, out ulong migrated).IsOk && migrated == Pages, $"{migrated} of {Pages} pages migrated to the device");
        Array.Clear(elements);
        Launch(device.LaunchRead(space.Start, elements, out LaunchReport resident), "read of device-resident pages");
        Require(elements[^1] == (ulong)(elements.Length - 1), "the device read wrong data from its own memory");
        for (int p = 0; p < Pages / 4; p++)
        {
            ulong word = (ulong)p * PageElements;
            Require(space.Mm.CpuReadUInt64(space.Start + (word * sizeof(ulong))) == word, $"the CPU read wrong data from page {p} after migrate_to_ram");
        }

        var back = new DmirrorCmd(space.Start, Pages);
        Launch(device.MigrateToSystem(ref back), "migrate to system");
        Require(space.Mm.CpuReadUInt64(space.Start + space.Bytes - sizeof(ulong)) == (ulong)(elements.Length - 1), "the CPU read wrong data after the migration back");
        return
        [
            .. Report(resident),
            .. Totals(device),
            Figure("device.pagesMigratedToDevice", device.Counters[DeviceEvent.PagesMigratedToDevice]),
            Figure("device.pagesMigratedToSystem", device.Counters[DeviceEvent.PagesMigratedToSystem]),
            Figure("device.migrateToRamCalls", device.Counters[DeviceEvent.MigrateToRamCalls]),
            Figure("device.migrationPagesBusy", device.Counters[DeviceEvent.MigrationPagesBusy]),
            Figure("device.devicePagesMapped", device.Counters[DeviceEvent.DevicePagesMapped]),
            Figure("device.accessesDevice", device.Counters[DeviceEvent.AccessesDevice]),
            Figure("device.accessesSystem", device.Counters[DeviceEvent.AccessesSystem]),
            Figure("migrateCmd.cpages", (long)back.Cpages),
        ];
    }

    private static ulong Fill64 => Workloads.RangeCheck.FillWord(ScenarioSpace.FillByte);

    private void Launch(KResult rc, string what) => Require(rc.IsOk, $"the {what} launch failed: {rc}");

    private IEnumerable<CounterFigure> Report(LaunchReport r) =>
    [
        Figure("launch.passes", r.Passes),
        Figure("launch.replays", r.Replays),
        Figure("launch.itemsReplayed", r.ItemsReplayed),
        Figure("launch.deviceFaults", r.FaultsAppended),
        Figure("launch.faultsDuplicate", r.FaultsDuplicate),
        Figure("launch.faultsFlushed", r.FaultsFlushed),
        Figure("launch.faultBatches", r.Batches),
        Figure("launch.runs", r.Runs),
        Figure("launch.pagesServiced", r.PagesServiced),
        Figure("launch.pagesMapped", r.PagesMapped),
    ];

    private IEnumerable<CounterFigure> Totals(MirrorDevice device) =>
    [
        Figure("device.hmmCalls", device.Counters[DeviceEvent.HmmCalls]),
        Figure("device.hmmWalks", device.Counters[DeviceEvent.HmmWalks]),
        Figure("device.hmmRoundTrips", device.Counters[DeviceEvent.HmmRoundTrips]),
        Figure("device.hmmEbusyRestarts", device.Counters[DeviceEvent.HmmEbusyRestarts]),
        Figure("device.invalidations", device.Counters[DeviceEvent.Invalidations]),
        Figure("device.entriesCleared", device.Counters[DeviceEvent.EntriesCleared]),
    ];
}
