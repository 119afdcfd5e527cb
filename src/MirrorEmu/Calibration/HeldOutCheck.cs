namespace MirrorEmu.Calibration;

/// <summary>A held-out measurement beside the model's prediction of it.</summary>
/// <param name="PagesPerEvent">Pages per userfaultfd round trip.</param>
/// <param name="MeasuredNsPerPage">The median measured.</param>
/// <param name="PredictedNsPerPage">The model's figure.</param>
/// <param name="ErrorPercent">(predicted − measured) / measured, in percent.</param>
/// <param name="WithinGoal">|error| ≤ <see cref="CalibrationReport.GoalPercent"/>.</param>
public sealed record HeldOutCheck(int PagesPerEvent, double MeasuredNsPerPage, double PredictedNsPerPage, double ErrorPercent, bool WithinGoal);
