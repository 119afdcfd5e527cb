using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using MirrorEmu.Calibration;

namespace MirrorEmu.Tests.Differential;

/// <summary>
/// The host kernel's side: a sequence runs in a fresh server process forked from a bare base server
/// (<see cref="LinuxMmProcess"/>); its files are memfds (A: 16 pages, B: 8 pages, the guards' file: 1
/// page) at descriptors 2, 3, 4 of every process of the sequence. CPU accesses are the server's
/// <c>rep movsb</c>, so they fault exactly as user code does; state is read from /proc.
/// </summary>
internal sealed class HostSide : DiffSide<LinuxMmProcess>
{
    private const int Timeout = StepTimeoutMs;
    private const int FdA = 2;
    private const int FdB = 3;
    private const int FdGuard = 4;
    private const ulong Vec = DiffWindow.Scratch + DiffWindow.Page;
    private const ulong NameBuf = DiffWindow.Scratch + (2 * DiffWindow.Page);
    private readonly List<LinuxMmProcess> _all = [];
    private readonly SafeFileHandle[] _files = new SafeFileHandle[3];

    private HostSide(LinuxMmProcess root)
    {
        _all.Add(root);
        AddRoot(root);
    }

    /// <summary>Bytes per page of file A, B and the guards' file at the start of every sequence.</summary>
    public static readonly (string Name, int Pages, byte Fill)[] Files = [("A", 16, 0x80), ("B", 8, 0xA0), ("guard", 1, 0)];

    /// <summary>Starts a sequence: forks a server from <paramref name="baseServer"/>, makes the files and maps the guards.</summary>
    /// <param name="baseServer">The base server (<see cref="LinuxMmProcess.TrySpawnBase"/>).</param>
    /// <param name="why">Why the window could not be set up, or empty.</param>
    /// <returns>The side, or null.</returns>
    public static HostSide? TryCreate(LinuxMmProcess baseServer, out string why)
    {
        LinuxMmProcess root = baseServer.ForkInto(DiffWindow.Scratch, 2, Timeout);
        var side = new HostSide(root);
        try
        {
            for (int i = 0; i < Files.Length; i++)
            {
                (string name, int pages, byte fill) = Files[i];
                root.WriteMemory(NameBuf, Encoding.ASCII.GetBytes(name + "\0"));
                long fd = root.Call(LinuxMm.SysMemfdCreate, (long)NameBuf, 0, 0, 0, 0, 0, Timeout).Result;
                if (fd != FdA + i)
                {
                    why = $"memfd_create in the server returned {fd}, not {FdA + i}";
                    side.Dispose();
                    return null;
                }

                side._files[i] = new SafeFileHandle(root.GetFd((int)fd), ownsHandle: true);
                for (int p = 0; p < pages; p++)
                {
                    byte[] page = new byte[DiffWindow.Page];
                    Array.Fill(page, (byte)(fill + p));
                    RandomAccess.Write(side._files[i], page, p * (long)DiffWindow.Page);
                }
            }

            foreach (ulong guard in (ReadOnlySpan<ulong>)[DiffWindow.GuardLow, DiffWindow.GuardHigh, DiffWindow.GuardHighWindow])
            {
                long at = root.Call(LinuxMm.SysMmap, (long)guard, (long)DiffWindow.Page, 0, 0x100002, FdGuard, 0, Timeout).Result;
                if (at != (long)guard)
                {
                    why = $"the window is not free in the host process: MAP_FIXED_NOREPLACE of the guard at {DiffFormat.Addr(guard)} returned {DiffFormat.Rc(at)}";
                    side.Dispose();
                    return null;
                }
            }

            why = string.Empty;
            return side;
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException)
        {
            why = e.Message;
            side.Dispose();
            return null;
        }
    }

