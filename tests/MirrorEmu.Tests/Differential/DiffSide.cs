namespace MirrorEmu.Tests.Differential;

/// <summary>
/// One side of the comparison (the host kernel or the emulator) running one sequence: its processes,
/// their userfaultfd contexts, the current process, and the monitor that answers page faults while an
/// operation is under way. The operations themselves are the subclass's; everything that must behave
/// the same on both sides (dispatch, the monitor's policy, timeouts, normalising results) is here.
/// </summary>
/// <typeparam name="TProc">A process of this side.</typeparam>
public abstract class DiffSide<TProc> : IDisposable
    where TProc : class
{
    /// <summary>How long one step may take before the side is declared hung.</summary>
    public const int StepTimeoutMs = 6000;

    private const int MaxFaultsPerPage = 6;
    private readonly List<TProc> _procs = [];
    private readonly List<List<IDiffUffd>> _contexts = [];
    private readonly List<IDiffUffd> _forkChildren = [];
    private readonly Dictionary<ulong, int> _faults = [];
    private int _current;
    private int _policy;
    private bool _disposed;

    /// <summary>True once a step timed out: the side's state is unknown and the sequence stops.</summary>
    public bool Broken { get; private set; }

    /// <summary>Live processes.</summary>
    public int ProcessCount => _procs.Count;

    /// <summary>Runs one operation on the current process, serving userfaultfd messages until it completes.</summary>
    /// <param name="op">The operation.</param>
    public StepOutcome Execute(DiffOp op)
    {
        _faults.Clear();
        TProc proc = _procs[_current];
        switch (op.Kind)
        {
            case DiffOpKind.Switch:
                _current = (int)(op.A % (ulong)_procs.Count);
                return new StepOutcome();
            case DiffOpKind.Exit:
                if (_procs.Count > 1)
                {
                    CloseContexts(_current);
                    Exit(proc);
                    _procs.RemoveAt(_current);
                    _contexts.RemoveAt(_current);
                    _current = 0;
                }

                return new StepOutcome();
            case DiffOpKind.Policy:
                _policy = (int)op.A;
                return new StepOutcome();
            case DiffOpKind.Fork when _procs.Count >= DiffWindow.MaxProcesses:
                return new StepOutcome { Result = "skipped (process limit)" };
            case DiffOpKind.UffdOpen:
            {
                IDiffUffd? ctx = OpenUffd(proc, op.A, out long rc);
                if (ctx is not null)
                {
                    _contexts[_current].Add(ctx);
                }

                return StepOutcome.Rc(rc);
            }

            case >= DiffOpKind.UffdClose and <= DiffOpKind.UffdWake:
                return RunUffdOp(op);
        }

        var log = new List<string>();
        StepOutcome? done = RunServed(proc, op, log);
        if (done is not { } outcome)
        {
            var hung = new StepOutcome { Result = $"timeout after {StepTimeoutMs} ms" };
            hung.Messages.AddRange(log);
            return hung;
        }

        outcome.Messages.AddRange(log);
        if (outcome.Child is TProc child)
        {
            _procs.Add(child);
            _contexts.Add([.. _forkChildren]);
            outcome.Child = null;
        }

        _forkChildren.Clear();
        if (outcome.MappedAt is ulong at)
        {
            ulong len = op.Kind == DiffOpKind.Mmap ? op.Len : op.A;
            if (DiffWindow.InCompareArea(at))
            {
                outcome.Result = $"0 at {DiffFormat.Addr(at)}";
            }
            else
            {
                // Unmapped again at once, as an operation of the step: a registered VMA's UNMAP event must be read
                // before the host's munmap returns (userfaultfd_unmap_complete waits for the monitor).
                outcome.Result = "0 elsewhere";
                if (RunServed(proc, new DiffOp(DiffOpKind.Munmap, at, (len + DiffWindow.Page - 1) & ~(DiffWindow.Page - 1)), outcome.Messages) is null)
                {
                    outcome.Result = $"0 elsewhere, then a munmap timeout after {StepTimeoutMs} ms";
                }
            }

            outcome.MappedAt = null;
        }

        return outcome;
    }

    /// <summary>Starts <paramref name="op"/> on <paramref name="proc"/> and serves userfaultfd messages (into <paramref name="log"/>)
    /// until it completes.</summary>
    /// <returns>Its outcome; or null when it did not complete within <see cref="StepTimeoutMs"/> (the side is then
    /// <see cref="Broken"/>).</returns>
    private StepOutcome? RunServed(TProc proc, DiffOp op, List<string> log)
    {
        DiffPending pending = op.Kind == DiffOpKind.Fork ? StartFork(proc) : Start(proc, op);
        long deadline = Environment.TickCount64 + StepTimeoutMs;
        while (!pending.TryComplete(1))
        {
            Serve(log);
            if (Environment.TickCount64 > deadline)
            {
                Broken = true;
                Abort();
                return null;
            }
        }

        StepOutcome outcome = pending.Finish();
        Serve(log);
        Serve(log);
        return outcome;
    }

    /// <summary>The state of every live process, in order.</summary>
    public List<ProcessState> Snapshot() => _procs.Select(Snapshot).ToList();

    /// <summary>Closes every context and process.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        for (int i = 0; i < _procs.Count; i++)
        {
            CloseContexts(i);
        }

        foreach (TProc p in _procs)
        {
            Exit(p);
        }

        _procs.Clear();
        DisposeSide();
        GC.SuppressFinalize(this);
    }

    /// <summary>Registers the sequence's first process.</summary>
    /// <param name="proc">The process.</param>
    protected void AddRoot(TProc proc)
    {
        _procs.Add(proc);
        _contexts.Add([]);
    }

    /// <summary>Starts a memory operation (mmap … ftruncate, CPU read and write) on <paramref name="proc"/>.</summary>
    /// <param name="proc">The process.</param>
    /// <param name="op">The operation.</param>
    protected abstract DiffPending Start(TProc proc, DiffOp op);

    /// <summary>Starts fork() of <paramref name="proc"/>; the outcome's <see cref="StepOutcome.Child"/> is the child.</summary>
    /// <param name="proc">The parent.</param>
    protected abstract DiffPending StartFork(TProc proc);

    /// <summary>Ends a process.</summary>
    /// <param name="proc">The process.</param>
    protected abstract void Exit(TProc proc);

    /// <summary>userfaultfd() in <paramref name="proc"/> and UFFDIO_API with <paramref name="features"/>.</summary>
    /// <param name="proc">The process.</param>
    /// <param name="features">UFFD_FEATURE_* bits.</param>
    /// <param name="rc">0 or the negated errno of the first call that failed.</param>
    /// <returns>The context, or null when it could not be made.</returns>
    protected abstract IDiffUffd? OpenUffd(TProc proc, ulong features, out long rc);

    /// <summary>The process's VMAs and pages in the compared areas.</summary>
    protected abstract ProcessState Snapshot(TProc proc);

    /// <summary>UFFDIO_MOVE on <paramref name="ctx"/>, issued as a monitor thread of <paramref name="proc"/> would issue it
    /// (Linux refuses a move whose caller is in another address space: userfaultfd_move's mm != current->mm check).</summary>
    /// <param name="proc">The process the context's address space belongs to.</param>
    /// <param name="ctx">The context.</param>
    /// <param name="dst">Destination.</param>
    /// <param name="src">Source.</param>
    /// <param name="len">Bytes.</param>
    /// <param name="mode">UFFDIO_MOVE_MODE_* bits.</param>
    /// <param name="count">uffdio_move.move.</param>
    /// <returns>0 or -errno.</returns>
    protected virtual long Move(TProc proc, IDiffUffd ctx, ulong dst, ulong src, ulong len, ulong mode, out long count) =>
        ctx.Move(dst, src, len, mode, out count);

    /// <summary>A step timed out: stop whatever still runs.</summary>
    protected abstract void Abort();

    /// <summary>Releases what the side holds beyond its processes.</summary>
    protected abstract void DisposeSide();

    private StepOutcome RunUffdOp(DiffOp op)
    {
        List<IDiffUffd> list = _contexts[_current];
        if (list.Count == 0)
        {
            return new StepOutcome { Result = "skipped (no userfaultfd)" };
        }

        int index = (int)(op.A % (ulong)list.Count);
        IDiffUffd ctx = list[index];
        long count = 0;
        string detail = string.Empty;
        long rc;
        switch (op.Kind)
        {
            case DiffOpKind.UffdClose:
                ctx.Close();
                list.RemoveAt(index);
                rc = 0;
                break;
            case DiffOpKind.UffdRegister:
                rc = ctx.Register(op.Addr, op.Len, op.B, out ulong ioctls);
                detail = rc == 0 ? $"ioctls=0x{ioctls & ~(1UL << 8):x}" : string.Empty; // UFFDIO_POISON (bit 8) is not emulated
                break;
            case DiffOpKind.UffdUnregister:
                rc = ctx.Unregister(op.Addr, op.Len);
                break;
            case DiffOpKind.UffdCopy:
                rc = ctx.Copy(op.Addr, DiffData.Pattern(op.C, (int)op.Len), op.B, out count);
                detail = Counted("copy", rc, count);
                break;
            case DiffOpKind.UffdZeroPage:
                rc = ctx.ZeroPage(op.Addr, op.Len, op.B, out count);
                detail = Counted("zeropage", rc, count);
                break;
            case DiffOpKind.UffdWriteProtect:
                rc = ctx.WriteProtect(op.Addr, op.Len, op.B);
                break;
            case DiffOpKind.UffdContinue:
                rc = ctx.Continue(op.Addr, op.Len, op.B, out count);
                detail = Counted("mapped", rc, count);
                break;
            case DiffOpKind.UffdMove:
                rc = Move(_procs[_current], ctx, op.Addr, op.C, op.Len, op.B, out count);
                detail = Counted("move", rc, count);
                break;
            default:
                rc = ctx.Wake(op.Addr, op.Len);
                break;
        }

        StepOutcome outcome = StepOutcome.Rc(rc);
        outcome.Detail = detail;
        Serve(outcome.Messages);
        return outcome;
    }

    /// <summary>The count a resolution ioctl wrote back, where it says more than the return value: bytes done. The kernel
    /// leaves the field alone when it rejects the arguments and writes the negated errno when nothing was done, which
    /// the emulator's API does not tell apart, so a count of zero or below is not compared.</summary>
    private static string Counted(string field, long rc, long count) => count > 0 || rc == 0 ? $"{field}={count}" : string.Empty;

    /// <summary>Reads every context's messages and answers page faults: WP faults by un-protecting the page,
    /// MINOR faults by UFFDIO_CONTINUE, missing pages by UFFDIO_COPY of a pattern or UFFDIO_ZEROPAGE (the
    /// policy). A page that keeps faulting is given up on by closing its context, so no step waits forever.</summary>
    private void Serve(List<string> log)
    {
        for (int p = 0; p < _contexts.Count; p++)
        {
            List<IDiffUffd> list = _contexts[p];
            for (int c = 0; c < list.Count; c++)
            {
                IDiffUffd ctx = list[c];
                while (ctx.TryRead(out DiffMsg m))
                {
                    log.Add($"p{p}.uffd{c}: {m}");
                    if (m.Event == DiffMsg.Fork && m.Child is not null)
                    {
                        _forkChildren.Add(m.Child);
                    }
                    else if (m.Event == DiffMsg.Pagefault && !Resolve(ctx, m, log))
                    {
                        log.Add($"p{p}.uffd{c}: monitor gives up, closes it");
                        ctx.Close();
                        list.RemoveAt(c);
                        c--;
                        break;
                    }
                }
            }
        }
    }

    private bool Resolve(IDiffUffd ctx, DiffMsg m, List<string> log)
    {
        ulong page = m.Address & ~(DiffWindow.Page - 1);
        int n = _faults.TryGetValue(page, out int k) ? k + 1 : 1;
        _faults[page] = n;
        if (n > MaxFaultsPerPage)
        {
            return false;
        }

        long rc;
        string how;
        if ((m.Flags & 2) != 0)
        {
            how = "WRITEPROTECT(clear)";
            rc = ctx.WriteProtect(page, DiffWindow.Page, 0);
        }
        else if ((m.Flags & 4) != 0)
        {
            how = "CONTINUE";
            rc = ctx.Continue(page, DiffWindow.Page, 0, out _);
        }
        else if (_policy == 0)
        {
            how = "COPY";
            rc = ctx.Copy(page, DiffData.Pattern(page >> 12, (int)DiffWindow.Page), 0, out _);
        }
        else
        {
            how = "ZEROPAGE";
            rc = ctx.ZeroPage(page, DiffWindow.Page, 0, out _);
        }

        log.Add($"  answer {how} → {DiffFormat.Rc(rc)}");
        if (rc != 0)
        {
            ctx.Wake(page, DiffWindow.Page);
        }

        return true;
    }

    private void CloseContexts(int proc)
    {
        foreach (IDiffUffd ctx in _contexts[proc])
        {
            ctx.Close();
        }

        _contexts[proc].Clear();
    }
}
