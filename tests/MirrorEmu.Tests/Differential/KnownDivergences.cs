using System.Text.RegularExpressions;

namespace MirrorEmu.Tests.Differential;

/// <summary>
/// The divergences the differential test expects, each with its reason: behaviour that changed between
/// kernel versions (the emulator follows 6.18, so an older host differs there), and places where the host
/// kernel itself does not answer. Everything else fails the test: the issue 11 items that were listed here
/// until their fixes landed (the THP read fault last) are gone, so the test fails if one comes back.
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

    /// <summary>Where the host kernel itself does not answer: (signature pattern, why). The emulator answers, the comparison
    /// of that step cannot be made, and the sequence stops there.</summary>
    private static readonly (Regex Pattern, string Why)[] s_hostHangs =
    [
        (new(@"^madvise GUARD_INSTALL: returns timeout after"), "Linux 6.18.44 loops for ever in madvise(MADV_GUARD_INSTALL) over a range that holds userfaultfd write-protect markers (the install walk refuses a non-empty entry and zaps, but a zap keeps uffd-wp markers, so it retries for ever); seen with seed 535 of MIRROREMU_SEED=91, 3,000 sequences"),
    ];

    /// <summary>Why a divergence with <paramref name="signature"/> is expected on a host running <paramref name="kernel"/>, or null.</summary>
    /// <param name="signature">The divergence's signature.</param>
    /// <param name="kernel">The host kernel's release ("6.18.44-…").</param>
    /// <param name="repro">Its minimal reproduction.</param>
    public static string? Explain(string signature, string kernel, IReadOnlyList<DiffOp> repro)
    {
        Version host = Parse(kernel);
        foreach ((string fragment, Version since, string what) in s_versioned)
        {
            if (host < since && signature.Contains(fragment, StringComparison.Ordinal))
            {
                return $"host kernel {kernel} is older than {since}: {what}";
            }
        }

        foreach ((Regex pattern, string why) in s_hostHangs)
        {
            if (pattern.IsMatch(signature))
            {
                return "the host kernel hangs here: " + why;
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
