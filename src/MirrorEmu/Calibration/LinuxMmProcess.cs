using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace MirrorEmu.Calibration;

/// <summary>
/// A child process of the host kernel that runs syscalls on command (<see cref="LinuxMm"/>'s server):
/// a private address space in which operation sequences run on the real kernel, read back from
/// <c>/proc/&lt;pid&gt;/smaps</c>, <c>pagemap</c> and <c>mem</c>.
/// </summary>
/// <remarks>
/// <para>One command is in flight at a time: <see cref="Begin"/> sends it, <see cref="TryComplete"/>
/// waits (with a timeout) for its reply. A command may block in the kernel (a fault waiting for a
/// userfaultfd monitor); the caller serves the monitor meanwhile and polls <see cref="ResultFd"/>.</para>
/// <para>Every wait is bounded: a process that does not answer in time is killed, never waited on forever.</para>
/// </remarks>
internal sealed unsafe class LinuxMmProcess : IDisposable
{
    private const int Sigkill = 9;
    private const int OCloexec = 0x80000;
    private readonly int _cmdFd;
    private readonly int _resFd;
    private readonly int _pidfd;
    private SafeFileHandle? _mem;
    private bool _inFlight;
    private bool _dead;
    private int _disposed;

    private LinuxMmProcess(int pid, int cmdFd, int resFd, bool isOurChild)
    {
        Pid = pid;
        _cmdFd = cmdFd;
        _resFd = resFd;
        IsOurChild = isOurChild;
        _pidfd = (int)LinuxMm.Syscall(LinuxMm.SysPidfdOpen, pid, 0, 0);
    }

    /// <summary>The process id.</summary>
    public int Pid { get; }

    /// <summary>True if this process is a child of the test process (so it must be reaped here).</summary>
    public bool IsOurChild { get; }

    /// <summary>The descriptor the replies arrive on, for <see cref="LinuxMm.Poll"/>.</summary>
    public int ResultFd => _resFd;

    /// <summary>The descriptors held for the process (command pipe, reply pipe, pidfd; -1 where none), closed by <see cref="Dispose"/>.</summary>
    public int[] Descriptors => [_cmdFd, _resFd, _pidfd];

    /// <summary>True once the process was killed or stopped answering.</summary>
    public bool IsDead => _dead;

