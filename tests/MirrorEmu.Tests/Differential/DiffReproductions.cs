namespace MirrorEmu.Tests.Differential;

/// <summary>
/// Hand-written sequences, one or more per item of issue 11, so that every cause it lists is checked on
/// every run whatever the random sequences happen to cover. Each ends in the operation the issue names.
/// </summary>
public static class DiffReproductions
{
    private const ulong P = DiffWindow.Page;
    private const ulong Rw = 3;
    private const ulong PrivateAnonFixed = 0x32;
    private const ulong SharedAnonFixed = 0x31;

    /// <summary>Every reproduction (the userfaultfd ones only with <paramref name="withUffd"/>).</summary>
    /// <param name="withUffd">Whether the host offers userfaultfd.</param>
    public static IEnumerable<DiffOp[]> All(bool withUffd)
    {
        // 1. mremap across VMAs: a move spanning two VMAs and a hole, a shrink across a VMA end, same size in place.
        yield return [Map(0, 2), Map(2, 2, 1), Remap(0, 6, 6, 3, F(32))];
        yield return [Map(0, 2), Map(2, 2, 1), Remap(0, 4, 1, 0, 0)];
        yield return [Map(0, 2), Map(2, 2, 1), Remap(0, 4, 4, 0, 0)];

        // 2. mremap with old_size 0: private is -EINVAL; shared makes a second mapping of the same pages; 2^64-1 rounds to 0.
        yield return [Map(0, 2), Remap(0, 0, 2, 1, 0)];
        yield return [Map(0, 2, Rw, SharedAnonFixed), Write(0, 100, 7), Remap(0, 0, 2, 3, F(16)), Read(16, 200)];
        yield return [Map(0, 2, Rw, SharedAnonFixed), new DiffOp(DiffOpKind.Mremap, F(0), ulong.MaxValue, 2 * P, 3, F(16))];

        // 3. Merging after a move, and a later grow in place.
        yield return [Map(0, 2), Remap(0, 2, 2, 3, F(10)), Map(8, 2), Remap(8, 4, 8, 0, 0)];

        // 4. Merging Linux refuses: different anon_vmas, and VM_ACCOUNT.
        yield return [Map(0, 1), Write(0, 10, 1), Map(2, 1), Write(2, 10, 2), Map(1, 1)];
        yield return [Map(0, 1), new DiffOp(DiffOpKind.Mprotect, F(0), P, 1), Map(1, 1, 1)];
        yield return [Map(0, 2), Write(0, 10, 1), new DiffOp(DiffOpKind.Fork), new DiffOp(DiffOpKind.Switch, A: 1), Map(2, 2), Write(2, 10, 3)];

        // 5. MADV_POPULATE_READ without PROT_READ.
        yield return [Map(0, 2, 2), Advise(0, 2, 22)];
        yield return [Map(0, 2, 4), Advise(0, 2, 22)];

        // 6. The end of the user address space (2^47 - 4 KiB).
        yield return [new DiffOp(DiffOpKind.Mmap, DiffWindow.High + (15 * P), P, Rw, PrivateAnonFixed)];
        yield return [new DiffOp(DiffOpKind.Mmap, DiffWindow.High + (14 * P), P, Rw, PrivateAnonFixed)];
        yield return [new DiffOp(DiffOpKind.Munmap, 1UL << 47, P)];
        yield return [Map(0, 1), new DiffOp(DiffOpKind.Mremap, F(0), P, P, 3, 1UL << 47)];

        // 7. mmap arguments: unknown MAP_ and PROT_ bits, MAP_ANONYMOUS with a file, MAP_SHARED_VALIDATE, offset 2^63, an unaligned hint.
        yield return [Map(0, 1, Rw, PrivateAnonFixed | 0x200)];
        yield return [Map(0, 1, Rw | 0x10)];
        yield return [new DiffOp(DiffOpKind.Mmap, F(0), P, Rw, PrivateAnonFixed, 1, 0)];
        yield return [new DiffOp(DiffOpKind.Mmap, F(0), P, Rw, 0x13, 1, 0)];
        yield return [new DiffOp(DiffOpKind.Mmap, F(0), P, Rw, 0x12, 1, 1UL << 63)];
        yield return [new DiffOp(DiffOpKind.Mmap, F(4) + 0x800, P, Rw, 0x22)];

        // 8. The order of argument checks.
        yield return [Map(0, 1), new DiffOp(DiffOpKind.Mprotect, F(0), 0, 0x01000003)];
        yield return [Map(0, 1), new DiffOp(DiffOpKind.Mprotect, F(0), ulong.MaxValue, Rw)];
        yield return [Map(0, 1), new DiffOp(DiffOpKind.Mprotect, F(0), 3 * P, 0x01000003)];
        yield return [Remap(40, 1, 0, 1, 0)];

        // 9. Flags and advice the kernel accepts, with their effects.
        foreach (ulong flag in (ulong[])[0x4000, 0x20000, 0x2000, 0x40, 0x800, 0x1000])
        {
            yield return [Map(0, 2, Rw, PrivateAnonFixed | flag), Write(0, 10, 1)];
        }

        yield return [Map(0, 1, Rw | 8)];
        yield return [Map(0, 2), Write(0, 100, 1), Remap(0, 2, 2, 7, F(16)), Read(0, 100), Read(16, 100)];
        foreach (ulong advice in (ulong[])[0, 1, 2, 3, 10, 11, 16, 17, 18, 19, 20, 21, 24])
        {
            yield return [Map(0, 2), Write(0, 100, 1), Advise(0, 2, advice)];
        }

        yield return [Map(0, 2), Write(0, 100, 1), Advise(0, 2, 8), Read(0, 100)];
        yield return [Map(0, 2, Rw, SharedAnonFixed), Write(0, 100, 1), Advise(0, 1, 9), Read(0, 100)];
        yield return [Map(0, 2), Write(0, 100, 1), Advise(0, 1, 18), new DiffOp(DiffOpKind.Fork), new DiffOp(DiffOpKind.Switch, A: 1), Read(0, 100)];
        yield return [Map(0, 2), Write(0, 100, 1), Advise(0, 1, 10), new DiffOp(DiffOpKind.Fork), new DiffOp(DiffOpKind.Switch, A: 1), Read(0, 100)];
        yield return [Map(0, 4), Write(0, 100, 1), Advise(1, 1, 102), Read(1, 10), Write(0, 5000, 2), Advise(0, 4, 4), Read(1, 10), Advise(1, 1, 103), Read(1, 10)];
        yield return [new DiffOp(DiffOpKind.Mmap, F(0), 8 * P, Rw, 0x11, 2, 0), Write(0, 100, 1), new DiffOp(DiffOpKind.Ftruncate, A: 2, B: (2 * P) + 100), Read(2, 10), Read(3, 10)];
        yield return [new DiffOp(DiffOpKind.Mmap, F(0), 4 * P, Rw, 0x11, 1, 0), Write(0, 100, 1), new DiffOp(DiffOpKind.Msync, F(0), 4 * P, 4), new DiffOp(DiffOpKind.Mincore, F(0), 4 * P)];
        yield return [Map(0, 4), Write(0, 100, 1), new DiffOp(DiffOpKind.Mincore, F(0), 4 * P), new DiffOp(DiffOpKind.Mlock, F(0), 2 * P), new DiffOp(DiffOpKind.Mincore, F(0), 4 * P), new DiffOp(DiffOpKind.Munlock, F(0), P)];

        // 11. mprotect and madvise over a hole; THP read faults.
        yield return [Map(0, 1), new DiffOp(DiffOpKind.Mprotect, F(0), 2 * P, 1)];
        yield return [Map(0, 1), Map(2, 1), Advise(0, 3, 14)];
        yield return [Map(0, 1, 0), Map(2, 1), Advise(0, 3, 22)];
        yield return [new DiffOp(DiffOpKind.Mmap, DiffWindow.Base, 2UL << 20, Rw, PrivateAnonFixed), new DiffOp(DiffOpKind.Madvise, DiffWindow.Base, 2UL << 20, 14), new DiffOp(DiffOpKind.Read, DiffWindow.Base, 8)];

        // The huge zero page and MADV_PAGEOUT (a host without swap: huge pages split, zero-filled parts map the zero page,
        // page-cache pages mapped once are unmapped).
        yield return [W(0, 2UL << 20, Rw, PrivateAnonFixed), W(0, 2UL << 20, 14, kind: DiffOpKind.Madvise), W(0, 8, kind: DiffOpKind.Read), W(0x5000, 100, 3, kind: DiffOpKind.Write), W(0x7000, 8, kind: DiffOpKind.Read)];
        yield return [W(0, 2UL << 20, Rw, PrivateAnonFixed), W(0, 2UL << 20, 14, kind: DiffOpKind.Madvise), W(0x3000, 100, 3, kind: DiffOpKind.Write), W(0x9000, P, 21, kind: DiffOpKind.Madvise), W(0x9000, 8, kind: DiffOpKind.Read), W(0x9000, 8, 4, kind: DiffOpKind.Write)];
        yield return [new DiffOp(DiffOpKind.Mmap, F(0), 4 * P, Rw, 0x11, 1, 0), Read(0, 10), Write(1, 10, 2), Advise(0, 4, 21), new DiffOp(DiffOpKind.Mincore, F(0), 4 * P), Read(0, 10), Read(1, 10)];

        // mremap: a MREMAP_FIXED destination that covers the old address (old_size 2^64 - 4 KiB) is -EFAULT before the shrink.
        yield return [Map(0, 8, 0), new DiffOp(DiffOpKind.Mremap, F(2), ulong.MaxValue - P + 1, 5 * P, 3, F(1))];

        if (!withUffd)
        {
            yield break;
        }

        // 10. userfaultfd details.
        yield return [Map(0, 2), Uffd(0x1), Register(0, 2, 2), new DiffOp(DiffOpKind.UffdWriteProtect, F(0), 2 * P, 0, 3)];
        yield return [Map(0, 2), Uffd(0), Register(0, 2, 1)];
        yield return [Map(0, 1), Map(1, 1, 7), Uffd(0), Register(0, 2, 1), new DiffOp(DiffOpKind.UffdCopy, F(0), 2 * P, 0, 0, 5)];

        // 11. A partial UFFDIO_COPY.
        yield return [Map(0, 2), Uffd(0), Register(0, 2, 1), new DiffOp(DiffOpKind.UffdCopy, F(1), P, 0, 0, 4), new DiffOp(DiffOpKind.UffdCopy, F(0), 2 * P, 0, 0, 5)];

        // Found by the seeded sequences (each names the sequence that showed it first).
        // 12345+1011: a failed UFFDIO_MOVE prepares no anon_vma for its source, which then merges after MREMAP_DONTUNMAP.
        yield return [W(-0x17000, 2UL << 20, Rw, PrivateAnonFixed), Uffd(0x10445), new DiffOp(DiffOpKind.UffdMove, W0(-0x1a000), 2 * P, 0, 1, W0(-0x1000)), W(0x9000, 5 * P, kind: DiffOpKind.Munmap), new DiffOp(DiffOpKind.Mremap, W0(0x1d000), 4 * P, 4 * P, 7, W0(0x6000))];

        // 31337+720: a move that shrinks a registered range sends REMAP, then the tail's UNMAP, then the source's.
        yield return [W(-0x10000, 2UL << 20, 7, PrivateAnonFixed), Uffd(0x244c), new DiffOp(DiffOpKind.UffdRegister, W0(0x6000), 9 * P, 0, 1), new DiffOp(DiffOpKind.Mremap, W0(0x9000), 22 * P, 5 * P, 3, W0(-0x1f000))];

        // 7777+2673: UFFDIO_COPY beyond the end of a private file mapping's file is -EFAULT.
        yield return [new DiffOp(DiffOpKind.Mmap, W0(-0x18000), 2UL << 20, 1, 0x12, 2, P), Uffd(0x2041), new DiffOp(DiffOpKind.UffdRegister, W0(-0x2000), 8 * P, 0, 1), new DiffOp(DiffOpKind.UffdCopy, W0(-0x2000), 2 * P, 0, 0, 5)];

        // 100000+1116: UFFDIO_WRITEPROTECT protects the WP-registered VMA before the one it stops at with -ENOENT.
        yield return [Uffd(0x460), W(-0x13000, 8 * P, Rw, PrivateAnonFixed), W(-0x12000, 6 * P, 23, kind: DiffOpKind.Madvise), new DiffOp(DiffOpKind.UffdRegister, W0(-0x14000), 4 * P, 0, 3), new DiffOp(DiffOpKind.UffdWriteProtect, W0(-0x12000), 7 * P, 0, 1)];

        // 600000+1036 and 800000+14: UFFDIO_CONTINUE needs shmem, not MINOR registration.
        yield return [W(-0x19000, 11 * P, 7, SharedAnonFixed), Uffd(0x8), new DiffOp(DiffOpKind.UffdRegister, W0(-0x1b000), 6 * P, 0, 3), new DiffOp(DiffOpKind.UffdContinue, W0(-0x18000), 2 * P, 0, 0)];
        yield return [Uffd(0x10065), new DiffOp(DiffOpKind.Mmap, W0(0x17000), 6 * P, 1, 0x12, 1, 6 * P), new DiffOp(DiffOpKind.UffdRegister, W0(-0x5000), 2UL << 20, 0, 1), new DiffOp(DiffOpKind.UffdContinue, W0(0x17000), 3 * P, 0, 0)];

        // 500000+1322: UFFDIO_CONTINUE beyond the file's end is -EINVAL (shmem_get_folio), not -EFAULT.
        yield return [new DiffOp(DiffOpKind.Mmap, W0(0), 24 * P, 4, 0x11, 1, 7 * P), Uffd(0x10003), new DiffOp(DiffOpKind.UffdRegister, W0(0x12000), 5 * P, 0, 1), new DiffOp(DiffOpKind.UffdContinue, W0(0x14000), P, 0, 0)];

        // 800000+2154: a second context of the process may fill a VMA the first one registered.
        yield return [W(-0x14000, 15 * P, Rw, SharedAnonFixed), Uffd(0x1200e), new DiffOp(DiffOpKind.UffdRegister, W0(-0x14000), 5 * P, 0, 1), Uffd(0x2407), new DiffOp(DiffOpKind.UffdCopy, W0(-0x13000), 3 * P, 1, 0, 5)];

        // Faults answered by the monitor, and the events.
        yield return [Map(0, 4), Uffd(0x4 | 0x8 | 0x40), Register(0, 4, 1), Read(0, 10), Write(1, 10, 3), Advise(0, 2, 4), Remap(0, 4, 4, 3, F(16)), new DiffOp(DiffOpKind.Munmap, F(16), 4 * P)];
        yield return [Map(0, 4), Uffd(0x2), Register(0, 4, 1), Write(0, 10, 3), new DiffOp(DiffOpKind.Fork), new DiffOp(DiffOpKind.Switch, A: 1), Read(1, 10)];
    }

