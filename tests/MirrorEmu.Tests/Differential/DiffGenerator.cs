namespace MirrorEmu.Tests.Differential;

/// <summary>
/// Generates operation sequences from a seed. Most operations touch the 64 focus pages (so that VMAs
/// meet, split and merge); some use whole 2 MiB halves of the window (THP), the high window at the end
/// of the address space, unaligned or absurd arguments, and the flag and advice values the kernel
/// documents. About a third of the sequences open a userfaultfd early and register part of the window.
/// Every operation is <see cref="DiffWindow.IsSafe"/>.
/// </summary>
/// <param name="seed">The sequence's seed.</param>
public sealed class DiffGenerator(int seed)
{
    private const ulong P = DiffWindow.Page;

    private static readonly ulong[] s_advices = [0, 1, 2, 3, 4, 4, 4, 8, 8, 9, 10, 11, 14, 14, 15, 16, 17, 18, 18, 19, 20, 21, 22, 22, 23, 23, 24, 102, 102, 103, 5, 99];
    private static readonly ulong[] s_extraMapFlags = [0x4000, 0x20000, 0x2000, 0x40, 0x800, 0x1000, 0x8000, 0x10000, 0x200, 0x400000];
    private static readonly ulong[] s_weirdLengths = [ulong.MaxValue, ulong.MaxValue - P + 1, 1UL << 63, 1UL << 47];
    private static readonly ulong[] s_specialAddresses = [(1UL << 47) - P, 1UL << 47, (1UL << 48) - P, ulong.MaxValue - P + 1];

    private readonly Random _rng = new(seed);
    private int _contexts;

    /// <summary>A sequence of <paramref name="length"/> operations.</summary>
    /// <param name="length">How many.</param>
    /// <param name="withUffd">Whether userfaultfd operations may appear.</param>
    public DiffOp[] Sequence(int length, bool withUffd)
    {
        var ops = new List<DiffOp>(length);
        bool uffd = withUffd && _rng.Next(3) == 0;
        if (uffd)
        {
            ops.Add(Gen(DiffOpKind.Mmap));
            ops.Add(new DiffOp(DiffOpKind.UffdOpen, A: Features()));
            _contexts = 1;
            ops.Add(Gen(DiffOpKind.UffdRegister));
        }

        while (ops.Count < length)
        {
            DiffOp op = Gen(PickKind(uffd));
            if (DiffWindow.IsSafe(op))
            {
                ops.Add(op);
            }
        }

        return [.. ops];
    }

    private DiffOpKind PickKind(bool uffd)
    {
        int r = _rng.Next(uffd ? 130 : 100);
        return r switch
        {
            < 17 => DiffOpKind.Mmap,
            < 23 => DiffOpKind.Munmap,
            < 32 => DiffOpKind.Mprotect,
            < 46 => DiffOpKind.Madvise,
            < 56 => DiffOpKind.Mremap,
            < 66 => DiffOpKind.Write,
            < 73 => DiffOpKind.Read,
            < 76 => DiffOpKind.Fork,
            < 79 => DiffOpKind.Switch,
            < 81 => DiffOpKind.Exit,
            < 83 => DiffOpKind.Msync,
            < 86 => DiffOpKind.Mincore,
            < 89 => DiffOpKind.Mlock,
            < 91 => DiffOpKind.Munlock,
            < 94 => DiffOpKind.Ftruncate,
            < 100 => DiffOpKind.Mremap,
            < 104 => DiffOpKind.UffdRegister,
            < 106 => DiffOpKind.UffdUnregister,
            < 112 => DiffOpKind.UffdCopy,
            < 115 => DiffOpKind.UffdZeroPage,
            < 119 => DiffOpKind.UffdWriteProtect,
            < 121 => DiffOpKind.UffdContinue,
            < 124 => DiffOpKind.UffdMove,
            < 125 => DiffOpKind.UffdWake,
            < 127 => DiffOpKind.Policy,
            < 128 => DiffOpKind.UffdOpen,
            _ => DiffOpKind.UffdClose,
        };
    }