    /// <summary>
    /// Forks the test process into a bare server: it resets every signal handler, unblocks every
    /// signal, installs the copy command's SIGSEGV/SIGBUS handler, maps <paramref name="scratchPages"/>
    /// pages at <paramref name="scratch"/>, and unmaps everything else it inherited except its code, its
    /// stack and the vDSO, so that it forks in microseconds.
    /// </summary>
    /// <param name="scratch">Page-aligned address of the scratch area (command structures, copy buffers).</param>
    /// <param name="scratchPages">Its size in pages.</param>
    /// <param name="timeoutMs">Bound on each command.</param>
    /// <param name="why">Why it failed, or empty.</param>
    /// <returns>The server, or null.</returns>
    public static LinuxMmProcess? TrySpawnBase(ulong scratch, int scratchPages, int timeoutMs, out string why)
    {
        if (!LinuxMm.IsSupported(out why))
        {
            return null;
        }

        int* cmd = stackalloc int[2];
        int* res = stackalloc int[2];
        if (LinuxMm.Pipe2(cmd, OCloexec) != 0 || LinuxMm.Pipe2(res, OCloexec) != 0)
        {
            why = $"pipe2 failed: errno {Marshal.GetLastPInvokeError()}";
            return null;
        }

        int stackLocal = 0;
        ulong stackAddress = (ulong)&stackLocal;
        long pid = LinuxMm.Spawn(cmd[0], res[1]);
        LinuxMm.Close(cmd[0]);
        LinuxMm.Close(res[1]);
        if (pid <= 0)
        {
            LinuxMm.Close(cmd[1]);
            LinuxMm.Close(res[0]);
            why = $"fork failed: {pid}";
            return null;
        }

        var p = new LinuxMmProcess((int)pid, cmd[1], res[0], isOurChild: true);
        try
        {
            if (!p.TryComplete(timeoutMs, out _))
            {
                why = "the forked server did not answer its handshake";
                p.Dispose();
                return null;
            }

            if (p._pidfd < 0)
            {
                why = $"pidfd_open failed: errno {Marshal.GetLastPInvokeError()} (needs Linux 5.6)";
                p.Dispose();
                return null;
            }

            ulong length = (ulong)scratchPages * LinuxMm.PageSize;
            long at = p.Call(LinuxMm.SysMmap, (long)scratch, (long)length, 3, 0x100022, -1, 0, timeoutMs).Result; // MAP_FIXED_NOREPLACE|PRIVATE|ANON
            if (at != (long)scratch)
            {
                why = $"the scratch area at 0x{scratch:X} is not free in the forked process ({at})";
                p.Dispose();
                return null;
            }

            // Default dispositions everywhere (the runtime's handlers are about to be unmapped), children
            // reaped automatically, nothing blocked; then the copy command's handler for SIGSEGV and SIGBUS.
            Span<ulong> act = stackalloc ulong[4];
            for (int sig = 1; sig <= 64; sig++)
            {
                act.Clear();
                act[0] = sig == 17 ? 1UL : 0UL; // SIGCHLD: SIG_IGN
                p.WriteMemory(scratch, MemoryMarshal.AsBytes(act));
                _ = p.Call(LinuxMm.SysRtSigaction, sig, (long)scratch, 0, 8, 0, 0, timeoutMs);
            }

            ulong code = (ulong)LinuxMm.ServerCode;
            act[0] = code + LinuxMm.HandlerOffset;
            act[1] = 0x04000000 | 0x4 | 0x40000000; // SA_RESTORER | SA_SIGINFO | SA_NODEFER
            act[2] = code + LinuxMm.RestorerOffset;
            act[3] = 0;
            p.WriteMemory(scratch, MemoryMarshal.AsBytes(act));
            foreach (int sig in (ReadOnlySpan<int>)[11, 7])
            {
                long r = p.Call(LinuxMm.SysRtSigaction, sig, (long)scratch, 0, 8, 0, 0, timeoutMs).Result;
                if (r != 0)
                {
                    why = $"rt_sigaction({sig}) failed in the server: {r}";
                    p.Dispose();
                    return null;
                }
            }

            act.Clear();
            p.WriteMemory(scratch, MemoryMarshal.AsBytes(act));
            _ = p.Call(LinuxMm.SysRtSigprocmask, 2, (long)scratch, 0, 8, 0, 0, timeoutMs); // SIG_SETMASK, empty

            // Shed the runtime: unmap every gap between what the server needs.
            var keep = new List<(ulong Start, ulong End)>();
            foreach ((ulong start, ulong end, string name) in p.ReadMaps())
            {
                bool needed = (start <= code && code < end) || (start <= stackAddress && stackAddress < end)
                    || (start <= scratch && scratch < end) || name.StartsWith("[v", StringComparison.Ordinal);
                if (needed)
                {
                    keep.Add((start, end));
                }
            }

            const ulong TaskSize = (1UL << 47) - LinuxMm.PageSize;
            ulong from = 0x10000;
            foreach ((ulong start, ulong end) in keep)
            {
                if (start >= TaskSize)
                {
                    break; // [vsyscall]
                }

                if (start > from)
                {
                    _ = p.Call(LinuxMm.SysMunmap, (long)from, (long)(start - from), 0, 0, 0, 0, timeoutMs);
                }

                from = Math.Max(from, end);
            }

            if (from < TaskSize)
            {
                _ = p.Call(LinuxMm.SysMunmap, (long)from, (long)(TaskSize - from), 0, 0, 0, 0, timeoutMs);
            }

            why = string.Empty;
            return p;
        }
        catch (TimeoutException e)
        {
            why = e.Message;
            p.Dispose();
            return null;
        }
    }

    /// <summary>
    /// Forks this server: the new one has its own command pipes and keeps the descriptors below
    /// <paramref name="closeFrom"/> (3 and up: files the caller opened in this server).
    /// </summary>
    /// <param name="scratch">The scratch area (it receives pipe2's descriptors).</param>
    /// <param name="closeFrom">The first descriptor the new server closes; at least 2, and above every descriptor it should keep.</param>
    /// <param name="timeoutMs">Bound on each command.</param>
    /// <returns>The new server (a child of this one).</returns>
    /// <exception cref="TimeoutException">This server stopped answering (it was killed).</exception>
    /// <exception cref="InvalidOperationException">A syscall failed.</exception>
    public LinuxMmProcess ForkInto(ulong scratch, int closeFrom, int timeoutMs)
    {
        PendingFork fork = BeginFork(scratch, closeFrom, timeoutMs);
        if (!TryComplete(timeoutMs, out Reply reply))
        {
            Kill();
            throw new TimeoutException($"server {Pid}: fork did not complete within {timeoutMs} ms; killed");
        }

        return EndFork(fork, reply, timeoutMs);
    }

