using System.Globalization;
using System.Text;

namespace MirrorEmu.Tests.Differential;

/// <summary>The operations a differential sequence is made of (one per step).</summary>
public enum DiffOpKind
{
    /// <summary>mmap(Addr, Len, A = prot, B = flags, C = file (0 none, 1 file A, 2 file B), D = offset).</summary>
    Mmap,
    /// <summary>munmap(Addr, Len).</summary>
    Munmap,
    /// <summary>mprotect(Addr, Len, A = prot).</summary>
    Mprotect,
    /// <summary>madvise(Addr, Len, A = advice).</summary>
    Madvise,
    /// <summary>mremap(Addr, Len = old size, A = new size, B = flags, C = new address).</summary>
    Mremap,
    /// <summary>A CPU write of Len bytes at Addr, A = seed of the bytes.</summary>
    Write,
    /// <summary>A CPU read of Len bytes at Addr.</summary>
    Read,
    /// <summary>fork(): the current process gets a child (at most <see cref="DiffWindow.MaxProcesses"/>).</summary>
    Fork,
    /// <summary>Make process A (modulo their count) the current one.</summary>
    Switch,
    /// <summary>The current process exits (unless it is the last); the first becomes current.</summary>
    Exit,
    /// <summary>msync(Addr, Len, A = flags).</summary>
    Msync,
    /// <summary>mincore(Addr, Len).</summary>
    Mincore,
    /// <summary>mlock2(Addr, Len, A = flags).</summary>
    Mlock,
    /// <summary>munlock(Addr, Len).</summary>
    Munlock,
    /// <summary>ftruncate(file A (1) or B (2), B = size).</summary>
    Ftruncate,
    /// <summary>userfaultfd() and UFFDIO_API with A = features, in the current process.</summary>
    UffdOpen,
    /// <summary>close the current process's userfaultfd A.</summary>
    UffdClose,
    /// <summary>UFFDIO_REGISTER(context A, Addr, Len, B = mode).</summary>
    UffdRegister,
    /// <summary>UFFDIO_UNREGISTER(context A, Addr, Len).</summary>
    UffdUnregister,
    /// <summary>UFFDIO_COPY(context A, dst Addr, Len, B = mode, C = seed of the bytes).</summary>
    UffdCopy,
    /// <summary>UFFDIO_ZEROPAGE(context A, Addr, Len, B = mode).</summary>
    UffdZeroPage,
    /// <summary>UFFDIO_WRITEPROTECT(context A, Addr, Len, B = mode).</summary>
    UffdWriteProtect,
    /// <summary>UFFDIO_CONTINUE(context A, Addr, Len, B = mode).</summary>
    UffdContinue,
    /// <summary>UFFDIO_MOVE(context A, dst Addr, src C, Len, B = mode).</summary>
    UffdMove,
    /// <summary>UFFDIO_WAKE(context A, Addr, Len).</summary>
    UffdWake,
    /// <summary>How the monitor answers missing faults from now on: A = 0 UFFDIO_COPY of a pattern, 1 UFFDIO_ZEROPAGE.</summary>
    Policy,
}

/// <summary>One step of a differential sequence; fields are interpreted per <see cref="Kind"/> (see <see cref="DiffOpKind"/>).</summary>
/// <param name="Kind">The operation.</param>
/// <param name="Addr">Its address (absolute).</param>
/// <param name="Len">Its length in bytes.</param>
/// <param name="A">First extra argument.</param>
/// <param name="B">Second extra argument.</param>
/// <param name="C">Third extra argument.</param>
/// <param name="D">Fourth extra argument.</param>
public readonly record struct DiffOp(DiffOpKind Kind, ulong Addr = 0, ulong Len = 0, ulong A = 0, ulong B = 0, ulong C = 0, ulong D = 0)
{
    /// <inheritdoc/>
    public override string ToString() => DiffFormat.Op(this);
}

/// <summary>
/// Where sequences run, identical on both sides: a 4 MiB window (two 2 MiB halves, THP-aligned) with a
/// file-backed PROT_NONE guard page at each end, and a high window just below 2^47 where the x86-64 user
/// address space ends. Most operations fall in the 64 pages around the window's middle.
/// </summary>
public static class DiffWindow
{
    /// <summary>Bytes per page.</summary>
    public const ulong Page = 4096;

    /// <summary>The window's start (2 MiB aligned, far below where either side places unhinted mappings).</summary>
    public const ulong Base = 0x3F00_0000_0000;

    /// <summary>The window's size in bytes.</summary>
    public const ulong Size = 4UL << 20;

