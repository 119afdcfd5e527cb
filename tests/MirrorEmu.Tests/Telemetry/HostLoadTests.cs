using MirrorEmu.Telemetry;

namespace MirrorEmu.Tests;

/// <summary>The host's load: /proc/loadavg parsed, free cores as cores less the 1-minute load, busy below one free core;
/// and the spread of samples (median, p10, p90 by linear interpolation).</summary>
public class HostLoadTests
{
    [Fact]
    public void TheLoadIsParsedAndFreeCoresAreCoresLessTheOneMinuteLoad()
    {
        HostLoad l = HostLoad.Parse("0.52 0.58 0.59 1/123 4567\n", 2);
        Assert.Equal((0.52, 0.58, 0.59), (l.OneMinute, l.FiveMinutes, l.FifteenMinutes));
        Assert.Equal(1.48, l.FreeCores, 9);
        Assert.False(l.IsBusy);
        Assert.Equal("load 0.52 0.58 0.59 on 2 cores (1.5 free)", l.Describe());
        Assert.True(HostLoad.Parse("7.96 7.08 7.33 3/400 99", 2) is { IsBusy: true, FreeCores: 0 });
        Assert.True(HostLoad.Parse("1.20 1 1 1/1 1", 2).IsBusy); // 0.8 free: the monitor and the faulting thread take turns
    }

    [Fact]
    public void AnUnreadableLoadIsUnknownNotBusy()
    {
        HostLoad l = HostLoad.Parse(null, 4);
        Assert.False(l.IsKnown);
        Assert.False(l.IsBusy);
        Assert.Equal(4, l.FreeCores);
        Assert.Equal("load unknown on 4 cores", l.Describe());
    }

    [Fact]
    public void TheCurrentLoadIsReadOnLinux()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "/proc/loadavg is Linux's");
        HostLoad l = HostLoad.Current();
        Assert.True(l.IsKnown);
        Assert.True(l.Cores >= 1);
    }

    [Fact]
    public void TheSpreadInterpolatesBetweenRanks()
    {
        Spread s = Spread.Of([5, 1, 4, 2, 3]);
        Assert.Equal(3, s.Median);
        Assert.Equal(1.4, s.P10, 9);
        Assert.Equal(4.6, s.P90, 9);
        Assert.Equal(new Spread(7, 7, 7), Spread.Of([7]));
        Assert.Equal(2.5, Spread.Of([1, 2, 3, 4]).Median);
        Assert.Throws<ArgumentException>(() => Spread.Of([]));
        Assert.Throws<ArgumentException>(() => Spread.Of([1, double.NaN]));
    }
}