    /// <inheritdoc/>
    protected override DiffPending Start(LinuxMmProcess proc, DiffOp op)
    {
        switch (op.Kind)
        {
            case DiffOpKind.Mmap:
                return Syscall(proc, LinuxMm.SysMmap, mapping: true, (long)op.Addr, (long)op.Len, (long)op.A, (long)op.B, op.C switch { 1 => FdA, 2 => FdB, _ => -1 }, (long)op.D);
            case DiffOpKind.Mremap:
                return Syscall(proc, LinuxMm.SysMremap, mapping: true, (long)op.Addr, (long)op.Len, (long)op.A, (long)op.B, (long)op.C);
            case DiffOpKind.Munmap:
                return Syscall(proc, LinuxMm.SysMunmap, mapping: false, (long)op.Addr, (long)op.Len);
            case DiffOpKind.Mprotect:
                return Syscall(proc, LinuxMm.SysMprotect, mapping: false, (long)op.Addr, (long)op.Len, (long)op.A);
            case DiffOpKind.Madvise:
                return Syscall(proc, LinuxMm.SysMadvise, mapping: false, (long)op.Addr, (long)op.Len, (long)op.A);
            case DiffOpKind.Msync:
                return Syscall(proc, LinuxMm.SysMsync, mapping: false, (long)op.Addr, (long)op.Len, (long)op.A);
            case DiffOpKind.Mlock:
                return Syscall(proc, LinuxMm.SysMlock2, mapping: false, (long)op.Addr, (long)op.Len, (long)op.A);
            case DiffOpKind.Munlock:
                return Syscall(proc, LinuxMm.SysMunlock, mapping: false, (long)op.Addr, (long)op.Len);
            case DiffOpKind.Ftruncate:
                return Syscall(proc, LinuxMm.SysFtruncate, mapping: false, op.A == 1 ? FdA : FdB, (long)op.B);
            case DiffOpKind.Mincore:
            {
                proc.Begin(LinuxMm.SysMincore, (long)op.Addr, (long)op.Len, (long)Vec);
                LinuxMmProcess.Reply r = default;
                return new DiffPending(ms => proc.TryComplete(ms, out r), () =>
                {
                    StepOutcome o = StepOutcome.Rc(r.Result);
                    if (r.Result == 0)
                    {
                        byte[] vec = new byte[(op.Len + DiffWindow.Page - 1) / DiffWindow.Page];
                        proc.ReadMemory(Vec, vec);
                        o.Detail = "vec=" + string.Concat(vec.Select(b => (b & 1) != 0 ? '1' : '0'));
                    }

                    return o;
                });
            }

            case DiffOpKind.Write:
            {
                proc.WriteMemory(DiffWindow.ScratchData, DiffData.Pattern(op.A, (int)op.Len));
                proc.Begin(LinuxMm.CmdCopy, (long)op.Addr, (long)DiffWindow.ScratchData, (long)op.Len);
                LinuxMmProcess.Reply r = default;
                return new DiffPending(ms => proc.TryComplete(ms, out r), () => AccessOutcome(r));
            }

            default: // Read
            {
                proc.Begin(LinuxMm.CmdCopy, (long)DiffWindow.ScratchData, (long)op.Addr, (long)op.Len);
                LinuxMmProcess.Reply r = default;
                return new DiffPending(ms => proc.TryComplete(ms, out r), () =>
                {
                    StepOutcome o = AccessOutcome(r);
                    byte[] data = new byte[(int)op.Len - (int)r.Result];
                    proc.ReadMemory(DiffWindow.ScratchData, data);
                    o.Detail = "data=" + DiffData.Id(data);
                    return o;
                });
            }
        }
    }

    /// <inheritdoc/>
    protected override DiffPending StartFork(LinuxMmProcess proc)
    {
        LinuxMmProcess.PendingFork fork = proc.BeginFork(DiffWindow.Scratch, FdGuard + 1, Timeout);
        LinuxMmProcess.Reply r = default;
        return new DiffPending(ms => proc.TryComplete(ms, out r), () =>
        {
            LinuxMmProcess child = proc.EndFork(fork, r, Timeout);
            _all.Add(child);
            return new StepOutcome { Child = child };
        });
    }

    /// <inheritdoc/>
    protected override void Exit(LinuxMmProcess proc) => proc.Dispose();