    private static ulong F(int page) => DiffWindow.Focus + ((ulong)page * P);

    /// <summary>An address relative to the middle of the window (its 2 MiB boundary), as the seeded sequences' reproductions print it (W+0x200000).</summary>
    private static ulong W0(long offset) => (ulong)((long)DiffWindow.Base + (2L << 20) + offset);

    /// <summary>An operation at <see cref="W0"/>(<paramref name="offset"/>): mmap by default.</summary>
    private static DiffOp W(long offset, ulong len, ulong a = 0, ulong b = 0, DiffOpKind kind = DiffOpKind.Mmap) => new(kind, W0(offset), len, a, b);

    private static DiffOp Map(int page, int pages, ulong prot = Rw, ulong flags = PrivateAnonFixed) => new(DiffOpKind.Mmap, F(page), (ulong)pages * P, prot, flags);

    private static DiffOp Remap(int page, int oldPages, int newPages, ulong flags, ulong to) => new(DiffOpKind.Mremap, F(page), (ulong)oldPages * P, (ulong)newPages * P, flags, to);

    private static DiffOp Write(int page, int bytes, ulong seed) => new(DiffOpKind.Write, F(page), (ulong)bytes, seed);

    private static DiffOp Read(int page, int bytes) => new(DiffOpKind.Read, F(page), (ulong)bytes);

    private static DiffOp Advise(int page, int pages, ulong advice) => new(DiffOpKind.Madvise, F(page), (ulong)pages * P, advice);

    private static DiffOp Uffd(ulong features) => new(DiffOpKind.UffdOpen, A: features);

    private static DiffOp Register(int page, int pages, ulong mode) => new(DiffOpKind.UffdRegister, F(page), (ulong)pages * P, 0, mode);
}
