using System.Runtime.CompilerServices;

namespace MirrorEmu.Tests.Helpers;

/// <summary>Where the repository's sources are, for tests that check the sources themselves (the lock-order block, the layers).</summary>
public static class RepoPaths
{
    /// <summary>The repository root (this file is tests/MirrorEmu.Tests/Helpers/RepoPaths.cs in it, at compile time).</summary>
    public static string Root => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(ThisFile())!, "..", "..", ".."));

    private static string ThisFile([CallerFilePath] string file = "") => file;
}
