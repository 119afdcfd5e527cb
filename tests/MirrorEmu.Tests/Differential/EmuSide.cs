using MirrorEmu.Mm;
using MirrorEmu.Uffd;

namespace MirrorEmu.Tests.Differential;

/// <summary>
/// The emulator's side: the same window, guards and files (<see cref="HostSide.Files"/>) in an
/// <see cref="AddressSpace"/> per process over one pool. While a userfaultfd context exists, an
/// operation runs on a worker thread so that the monitor can answer its faults, as on the host.
/// </summary>
public sealed class EmuSide : DiffSide<AddressSpace>
{
    private const int Enosys = 38;
    private readonly PhysicalMemory _memory = new(1UL << 30);
    private readonly MemFile[] _files = new MemFile[HostSide.Files.Length];
    private int _contexts;

    /// <summary>Starts a sequence: one process with the window's guards mapped.</summary>
    public EmuSide()
    {
        _memory.SwapEnabled = HostHasSwap; // MADV_PAGEOUT swaps anonymous pages out only where the host can
        for (int i = 0; i < _files.Length; i++)
        {
            (string name, int pages, byte fill) = HostSide.Files[i];
            _files[i] = new MemFile(_memory, (ulong)pages * DiffWindow.Page, name);
            for (int p = 0; p < pages; p++)
            {
                byte[] page = new byte[DiffWindow.Page];
                Array.Fill(page, (byte)(fill + p));
                _files[i].Write((ulong)p * DiffWindow.Page, page);
            }
        }

        var root = new AddressSpace(_memory);
        foreach (ulong guard in (ReadOnlySpan<ulong>)[DiffWindow.GuardLow, DiffWindow.GuardHigh, DiffWindow.GuardHighWindow])
        {
            root.Mmap(guard, DiffWindow.Page, Prot.None, MapFlags.Private | MapFlags.FixedNoReplace, _files[2], 0, out _).ThrowIfError();
        }

        AddRoot(root);
    }

    /// <summary>Whether the host has a swap area (a line below /proc/swaps' header): the emulator's pool gets swap then too.</summary>
    public static bool HostHasSwap { get; } = File.Exists("/proc/swaps") && File.ReadAllLines("/proc/swaps").Skip(1).Any(l => l.Trim().Length > 0);

    /// <inheritdoc/>
    protected override DiffPending Start(AddressSpace mm, DiffOp op)
    {
        Func<StepOutcome> run = op.Kind switch
        {
            DiffOpKind.Mmap => () => Mapped(mm.Mmap(op.Addr, op.Len, (Prot)(int)op.A, (MapFlags)(int)op.B, op.C == 0 ? null : _files[op.C - 1], op.D, out ulong at), at),
            DiffOpKind.Mremap => () => Mapped(mm.Mremap(op.Addr, op.Len, op.A, (MremapFlags)(int)op.B, op.C, out ulong at), at),
            DiffOpKind.Munmap => () => Rc(mm.Munmap(op.Addr, op.Len)),
            DiffOpKind.Mprotect => () => Rc(mm.Mprotect(op.Addr, op.Len, (Prot)(int)op.A)),
            DiffOpKind.Madvise => () => Rc(mm.Madvise(op.Addr, op.Len, (Advice)(int)op.A)),
            DiffOpKind.Write => () => Access(mm, op, write: true),
            DiffOpKind.Read => () => Access(mm, op, write: false),
            DiffOpKind.Msync => () => Rc(mm.Msync(op.Addr, op.Len, (MsyncFlags)(int)op.A)),
            DiffOpKind.Mlock => () => Rc(mm.Mlock(op.Addr, op.Len, (MlockFlags)(int)op.A)),
            DiffOpKind.Munlock => () => Rc(mm.Munlock(op.Addr, op.Len)),
            DiffOpKind.Ftruncate => () => Rc(_files[op.A - 1].Truncate(op.B)),
            DiffOpKind.Mincore => () => Mincore(mm, op),
            _ => () => StepOutcome.Rc(-Enosys, $"the emulator has no {op.Kind}"),
        };

        Func<StepOutcome> guarded = () =>
        {
            try
            {
                return run();
            }
            catch (Exception e) when (e is not MemoryFaultException)
            {
                // An exception where the kernel returns is a divergence too (a crash, not an error code).
                return new StepOutcome { Result = $"threw {e.GetType().Name}", Why = e.Message };
            }
        };
        if (_contexts == 0)
        {
            return DiffPending.Done(guarded());
        }

        var task = Task.Run(guarded);
        return new DiffPending(ms => task.Wait(ms), () => task.Result);
    }