    /// <summary>First of the 64 pages most operations use (they straddle the 2 MiB boundary in the middle).</summary>
    public const ulong Focus = Base + (2UL << 20) - (32 * Page);

    /// <summary>Pages in the focus area.</summary>
    public const int FocusPages = 64;

    /// <summary>The high window's start: 16 pages below 2^47 (x86-64's TASK_SIZE is 2^47 - 4 KiB).</summary>
    public const ulong High = (1UL << 47) - (16 * Page);

    /// <summary>The guard page below the window.</summary>
    public const ulong GuardLow = Base - Page;

    /// <summary>The guard page above the window.</summary>
    public const ulong GuardHigh = Base + Size;

    /// <summary>The guard page below the high window.</summary>
    public const ulong GuardHighWindow = High - Page;

    /// <summary>The host server's scratch area (outside everything compared).</summary>
    public const ulong Scratch = 0x3E00_0000_0000;

    /// <summary>Pages of scratch.</summary>
    public const int ScratchPages = 40;

    /// <summary>Bytes of scratch used to stage data for accesses and copies.</summary>
    public const ulong ScratchData = Scratch + (8 * Page);

    /// <summary>Most live processes a sequence has (fork beyond it is skipped).</summary>
    public const int MaxProcesses = 3;

    /// <summary>The lowest address compared in the main window (its low guard).</summary>
    public const ulong CompareLow = GuardLow;

    /// <summary>One past the highest address compared in the main window (its high guard).</summary>
    public const ulong CompareHigh = GuardHigh + Page;

    /// <summary>The parts of [<paramref name="start"/>, <paramref name="end"/>) whose pages are compared: the main window
    /// with its guards, and the first 4 MiB from the high window's guard (a VMA the emulator wrongly lets grow past
    /// 2^47 is compared there, not enumerated to its end).</summary>
    /// <param name="start">A VMA's start.</param>
    /// <param name="end">Its end.</param>
    public static IEnumerable<(ulong Start, ulong End)> ComparedPages(ulong start, ulong end)
    {
        foreach ((ulong lo, ulong hi) in ((ulong, ulong)[])[(CompareLow, CompareHigh), (GuardHighWindow, GuardHighWindow + Size)])
        {
            ulong s = Math.Max(start, lo);
            ulong e = Math.Min(end, hi);
            if (s < e)
            {
                yield return (s, e);
            }
        }
    }

    /// <summary>True if <paramref name="address"/> lies where both sides' state is compared.</summary>
    /// <param name="address">A virtual address.</param>
    public static bool InCompareArea(ulong address) =>
        (address >= CompareLow && address < CompareHigh) || (address >= GuardHighWindow && address < (1UL << 48));

    /// <summary>
    /// True if the operation cannot reach the host server's own mappings (code, stack, scratch): every
    /// range either stays in a compare area or is one the kernel rejects before looking at mappings
    /// (its end wraps around). Sequences only hold safe operations.
    /// </summary>
    /// <param name="op">The operation.</param>
    public static bool IsSafe(DiffOp op) => op.Kind switch
    {
        DiffOpKind.Mmap => (op.B & 0x10) == 0 && (op.B & 0x100000) == 0 ? true : RangeSafe(op.Addr, op.Len),
        DiffOpKind.Munmap or DiffOpKind.Mprotect or DiffOpKind.Madvise or DiffOpKind.Msync or DiffOpKind.Mincore
            or DiffOpKind.Mlock or DiffOpKind.Munlock or DiffOpKind.UffdRegister or DiffOpKind.UffdUnregister
            or DiffOpKind.UffdCopy or DiffOpKind.UffdZeroPage or DiffOpKind.UffdWriteProtect or DiffOpKind.UffdContinue
            or DiffOpKind.UffdWake or DiffOpKind.Write or DiffOpKind.Read => RangeSafe(op.Addr, op.Len),
        DiffOpKind.UffdMove => RangeSafe(op.Addr, op.Len) && RangeSafe(op.C, op.Len),
        DiffOpKind.Mremap => RangeSafe(op.Addr, op.Len) && ((op.B & 2) == 0 || RangeSafe(op.C, op.A)),
        _ => true,
    };

    private static bool RangeSafe(ulong start, ulong len)
    {
        ulong aligned = (len + (Page - 1)) & ~(Page - 1);
        if (len != 0 && aligned == 0)
        {
            return true; // PAGE_ALIGN wrapped: rejected (or treated as 0) before any walk
        }

        ulong end = start + aligned;
        if (end < start)
        {
            return true; // the end wraps: rejected before any walk
        }

        return (start >= CompareLow && end <= CompareHigh) || start >= GuardHighWindow;
    }
}

