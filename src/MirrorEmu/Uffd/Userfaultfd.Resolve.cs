using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Uffd;

/// <summary>UFFDIO_WRITEPROTECT_MODE_* bits, with the kernel's values.</summary>
[Flags]
public enum UffdWriteProtectMode : ulong
{
    /// <summary>Allow writes again and wake the range's waiters.</summary>
    None = 0,
    /// <summary>UFFDIO_WRITEPROTECT_MODE_WP: protect (without it: un-protect).</summary>
    WriteProtect = 1,
    /// <summary>UFFDIO_WRITEPROTECT_MODE_DONTWAKE: un-protect without waking (invalid together with WP).</summary>
    DontWake = 2,
}

/// <summary>
/// The resolution ioctls (fs/userfaultfd.c userfaultfd_copy, _zeropage, _continue, _poison,
/// _writeprotect, _wake, _move): argument checks, the layout-change check, the call into the page-table
/// side (<see cref="AddressSpace"/>'s mm/userfaultfd.c operations), the counters, and the wake.
/// </summary>
public sealed partial class Userfaultfd
{
    /// <summary>
    /// UFFDIO_COPY: fills the missing pages of [dst, dst + src.Length), which must lie in one VMA registered
    /// with this context, with <paramref name="src"/>'s bytes, then wakes the waiters of what was filled
    /// (unless DONTWAKE).
    /// </summary>
    /// <param name="dst">Page-aligned destination.</param>
    /// <param name="src">The bytes, a whole number of pages.</param>
    /// <param name="mode">DONTWAKE and/or WP (map the pages userfaultfd-write-protected; needs WP registration).</param>
    /// <param name="copied">Bytes filled (uffdio_copy.copy when positive), also when the call stops early.</param>
    /// <returns>0; -EAGAIN when only part was filled (<paramref name="copied"/> says how much: a page on the way was
    /// already mapped, or frames ran out) or when the layout is changing (read the pending events first); when nothing
    /// was filled: -EEXIST (the first page is mapped), -ENOENT (not inside one VMA registered with userfaultfd, by this context or another of the same address space), -ENOMEM,
    /// -EINVAL (alignment, mode), -EBADF (released).</returns>
    public KResult Copy(ulong dst, ReadOnlySpan<byte> src, UffdCopyMode mode, out ulong copied) =>
        Fill(MfillKind.Copy, "UFFDIO_COPY", dst, (ulong)src.Length, src, mode, UffdCopyMode.DontWake | UffdCopyMode.WriteProtect, UffdStat.PagesCopied, out copied);

    /// <summary>UFFDIO_ZEROPAGE: maps the zero page (shmem: a zeroed page-cache page) over the missing pages of [dst, dst + length).</summary>
    /// <param name="dst">Page-aligned destination.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="mode">DONTWAKE only.</param>
    /// <param name="zeroed">Bytes mapped.</param>
    /// <returns>As <see cref="Copy"/>.</returns>
    public KResult ZeroPage(ulong dst, ulong length, UffdCopyMode mode, out ulong zeroed) =>
        Fill(MfillKind.ZeroPage, "UFFDIO_ZEROPAGE", dst, length, default, mode, UffdCopyMode.DontWake, UffdStat.PagesZeroed, out zeroed);

    /// <summary>UFFDIO_CONTINUE: maps the page-cache pages of a registered shmem range (MINOR registration is what makes minor
    /// faults reach the monitor; the call itself, as in Linux 6.18, works in any registration mode).</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="mode">DONTWAKE and/or WP.</param>
    /// <param name="mapped">Bytes mapped.</param>
    /// <returns>0; -EFAULT (a page not in the page cache); -EINVAL (not shmem); otherwise as <see cref="Copy"/>.</returns>
    public KResult Continue(ulong start, ulong length, UffdCopyMode mode, out ulong mapped) =>
        Fill(MfillKind.Continue, "UFFDIO_CONTINUE", start, length, default, mode, UffdCopyMode.DontWake | UffdCopyMode.WriteProtect, UffdStat.PagesContinued, out mapped);

