using MirrorEmu.Telemetry;

namespace MirrorEmu.Calibration;

/// <summary>One measurement of the kernel.</summary>
/// <param name="Mechanism">"populate" (MADV_POPULATE_WRITE), "firstTouch" (a CPU write per fresh page) or "userfaultfd"
/// (MADV_POPULATE_WRITE of a registered range, a monitor thread answering with UFFDIO_COPY).</param>
/// <param name="PagesPerEvent">Pages per populate call, or per userfaultfd round trip; 1 for first touch.</param>
/// <param name="NsPerPage">Nanoseconds per page: median, p10 and p90 over the rounds.</param>
/// <param name="Samples">Rounds measured.</param>
public sealed record CalibrationMeasurement(string Mechanism, int PagesPerEvent, Spread NsPerPage, int Samples);
