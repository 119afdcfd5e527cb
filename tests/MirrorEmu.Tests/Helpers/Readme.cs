namespace MirrorEmu.Tests.Helpers;

/// <summary>The repository's README, for tests that check it against the code (its samples, its figures, its links).</summary>
public static class Readme
{
    /// <summary>README.md's text, as it is in the repository.</summary>
    public static string Text => File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));

    /// <summary>Lines trimmed of indentation, empty ones dropped, joined by newlines (the README's blocks are not indented,
    /// the samples in the tests are).</summary>
    /// <param name="text">Text of one or more lines.</param>
    public static string Normalize(string text) =>
        string.Join('\n', text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
}
