using System.Text.RegularExpressions;

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

    /// <summary>Divergences that wait for a change outside the Mm VMA code (the fault path and userfaultfd, rewritten
    /// concurrently): (signature pattern, issue 11 item and where the fix goes). Each entry goes when its fix lands.</summary>
    private static readonly (Regex Pattern, string Why)[] s_listed =
    [
        (new(@"^read: VMAs: flags \[hg\] vs \[hg thp="), "item 11 (THP read fault): Linux maps the huge zero page (use_zero_page=1); Mm/FaultHandler.cs DoHugeAnonymousPage allocates a huge page"),
        (new(@"returns SIGSEGV at @ on the kernel, SIGBUS at @"), "item 9 (guard regions): a guard marker must fault with SIGSEGV; Mm/FaultHandler.cs DoSwapPage answers SIGBUS for SwapType.Guard"),
        (new(@"^uffdregister: ioctls differs"), "item 10: REGISTER reports WRITEPROTECT only for MODE_WP and CONTINUE only for MODE_MINOR (Uffd/Userfaultfd.cs Register)"),
        (new(@"^uffdwriteprotect: returns -EINVAL on the kernel"), "item 10: UFFDIO_WRITEPROTECT rejects MODE_WP|MODE_DONTWAKE and unknown mode bits (Uffd/Userfaultfd.Resolve.cs WriteProtect)"),
        (new(@"^uffdregister: returns # on the kernel, -EINVAL on the emulator"), "item 10: MINOR registration on shmem needs no UFFD_FEATURE_MINOR_SHMEM at REGISTER (Uffd/Userfaultfd.cs CannotRegister)"),
        (new(@"^uffdcopy: returns -EAGAIN on the kernel, -EEXIST on the emulator"), "item 11: a partial UFFDIO_COPY returns -EAGAIN with the bytes copied in the count, -EEXIST only when nothing was (Uffd/Userfaultfd.Resolve.cs Fill)"),
        (new(@"^uffd(copy|zeropage|continue): (returns -ENOENT on the kernel|copy differs|zeropage differs|mapped differs)"), "item 10: a UFFDIO_COPY/ZEROPAGE/CONTINUE whose destination does not lie in one registered VMA is -ENOENT before any other check and fills nothing (mfill_atomic; Uffd/Userfaultfd.Resolve.cs Fill)"),
        (new(@"^uffdwriteprotect: pages: uffd-wp bit \(set on the kernel\)"), "item 10: UFFDIO_WRITEPROTECT puts markers on the empty pages of file and shmem mappings too, not only anonymous ones (Uffd/Userfaultfd.Resolve.cs Reprotect)"),
        (new(@"^uffdwriteprotect: returns # on the kernel, -ENOENT on the emulator"), "item 10: UFFDIO_WRITEPROTECT skips holes in its range (mwriteprotect_range walks the VMAs; Uffd/Userfaultfd.Resolve.cs WriteProtect)"),
        (new(@"^uffdmove: returns -EINVAL on the kernel, -ENOENT on the emulator"), "item 10: UFFDIO_MOVE makes its checks in another order than the kernel's move_pages (Uffd/Userfaultfd.Resolve.cs Move)"),
        (new(@"^uffd\w+: returns -EINVAL on the kernel, (#|-ENOENT) on the emulator"), "item 6 in Uffd: validate_range ends at TASK_SIZE (2^47 - 4 KiB), not 2^48 (Uffd/Userfaultfd.cs CheckRange)"),
    ];

    /// <summary>Why a divergence with <paramref name="signature"/> is expected on a host running <paramref name="kernel"/>, or null.</summary>
    /// <param name="signature">The divergence's signature.</param>
    /// <param name="kernel">The host kernel's release ("6.18.44-…").</param>
    /// <param name="repro">Its minimal reproduction.</param>
    public static string? Explain(string signature, string kernel, IReadOnlyList<DiffOp> repro)
    {
        // A resolution ioctl gives an unregistered private VMA an anon_vma (find_vma_and_prepare_anon) before it fails,
        // which changes later merges; the emulator's Uffd layer does not yet tell Mm (AddressSpace.AnonVmaPrepare).
        if (signature.Contains(": VMAs: layout", StringComparison.Ordinal)
            && repro.Any(op => op.Kind is DiffOpKind.UffdCopy or DiffOpKind.UffdZeroPage or DiffOpKind.UffdMove or DiffOpKind.UffdContinue))
        {
            return "left for the fault-path/userfaultfd change: item 10: UFFDIO_COPY/ZEROPAGE/MOVE/CONTINUE must call AddressSpace.AnonVmaPrepare "
                + "on the destination before checking registration (Uffd/Userfaultfd.Resolve.cs Fill, Move)";
        }

        Version host = Parse(kernel);
        foreach ((string fragment, Version since, string what) in s_versioned)
        {
            if (host < since && signature.Contains(fragment, StringComparison.Ordinal))
            {
                return $"host kernel {kernel} is older than {since}: {what}";
            }
        }

        foreach ((Regex pattern, string why) in s_listed)
        {
            if (pattern.IsMatch(signature))
            {
                return "left for the fault-path/userfaultfd change: " + why;
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
