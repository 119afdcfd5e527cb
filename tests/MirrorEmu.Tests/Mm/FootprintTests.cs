using MirrorEmu.Mm;
using MirrorEmu.Workloads;

namespace MirrorEmu.Tests.Mm;

/// <summary>Bookkeeping per touched page stays within the 16-byte budget (issue 1/7), counted, not timed.</summary>
public class FootprintTests
{
    [Fact]
    public void BookkeepingStaysAtMostSixteenBytesPerTouchedPage()
    {
        // 64 clusters of 2 MiB spread over a 1 GiB mapping (the CLI runs the 64 GiB / 1,048,576-page case).
        FootprintReport r = FootprintProbe.Measure(1UL << 30, 64 * PageGeometry.LevelEntries, TestContext.Current.CancellationToken);
        Assert.Equal(64L * PageGeometry.LevelEntries, r.TouchedPages);
        Assert.True(r.BytesPerTouchedPage <= 16, $"bookkeeping is {r.BytesPerTouchedPage:F2} bytes per touched page");
    }

    [Fact]
    public void BadSizesAreRejectedNamingTheValue()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => FootprintProbe.Measure(1UL << 30, 100, TestContext.Current.CancellationToken));
        Assert.Contains("100", e.Message);
    }
}
