namespace MirrorEmu.Calibration;

/// <summary>What one mechanism costs: a fixed cost per event (a call, a fault, a round trip) and a cost per page it makes
/// present.</summary>
/// <param name="PerEventNs">Nanoseconds per event.</param>
/// <param name="PerPageNs">Nanoseconds per page.</param>
public sealed record MechanismCost(double PerEventNs, double PerPageNs);
