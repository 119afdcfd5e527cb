using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Uffd;
using MirrorEmu.Workloads;

namespace MirrorEmu.Regression;

/// <summary>
/// What a counter scenario runs on: a fresh address space over its own frame pool (so its Mm counters count this
/// scenario alone), one private anonymous mapping, and, when asked, a userfaultfd context registered over it (MISSING)
/// with a monitor thread (<see cref="MonitoredRange"/>). Disposing it stops the monitor (joining its thread) before the
/// address space goes.
/// </summary>
internal sealed class ScenarioSpace : IDisposable
{
    /// <summary>The byte a monitor fills pages with.</summary>
    public const byte FillByte = 0x5A;

    private readonly MonitoredRange? _uffd;

    /// <summary>Maps <paramref name="pages"/> pages and registers them with userfaultfd when <paramref name="resolution"/> is given.</summary>
    /// <param name="pages">Pages in the mapping.</param>
    /// <param name="resolution">How the monitor resolves a fault, or null for a regular VMA (no userfaultfd).</param>
    /// <param name="blockPages">The monitor's block under <see cref="UffdResolution.Block"/>.</param>
    /// <param name="fill">What the monitor fills pages with (default: <see cref="FillByte"/> everywhere).</param>
    public ScenarioSpace(int pages, UffdResolution? resolution, int blockPages = 64, Func<AddressSpace, ulong, IUffdFill>? fill = null)
    {
        Pages = pages;
        Mm = new AddressSpace(256UL << 20);
        Mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out ulong start).ThrowIfError();
        Start = start;
        if (resolution is { } r)
        {
            _uffd = new MonitoredRange(Mm, start, Bytes, r, fill?.Invoke(Mm, start) ?? new PatternFill(FillByte), blockPages);
        }
    }

    /// <summary>The address space.</summary>
    public AddressSpace Mm { get; }

    /// <summary>The mapping's first address.</summary>
    public ulong Start { get; }

    /// <summary>Pages in the mapping.</summary>
    public int Pages { get; }

    /// <summary>Bytes in the mapping.</summary>
    public ulong Bytes => (ulong)Pages * PageGeometry.PageSize;

    /// <summary>The userfaultfd context, or null for a regular VMA.</summary>
    public Userfaultfd? Ctx => _uffd?.Context;

    /// <summary>An HMM range over the whole mapping, requesting every page writable, its notifier inserted.</summary>
    /// <param name="policy">How pages of the userfaultfd VMA are faulted.</param>
    /// <param name="ops">The notifier's ops (their driver lock is the one the driver loop takes).</param>
    public HmmRange NewRange(UffdFaultPolicy policy, SeqNotifierOps ops)
    {
        var notifier = new MmuIntervalNotifier(ops);
        Mm.Notifiers.Insert(notifier, Start, Bytes).ThrowIfError();
        return new HmmRange(Mm, notifier, Start, Start + Bytes)
        {
            DefaultFlags = HmmPfn.ReqFault | HmmPfn.ReqWrite,
            UffdPolicy = policy,
        };
    }

    /// <summary>True when every page of <paramref name="range"/> is valid, writable and holds <paramref name="fill"/> in its
    /// first and last byte.</summary>
    /// <param name="range">A range the driver loop faulted.</param>
    /// <param name="fill">The byte expected.</param>
    public bool HoldsEverywhere(HmmRange range, byte fill)
    {
        foreach (ulong word in range.HmmPfns)
        {
            var p = new HmmPfn(word);
            if (!p.IsValid || !p.IsWritable)
            {
                return false;
            }

            Span<byte> frame = Mm.Memory.Frame(p.Pfn);
            if (frame[0] != fill || frame[^1] != fill)
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _uffd?.Dispose();
        Mm.Dispose();
    }
}
