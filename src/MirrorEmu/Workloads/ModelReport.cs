using MirrorEmu.Calibration;

namespace MirrorEmu.Workloads;

/// <summary>The cost model a <see cref="CompareReport"/> used: its constants and where they came from.</summary>
public sealed record ModelReport
{
    /// <summary>"defaults" or "calibration".</summary>
    public string Source { get; init; } = CostModel.DefaultsLabel;

    /// <summary>The calibration file, or null for the defaults.</summary>
    public string? File { get; init; }

    /// <summary>Populate: per call and per page, ns.</summary>
    public MechanismCost Populate { get; init; } = new(0, 0);

    /// <summary>First touch: per fault and per page, ns.</summary>
    public MechanismCost FirstTouch { get; init; } = new(0, 0);

    /// <summary>A userfaultfd round trip, ns.</summary>
    public double UffdRoundTripNs { get; init; }

    /// <summary>UFFDIO_COPY per page, ns.</summary>
    public double UffdCopyPerPageNs { get; init; }

    /// <summary>The report of <paramref name="model"/>.</summary>
    /// <param name="model">The model.</param>
    public static ModelReport From(CostModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        const string prefix = "calibration ";
        return new ModelReport
        {
            Source = model.IsDefaults ? CostModel.DefaultsLabel : "calibration",
            File = model.Source.StartsWith(prefix, StringComparison.Ordinal) ? model.Source[prefix.Length..] : null,
            Populate = model.Populate,
            FirstTouch = model.FirstTouch,
            UffdRoundTripNs = model.UffdRoundTripNs,
            UffdCopyPerPageNs = model.UffdCopyPerPageNs,
        };
    }
}
