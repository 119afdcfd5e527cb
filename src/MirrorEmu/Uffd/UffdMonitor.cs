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
/// UFFDIO_COPY (a pluggable fill, a configurable resolution size), handling -EEXIST (a page someone
/// else filled: skip it) and -EAGAIN (read the pending events, then retry). Counts round trips,
/// pages and a histogram of pages per round trip.
/// </summary>
/// <remarks>Disposing stops the thread within its poll interval; if the context is still open, the
/// faults waiting on it then fail (a dead monitor is an error, not a hang).</remarks>
public sealed class UffdMonitor : IDisposable
{
    /// <summary>Histogram buckets of pages per round trip: 1, 2–3, 4–7, …, 2^k and more (bucket k holds [2^k, 2^(k+1))).</summary>
    public const int HistogramBuckets = 20;

    private const int PollMs = 50;
    private readonly Userfaultfd _ctx;
    private readonly UffdMonitorOptions _options;
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly long[] _histogram = new long[HistogramBuckets];
    private readonly UffdMsg[] _drain = new UffdMsg[16];
    private readonly Queue<UffdMsg> _deferred = new();
    private volatile Exception? _failure;

    /// <summary>Starts a monitor thread on <paramref name="ctx"/>.</summary>
    /// <param name="ctx">A context after its handshake.</param>
    /// <param name="options">Fill, resolution and batching.</param>
    public UffdMonitor(Userfaultfd ctx, UffdMonitorOptions? options = null)
    {
        _ctx = ctx;
        _options = options ?? new UffdMonitorOptions();
        if (_options.BlockPages <= 0 || (_options.BlockPages & (_options.BlockPages - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"BlockPages={_options.BlockPages} must be a power of two");
        }

        _thread = new Thread(Loop) { IsBackground = true, Name = _options.ThreadName };
        _thread.Start();
    }

    /// <summary>The exception that ended the monitor thread, if one did.</summary>
    public Exception? Failure => _failure;

    /// <summary>Round trips per pages-per-round-trip bucket (see <see cref="HistogramBuckets"/>).</summary>
    public long[] PagesPerRoundTripHistogram
    {
        get
        {
            var copy = new long[HistogramBuckets];
            for (int i = 0; i < copy.Length; i++)
            {
                copy[i] = Interlocked.Read(ref _histogram[i]);
            }

            return copy;
        }
    }

    /// <summary>Stops the thread (waiting for it up to 5 s).</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join(5000);
        if (!_ctx.IsReleased)
        {
            _ctx.MarkMonitorGone();
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
                int rc = _ctx.Read(messages, out int count, PollMs, _stop.Token);
                if (rc == -Errno.EBADF)
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
            _ctx.MarkMonitorGone();
        }
    }

    private void Resolve(UffdMsg msg, byte[] buffer)
    {
        if ((msg.Flags & UffdPagefaultFlags.WriteProtect) != 0)
        {
            Count(1);
            _ctx.WriteProtect(msg.Address, PageGeometry.PageSize, protect: false);
            return;
        }

        if ((msg.Flags & UffdPagefaultFlags.Minor) != 0)
        {
            Count(1);
            _ctx.Continue(msg.Address, PageGeometry.PageSize, UffdCopyMode.None, out _);
            return;
        }

        (ulong start, ulong pages) = Extent(msg);
        long resolved = 0;
        ulong at = start;
        ulong end = start + (pages << PageGeometry.PageShift);
        int eagain = 0;
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

            int rc = _ctx.Copy(at, bytes, UffdCopyMode.DontWake, out ulong copied); // one wake for the whole extent, below
            resolved += (long)(copied >> PageGeometry.PageShift);
            at += copied;
            if (rc == -Errno.EEXIST)
            {
                at += PageGeometry.PageSize; // filled by someone else: skip it
            }
            else if (rc == -Errno.EAGAIN && ++eagain < 1000)
            {
                DrainEvents();
            }
            else if (rc != 0)
            {
                break; // unmapped or unregistered meanwhile: nothing left to resolve here
            }
        }

        // Count first, so a woken thread sees the round trip counted; then one wake for everything this
        // message resolved (the faulting page included, even if someone else filled it).
        Count(resolved);
        ulong wakeStart = Math.Min(start, msg.Address);
        ulong wakeEnd = Math.Max(at, msg.Address + PageGeometry.PageSize);
        _ctx.Wake(wakeStart, wakeEnd - wakeStart);
    }

    private (ulong Start, ulong Pages) Extent(UffdMsg msg)
    {
        switch (_options.Resolution)
        {
            case UffdResolution.Block:
            {
                ulong blockBytes = (ulong)_options.BlockPages << PageGeometry.PageShift;
                return (msg.Address & ~(blockBytes - 1), (ulong)_options.BlockPages);
            }

            case UffdResolution.WholeRun when msg.RunLength > 0:
                return (msg.Address, msg.RunLength);

            default:
                return (msg.Address, 1);
        }
    }

    /// <summary>Reads until the pending events are consumed (so resolutions stop answering -EAGAIN); page faults read on
    /// the way are kept for the main loop.</summary>
    private void DrainEvents()
    {
        while (_ctx.MmapChanging > 0 && _ctx.Read(_drain, out int n, 0) == 0)
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
        int bucket = pages <= 1 ? 0 : Math.Min(HistogramBuckets - 1, 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)pages));
        Interlocked.Increment(ref _histogram[bucket]);
    }
}
