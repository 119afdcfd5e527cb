namespace MirrorEmu.Calibration;

/// <summary>How many events and pages of each mechanism a run performed: what <see cref="CostModel.ModelNs"/> prices.
/// A run fills these from the counters its code paths incremented.</summary>
/// <param name="PopulateEvents">Batch faults of a regular VMA (a MADV_POPULATE_WRITE call, or one hmm_range_fault run).</param>
/// <param name="PopulatePages">Pages those batch faults made present.</param>
/// <param name="FirstTouchPages">Pages made present by a CPU's own first access (one fault each).</param>
/// <param name="RoundTrips">userfaultfd round trips (fault → monitor → resolution → wake).</param>
/// <param name="CopiedPages">Pages UFFDIO_COPY filled.</param>
public readonly record struct ModelCounts(long PopulateEvents, long PopulatePages, long FirstTouchPages, long RoundTrips, long CopiedPages);
