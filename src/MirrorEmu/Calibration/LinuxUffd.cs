using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MirrorEmu.Calibration;

/// <summary>
/// The host's real userfaultfd (Linux x86-64 and arm64): anonymous mappings, MADV_POPULATE_WRITE and
/// MADV_DONTNEED, one context with MISSING registration, and a monitor thread that answers each
/// page fault with one UFFDIO_COPY (DONTWAKE) of the aligned block of <c>blockPages</c> pages around it
/// and one UFFDIO_WAKE. It
/// measures what the emulator's userfaultfd reproduces (bench Uffd/KernelUffdBenchmarks, and
/// <see cref="KernelCalibration"/> for <c>mirroremu calibrate</c>).
/// </summary>
/// <remarks>
/// Structures and request numbers are those of include/uapi/linux/userfaultfd.h: struct uffdio_api
/// (24 bytes), uffdio_register (32), uffdio_copy (40), uffd_msg (32, pagefault address at offset 16).
/// </remarks>
internal sealed unsafe partial class LinuxUffd : IDisposable
{
    private const ulong UffdApi = 0xAA;
    private const ulong UffdioApi = 0xC018AA3F;      // _IOWR(0xAA, 0x3F, struct uffdio_api)
    private const ulong UffdioRegister = 0xC020AA00; // _IOWR(0xAA, 0x00, struct uffdio_register)
    private const ulong UffdioCopy = 0xC028AA03;     // _IOWR(0xAA, 0x03, struct uffdio_copy)
    private const ulong UffdioWake = 0x8010AA02;     // _IOR(0xAA, 0x02, struct uffdio_range)
    private const long CopyModeDontWake = 1;
    private const ulong RegisterModeMissing = 1;
    private const byte EventPagefault = 0x12;
    private const int OCloexec = 0x80000;
    private const int ONonblock = 0x800;
    private const int ProtReadWrite = 3;
    private const int MapPrivateAnonymous = 0x02 | 0x20;
    private const int MadvDontNeed = 4;
    private const int MadvPopulateWrite = 23;
    private const int MadvNoHugePage = 15;
    private const short PollIn = 1;
    private const int PollMs = 50;
    private const int Eexist = 17;

    private readonly int _fd;
    private readonly byte* _source;
    private readonly int _blockPages;
    private readonly Thread _monitor;
    private volatile bool _stop;
    private long _roundTrips;
    private long _pagesCopied;
    private volatile string? _monitorError;
    private int _closed;

    private readonly ulong _start;
    private readonly ulong _end;

    private LinuxUffd(int fd, nint start, nuint length, int blockPages, byte fill)
    {
        _fd = fd;
        _start = (ulong)start;
        _end = (ulong)start + length;
        _blockPages = blockPages;
        _source = (byte*)NativeMemory.AlignedAlloc((nuint)(blockPages * PageSize), (nuint)PageSize);
        new Span<byte>(_source, blockPages * PageSize).Fill(fill);
        _monitor = new Thread(MonitorLoop) { IsBackground = true, Name = "linux-uffd-monitor" };
        _monitor.Start();
    }

    /// <summary>The host's page size.</summary>
    public static int PageSize { get; } = Environment.SystemPageSize;

    /// <summary>Page faults answered (one UFFDIO_COPY call each).</summary>
    public long RoundTrips => Interlocked.Read(ref _roundTrips);

    /// <summary>Pages UFFDIO_COPY filled.</summary>
    public long PagesCopied => Interlocked.Read(ref _pagesCopied);

    /// <summary>Opens a context, handshakes, registers [start, start + length) for MISSING faults and starts its monitor.</summary>
    /// <param name="start">Page-aligned start of a mapping from <see cref="MapAnonymous"/>.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="blockPages">Pages each UFFDIO_COPY fills: the aligned block around the fault (1 for single page).</param>
    /// <param name="fill">The byte every filled page holds.</param>
    /// <param name="why">Why it could not be opened (not Linux, no permission, no syscall).</param>
    /// <returns>The context, or null.</returns>
    public static LinuxUffd? TryOpen(nint start, nuint length, int blockPages, byte fill, out string why)
    {
        if (blockPages <= 0 || (blockPages & (blockPages - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(blockPages), $"blockPages={blockPages} must be a power of two");
        }

        long nr = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 323,
            Architecture.Arm64 => 282,
            _ => -1,
        };
        if (!OperatingSystem.IsLinux() || nr < 0)
        {
            why = $"userfaultfd needs Linux on x86-64 or arm64, not {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}";
            return null;
        }

        int fd = (int)LinuxMm.Syscall(nr, OCloexec | ONonblock, 0, 0);
        if (fd < 0)
        {
            why = $"userfaultfd(2) failed: errno {Marshal.GetLastPInvokeError()} (needs root or vm.unprivileged_userfaultfd=1)";
            return null;
        }

        ulong* api = stackalloc ulong[3] { UffdApi, 0, 0 };
        ulong* reg = stackalloc ulong[4] { (ulong)start, (ulong)length, RegisterModeMissing, 0 };
        if (LinuxMm.Ioctl(fd, UffdioApi, api) != 0 || LinuxMm.Ioctl(fd, UffdioRegister, reg) != 0)
        {
            why = $"UFFDIO_API/UFFDIO_REGISTER failed: errno {Marshal.GetLastPInvokeError()}";
            _ = LinuxMm.Close(fd);
            return null;
        }

        why = string.Empty;
        return new LinuxUffd(fd, start, length, blockPages, fill);
    }

