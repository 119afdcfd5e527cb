using MirrorEmu.Mm;
using MirrorEmu.Uffd;

namespace MirrorEmu.Workloads;

/// <summary>A range registered with userfaultfd (MISSING) and the monitor thread that serves it (a page, a block or the
/// whole run per fault), filling every page with one byte: the userfaultfd half of a comparison or scenario.</summary>
public sealed class MonitoredRange : IDisposable
{
    /// <summary>Opens a context, registers [<paramref name="start"/>, + <paramref name="bytes"/>) and starts the monitor.</summary>
    /// <param name="mm">The address space.</param>
    /// <param name="start">Page-aligned start of a mapped range.</param>
    /// <param name="bytes">Page-aligned length.</param>
    /// <param name="resolution">How the monitor resolves a fault (<see cref="ComparePolicies.MonitorResolution"/> gives a
    /// policy's).</param>
    /// <param name="fill">The byte every resolved page holds.</param>
    /// <param name="monitorBatch">Pages per block under <see cref="UffdResolution.Block"/> (a power of two, 1 to 512).</param>
    public MonitoredRange(AddressSpace mm, ulong start, ulong bytes, UffdResolution resolution, byte fill, int monitorBatch)
        : this(mm, start, bytes, resolution, new PatternFill(fill), monitorBatch)
    {
    }

    /// <summary>As the other constructor, with the monitor's fill given (a fill that does more than write a byte: the
    /// regression scenarios' fill that invalidates the range while a fault waits).</summary>
    /// <param name="mm">The address space.</param>
    /// <param name="start">Page-aligned start of a mapped range.</param>
    /// <param name="bytes">Page-aligned length.</param>
    /// <param name="resolution">How the monitor resolves a fault.</param>
    /// <param name="fill">What the monitor writes into the pages it resolves.</param>
    /// <param name="monitorBatch">Pages per block under <see cref="UffdResolution.Block"/> (a power of two, 1 to 512).</param>
    public MonitoredRange(AddressSpace mm, ulong start, ulong bytes, UffdResolution resolution, IUffdFill fill, int monitorBatch)
    {
        Context = new Userfaultfd(mm);
        try
        {
            Context.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
            Context.Register(start, bytes, UffdRegisterMode.Missing, out _).ThrowIfError();
            Monitor = new UffdMonitor(Context, new UffdMonitorOptions
            {
                Fill = fill,
                Resolution = resolution,
                BlockPages = monitorBatch,
            });
        }
        catch
        {
            Context.Dispose();
            throw;
        }
    }

    /// <summary>The userfaultfd context (its <see cref="Userfaultfd.Stats"/> count round trips and copied pages).</summary>
    public Userfaultfd Context { get; }

    /// <summary>The monitor thread.</summary>
    public UffdMonitor Monitor { get; }

    /// <summary>Stops the monitor, then closes the context.</summary>
    public void Dispose()
    {
        Monitor.Dispose();
        Context.Dispose();
    }
}
