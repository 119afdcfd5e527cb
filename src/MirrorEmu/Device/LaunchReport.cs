namespace MirrorEmu.Device;

/// <summary>
/// What one launch did, from the counters its own code paths incremented (the device's
/// <see cref="MirrorDevice.Counters"/> add up the same figures over every launch). Every field but
/// <see cref="Elapsed"/> is the same on every launcher for the same workload.
/// </summary>
/// <param name="Items">Work items launched.</param>
/// <param name="Passes">Passes: the first one plus replays.</param>
/// <param name="Replays">Replay passes.</param>
/// <param name="ItemsReplayed">Work items run again by replays.</param>
/// <param name="FaultsAppended">Fault-buffer entries the kernels appended.</param>
/// <param name="FaultsDropped">Appends lost to a full buffer.</param>
/// <param name="FaultsDuplicate">Fetched entries that repeated a pending one.</param>
/// <param name="FaultsAlreadyServiced">Fetched entries already mapped when their batch came.</param>
/// <param name="FaultsFlushed">Pending entries flushed before a replay.</param>
/// <param name="ServiceEntries">Times the driver was entered to service faults (dmirror's <c>faults</c>).</param>
/// <param name="Batches">Batches serviced.</param>
/// <param name="Runs">Runs serviced (one driver loop each).</param>
/// <param name="PagesServiced">Pages the runs requested.</param>
/// <param name="PagesMapped">Page leaves written into the device page table.</param>
/// <param name="HugeMapped">Huge leaves written into the device page table.</param>
/// <param name="AccessesSystem">Accesses that reached the CPU's frames in place (the kernels' placement bytes).</param>
/// <param name="AccessesDevice">Accesses that reached the device's own memory.</param>
/// <param name="Elapsed">Wall-clock time of the launch (Stopwatch), validation excluded.</param>
public readonly record struct LaunchReport(
    long Items,
    long Passes,
    long Replays,
    long ItemsReplayed,
    long FaultsAppended,
    long FaultsDropped,
    long FaultsDuplicate,
    long FaultsAlreadyServiced,
    long FaultsFlushed,
    long ServiceEntries,
    long Batches,
    long Runs,
    long PagesServiced,
    long PagesMapped,
    long HugeMapped,
    long AccessesSystem,
    long AccessesDevice,
    TimeSpan Elapsed)
{
    /// <summary>The same report without the wall-clock time, for comparing launchers.</summary>
    /// <returns>The report with <see cref="Elapsed"/> zero.</returns>
    public LaunchReport WithoutTime() => this with { Elapsed = TimeSpan.Zero };
}
