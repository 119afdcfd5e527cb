namespace MirrorEmu.Tests.Differential;

/// <summary>
/// The divergences the differential test expects, each with its reason: behaviour that changed between
/// kernel versions (the emulator follows 6.18, so an older host differs there), and behaviour that the
/// README lists as a deliberate difference or that waits for a change outside this area. Everything
/// else fails the test.
/// </summary>
public static class KnownDivergences
{
    /// <summary>Behaviour that arrived in a later kernel than some hosts run: (signature fragment, first kernel with the 6.18 behaviour, what changed).</summary>
    private static readonly (string Fragment, Version Since, string What)[] s_versioned =
    [
        ("mremap", new Version(6, 17), "mremap moves ranges that span several VMAs since 6.17"),
        ("madvise GUARD_", new Version(6, 13), "MADV_GUARD_INSTALL/REMOVE arrived in 6.13"),
        ("guard", new Version(6, 14), "/proc/pid/pagemap reports guard regions since 6.14"),
        ("UFFDIO_MOVE", new Version(6, 8), "UFFDIO_MOVE arrived in 6.8"),
        ("uffdmove", new Version(6, 8), "UFFDIO_MOVE arrived in 6.8"),
    ];

    /// <summary>Divergences that stay on purpose, or until a change elsewhere: (signature fragment, reason).</summary>
    private static readonly (string Fragment, string Why)[] s_listed = [];

    /// <summary>Why a divergence with <paramref name="signature"/> is expected on a host running <paramref name="kernel"/>, or null.</summary>
    /// <param name="signature">The divergence's signature.</param>
    /// <param name="kernel">The host kernel's release ("6.18.44-…").</param>
    public static string? Explain(string signature, string kernel)
    {
        Version host = Parse(kernel);
        foreach ((string fragment, Version since, string what) in s_versioned)
        {
            if (host < since && signature.Contains(fragment, StringComparison.Ordinal))
            {
                return $"host kernel {kernel} is older than {since}: {what}";
            }
        }

        foreach ((string fragment, string why) in s_listed)
        {
            if (signature.Contains(fragment, StringComparison.Ordinal))
            {
                return why;
            }
        }

        return null;
    }

    /// <summary>The major.minor of a kernel release string (0.0 if it cannot be read).</summary>
    /// <param name="kernel">The release.</param>
    public static Version Parse(string kernel)
    {
        string[] parts = kernel.Split('.', '-');
        return parts.Length >= 2 && int.TryParse(parts[0], out int major) && int.TryParse(parts[1], out int minor) ? new Version(major, minor) : new Version(0, 0);
    }
}
