using System.Text.RegularExpressions;

namespace MirrorEmu.Regression;

/// <summary>Name patterns with <c>*</c> (any run of characters) and <c>?</c> (one character), matched whole and ignoring
/// case, as BenchmarkDotNet's <c>--filter</c> and dotnet/performance's ResultsComparer <c>--filter</c> match benchmark
/// names.</summary>
public static class Wildcard
{
    /// <summary>True when <paramref name="name"/> matches <paramref name="pattern"/>.</summary>
    /// <param name="name">A scenario or benchmark name.</param>
    /// <param name="pattern">The pattern.</param>
    public static bool IsMatch(string name, string pattern) =>
        Regex.IsMatch(name, "^" + Regex.Escape(pattern).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal) + "$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
}