    /// <inheritdoc/>
    protected override DiffPending StartFork(AddressSpace mm) => DiffPending.Done(new StepOutcome { Child = mm.Fork() });

    /// <inheritdoc/>
    protected override void Exit(AddressSpace mm) => mm.Dispose();

    /// <inheritdoc/>
    protected override IDiffUffd? OpenUffd(AddressSpace mm, ulong features, out long rc)
    {
        var ctx = new Userfaultfd(mm) { FaultTimeoutMs = StepTimeoutMs / 2 };
        KResult r = ctx.Api(UffdApi.Version, (UffdFeatures)features, out _);
        rc = r.Code;
        if (!r.IsOk)
        {
            ctx.Dispose();
            return null;
        }

        _contexts++;
        return new EmuUffd(ctx, this);
    }

    /// <inheritdoc/>
    protected override ProcessState Snapshot(AddressSpace mm)
    {
        var vmas = new List<string>();
        var pages = new List<string>();
        foreach (Vma v in mm.SnapshotVmas())
        {
            if (!DiffWindow.InCompareArea(v.Start))
            {
                continue;
            }

            string kind = v.File is null ? "anon" : v.File.IsShmem ? "shmem" : v.File == _files[0] ? "fileA" : v.File == _files[1] ? "fileB" : "fileGuard";
            string perms = $"{((v.Flags & VmFlags.Read) != 0 ? 'r' : '-')}{((v.Flags & VmFlags.Write) != 0 ? 'w' : '-')}{((v.Flags & VmFlags.Exec) != 0 ? 'x' : '-')}{(v.IsShared ? 's' : 'p')}";
            long huge = 0;
            foreach ((ulong from, ulong to) in DiffWindow.ComparedPages(v.Start, v.End))
            {
                for (ulong va = from; va < to; va += DiffWindow.Page)
                {
                Pte pte = mm.PageTable.Read(va);
                huge += pte.IsHuge && !pte.IsSpecial ? 4 : 0; // smaps' AnonHugePages: the huge zero page is not counted
                string content;
                if (pte.IsMapped)
                {
                    content = DiffData.Id(_memory.Frame(pte.Pfn));
                }
                else if (pte.Swap == SwapType.Guard)
                {
                    content = "guard";
                }
                else if (v.File is null)
                {
                    content = "zero";
                }
                else
                {
                    ulong index = v.PageIndex(va);
                    content = index >= v.File.PageCount ? "sigbus"
                        : v.File.TryFindPage(index, out ulong pfn) ? DiffData.Id(_memory.Frame(pfn)) : "zero";
                }

                pages.Add(DiffState.Page(va, content, pte.IsUffdWp));
                }
            }

            vmas.Add(DiffState.Vma(v.Start, v.End, perms, kind, kind == "anon" ? 0 : v.PgOff, DiffState.Flags(Mnemonics(v.Flags)), huge));
        }

        return new ProcessState(vmas, pages);
    }

    /// <inheritdoc/>
    protected override void Abort()
    {
        // A worker stuck in a fault ends by itself: the context's FaultTimeoutMs answers it with SIGBUS.
    }

    /// <inheritdoc/>
    protected override void DisposeSide()
    {
        foreach (MemFile f in _files)
        {
            f.Dispose();
        }

        _memory.Dispose();
    }

    /// <summary>The smaps mnemonics of the flags the emulator keeps.</summary>
    private static IEnumerable<string> Mnemonics(VmFlags f)
    {
        (VmFlags Bit, string Name)[] map =
        [
            (VmFlags.HugePage, "hg"), (VmFlags.NoHugePage, "nh"), (VmFlags.UffdMissing, "um"), (VmFlags.UffdWp, "uw"),
            (VmFlags.UffdMinor, "ui"), (VmFlags.DontCopy, "dc"), (VmFlags.WipeOnFork, "wf"), (VmFlags.Locked, "lo"),
            (VmFlags.LockOnFault, "lf"), (VmFlags.DontDump, "dd"), (VmFlags.SeqRead, "sr"), (VmFlags.RandRead, "rr"),
            (VmFlags.Account, "ac"), (VmFlags.NoReserve, "nr"),
        ];
        return map.Where(m => (f & m.Bit) != 0).Select(m => m.Name);
    }

    private static StepOutcome Rc(KResult r) => StepOutcome.Rc(r.Code, r.Message);

