namespace MirrorEmu.Regression;

/// <summary>What a comparison concluded about one figure.</summary>
public enum Verdict
{
    /// <summary>Within the tolerance (a counter), or not distinguishable from the baseline beyond the threshold and the
    /// noise floor (a timing).</summary>
    Same,

    /// <summary>A counter moved beyond its tolerance: a regression, or an intended change that needs a refreshed
    /// baseline. Fails the run.</summary>
    Regression,

    /// <summary>A timing is slower beyond the threshold and the noise floor. Warns; fails only with --fail-on-time.</summary>
    Slower,

    /// <summary>A timing is faster beyond the threshold and the noise floor.</summary>
    Faster,

    /// <summary>The baseline has the figure and the current run does not (a scenario or benchmark that did not run). Fails
    /// the run: a figure that is not there is not a pass.</summary>
    Missing,

    /// <summary>The figure's benchmark failed in the current run (no time). Fails the run.</summary>
    Failed,

    /// <summary>The current run has a figure the baseline lacks. Reported only.</summary>
    New,
}