    /// <summary>mmap(2) of private anonymous read-write memory.</summary>
    /// <param name="length">Bytes, page aligned.</param>
    /// <returns>The address.</returns>
    public static nint MapAnonymous(nuint length)
    {
        nint at = LinuxMm.Mmap(0, length, ProtReadWrite, MapPrivateAnonymous, -1, 0);
        return at == -1 ? throw new InvalidOperationException($"mmap(length=0x{length:X}) failed: errno {Marshal.GetLastPInvokeError()}") : at;
    }

    /// <summary>munmap(2).</summary>
    /// <param name="start">A mapping's start.</param>
    /// <param name="length">Its length.</param>
    public static void Unmap(nint start, nuint length) => _ = Munmap(start, length);

    /// <summary>MADV_POPULATE_WRITE over the range: what the kernel's populate costs (userfaults included when registered).</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <returns>0, or -errno.</returns>
    public static int PopulateWrite(nint start, nuint length) => Madvise(start, length, MadvPopulateWrite) == 0 ? 0 : -Marshal.GetLastPInvokeError();

    /// <summary>MADV_DONTNEED over the range: the pages are missing again.</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <returns>0, or -errno.</returns>
    public static int DontNeed(nint start, nuint length) => Madvise(start, length, MadvDontNeed) == 0 ? 0 : -Marshal.GetLastPInvokeError();

    /// <summary>MADV_NOHUGEPAGE over the range: the kernel faults it in 4 KiB pages, never a transparent huge page.</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <returns>0, or -errno.</returns>
    public static int NoHugePage(nint start, nuint length) => Madvise(start, length, MadvNoHugePage) == 0 ? 0 : -Marshal.GetLastPInvokeError();

    /// <summary>Stops the monitor and closes the context (the registration goes with it).</summary>
    public void Dispose()
    {
        _stop = true;
        bool joined = _monitor.Join(PollMs * 20);
        CloseOnce();
        if (joined)
        {
            NativeMemory.AlignedFree(_source); // else the monitor may still read it: leave it
        }
    }

    /// <summary>Throws if the monitor met an error it could not answer.</summary>
    public void ThrowIfMonitorFailed()
    {
        if (_monitorError is { } e)
        {
            throw new InvalidOperationException(e);
        }
    }

    // Closing the context releases it: the kernel wakes every waiting fault, which then retries without
    // userfaultfd (userfaultfd_release), so a monitor that fails never leaves a thread asleep in the kernel.
    private void CloseOnce()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            _ = LinuxMm.Close(_fd);
        }
    }

    private void MonitorLoop()
    {
        try
        {
            Serve();
        }
        catch (Exception e)
        {
            _monitorError = e.Message;
        }

        if (_monitorError is not null)
        {
            CloseOnce();
        }
    }

    private void Serve()
    {
        const int Batch = 16;
        byte* msgs = stackalloc byte[32 * Batch];
        long* copy = stackalloc long[5];
        ulong* wake = stackalloc ulong[2];
        var pfd = new LinuxMm.PollFd { Fd = _fd, Events = PollIn };
        nuint blockBytes = (nuint)(_blockPages * PageSize);
        var spin = Stopwatch.StartNew();
        while (!_stop)
        {
            nint got = LinuxMm.Read(_fd, msgs, 32 * Batch);
            if (got <= 0)
            {
                // Nothing queued (EAGAIN): poll briefly, as the emulator's monitor does, then sleep in poll(2).
                if (spin.ElapsedTicks < Stopwatch.Frequency / 5000)
                {
                    Thread.SpinWait(20);
                    continue;
                }

                _ = LinuxMm.Poll(&pfd, 1, PollMs);
                continue;
            }

            for (int i = 0; i < (int)got / 32; i++)
            {
                byte* m = msgs + (i * 32);
                if (m[0] != EventPagefault)
                {
                    continue;
                }

                ulong address = *(ulong*)(m + 16);
                ulong block = address & ~(ulong)(blockBytes - 1);
                ulong dst = Math.Max(block, _start); // the aligned block, within the registered range
                ulong len = Math.Min(block + blockBytes, _end) - dst;
                copy[0] = (long)dst;
                copy[1] = (long)_source;
                copy[2] = (long)len;
                copy[3] = CopyModeDontWake; // count first, then wake, as the emulator's UffdMonitor does
                copy[4] = 0;
                if (LinuxMm.Ioctl(_fd, UffdioCopy, copy) != 0 && Marshal.GetLastPInvokeError() != Eexist)
                {
                    _monitorError = $"UFFDIO_COPY(dst=0x{dst:X}, len=0x{len:X}) failed: errno {Marshal.GetLastPInvokeError()}";
                    return;
                }

                Interlocked.Increment(ref _roundTrips);
                Interlocked.Add(ref _pagesCopied, Math.Max(copy[4], 0) / PageSize);
                wake[0] = dst;
                wake[1] = len;
                if (LinuxMm.Ioctl(_fd, UffdioWake, wake) != 0)
                {
                    _monitorError = $"UFFDIO_WAKE(start=0x{dst:X}, len=0x{len:X}) failed: errno {Marshal.GetLastPInvokeError()}";
                    return;
                }
            }

            spin.Restart();
        }
    }

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nuint length, int advice);
}
