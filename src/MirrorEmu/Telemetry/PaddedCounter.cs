using System.Runtime.InteropServices;

namespace MirrorEmu.Telemetry;

/// <summary>One 64-bit counter alone on a cache line, so that counters bumped by different threads
/// do not share a line (false sharing: two threads' counters on one line make every increment a cache-line
/// transfer).</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct PaddedCounter
{
    [FieldOffset(0)]
    public long Value;
}
