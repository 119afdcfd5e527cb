using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Uffd;

/// <summary>How much a monitor resolves per page-fault message.</summary>
public enum UffdResolution
{
    /// <summary>The faulting page only.</summary>
    SinglePage,
    /// <summary>The aligned block of <see cref="UffdMonitorOptions.BlockPages"/> pages around the fault.</summary>
    Block,
    /// <summary>The whole missing run named by the message (RangeEvent); the page alone when the message names none.</summary>
    WholeRun,
}

/// <summary>Options of a <see cref="UffdMonitor"/>.</summary>
public sealed record UffdMonitorOptions
{
    /// <summary>What goes into resolved pages.</summary>
    public IUffdFill Fill { get; init; } = new ZeroFill();

    /// <summary>How much each message resolves.</summary>
    public UffdResolution Resolution { get; init; } = UffdResolution.SinglePage;

    /// <summary>Block size for <see cref="UffdResolution.Block"/>, in pages (a power of two).</summary>
    public int BlockPages { get; init; } = 64;

    /// <summary>Messages taken per read.</summary>
    public int ReadBatch { get; init; } = 64;

    /// <summary>Called for each non-cooperative event message, on the monitor thread.</summary>
    public Action<UffdMsg>? OnEvent { get; init; }

    /// <summary>Name of the monitor thread.</summary>
    public string ThreadName { get; init; } = "uffd-monitor";
}

/// <summary>
/// A userfaultfd monitor on its own thread: reads messages and resolves page faults with
/// UFFDIO_COPY (a pluggable fill, a configurable resolution size), handling a partial copy and
/// -EEXIST (a page someone else filled: skip it) and -EAGAIN (read the pending events, then retry).
/// A block is clipped to the registered VMA that holds the fault before anything is copied. A copy
/// that fails for any other reason ends the message's faults with SIGBUS (never an endless retry) and
/// is kept in <see cref="LastError"/>. Counts round trips, pages and a histogram of pages per round trip.
/// </summary>
/// <remarks>Disposing stops the thread within its poll interval; if the context is still open, the
/// faults waiting on it then fail (a dead monitor is an error, not a hang).</remarks>
public sealed class UffdMonitor : IDisposable
{
    /// <summary>How often a resolution may meet a layout change (-EAGAIN with nothing copied) and read the events
    /// before the monitor gives the message up as failed: a layout that changes for ever is a livelock.</summary>
    internal const int MaxLayoutRetries = 1000;

    private const int PollMs = 50;
    private readonly Userfaultfd _ctx;
    private readonly UffdMonitorOptions _options;
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly UffdMsg[] _drain = new UffdMsg[16];
    private readonly Queue<UffdMsg> _deferred = new();
    private volatile Exception? _failure;
    private volatile string? _lastError;
    private long _failedMessages;
    private int _disposed;
    private int _detached;

    /// <summary>Starts a monitor thread on <paramref name="ctx"/>.</summary>
    /// <param name="ctx">A context after its handshake.</param>
    /// <param name="options">Fill, resolution and batching.</param>
    /// <exception cref="ArgumentOutOfRangeException">BlockPages not a power of two, or ReadBatch not positive.</exception>
    public UffdMonitor(Userfaultfd ctx, UffdMonitorOptions? options = null)
    {
        _ctx = ctx;
        _options = options ?? new UffdMonitorOptions();
        if (_options.BlockPages <= 0 || (_options.BlockPages & (_options.BlockPages - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"BlockPages={_options.BlockPages} must be a power of two");
        }

        if (_options.ReadBatch <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"ReadBatch={_options.ReadBatch} must be positive");
        }

        _ctx.AttachMonitor();
        _thread = new Thread(Loop) { IsBackground = true, Name = _options.ThreadName };
        _thread.Start();
    }

    /// <summary>The exception that ended the monitor thread, if one did.</summary>
    public Exception? Failure => _failure;

    /// <summary>The last resolution that failed (its faults got SIGBUS), as one line; null if none did.</summary>
    public string? LastError => _lastError;

    /// <summary>Page-fault messages this monitor could not resolve.</summary>
    public long FailedMessages => Interlocked.Read(ref _failedMessages);

    /// <summary>Round trips by pages each resolved, bucketed by powers of two.</summary>
    public PowerOfTwoHistogram PagesPerRoundTrip { get; } = new();

    /// <summary>Stops the thread (waiting for it up to 5 s). Faults still waiting then fail with SIGBUS, unless another
    /// monitor serves the context. Disposing twice does nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        _thread.Join(5000);
        if (Interlocked.Exchange(ref _detached, 1) == 0)
        {
            _ctx.DetachMonitor(crashed: false);
        }