    /// <inheritdoc/>
    protected override IDiffUffd? OpenUffd(LinuxMmProcess proc, ulong features, out long rc)
    {
        rc = proc.Call(LinuxMm.SysUserfaultfd, 0x80800, 0, 0, 0, 0, 0, Timeout).Result; // O_CLOEXEC | O_NONBLOCK
        if (rc < 0)
        {
            return null;
        }

        int fd = proc.GetFd((int)rc);
        _ = proc.Call(LinuxMm.SysClose, rc, 0, 0, 0, 0, 0, Timeout);
        var ctx = new HostUffd(fd);
        rc = ctx.Api(features);
        if (rc != 0)
        {
            ctx.Close();
            return null;
        }

        return ctx;
    }

    /// <summary>Where the server stages a uffdio_move (a page of scratch no other command uses).</summary>
    private const ulong MoveArgs = DiffWindow.Scratch + (3 * DiffWindow.Page);

    /// <summary>UFFDIO_MOVE from inside the server whose pages move: the test process holds the context's descriptor, but
    /// Linux refuses a move from another address space (-EINVAL), so the server duplicates the descriptor from the test
    /// process (pidfd_open + pidfd_getfd), makes the ioctl on a uffdio_move staged in its scratch, and closes it again.</summary>
    protected override long Move(LinuxMmProcess proc, IDiffUffd ctx, ulong dst, ulong src, ulong len, ulong mode, out long count)
    {
        count = 0;
        long pidfd = proc.Call(LinuxMm.SysPidfdOpen, Environment.ProcessId, 0, 0, 0, 0, 0, Timeout).Result;
        if (pidfd < 0)
        {
            return pidfd;
        }

        long fd = proc.Call(LinuxMm.SysPidfdGetfd, pidfd, ((HostUffd)ctx).Fd, 0, 0, 0, 0, Timeout).Result;
        _ = proc.Call(LinuxMm.SysClose, pidfd, 0, 0, 0, 0, 0, Timeout);
        if (fd < 0)
        {
            return fd;
        }

        Span<ulong> args = [dst, src, len, mode, 0];
        proc.WriteMemory(MoveArgs, System.Runtime.InteropServices.MemoryMarshal.AsBytes(args));
        long rc = proc.Call(LinuxMm.SysIoctl, fd, unchecked((long)HostUffd.UffdioMove), (long)MoveArgs, 0, 0, 0, Timeout).Result;
        proc.ReadMemory(MoveArgs, System.Runtime.InteropServices.MemoryMarshal.AsBytes(args));
        count = (long)args[4];
        _ = proc.Call(LinuxMm.SysClose, fd, 0, 0, 0, 0, 0, Timeout);
        return rc;
    }

    /// <inheritdoc/>
    protected override ProcessState Snapshot(LinuxMmProcess proc)
    {
        var vmas = new List<string>();
        var pages = new List<string>();
        foreach (SmapsEntry e in ParseSmaps(proc.ReadSmaps()))
        {
            if (!DiffWindow.InCompareArea(e.Start))
            {
                continue;
            }

            vmas.Add(DiffState.Vma(e.Start, e.End, e.Perms, e.Kind, e.PgOff, e.Flags, e.AnonHugeKb));
            foreach ((ulong from, ulong to) in DiffWindow.ComparedPages(e.Start, e.End))
            {
                SnapshotPages(proc, e, from, to, pages);
            }
        }

        return new ProcessState(vmas, pages);
    }

    /// <summary>The pages of [from, to) in one VMA: guard markers and uffd-wp bits from pagemap, the bytes of present pages from /proc/pid/mem, the rest peeked.</summary>
    private void SnapshotPages(LinuxMmProcess proc, SmapsEntry e, ulong from, ulong to, List<string> pages)
    {
        int n = (int)((to - from) / DiffWindow.Page);
        ulong[] map = new ulong[n];
        proc.ReadPagemap(from, map);
        byte[] page = new byte[DiffWindow.Page];
        for (int i = 0; i < n; i++)
        {
            ulong va = from + ((ulong)i * DiffWindow.Page);
            ulong pm = map[i];
            bool wp = (pm & (1UL << 57)) != 0;
            string content;
            if ((pm & (1UL << 58)) != 0)
            {
                content = "guard";
            }
            else if ((pm & (1UL << 63)) != 0)
            {
                proc.ReadMemory(va, page);
                content = DiffData.Id(page);
            }
            else
            {
                content = PeekUnmapped(proc, e, va, page);
            }

            pages.Add(DiffState.Page(va, content, wp));
        }
    }

