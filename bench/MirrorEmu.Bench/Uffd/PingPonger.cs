using MirrorEmu.Uffd;

namespace MirrorEmu.Bench.Uffd;

/// <summary>A wait/wake primitive a <see cref="PingPonger"/> bounces on.</summary>
public interface IPingSignal
{
    /// <summary>Wakes the waiter.</summary>
    void Set();

    /// <summary>Waits until set, then makes it unset again.</summary>
    void WaitAndReset();
}

/// <summary>ManualResetEventSlim, spinning <c>spinCount</c> times before it blocks.</summary>
public sealed class EventSignal(int spinCount) : IPingSignal
{
    private readonly ManualResetEventSlim _event = new(false, spinCount);

    /// <inheritdoc/>
    public void Set() => _event.Set();

    /// <inheritdoc/>
    public void WaitAndReset()
    {
        _event.Wait();
        _event.Reset();
    }
}

/// <summary>The hand-off's own futex word (Uffd/HandOffSignal), no polling.</summary>
public sealed class FutexSignal : IPingSignal
{
    private readonly HandOffSignal _signal = new();

    /// <inheritdoc/>
    public void Set() => _signal.Set();

    /// <inheritdoc/>
    public void WaitAndReset()
    {
        _signal.WaitWhile(0, Timeout.Infinite, CancellationToken.None);
        _signal.Reset();
    }
}

/// <summary>A thread that answers every ping with a pong: <see cref="RoundTrips"/> times the two wakes of one
/// round trip, for scale beside a userfaultfd hand-off (which is also two wakes).</summary>
public sealed class PingPonger : IDisposable
{
    private readonly IPingSignal _ping;
    private readonly IPingSignal _pong;
    private readonly Thread _thread;
    private volatile bool _stop;

    /// <summary>Starts the answering thread.</summary>
    /// <param name="ping">What this side sets.</param>
    /// <param name="pong">What the answering thread sets.</param>
    /// <param name="name">The thread's name.</param>
    public PingPonger(IPingSignal ping, IPingSignal pong, string name)
    {
        _ping = ping;
        _pong = pong;
        _thread = new Thread(() =>
        {
            while (true)
            {
                _ping.WaitAndReset();
                if (_stop)
                {
                    return;
                }

                _pong.Set();
            }
        }) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Bounces <paramref name="rounds"/> times.</summary>
    /// <param name="rounds">Round trips.</param>
    /// <returns><paramref name="rounds"/>.</returns>
    public int RoundTrips(int rounds)
    {
        for (int i = 0; i < rounds; i++)
        {
            _ping.Set();
            _pong.WaitAndReset();
        }

        return rounds;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _stop = true;
        _ping.Set();
        _thread.Join();
    }
}