        _stop.Dispose();
    }

    private void Loop()
    {
        var messages = new UffdMsg[_options.ReadBatch];
        int maxPages = Math.Max(_options.BlockPages, PageGeometry.LevelEntries);
        byte[] buffer = GC.AllocateUninitializedArray<byte>(maxPages * PageGeometry.PageSizeInt, pinned: true);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                KResult rc = _ctx.Read(messages, out int count, PollMs, _stop.Token);
                if (rc.Code == -Errno.EBADF)
                {
                    return;
                }

                for (int i = 0; i < count; i++)
                {
                    if (messages[i].Event == UffdEventType.Pagefault)
                    {
                        Resolve(messages[i], buffer);
                    }
                    else
                    {
                        _options.OnEvent?.Invoke(messages[i]);
                    }
                }

                while (_deferred.Count > 0)
                {
                    Resolve(_deferred.Dequeue(), buffer);
                }
            }
        }
        catch (Exception e)
        {
            _failure = e;
            if (Interlocked.Exchange(ref _detached, 1) == 0)
            {
                _ctx.DetachMonitor(crashed: true);
            }
        }
    }

    private void Resolve(UffdMsg msg, byte[] buffer)
    {
        if ((msg.Flags & (UffdPagefaultFlags.WriteProtect | UffdPagefaultFlags.Minor)) != 0)
        {
            KResult r = (msg.Flags & UffdPagefaultFlags.WriteProtect) != 0
                ? _ctx.WriteProtect(msg.Address, PageGeometry.PageSize, UffdWriteProtectMode.None)
                : _ctx.Continue(msg.Address, PageGeometry.PageSize, UffdCopyMode.None, out _);
            Count(1);
            Finish(msg, r.IsOk || r.Code is -Errno.ENOENT or -Errno.EEXIST ? null : r, msg.Address, msg.Address + PageGeometry.PageSize);
            return;
        }

        if (!Extent(msg, out ulong start, out ulong pages))
        {
            // The page is no longer in a VMA registered here (unmapped or unregistered meanwhile): wake the
            // fault, which retries against the new layout.
            Count(0);
            _ctx.Wake(msg.Address, PageGeometry.PageSize);
            return;
        }

        long resolved = 0;
        ulong at = start;
        ulong end = start + (pages << PageGeometry.PageShift);
        int layoutRetries = 0;
        KResult? failure = null;
        while (at < end && !_stop.IsCancellationRequested)
        {
            int chunk = (int)Math.Min((end - at) >> PageGeometry.PageShift, (ulong)(buffer.Length / PageGeometry.PageSizeInt));
            int length = chunk * PageGeometry.PageSizeInt;
            ReadOnlySpan<byte> bytes = _options.Fill.Source(at, length);
            if (bytes.IsEmpty)
            {
                Span<byte> staged = buffer.AsSpan(0, length);
                _options.Fill.Fill(at, staged);
                bytes = staged;
            }

            KResult rc = _ctx.Copy(at, bytes, UffdCopyMode.DontWake, out ulong copied); // one wake for the whole extent, below
            resolved += (long)(copied >> PageGeometry.PageShift);
            at += copied;
            if (rc.IsOk || (rc.Code == -Errno.EAGAIN && copied > 0))
            {
                continue; // done, or stopped part-way: the next call meets the obstacle itself
            }

            if (rc.Code == -Errno.EEXIST)
            {
                at += PageGeometry.PageSize; // filled by someone else: skip it
            }
            else if (rc.Code == -Errno.EAGAIN && ++layoutRetries < MaxLayoutRetries)
            {
                DrainEvents();
            }
            else if (rc.Code == -Errno.ENOENT)
            {
                break; // unmapped or unregistered meanwhile: the fault retries against the new layout
            }
            else
            {
                failure = rc;
                break;
            }
        }

        // Count first, so a woken thread sees the round trip counted; then one wake for everything this
        // message resolved (the faulting page included, even if someone else filled it).
        Count(resolved);
        ulong wakeStart = Math.Min(start, msg.Address);
        ulong wakeEnd = Math.Max(at, msg.Address + (Math.Max(msg.RunPages, 1) << PageGeometry.PageShift));
        Finish(msg, failure, wakeStart, wakeEnd);
    }

    /// <summary>Wakes what the message's resolution covered, or, if it failed, ends its faults with SIGBUS.</summary>
    private void Finish(UffdMsg msg, KResult? failure, ulong wakeStart, ulong wakeEnd)
    {
        if (failure is { } f)
        {
            _lastError = $"resolving the fault at 0x{msg.Address:X16} failed: {f}";
            Interlocked.Increment(ref _failedMessages);
            _ctx.FailRange(wakeStart, wakeEnd - wakeStart);
            return;
        }

        _ctx.Wake(wakeStart, wakeEnd - wakeStart);
    }

    /// <summary>The pages this message resolves: the resolution's extent, clipped to the registered VMA holding the fault.</summary>
    /// <returns>False if no VMA registered with the context holds the faulting page any more.</returns>
    private bool Extent(UffdMsg msg, out ulong start, out ulong pages)
    {
        (start, pages) = _options.Resolution switch
        {
            UffdResolution.Block => (msg.Address & ~(((ulong)_options.BlockPages << PageGeometry.PageShift) - 1), (ulong)_options.BlockPages),
            UffdResolution.WholeRun when msg.RunPages > 0 => (msg.Address, msg.RunPages),
            _ => (msg.Address, 1UL),
        };
        if (!_ctx.TryGetRegisteredVma(msg.Address, out ulong vmaStart, out ulong vmaEnd))
        {
            return false;
        }

        ulong end = Math.Min(start + (pages << PageGeometry.PageShift), vmaEnd);
        start = Math.Max(start, vmaStart);
        pages = (end - start) >> PageGeometry.PageShift;
        return true;
    }

    /// <summary>Reads until the pending events are consumed (so resolutions stop answering -EAGAIN); page faults read on
    /// the way are kept for the main loop.</summary>
    private void DrainEvents()
    {
        while (_ctx.MmapChanging > 0 && _ctx.Read(_drain, out int n, 0).IsOk)
        {
            for (int i = 0; i < n; i++)
            {
                if (_drain[i].Event == UffdEventType.Pagefault)
                {
                    _deferred.Enqueue(_drain[i]);
                }
                else
                {
                    _options.OnEvent?.Invoke(_drain[i]);
                }
            }
        }
    }

    private void Count(long pages)
    {
        _ctx.Stats.Increment(UffdStat.RoundTrips);
        _ctx.Stats.Add(UffdStat.MonitorPages, pages);
        PagesPerRoundTrip.Add(pages);
    }
}
