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

        // Faults answered by the monitor, and the events.
        yield return [Map(0, 4), Uffd(0x4 | 0x8 | 0x40), Register(0, 4, 1), Read(0, 10), Write(1, 10, 3), Advise(0, 2, 4), Remap(0, 4, 4, 3, F(16)), new DiffOp(DiffOpKind.Munmap, F(16), 4 * P)];
        yield return [Map(0, 4), Uffd(0x2), Register(0, 4, 1), Write(0, 10, 3), new DiffOp(DiffOpKind.Fork), new DiffOp(DiffOpKind.Switch, A: 1), Read(1, 10)];
    }

    private static ulong F(int page) => DiffWindow.Focus + ((ulong)page * P);

    private static DiffOp Map(int page, int pages, ulong prot = Rw, ulong flags = PrivateAnonFixed) => new(DiffOpKind.Mmap, F(page), (ulong)pages * P, prot, flags);

    private static DiffOp Remap(int page, int oldPages, int newPages, ulong flags, ulong to) => new(DiffOpKind.Mremap, F(page), (ulong)oldPages * P, (ulong)newPages * P, flags, to);

    private static DiffOp Write(int page, int bytes, ulong seed) => new(DiffOpKind.Write, F(page), (ulong)bytes, seed);

    private static DiffOp Read(int page, int bytes) => new(DiffOpKind.Read, F(page), (ulong)bytes);

    private static DiffOp Advise(int page, int pages, ulong advice) => new(DiffOpKind.Madvise, F(page), (ulong)pages * P, advice);

    private static DiffOp Uffd(ulong features) => new(DiffOpKind.UffdOpen, A: features);

    private static DiffOp Register(int page, int pages, ulong mode) => new(DiffOpKind.UffdRegister, F(page), (ulong)pages * P, 0, mode);
}
