using System.Diagnostics;
using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Workloads;

/// <summary>Runs a <see cref="ScenarioFile"/>: maps its mappings in one address space (registering the userfaultfd ones and
/// starting their monitors), mirrors it with one device, runs the steps in order, and checks the assertions.</summary>
public static class ScenarioRunner
{
    /// <summary>The counters an assertion may name: the device's, the userfaultfd contexts' (summed), and the storms'.</summary>
    public static IReadOnlyList<string> CounterNames { get; } =
    [
        "deviceFaults", "faultBatches", "replays", "runs", "roundTrips", "ebusyRestarts", "walks", "lockDrops", "pagesFaulted",
        "pagesCopied", "launches", "launchErrors", "pagesMapped", "invalidations", "invalidationsDuringLaunch", "entriesCleared",
        "forks", "mprotects", "dontneeds",
    ];

    /// <summary>Most milliseconds a storm that runs during a launch may take after the launch returned.</summary>
    public const int StormJoinTimeoutMs = 120_000;

    /// <summary>Bytes a scenario needs: its mappings' frames and a margin.</summary>
    /// <param name="scenario">The scenario.</param>
    public static long EstimateBytes(ScenarioFile scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        return Comparison.EstimateBytes(scenario.Mappings.Sum(m => (long)m.Pages));
    }

    /// <summary>Runs the scenario.</summary>
    /// <param name="scenario">The scenario (checked).</param>
    /// <param name="launcher">The launcher (not owned).</param>
    /// <param name="onStep">Told each step's line as it finishes; may be null.</param>
    /// <param name="cancellation">Stops between steps and inside a launch (<see cref="OperationCanceledException"/>).</param>
    /// <returns>The steps and the checks.</returns>
    public static ScenarioOutcome Run(ScenarioFile scenario, DeviceLauncher launcher, Action<string>? onStep, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(launcher);
        using var world = new World(scenario, launcher);
        var steps = new List<string>();
        var checks = new List<ScenarioCheck>();
        for (int i = 0; i < scenario.Steps.Count; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            ScenarioStep step = scenario.Steps[i];
            string line = step.Launch is { } launch
                ? world.Launch(i + 1, launch, checks, cancellation)
                : world.Storm(i + 1, step.Storm!, checks, cancellation);
            steps.Add(line);
            onStep?.Invoke(line);
        }

        foreach (ScenarioAssertion a in scenario.Assertions)
        {
            checks.Add(world.Check(a));
        }

        return new ScenarioOutcome(steps, checks);
    }

    /// <summary>The address space, its mappings, the device, and what the steps did.</summary>
    private sealed class World : IDisposable
    {
        private readonly ScenarioFile _scenario;
        private readonly PhysicalMemory _pool;
        private readonly AddressSpace _mm;
        private readonly Dictionary<string, Mapped> _maps = [];
        private readonly MirrorDevice _device;
        private long _forks;
        private long _mprotects;
        private long _dontneeds;

        /// <summary>Maps the mappings, registers and starts the monitors, and creates the device.</summary>
        public World(ScenarioFile scenario, DeviceLauncher launcher)
        {
            _scenario = scenario;
            ComparisonOptions defaults = new();
            _ = ComparePolicies.TryParse(scenario.Device.Policy, out ComparePolicy policy);
            long pages = scenario.Mappings.Sum(m => (long)m.Pages);
            _pool = new PhysicalMemory(((ulong)pages << PageGeometry.PageShift) + (64UL << 20));
            _mm = new AddressSpace(_pool);
            try
            {
                foreach (ScenarioMapping m in scenario.Mappings)
                {
                    ulong bytes = (ulong)m.Pages << PageGeometry.PageShift;
                    ulong start = DeviceTrial.MapAligned(_mm, bytes);
                    MonitoredRange? uffd = m.Userfaultfd is { } u
                        ? new MonitoredRange(_mm, start, bytes, u.Resolution(policy), (byte)u.FillByte, u.MonitorBatch)
                        : null;
                    WorkItems layout = Workload.Seq.Generate(m.Pages, scenario.Seed);
                    _maps[m.Name] = new Mapped(m, start, uffd, (byte)(m.Userfaultfd?.FillByte ?? 0), new RangeExpectation(m.Pages, layout.ElementOf));
                }

                _device = new MirrorDevice(_mm, launcher, new DeviceOptions
                {
                    UffdPolicy = policy.ToUffd() ?? Hmm.UffdFaultPolicy.SinglePage,
                    FaultBatchSize = scenario.Device.FaultBatch,
                    ReplayPolicy = ReplayPolicies.TryParse(scenario.Device.Replay, out ReplayPolicy replay) ? replay : defaults.Replay,
                    Name = $"scenario {scenario.Name}",
                });
            }
            catch
            {
                DisposeMaps();
                _mm.Dispose();
                _pool.Dispose();
                throw;
            }
        }