    /// <summary>
    /// Starts a fork of this server (the first half of <see cref="ForkInto"/>): makes the new server's pipes and
    /// sends the fork command. The fork may block in the kernel (UFFD_FEATURE_EVENT_FORK waits until the monitor
    /// reads its message): poll <see cref="TryComplete"/>, then call <see cref="EndFork"/>.
    /// </summary>
    /// <param name="scratch">The scratch area (it receives pipe2's descriptors).</param>
    /// <param name="closeFrom">The first descriptor the new server closes.</param>
    /// <param name="timeoutMs">Bound on each command.</param>
    /// <exception cref="InvalidOperationException">A syscall failed.</exception>
    public PendingFork BeginFork(ulong scratch, int closeFrom, int timeoutMs)
    {
        // Two pipes inside this server; the test process takes the ends it talks through.
        int[] fds = new int[4];
        Span<int> pair = stackalloc int[2];
        for (int i = 0; i < 2; i++)
        {
            long r = Call(LinuxMm.SysPipe2, (long)scratch, 0, 0, 0, 0, 0, timeoutMs).Result;
            if (r != 0)
            {
                throw new InvalidOperationException($"pipe2 in the server failed: {r}");
            }

            ReadMemory(scratch, MemoryMarshal.AsBytes(pair));
            fds[2 * i] = pair[0];
            fds[(2 * i) + 1] = pair[1];
        }

        var fork = new PendingFork(fds, GetFd(fds[1]), GetFd(fds[2]));
        Begin(LinuxMm.CmdForkInto, fds[0], fds[3], closeFrom);
        return fork;
    }

    /// <summary>Finishes a fork started by <see cref="BeginFork"/>, given the reply to its command.</summary>
    /// <param name="fork">What <see cref="BeginFork"/> returned.</param>
    /// <param name="reply">The fork command's reply.</param>
    /// <param name="timeoutMs">Bound on each command.</param>
    /// <returns>The new server.</returns>
    /// <exception cref="InvalidOperationException">The fork failed.</exception>
    /// <exception cref="TimeoutException">The new server did not answer its handshake.</exception>
    public LinuxMmProcess EndFork(PendingFork fork, Reply reply, int timeoutMs)
    {
        foreach (int fd in fork.ServerFds)
        {
            _ = Call(LinuxMm.SysClose, fd, 0, 0, 0, 0, 0, timeoutMs);
        }

        if (reply.Result <= 0)
        {
            LinuxMm.Close(fork.CmdWrite);
            LinuxMm.Close(fork.ResRead);
            throw new InvalidOperationException($"fork in the server failed: {reply.Result}");
        }

        var child = new LinuxMmProcess((int)reply.Result, fork.CmdWrite, fork.ResRead, isOurChild: false);
        if (!child.TryComplete(timeoutMs, out _))
        {
            child.Dispose();
            throw new TimeoutException($"the forked server {reply.Result} did not answer its handshake within {timeoutMs} ms");
        }

        return child;
    }

    /// <summary>A fork under way: the new server's pipe descriptors in this server, and the test process's ends.</summary>
    /// <param name="ServerFds">The four pipe descriptors in the forking server (closed by <see cref="EndFork"/>).</param>
    /// <param name="CmdWrite">The test process's end of the new server's command pipe.</param>
    /// <param name="ResRead">The test process's end of the new server's reply pipe.</param>
    public sealed record PendingFork(int[] ServerFds, int CmdWrite, int ResRead);

    /// <summary>The reply to one command.</summary>
    /// <param name="Result">The syscall's return value (a negated errno on failure); for the copy command, the bytes not copied.</param>
    /// <param name="Signal">For the copy command, the signal it took (0 if none).</param>
    /// <param name="FaultAddress">For the copy command, the signal's si_addr.</param>
    public readonly record struct Reply(long Result, int Signal, ulong FaultAddress);

