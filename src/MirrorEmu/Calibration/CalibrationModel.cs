namespace MirrorEmu.Calibration;

/// <summary>The fitted constants.</summary>
public sealed record CalibrationModel
{
    /// <summary>Populate: per call and per page.</summary>
    public MechanismCost Populate { get; init; } = new(0, 0);

    /// <summary>First touch: per fault and per page.</summary>
    public MechanismCost FirstTouch { get; init; } = new(0, 0);

    /// <summary>A userfaultfd round trip, without the copy.</summary>
    public double UffdRoundTripNs { get; init; }

    /// <summary>UFFDIO_COPY per page.</summary>
    public double UffdCopyPerPageNs { get; init; }

    /// <summary>What the constants were fitted on, in words.</summary>
    public string FittedOn { get; init; } = string.Empty;
}