    private DiffOp Gen(DiffOpKind kind)
    {
        switch (kind)
        {
            case DiffOpKind.Mmap:
            {
                bool file = _rng.Next(4) == 0;
                ulong type = _rng.Next(20) switch { < 12 => 2, < 17 => 1, < 19 => 3, _ => 0 };
                ulong flags = type | (_rng.Next(10) switch { < 7 => 0x10UL, < 9 => 0x100000UL, _ => 0UL });
                if (!file || _rng.Next(6) == 0)
                {
                    flags |= 0x20; // MAP_ANONYMOUS (sometimes together with a file)
                }

                if (_rng.Next(5) == 0)
                {
                    flags |= Pick(s_extraMapFlags);
                }

                ulong offset = file ? (ulong)_rng.Next(0, 12) * P : 0;
                if (file && _rng.Next(25) == 0)
                {
                    offset = _rng.Next(2) == 0 ? 1UL << 63 : ulong.MaxValue - P + 1;
                }
                else if (file && _rng.Next(25) == 0)
                {
                    offset += 0x800;
                }

                return new DiffOp(kind, Address(), Length(), ProtValue(forMmap: true), flags, file ? (ulong)_rng.Next(1, 3) : 0, offset);
            }

            case DiffOpKind.Munmap:
                return new DiffOp(kind, Address(), Length());
            case DiffOpKind.Mprotect:
                return new DiffOp(kind, Address(), Length(), ProtValue(forMmap: false));
            case DiffOpKind.Madvise:
                return new DiffOp(kind, Address(), Length(), Pick(s_advices));
            case DiffOpKind.Mremap:
            {
                ulong flags = _rng.Next(10) switch { < 2 => 0, < 4 => 1, < 8 => 3, < 9 => 7, _ => (ulong)_rng.Next(0, 9) };
                ulong oldLen = _rng.Next(12) == 0 ? 0 : Length();
                ulong newLen = _rng.Next(15) == 0 ? Pick(s_weirdLengths) : Pages(1, 12);
                return new DiffOp(kind, Address(), oldLen, newLen, flags, Address());
            }

            case DiffOpKind.Write:
                return new DiffOp(kind, FocusByte(), (ulong)_rng.Next(1, 3 * (int)P), (ulong)_rng.Next(1, 255));
            case DiffOpKind.Read:
                return new DiffOp(kind, FocusByte(), (ulong)_rng.Next(1, 3 * (int)P));
            case DiffOpKind.Fork:
            case DiffOpKind.Exit:
                return new DiffOp(kind);
            case DiffOpKind.Switch:
                return new DiffOp(kind, A: (ulong)_rng.Next(0, DiffWindow.MaxProcesses));
            case DiffOpKind.Msync:
                return new DiffOp(kind, Address(), Length(), (ulong)(_rng.Next(6) switch { 0 => 0, 1 => 1, 2 => 4, 3 => 2, 4 => 5, _ => 6 }));
            case DiffOpKind.Mincore:
                return new DiffOp(kind, Address(), Math.Min(Length(), 64 * P));
            case DiffOpKind.Mlock:
                return new DiffOp(kind, Address(), Length(), (ulong)(_rng.Next(5) switch { < 3 => 0, 3 => 1, _ => 2 }));
            case DiffOpKind.Munlock:
                return new DiffOp(kind, Address(), Length());
            case DiffOpKind.Ftruncate:
                return new DiffOp(kind, A: (ulong)_rng.Next(1, 3), B: _rng.Next(4) == 0 ? (ulong)_rng.Next(1, 60000) : (ulong)_rng.Next(0, 17) * P);
            case DiffOpKind.UffdOpen:
                _contexts++;
                return new DiffOp(kind, A: Features());
            case DiffOpKind.UffdClose:
                return new DiffOp(kind, A: Context());
            case DiffOpKind.UffdRegister:
                return new DiffOp(kind, Address(), Length(), Context(), (ulong)(_rng.Next(9) switch { < 4 => 1, 4 => 2, 5 => 3, 6 => 4, 7 => 5, _ => 8 }));
            case DiffOpKind.UffdUnregister:
                return new DiffOp(kind, Address(), Length(), Context());
            case DiffOpKind.UffdCopy:
                return new DiffOp(kind, Address(), Math.Min(Length(), 8 * P), Context(), (ulong)(_rng.Next(8) switch { < 5 => 0, 5 => 1, 6 => 2, _ => 4 }), (ulong)_rng.Next(1, 255));
            case DiffOpKind.UffdZeroPage:
                return new DiffOp(kind, Address(), Length(), Context(), (ulong)(_rng.Next(6) switch { < 4 => 0, 4 => 1, _ => 2 }));
            case DiffOpKind.UffdWriteProtect:
                return new DiffOp(kind, Address(), Length(), Context(), (ulong)(_rng.Next(6) switch { < 3 => 1, 3 => 0, 4 => 2, _ => 3 }));
            case DiffOpKind.UffdContinue:
                return new DiffOp(kind, Address(), Length(), Context(), (ulong)(_rng.Next(4) == 0 ? 1 : 0));
            case DiffOpKind.UffdMove:
                return new DiffOp(kind, Address(), Math.Min(Length(), 8 * P), Context(), (ulong)(_rng.Next(4) switch { 0 => 2, 1 => 1, _ => 0 }), Address());
            case DiffOpKind.UffdWake:
                return new DiffOp(kind, Address(), Length(), Context());
            default:
                return new DiffOp(DiffOpKind.Policy, A: (ulong)_rng.Next(0, 2));
        }
    }