    /// <inheritdoc/>
    protected override void Abort()
    {
        foreach (LinuxMmProcess p in _all)
        {
            p.Kill();
        }
    }

    /// <inheritdoc/>
    protected override void DisposeSide()
    {
        foreach (LinuxMmProcess p in _all)
        {
            p.Dispose();
        }

        foreach (SafeFileHandle? f in _files)
        {
            f?.Dispose();
        }
    }

    private static DiffPending Syscall(LinuxMmProcess proc, long nr, bool mapping, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0)
    {
        proc.Begin(nr, a1, a2, a3, a4, a5, a6);
        LinuxMmProcess.Reply r = default;
        return new DiffPending(ms => proc.TryComplete(ms, out r), () =>
            mapping && (r.Result >= 0 || r.Result < -4095) ? new StepOutcome { MappedAt = (ulong)r.Result } : StepOutcome.Rc(r.Result));
    }

    private static StepOutcome AccessOutcome(LinuxMmProcess.Reply r) => r.Signal == 0
        ? new StepOutcome { Result = "ok" }
        : new StepOutcome { Result = $"{(r.Signal == 11 ? "SIGSEGV" : r.Signal == 7 ? "SIGBUS" : $"signal {r.Signal}")} at {DiffFormat.Addr(r.FaultAddress)}" };

    /// <summary>What a page that is not mapped holds, read without faulting it in: zeros for anonymous memory, the
    /// file's page for file and shmem mappings (SIGBUS beyond the end of the file).</summary>
    private string PeekUnmapped(LinuxMmProcess proc, SmapsEntry e, ulong va, byte[] page)
    {
        if (e.Kind == "anon")
        {
            return "zero";
        }

        ulong offset = (e.PgOff + ((va - e.Start) / DiffWindow.Page)) * DiffWindow.Page;
        SafeFileHandle? owned = null;
        SafeFileHandle h;
        if (e.Kind == "shmem")
        {
            owned = File.OpenHandle($"/proc/{proc.Pid}/map_files/{e.Start:x}-{e.End:x}", FileMode.Open, FileAccess.Read);
            h = owned;
        }
        else
        {
            h = _files[e.Kind switch { "fileA" => 0, "fileB" => 1, _ => 2 }];
        }

        using (owned)
        {
            if (offset >= (ulong)RandomAccess.GetLength(h))
            {
                return "sigbus";
            }

            Array.Clear(page);
            _ = RandomAccess.Read(h, page, (long)offset);
            return DiffData.Id(page);
        }
    }

    private sealed record SmapsEntry(ulong Start, ulong End, string Perms, string Kind, ulong PgOff, string Flags, long AnonHugeKb);