/// <summary>Prints operations and values the way the README and the issue write them (addresses relative to the windows).</summary>
public static class DiffFormat
{
    private static readonly (ulong Bit, string Name)[] s_mapFlags =
    [
        (0x10, "FIXED"), (0x20, "ANON"), (0x40, "32BIT"), (0x100, "GROWSDOWN"), (0x800, "DENYWRITE"), (0x1000, "EXECUTABLE"),
        (0x2000, "LOCKED"), (0x4000, "NORESERVE"), (0x8000, "POPULATE"), (0x10000, "NONBLOCK"), (0x20000, "STACK"), (0x100000, "FIXED_NOREPLACE"),
    ];

    /// <summary>An address: W+off in the main window, H+off in the high one, else hex.</summary>
    /// <param name="a">The address.</param>
    public static string Addr(ulong a)
    {
        if (a >= DiffWindow.Base - (1UL << 30) && a < DiffWindow.Base + (1UL << 30))
        {
            return a >= DiffWindow.Base ? $"W+0x{a - DiffWindow.Base:x}" : $"W-0x{DiffWindow.Base - a:x}";
        }

        if (a >= DiffWindow.High - (1UL << 30) && a < DiffWindow.High + (1UL << 30))
        {
            return a >= DiffWindow.High ? $"H+0x{a - DiffWindow.High:x}" : $"H-0x{DiffWindow.High - a:x}";
        }

        return $"0x{a:x}";
    }

    /// <summary>A length: 8K, 2M, or hex.</summary>
    /// <param name="n">Bytes.</param>
    public static string Len(ulong n) =>
        n == 0 ? "0" : n % (1UL << 20) == 0 && n < (1UL << 40) ? $"{n >> 20}M" : n % 1024 == 0 && n < (1UL << 30) ? $"{n >> 10}K" : $"0x{n:x}";

    /// <summary>PROT_* bits as rwx plus any others in hex.</summary>
    /// <param name="prot">The bits.</param>
    public static string Prot(ulong prot)
    {
        string s = $"{((prot & 1) != 0 ? 'r' : '-')}{((prot & 2) != 0 ? 'w' : '-')}{((prot & 4) != 0 ? 'x' : '-')}";
        ulong rest = prot & ~7UL;
        return rest == 0 ? s : rest == 8 ? s + "|SEM" : rest == 0x01000000 ? s + "|GROWSDOWN" : $"{s}|0x{rest:x}";
    }

    /// <summary>MAP_* flags by name.</summary>
    /// <param name="flags">The bits.</param>
    public static string MapFlags(ulong flags)
    {
        var sb = new StringBuilder((flags & 0xF) switch { 1 => "SHARED", 2 => "PRIVATE", 3 => "SHARED_VALIDATE", 0 => "NOTYPE", _ => $"TYPE{flags & 0xF}" });
        ulong rest = flags & ~0xFUL;
        foreach ((ulong bit, string name) in s_mapFlags)
        {
            if ((rest & bit) != 0)
            {
                sb.Append('|').Append(name);
                rest &= ~bit;
            }
        }

        if (rest != 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"|0x{rest:x}");
        }

