using System.Globalization;

namespace MirrorEmu.Tests.Helpers;

/// <summary>Environment variables that make a random or timed test run longer or shorter (MIRROREMU_STRESS_SECONDS,
/// MIRROREMU_DIFF_SEQUENCES, ...); the test's own figure when one is unset or not a number.</summary>
public static class TestKnobs
{
    /// <summary>A whole number above zero from <paramref name="variable"/>, else <paramref name="fallback"/>.</summary>
    /// <param name="variable">The environment variable.</param>
    /// <param name="fallback">The test's own count.</param>
    public static int Count(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), out int n) && n > 0 ? n : fallback;

    /// <summary>Seconds from <paramref name="variable"/> (a number as C# writes it, 0.5 say), else <paramref name="fallback"/>.</summary>
    /// <param name="variable">The environment variable.</param>
    /// <param name="fallback">The test's own duration.</param>
    public static double Seconds(string variable, double fallback) =>
        double.TryParse(Environment.GetEnvironmentVariable(variable), CultureInfo.InvariantCulture, out double s) ? s : fallback;
}