    private static List<SmapsEntry> ParseSmaps(string text)
    {
        var list = new List<SmapsEntry>();
        ulong start = 0, end = 0, pgoff = 0;
        string perms = string.Empty, kind = string.Empty;
        long anonHuge = 0;
        foreach (string line in text.Split('\n'))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash && line.AsSpan(0, dash).IndexOfAnyExcept("0123456789abcdef") < 0)
            {
                string[] parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                start = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                end = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                perms = parts[1];
                pgoff = ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture) / DiffWindow.Page;
                string path = parts.Length > 5 ? parts[5].Trim() : string.Empty;
                kind = path switch
                {
                    "" => "anon",
                    _ when path.StartsWith("/dev/zero", StringComparison.Ordinal) => "shmem",
                    _ when path.StartsWith("/memfd:A ", StringComparison.Ordinal) => "fileA",
                    _ when path.StartsWith("/memfd:B ", StringComparison.Ordinal) => "fileB",
                    _ when path.StartsWith("/memfd:guard ", StringComparison.Ordinal) => "fileGuard",
                    _ => path,
                };
                anonHuge = 0;
            }
            else if (line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
            {
                anonHuge = long.Parse(line.AsSpan(14).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("VmFlags:", StringComparison.Ordinal))
            {
                string[] flags = line[8..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                list.Add(new SmapsEntry(start, end, perms, kind, kind == "anon" ? 0 : pgoff, DiffState.Flags(flags), anonHuge));
            }
        }

        return list;
    }

    /// <summary>A userfaultfd of the host, held by the test process (a pidfd_getfd duplicate of the server's), so
    /// that the test process is the monitor: its ioctls act on the server's address space.</summary>
    private sealed unsafe class HostUffd(int fd) : IDiffUffd
    {
        /// <summary>The descriptor in the test process.</summary>
        public int Fd => fd;

        private const ulong UffdioApi = 0xC018AA3F;
        private const ulong UffdioRegister = 0xC020AA00;
        private const ulong UffdioUnregister = 0x8010AA01;
        private const ulong UffdioWake = 0x8010AA02;
        private const ulong UffdioCopy = 0xC028AA03;
        private const ulong UffdioZeroPage = 0xC020AA04;
        internal const ulong UffdioMove = 0xC028AA05;
        private const ulong UffdioWriteProtect = 0xC018AA06;
        private const ulong UffdioContinue = 0xC020AA07;
        private bool _closed;

        public long Api(ulong features)
        {
            ulong* a = stackalloc ulong[3] { 0xAA, features, 0 };
            return Ioctl(UffdioApi, a);
        }

        public bool TryRead(out DiffMsg msg)
        {
            msg = default;
            if (_closed)
            {
                return false;
            }

            byte* m = stackalloc byte[32];
            if (LinuxMm.Read(fd, m, 32) != 32)
            {
                return false;
            }

            ulong a = *(ulong*)(m + 8), b = *(ulong*)(m + 16), c = *(ulong*)(m + 24);
            msg = m[0] switch
            {
                DiffMsg.Pagefault => new DiffMsg(m[0], b, a, 0, null),
                DiffMsg.Fork => new DiffMsg(m[0], 0, 0, 0, new HostUffd((int)*(uint*)(m + 8))),
                _ => new DiffMsg(m[0], a, b, c, null),
            };
            return true;
        }

        public long Register(ulong start, ulong len, ulong mode, out ulong ioctls)
        {
            ulong* r = stackalloc ulong[4] { start, len, mode, 0 };
            long rc = Ioctl(UffdioRegister, r);
            ioctls = r[3];
            return rc;
        }

        public long Unregister(ulong start, ulong len)
        {
            ulong* r = stackalloc ulong[2] { start, len };
            return Ioctl(UffdioUnregister, r);
        }

        public long Copy(ulong dst, byte[] src, ulong mode, out long count)
        {
            fixed (byte* s = src)
            {
                ulong* c = stackalloc ulong[5] { dst, (ulong)s, (ulong)src.Length, mode, 0 };
                long rc = Ioctl(UffdioCopy, c);
                count = (long)c[4];
                return rc;
            }
        }

        public long ZeroPage(ulong dst, ulong len, ulong mode, out long count)
        {
            ulong* z = stackalloc ulong[4] { dst, len, mode, 0 };
            long rc = Ioctl(UffdioZeroPage, z);
            count = (long)z[3];
            return rc;
        }

        public long WriteProtect(ulong start, ulong len, ulong mode)
        {
            ulong* w = stackalloc ulong[3] { start, len, mode };
            return Ioctl(UffdioWriteProtect, w);
        }

        public long Continue(ulong start, ulong len, ulong mode, out long count)
        {
            ulong* c = stackalloc ulong[4] { start, len, mode, 0 };
            long rc = Ioctl(UffdioContinue, c);
            count = (long)c[3];
            return rc;
        }

        public long Move(ulong dst, ulong src, ulong len, ulong mode, out long count)
        {
            ulong* m = stackalloc ulong[5] { dst, src, len, mode, 0 };
            long rc = Ioctl(UffdioMove, m);
            count = (long)m[4];
            return rc;
        }

        public long Wake(ulong start, ulong len)
        {
            ulong* r = stackalloc ulong[2] { start, len };
            return Ioctl(UffdioWake, r);
        }

        public void Close()
        {
            if (!_closed)
            {
                _closed = true;
                LinuxMm.Close(fd);
            }
        }

        private long Ioctl(ulong request, void* arg) =>
            _closed ? -Errno.EBADF : LinuxMm.Ioctl(fd, request, arg) == 0 ? 0 : -Marshal.GetLastPInvokeError();
    }
}