        return sb.ToString();
    }

    /// <summary>An madvise advice by name.</summary>
    /// <param name="advice">The value.</param>
    public static string Advice(ulong advice) => advice switch
    {
        0 => "NORMAL", 1 => "RANDOM", 2 => "SEQUENTIAL", 3 => "WILLNEED", 4 => "DONTNEED", 8 => "FREE", 9 => "REMOVE",
        10 => "DONTFORK", 11 => "DOFORK", 14 => "HUGEPAGE", 15 => "NOHUGEPAGE", 16 => "DONTDUMP", 17 => "DODUMP",
        18 => "WIPEONFORK", 19 => "KEEPONFORK", 20 => "COLD", 21 => "PAGEOUT", 22 => "POPULATE_READ", 23 => "POPULATE_WRITE",
        24 => "DONTNEED_LOCKED", 102 => "GUARD_INSTALL", 103 => "GUARD_REMOVE",
        _ => advice.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>MREMAP_* flags by name.</summary>
    /// <param name="flags">The bits.</param>
    public static string MremapFlags(ulong flags)
    {
        var parts = new List<string>();
        if ((flags & 1) != 0)
        {
            parts.Add("MAYMOVE");
        }

        if ((flags & 2) != 0)
        {
            parts.Add("FIXED");
        }

        if ((flags & 4) != 0)
        {
            parts.Add("DONTUNMAP");
        }

        if ((flags & ~7UL) != 0)
        {
            parts.Add($"0x{flags & ~7UL:x}");
        }

        return parts.Count == 0 ? "0" : string.Join('|', parts);
    }

    /// <summary>One operation, in the issue's reproduction style.</summary>
    /// <param name="op">The operation.</param>
    public static string Op(DiffOp op) => op.Kind switch
    {
        DiffOpKind.Mmap => $"mmap {Addr(op.Addr)} {Len(op.Len)} {Prot(op.A)} {MapFlags(op.B)}{(op.C == 0 ? string.Empty : op.C == 1 ? " fileA" : " fileB")}{(op.D == 0 ? string.Empty : $" off=0x{op.D:x}")}",
        DiffOpKind.Munmap => $"munmap {Addr(op.Addr)} {Len(op.Len)}",
        DiffOpKind.Mprotect => $"mprotect {Addr(op.Addr)} {Len(op.Len)} {Prot(op.A)}",
        DiffOpKind.Madvise => $"madvise {Addr(op.Addr)} {Len(op.Len)} {Advice(op.A)}",
        DiffOpKind.Mremap => $"mremap {Addr(op.Addr)} {Len(op.Len)}→{Len(op.A)} {MremapFlags(op.B)}{((op.B & 2) != 0 ? $" to {Addr(op.C)}" : string.Empty)}",
        DiffOpKind.Write => $"write {Addr(op.Addr)} {Len(op.Len)} seed={op.A}",
        DiffOpKind.Read => $"read {Addr(op.Addr)} {Len(op.Len)}",
        DiffOpKind.Fork => "fork",
        DiffOpKind.Switch => $"switch to process {op.A}",
        DiffOpKind.Exit => "exit",
        DiffOpKind.Msync => $"msync {Addr(op.Addr)} {Len(op.Len)} flags={op.A}",
        DiffOpKind.Mincore => $"mincore {Addr(op.Addr)} {Len(op.Len)}",
        DiffOpKind.Mlock => $"mlock2 {Addr(op.Addr)} {Len(op.Len)} flags={op.A}",
        DiffOpKind.Munlock => $"munlock {Addr(op.Addr)} {Len(op.Len)}",
        DiffOpKind.Ftruncate => $"ftruncate file{(op.A == 1 ? 'A' : 'B')} {Len(op.B)}",
        DiffOpKind.UffdOpen => $"userfaultfd features=0x{op.A:x}",
        DiffOpKind.UffdClose => $"close uffd{op.A}",
        DiffOpKind.UffdRegister => $"UFFDIO_REGISTER uffd{op.A} {Addr(op.Addr)} {Len(op.Len)} mode={op.B}",
        DiffOpKind.UffdUnregister => $"UFFDIO_UNREGISTER uffd{op.A} {Addr(op.Addr)} {Len(op.Len)}",
        DiffOpKind.UffdCopy => $"UFFDIO_COPY uffd{op.A} {Addr(op.Addr)} {Len(op.Len)} mode={op.B}",
        DiffOpKind.UffdZeroPage => $"UFFDIO_ZEROPAGE uffd{op.A} {Addr(op.Addr)} {Len(op.Len)} mode={op.B}",
        DiffOpKind.UffdWriteProtect => $"UFFDIO_WRITEPROTECT uffd{op.A} {Addr(op.Addr)} {Len(op.Len)} mode={op.B}",
        DiffOpKind.UffdContinue => $"UFFDIO_CONTINUE uffd{op.A} {Addr(op.Addr)} {Len(op.Len)} mode={op.B}",
        DiffOpKind.UffdMove => $"UFFDIO_MOVE uffd{op.A} {Addr(op.Addr)} from {Addr(op.C)} {Len(op.Len)} mode={op.B}",
        DiffOpKind.UffdWake => $"UFFDIO_WAKE uffd{op.A} {Addr(op.Addr)} {Len(op.Len)}",
        DiffOpKind.Policy => $"monitor answers with {(op.A == 0 ? "UFFDIO_COPY" : "UFFDIO_ZEROPAGE")}",
        _ => op.Kind.ToString(),
    };

    /// <summary>A whole sequence, one operation per clause.</summary>
    /// <param name="ops">The operations.</param>
    public static string Sequence(IEnumerable<DiffOp> ops) => string.Join("; ", ops.Select(Op));

    /// <summary>A negated errno by name (0 stays 0).</summary>
    /// <param name="rc">The value.</param>
    public static string Rc(long rc) => rc == 0 ? "0" : rc < 0 && rc > -4096 ? Errno.Name((int)rc) : rc.ToString(CultureInfo.InvariantCulture);
}