    private static StepOutcome Mincore(AddressSpace mm, DiffOp op)
    {
        byte[] vec = new byte[(op.Len + DiffWindow.Page - 1) / DiffWindow.Page];
        KResult r = mm.Mincore(op.Addr, op.Len, vec);
        StepOutcome o = Rc(r);
        if (r.IsOk)
        {
            o.Detail = "vec=" + string.Concat(vec.Select(b => (b & 1) != 0 ? '1' : '0'));
        }

        return o;
    }

    private static StepOutcome Mapped(KResult r, ulong at) => r.IsOk ? new StepOutcome { MappedAt = at } : Rc(r);

    private static StepOutcome Access(AddressSpace mm, DiffOp op, bool write)
    {
        byte[] data = write ? DiffData.Pattern(op.A, (int)op.Len) : new byte[op.Len];
        var outcome = new StepOutcome();
        int done = data.Length;
        try
        {
            if (write)
            {
                mm.CpuWrite(op.Addr, data);
            }
            else
            {
                mm.CpuRead(op.Addr, data);
            }
        }
        catch (MemoryFaultException e)
        {
            outcome.Result = $"{e.Signal} at {DiffFormat.Addr(e.Address)}";
            outcome.Why = e.Reason;
            done = (int)(e.Address - op.Addr);
        }

        if (!write)
        {
            outcome.Detail = "data=" + DiffData.Id(data.AsSpan(0, done));
        }

        return outcome;
    }

    /// <summary>The emulator's userfaultfd behind <see cref="IDiffUffd"/>, with the kernel's struct-field conventions for counts.</summary>
    private sealed class EmuUffd(Userfaultfd ctx, EmuSide side) : IDiffUffd
    {
        private readonly UffdMsg[] _one = new UffdMsg[1];
        private bool _closed;

        public bool TryRead(out DiffMsg msg)
        {
            msg = default;
            if (_closed || !ctx.Read(_one, out int n, timeoutMs: 0).IsOk || n == 0)
            {
                return false;
            }

            UffdMsg m = _one[0];
            msg = m.Event switch
            {
                UffdEventType.Pagefault => new DiffMsg((byte)m.Event, m.Address, (ulong)m.Flags, 0, null),
                UffdEventType.Fork => new DiffMsg((byte)m.Event, 0, 0, 0, m.Child is null ? null : new EmuUffd(m.Child, side)),
                UffdEventType.Remap => new DiffMsg((byte)m.Event, m.Address, m.Arg, m.Length, null),
                _ => new DiffMsg((byte)m.Event, m.Address, m.Arg, 0, null),
            };
            if (m.Event == UffdEventType.Fork)
            {
                side._contexts++;
            }

            return true;
        }

        public long Register(ulong start, ulong len, ulong mode, out ulong ioctls)
        {
            KResult r = ctx.Register(start, len, (UffdRegisterMode)mode, out UffdIoctls io);
            ioctls = (ulong)io;
            return r.Code;
        }

        public long Unregister(ulong start, ulong len) => ctx.Unregister(start, len).Code;

        public long Copy(ulong dst, byte[] src, ulong mode, out long count) => Counted(Code(ctx.Copy(dst, src, (UffdCopyMode)mode, out ulong n)), n, out count);

        public long ZeroPage(ulong dst, ulong len, ulong mode, out long count) => Counted(Code(ctx.ZeroPage(dst, len, (UffdCopyMode)mode, out ulong n)), n, out count);

        public long WriteProtect(ulong start, ulong len, ulong mode) =>
            Code(ctx.WriteProtect(start, len, (UffdWriteProtectMode)mode));

        public long Continue(ulong start, ulong len, ulong mode, out long count) => Counted(Code(ctx.Continue(start, len, (UffdCopyMode)mode, out ulong n)), n, out count);

        public long Move(ulong dst, ulong src, ulong len, ulong mode, out long count) => Counted(Code(ctx.Move(dst, src, len, (UffdMoveMode)mode, out ulong n)), n, out count);

        public long Wake(ulong start, ulong len) => Code(ctx.Wake(start, len));

        public void Close()
        {
            if (!_closed)
            {
                _closed = true;
                ctx.Dispose();
                side._contexts--;
            }
        }

        // The kernel writes the bytes done into the struct, or the negated errno when none were.
        private static long Counted(long rc, ulong done, out long count)
        {
            count = done > 0 ? (long)done : rc < 0 ? rc : 0;
            return rc;
        }

        // Resolution calls return an int today and a KResult after issue 11 item 12; both read the same here.
        private static long Code(int rc) => rc;

        private static long Code(KResult r) => r.Code;
    }
}