        /// <summary>Runs a launch step (and its storm), records its check, and updates the mapping's expected data.</summary>
        public string Launch(int index, ScenarioLaunch launch, List<ScenarioCheck> checks, CancellationToken cancellation)
        {
            Mapped m = _maps[launch.Mapping];
            WorkItems items = launch.ParsedWorkload.Generate(m.Spec.Pages, _scenario.Seed);
            long t0 = Stopwatch.GetTimestamp();
            Thread? storm = null;
            Exception? stormFailure = null;
            if (launch.During is { } during)
            {
                Mapped target = _maps[during.Mapping ?? launch.Mapping];
                storm = new Thread(() =>
                {
                    try
                    {
                        RunStorm(during, target, cancellation);
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        stormFailure = e;
                    }
                })
                { IsBackground = true, Name = "scenario storm" };
                storm.Start();
            }

            KResult rc = _device.LaunchAtomicAdd(m.Start, (long)m.Spec.Pages * WorkItems.ElementsPerPage, items.Elements, launch.Add, out LaunchReport report, cancellation);
            bool joined = storm?.Join(StormJoinTimeoutMs) ?? true;
            double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            cancellation.ThrowIfCancellationRequested();
            string result = rc.IsOk ? "ok" : Errno.Name(rc.Code);
            string what = $"step {index}: launch {launch.Workload} on '{launch.Mapping}' ({items.PageOrder.Length:N0} work items, +{launch.Add} each){(launch.During is { } d ? $" during {d.Count:N0} × {d.Op}" : string.Empty)}";
            checks.Add(new ScenarioCheck($"{what} ends {launch.Expect}", result == launch.Expect, rc.IsOk ? "ok" : rc.ToString()));
            if (launch.During is not null)
            {
                checks.Add(new ScenarioCheck(
                    $"step {index}: the storm during the launch completes",
                    joined && stormFailure is null,
                    !joined ? $"it did not finish within {StormJoinTimeoutMs} ms of the launch" : stormFailure?.Message ?? "ok"));
            }

            if (rc.IsOk)
            {
                m.Expected.Apply(items, launch.Add);
            }
            else
            {
                m.Expected.Known = false; // the completed work items' adds landed, the others did not
            }

            return $"{what}: {result}, {report.FaultsAppended:N0} device faults, {report.Batches:N0} batches, {report.Replays:N0} replays, {ms:F1} ms";
        }

        /// <summary>Runs a storm step and records its check.</summary>
        public string Storm(int index, ScenarioStorm storm, List<ScenarioCheck> checks, CancellationToken cancellation)
        {
            string what = $"step {index}: {storm.Count:N0} × {storm.Op} on '{storm.Mapping}'";
            try
            {
                RunStorm(storm, _maps[storm.Mapping!], cancellation);
                checks.Add(new ScenarioCheck($"{what} completes", true, "ok"));
                return $"{what}: ok";
            }
            catch (KernelErrorException e)
            {
                checks.Add(new ScenarioCheck($"{what} completes", false, e.Message));
                return $"{what}: {e.Message}";
            }
        }