    /// <summary>UFFDIO_POISON: marks the missing pages of [start, start + length) poisoned, so an access to them
    /// answers VM_FAULT_HWPOISON (SIGBUS) as if the memory had failed (a monitor's answer for a page it lost).</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="mode">DONTWAKE only.</param>
    /// <param name="updated">Bytes marked.</param>
    /// <returns>As <see cref="Copy"/>.</returns>
    public KResult Poison(ulong start, ulong length, UffdCopyMode mode, out ulong updated) =>
        Fill(MfillKind.Poison, "UFFDIO_POISON", start, length, default, mode, UffdCopyMode.DontWake, UffdStat.PagesPoisoned, out updated);

    private KResult Fill(MfillKind kind, string call, ulong dst, ulong length, ReadOnlySpan<byte> src, UffdCopyMode mode, UffdCopyMode allowed, UffdStat counter, out ulong done)
    {
        done = 0;
        if (Volatile.Read(ref _mmapChanging) != 0)
        {
            Stats.Increment(UffdStat.ResolveEagain);
            return KResult.Error(Errno.EAGAIN, s_layoutChanging);
        }

        KResult check = CheckUsable(call, dst, length);
        if (!check.IsOk)
        {
            return check;
        }

        if ((mode & ~allowed) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"{call}: mode=0x{(ulong)mode:X} has bits other than 0x{(ulong)allowed:X}");
        }

        Stats.Increment(UffdStat.ResolveCalls);
        int rc = _mm.MfillAtomic(kind, dst, length, src, (mode & UffdCopyMode.WriteProtect) != 0, out done);
        Stats.Add(counter, (long)(done >> PageGeometry.PageShift));
        if (rc == -Errno.EEXIST)
        {
            Stats.Increment(UffdStat.ResolveEexist);
        }