    /// <summary>Sends one command (a syscall number, or one of the server's own, and six arguments).</summary>
    /// <exception cref="InvalidOperationException">A command is already in flight, or the process is dead.</exception>
    public void Begin(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0)
    {
        if (_inFlight || _dead)
        {
            throw new InvalidOperationException(_dead ? $"server {Pid} is dead" : $"server {Pid} already has a command in flight");
        }

        Span<long> buf = [nr, a1, a2, a3, a4, a5, a6];
        fixed (long* p = buf)
        {
            if (LinuxMm.Write(_cmdFd, p, 56) != 56)
            {
                _dead = true;
                throw new InvalidOperationException($"server {Pid} closed its command pipe: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        _inFlight = true;
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for the reply to the command in flight.</summary>
    /// <param name="timeoutMs">0 to poll.</param>
    /// <param name="reply">The reply.</param>
    /// <returns>False if it has not arrived yet.</returns>
    public bool TryComplete(int timeoutMs, out Reply reply)
    {
        reply = default;
        var pfd = new LinuxMm.PollFd { Fd = _resFd, Events = 1 };
        if (LinuxMm.Poll(&pfd, 1, timeoutMs) <= 0)
        {
            return false;
        }

        Span<long> buf = stackalloc long[3];
        fixed (long* p = buf)
        {
            nint n = LinuxMm.Read(_resFd, p, 24);
            if (n != 24)
            {
                _dead = true;
                _inFlight = false;
                throw new InvalidOperationException($"server {Pid} died (reply of {n} bytes)");
            }
        }

        _inFlight = false;
        reply = new Reply(buf[0], (int)buf[1], (ulong)buf[2]);
        return true;
    }

    /// <summary>Runs one command and waits for it.</summary>
    /// <exception cref="TimeoutException">No reply within <paramref name="timeoutMs"/>: the process was killed.</exception>
    public Reply Call(long nr, long a1, long a2, long a3, long a4, long a5, long a6, int timeoutMs)
    {
        Begin(nr, a1, a2, a3, a4, a5, a6);
        if (!TryComplete(timeoutMs, out Reply r))
        {
            Kill();
            throw new TimeoutException($"server {Pid}: command {nr} did not complete within {timeoutMs} ms; killed");
        }

        return r;
    }

    /// <summary>A duplicate, in the test process, of the server's descriptor <paramref name="targetFd"/> (pidfd_getfd).</summary>
    /// <exception cref="InvalidOperationException">pidfd_getfd failed.</exception>
    public int GetFd(int targetFd)
    {
        long fd = LinuxMm.Syscall(LinuxMm.SysPidfdGetfd, _pidfd, targetFd, 0);
        return fd >= 0 ? (int)fd : throw new InvalidOperationException($"pidfd_getfd({Pid}, {targetFd}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Reads the server's memory through /proc/&lt;pid&gt;/mem (no protection check; a page that is not present is faulted in).</summary>
    /// <exception cref="IOException">The read failed.</exception>
    public void ReadMemory(ulong address, Span<byte> destination)
    {
        int n = RandomAccess.Read(Mem(), destination, (long)address);
        if (n != destination.Length)
        {
            throw new IOException($"/proc/{Pid}/mem: read of 0x{destination.Length:X} bytes at 0x{address:X} returned {n}");
        }
    }

    /// <summary>Writes the server's memory through /proc/&lt;pid&gt;/mem.</summary>
    /// <exception cref="IOException">The write failed.</exception>
    public void WriteMemory(ulong address, ReadOnlySpan<byte> source) => RandomAccess.Write(Mem(), source, (long)address);

    /// <summary>The 64-bit pagemap entries of <paramref name="destination"/>.Length pages from <paramref name="address"/>.</summary>
    public void ReadPagemap(ulong address, Span<ulong> destination)
    {
        using SafeFileHandle h = File.OpenHandle($"/proc/{Pid}/pagemap", FileMode.Open, FileAccess.Read);
        int n = RandomAccess.Read(h, MemoryMarshal.AsBytes(destination), (long)(address / LinuxMm.PageSize * 8));
        if (n != destination.Length * 8)
        {
            throw new IOException($"/proc/{Pid}/pagemap: short read ({n} bytes)");
        }
    }

    /// <summary>The text of /proc/&lt;pid&gt;/smaps.</summary>
    public string ReadSmaps() => File.ReadAllText($"/proc/{Pid}/smaps");

    /// <summary>The VMAs of /proc/&lt;pid&gt;/maps as (start, end, path).</summary>
    public List<(ulong Start, ulong End, string Name)> ReadMaps()
    {
        var list = new List<(ulong, ulong, string)>();
        foreach (string line in File.ReadAllLines($"/proc/{Pid}/maps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            ulong start = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong end = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            string[] parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            list.Add((start, end, parts.Length > 5 ? parts[5] : string.Empty));
        }

        return list;
    }

    /// <summary>Kills the process (SIGKILL) and, if it is ours, reaps it. Safe to call twice.</summary>
    public void Kill()
    {
        if (!_dead)
        {
            _dead = true;
            if (_pidfd >= 0)
            {
                _ = LinuxMm.Syscall(424, _pidfd, Sigkill, 0); // pidfd_send_signal: never a recycled pid
            }
            else
            {
                _ = LinuxMm.Kill(Pid, Sigkill);
            }
        }

        if (IsOurChild)
        {
            int status;
            for (int i = 0; i < 200 && LinuxMm.WaitPid(Pid, &status, 1) == 0; i++) // WNOHANG, up to about 1 s
            {
                Thread.Sleep(5);
            }
        }
    }

    /// <summary>Kills the process and closes every descriptor held for it. Safe to call twice: a second close of a
    /// descriptor number would close whatever the process opened under that number since (another test's pipe, the
    /// runtime's own thread-start pipe: "ResumeThread failed" and the process dies).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Kill();
        _mem?.Dispose();
        LinuxMm.Close(_cmdFd);
        LinuxMm.Close(_resFd);
        if (_pidfd >= 0)
        {
            LinuxMm.Close(_pidfd);
        }
    }

    private SafeFileHandle Mem() => _mem ??= File.OpenHandle($"/proc/{Pid}/mem", FileMode.Open, FileAccess.ReadWrite);
}
