namespace MirrorEmu.Tests.Helpers;

/// <summary>Seeds for random tests: fixed by default, overridable with MIRROREMU_SEED, always printed.</summary>
public static class TestSeeds
{
    /// <summary>The seed for this run: MIRROREMU_SEED if set, else <paramref name="fallback"/>. Printed to the test output.</summary>
    public static int Get(int fallback = 12345)
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("MIRROREMU_SEED"), out int s) ? s : fallback;
        TestContext.Current.TestOutputHelper?.WriteLine($"seed={seed} (set MIRROREMU_SEED to change)");
        return seed;
    }
}