        return Finish(call, dst, length, done, rc, (mode & UffdCopyMode.DontWake) == 0);
    }

    /// <summary>
    /// The end of every resolution ioctl (userfaultfd_copy and its siblings): wake the waiters of what was done unless
    /// DONTWAKE; then 0 when all of it was done, -EAGAIN with the count when only part was (the kernel's
    /// <c>range.len == len ? 0 : -EAGAIN</c>), or the error when nothing was.
    /// </summary>
    private KResult Finish(string call, ulong dst, ulong length, ulong done, int rc, bool wake)
    {
        if (done > 0 && wake)
        {
            WakeRange(dst, dst + done, UffdWaitOutcome.Resolved);
        }

        if (done == length)
        {
            return KResult.Ok;
        }

        return done > 0
            ? KResult.Error(Errno.EAGAIN, $"{call}: did 0x{done:X} of 0x{length:X} bytes at 0x{dst:X16}, then {Errno.Name(rc)} at 0x{dst + done:X16}")
            : KResult.Error(-rc, $"{call}: [0x{dst:X16}, +0x{length:X}): {Describe(rc)}");
    }

    private static string Describe(int rc) => rc switch
    {
        -Errno.EEXIST => "the first page is already mapped",
        -Errno.ENOENT => "not inside one VMA registered with userfaultfd (UFFDIO_MOVE: no VMA there, or a source hole)",
        -Errno.EINVAL => "the VMA is not registered for this (WP needs WP mode; CONTINUE needs shmem; UFFDIO_MOVE needs two compatible private anonymous VMAs and dst registered here)",
        -Errno.ENOMEM => "out of frames",
        -Errno.EFAULT => "beyond the end of the file, or not in the page cache",
        -Errno.EBUSY => "a source page is shared, huge or not present (UFFDIO_MOVE)",
        _ => Errno.Name(rc),
    };

    private static readonly string s_layoutChanging = "a non-cooperative event (fork, mremap, munmap, MADV_DONTNEED) is pending: read it first";

    /// <summary>
    /// UFFDIO_WRITEPROTECT: write-protects (MODE_WP) or un-protects the pages of a WP-registered range. With
    /// UFFD_FEATURE_WP_UNPOPULATED, protecting an empty anonymous page installs a marker so its first write
    /// faults too. Un-protecting wakes the range's waiters unless DONTWAKE.
    /// </summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="mode">WP to protect; none to un-protect and wake; DONTWAKE to un-protect without waking.</param>
    /// <returns>0; -EINVAL (unaligned, unknown mode bits, or WP together with DONTWAKE); -ENOENT (not WP-registered with
    /// this context); -EAGAIN (layout changing).</returns>
    public KResult WriteProtect(ulong start, ulong length, UffdWriteProtectMode mode)
    {
        KResult check = CheckUsable("UFFDIO_WRITEPROTECT", start, length);
        if (!check.IsOk)
        {
            return check;
        }

        if ((mode & ~(UffdWriteProtectMode.WriteProtect | UffdWriteProtectMode.DontWake)) != 0
            || mode == (UffdWriteProtectMode.WriteProtect | UffdWriteProtectMode.DontWake))
        {
            return KResult.Error(Errno.EINVAL, $"UFFDIO_WRITEPROTECT: mode=0x{(ulong)mode:X} is not WP, DONTWAKE or neither");
        }

        if (Volatile.Read(ref _mmapChanging) != 0)
        {
            Stats.Increment(UffdStat.ResolveEagain);
            return KResult.Error(Errno.EAGAIN, s_layoutChanging);
        }

        bool protect = (mode & UffdWriteProtectMode.WriteProtect) != 0;
        int rc = _mm.MwriteprotectRange(this, start, start + length, protect, (_features & UffdFeatures.WpUnpopulated) != 0);
        if (rc != 0)
        {
            return KResult.Error(-rc, $"UFFDIO_WRITEPROTECT: [0x{start:X16}, +0x{length:X}) is not registered in WP mode with this userfaultfd");
        }

        if (!protect && (mode & UffdWriteProtectMode.DontWake) == 0)
        {
            WakeRange(start, start + length, UffdWaitOutcome.Resolved);
        }

        return KResult.Ok;
    }

    /// <summary>UFFDIO_WAKE: wakes the waiters whose fault address lies in [start, start + length).</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <returns>0, -EINVAL or -EBADF.</returns>
    public KResult Wake(ulong start, ulong length)
    {
        KResult check = CheckUsable("UFFDIO_WAKE", start, length);
        if (!check.IsOk)
        {
            return check;
        }

        WakeRange(start, start + length, UffdWaitOutcome.Resolved);
        return KResult.Ok;
    }

    /// <summary>
    /// UFFDIO_MOVE: moves the pages of [src, src + length) to the missing pages of [dst, dst + length)
    /// without copying (both private anonymous; dst registered with this context), raising CLEAR over the source.
    /// </summary>
    /// <param name="dst">Page-aligned destination.</param>
    /// <param name="src">Page-aligned source.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="mode">DONTWAKE and/or ALLOW_SRC_HOLES.</param>
    /// <param name="moved">Bytes handled (uffdio_move.move when positive).</param>
    /// <returns>0; -EAGAIN (only part was moved, or the layout is changing); when nothing moved: -ENOENT (no VMA at dst
    /// or src, or a source hole without ALLOW_SRC_HOLES), -EINVAL (alignment, mode, a range beyond its VMA, VMAs that
    /// differ in access or mlock, a read-only or shared or special source, dst not registered with this context),
    /// -EEXIST (a destination page exists), -EBUSY (a source page is shared, huge or not present). As on Linux 6.18,
    /// UFFDIO_MOVE does not need UFFD_FEATURE_MOVE to have been asked for (the feature only says it is offered).</returns>
    public KResult Move(ulong dst, ulong src, ulong length, UffdMoveMode mode, out ulong moved)
    {
        moved = 0;
        if (Volatile.Read(ref _mmapChanging) != 0)
        {
            Stats.Increment(UffdStat.ResolveEagain);
            return KResult.Error(Errno.EAGAIN, s_layoutChanging);
        }

        KResult check = CheckUsable("UFFDIO_MOVE", dst, length);
        if (!check.IsOk)
        {
            return check;
        }

        check = CheckRange("UFFDIO_MOVE", src, length);
        if (!check.IsOk)
        {
            return check;
        }

        if ((mode & ~(UffdMoveMode.DontWake | UffdMoveMode.AllowSrcHoles)) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"UFFDIO_MOVE: mode=0x{(ulong)mode:X} has unknown bits");
        }

        Stats.Increment(UffdStat.ResolveCalls);
        int rc = _mm.MovePages(this, dst, src, length, (mode & UffdMoveMode.AllowSrcHoles) != 0, out moved, out long pages);
        Stats.Add(UffdStat.PagesMoved, pages);
        return Finish("UFFDIO_MOVE", dst, length, moved, rc, (mode & UffdMoveMode.DontWake) == 0);
    }
}
