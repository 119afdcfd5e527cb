using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace MirrorEmu.Cli;

/// <summary>Options whose bad values are reported in the CLI's own words ("--pages: '2^40' is not a whole number from 1 to
/// 4194303"), not System.CommandLine's type names.</summary>
internal static class CliOptions
{
    /// <summary>A whole-number option between <paramref name="min"/> and <paramref name="max"/>; accepts a k (×1,024) or
    /// M (×1,048,576) suffix when <paramref name="binarySuffixes"/>, and 0x hexadecimal.</summary>
    /// <param name="name">The option ("--pages").</param>
    /// <param name="description">Its help text.</param>
    /// <param name="defaultValue">The value when it is not given; null for none (help then shows no default, and an
    /// absent option reads as 0: check <see cref="Given"/>).</param>
    /// <param name="min">The smallest value allowed.</param>
    /// <param name="max">The largest value allowed.</param>
    /// <param name="binarySuffixes">Whether 64k and 1M are accepted.</param>
    public static Option<int> Int(string name, string description, int? defaultValue, int min, int max, bool binarySuffixes = false) => new(name)
    {
        Description = description,
        DefaultValueFactory = defaultValue is int d ? _ => d : null,
        CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : string.Empty;
            if (TryParseCount(text, binarySuffixes, out long value) && value >= min && value <= max)
            {
                return (int)value;
            }

            r.AddError($"{name}: '{text}' is not a whole number from {min} to {max}{(binarySuffixes ? " (a k or M suffix counts 1,024 or 1,048,576)" : string.Empty)}");
            return defaultValue ?? 0;
        },
    };

    /// <summary>An option that is one of <paramref name="names"/> (case-insensitive).</summary>
    /// <param name="name">The option.</param>
    /// <param name="description">Its help text.</param>
    /// <param name="defaultValue">The value when it is not given.</param>
    /// <param name="names">The names allowed.</param>
    public static Option<string> OneOf(string name, string description, string defaultValue, params string[] names) => new(name)
    {
        Description = $"{description} One of: {string.Join(", ", names)}.",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : string.Empty;
            string? match = names.FirstOrDefault(n => string.Equals(n, text, StringComparison.OrdinalIgnoreCase));
            if (match is null)
            {
                r.AddError($"{name}: '{text}' is not one of {string.Join(", ", names)}");
                return defaultValue;
            }

            return match;
        },
    };

    /// <summary>Parses a count: decimal, 0x hexadecimal, or with a k/M suffix (binary: 1k = 1,024).</summary>
    /// <param name="text">The text.</param>
    /// <param name="binarySuffixes">Whether k and M are accepted.</param>
    /// <param name="value">The value.</param>
    /// <returns>True when it is one and fits a long.</returns>
    public static bool TryParseCount(string text, bool binarySuffixes, out long value)
    {
        value = 0;
        string t = text.Trim().Replace("_", string.Empty, StringComparison.Ordinal).Replace(",", string.Empty, StringComparison.Ordinal);
        long scale = 1;
        if (binarySuffixes && t.Length > 1)
        {
            char last = t[^1];
            scale = last is 'k' or 'K' ? 1024 : last is 'm' or 'M' ? 1024 * 1024 : 1;
            if (scale != 1)
            {
                t = t[..^1];
            }
        }

        bool ok = t.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? long.TryParse(t[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        if (!ok || value > long.MaxValue / scale)
        {
            return false;
        }

        value *= scale;
        return true;
    }

    /// <summary>True when the user gave <paramref name="option"/> on the command line (not its default).</summary>
    /// <param name="parse">The parse result.</param>
    /// <param name="option">The option.</param>
    public static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is OptionResult { Implicit: false };
}