    private ulong Context() => (ulong)_rng.Next(0, Math.Max(1, _contexts));

    // PAGEFAULT_FLAG_WP, EVENT_FORK, EVENT_REMAP, EVENT_REMOVE, MISSING_SHMEM, EVENT_UNMAP, SIGBUS, MINOR_SHMEM, WP_UNPOPULATED, MOVE.
    private ulong Features()
    {
        ulong f = 0;
        foreach (ulong bit in (ReadOnlySpan<ulong>)[1, 2, 4, 8, 32, 64, 1024, 8192, 65536])
        {
            if (_rng.Next(3) == 0)
            {
                f |= bit;
            }
        }

        if (_rng.Next(12) == 0)
        {
            f |= 128; // SIGBUS
        }

        return f;
    }

    private ulong ProtValue(bool forMmap)
    {
        ulong p = _rng.Next(12) switch { < 5 => 3, < 7 => 1, < 8 => 0, < 9 => 5, < 10 => 2, < 11 => 4, _ => 7 };
        if (_rng.Next(20) == 0)
        {
            p |= _rng.Next(3) switch { 0 => 8UL, 1 => 0x01000000UL, _ => forMmap ? 0x10UL : 0x100UL };
        }

        return p;
    }

    private ulong Address()
    {
        int r = _rng.Next(100);
        if (r < 84)
        {
            return DiffWindow.Focus + ((ulong)_rng.Next(0, DiffWindow.FocusPages) * P);
        }

        if (r < 88)
        {
            return DiffWindow.Base + ((ulong)_rng.Next(0, 2) << 21);
        }

        if (r < 93)
        {
            return DiffWindow.High + (ulong)(long)(_rng.Next(-2, 32) * (int)P);
        }

        if (r < 97)
        {
            return DiffWindow.Focus + ((ulong)_rng.Next(0, DiffWindow.FocusPages) * P) + Pick([1UL, 0x800UL, 0xFFFUL]);
        }

        return Pick(s_specialAddresses);
    }

    private ulong Length()
    {
        int r = _rng.Next(100);
        return r switch
        {
            < 78 => Pages(1, 9),
            < 85 => Pages(9, 25),
            < 90 => Pages(1, 9) + Pick([1UL, 100UL, P - 1]) - P,
            < 93 => 0,
            < 96 => 2UL << 20,
            _ => Pick(s_weirdLengths),
        };
    }

    private ulong Pages(int min, int max) => (ulong)_rng.Next(min, max) * P;

    private ulong FocusByte() => DiffWindow.Focus + (ulong)_rng.Next(0, (DiffWindow.FocusPages * (int)P) - 1);

    private ulong Pick(ReadOnlySpan<ulong> values) => values[_rng.Next(values.Length)];
}