        /// <summary>Checks one assertion.</summary>
        public ScenarioCheck Check(ScenarioAssertion a)
        {
            if (a.Data is { } name)
            {
                Mapped m = _maps[name];
                string? mismatch = RangeCheck.Verify(_mm, m.Start, m.Expected, m.Fill, requireWritable: false);
                return new ScenarioCheck(a.Describe(), mismatch is null, mismatch ?? $"{m.Expected.Hits.Count(h => h > 0):N0} pages touched, every byte as expected");
            }

            long value = Counter(a.Counter!);
            bool ok = (a.EqualTo is null || value == a.EqualTo) && (a.AtLeast is null || value >= a.AtLeast) && (a.AtMost is null || value <= a.AtMost);
            return new ScenarioCheck(a.Describe(), ok, $"{a.Counter} = {value:N0}");
        }

        /// <summary>The value of the counter named <paramref name="name"/> (one of <see cref="CounterNames"/>).</summary>
        private long Counter(string name)
        {
            CounterSet<DeviceEvent> d = _device.Counters;
            return name switch
            {
                "deviceFaults" => d[DeviceEvent.FaultsAppended],
                "faultBatches" => d[DeviceEvent.Batches],
                "replays" => d[DeviceEvent.Replays],
                "runs" => d[DeviceEvent.Runs],
                "roundTrips" => d[DeviceEvent.HmmRoundTrips],
                "ebusyRestarts" => d[DeviceEvent.HmmEbusyRestarts],
                "walks" => d[DeviceEvent.HmmWalks],
                "lockDrops" => d[DeviceEvent.HmmLockDrops],
                "pagesFaulted" => d[DeviceEvent.HmmPagesFaulted],
                "pagesCopied" => _maps.Values.Sum(m => m.Uffd?.Context.Stats[UffdStat.PagesCopied] ?? 0),
                "launches" => d[DeviceEvent.Launches],
                "launchErrors" => d[DeviceEvent.LaunchErrors],
                "pagesMapped" => d[DeviceEvent.PagesMapped],
                "invalidations" => d[DeviceEvent.Invalidations],
                "invalidationsDuringLaunch" => d[DeviceEvent.InvalidationsDuringLaunch],
                "entriesCleared" => d[DeviceEvent.EntriesCleared],
                "forks" => Interlocked.Read(ref _forks),
                "mprotects" => Interlocked.Read(ref _mprotects),
                _ => Interlocked.Read(ref _dontneeds),
            };
        }

        /// <summary>The storm's operations, in a loop; an operation that fails throws <see cref="KernelErrorException"/>.</summary>
        private void RunStorm(ScenarioStorm storm, Mapped m, CancellationToken cancellation)
        {
            ulong bytes = (ulong)m.Spec.Pages << PageGeometry.PageShift;
            for (int i = 0; i < storm.Count && !cancellation.IsCancellationRequested; i++)
            {
                switch (storm.Op)
                {
                    case "fork":
                        using (_mm.Fork())
                        {
                            Interlocked.Increment(ref _forks);
                        }

                        break;
                    case "mprotect":
                        _mm.Mprotect(m.Start, bytes, Prot.ReadWrite | Prot.Exec).ThrowIfError();
                        _mm.Mprotect(m.Start, bytes, Prot.ReadWrite).ThrowIfError();
                        Interlocked.Increment(ref _mprotects);
                        break;
                    default:
                        _mm.Madvise(m.Start, bytes, Advice.DontNeed).ThrowIfError();
                        m.Expected.Empty();
                        Interlocked.Increment(ref _dontneeds);
                        break;
                }
            }
        }

        /// <summary>Stops the monitors and closes their contexts.</summary>
        private void DisposeMaps()
        {
            foreach (Mapped m in _maps.Values)
            {
                m.Uffd?.Dispose();
            }
        }

        /// <summary>Closes the device, the monitors, the address space and the pool, in that order.</summary>
        public void Dispose()
        {
            _device.Dispose();
            DisposeMaps();
            _mm.Dispose();
            _pool.Dispose();
        }
    }

    /// <summary>A mapping as mapped: where, its monitor, its fill, and what it must hold.</summary>
    private sealed record Mapped(ScenarioMapping Spec, ulong Start, MonitoredRange? Uffd, byte Fill, RangeExpectation Expected);
}
