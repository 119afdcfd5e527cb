using MirrorEmu.Hmm;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

/// <summary>The permission bytes of <see cref="MirrorDevice.Snapshot"/>: enum HMM_DMIRROR_PROT_* and dmirror_mkentry
/// (lib/test_hmm.c), exactly.</summary>
public static class SnapshotProt
{
    /// <summary>HMM_DMIRROR_PROT_ERROR: the page cannot be accessed (HMM_PFN_ERROR).</summary>
    public const byte Error = 0xFF;

    /// <summary>HMM_DMIRROR_PROT_NONE: not mapped (no HMM_PFN_VALID).</summary>
    public const byte None = 0x00;

    /// <summary>HMM_DMIRROR_PROT_READ.</summary>
    public const byte Read = 0x01;

    /// <summary>HMM_DMIRROR_PROT_WRITE.</summary>
    public const byte Write = 0x02;

    /// <summary>HMM_DMIRROR_PROT_PMD: mapped by a PMD (order + PAGE_SHIFT == PMD_SHIFT).</summary>
    public const byte Pmd = 0x04;

    /// <summary>HMM_DMIRROR_PROT_PUD: mapped by a PUD.</summary>
    public const byte Pud = 0x08;

    /// <summary>HMM_DMIRROR_PROT_ZERO: the shared zero page.</summary>
    public const byte Zero = 0x10;

    /// <summary>HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL (issue 5b/7).</summary>
    public const byte DevPrivateLocal = 0x20;

    /// <summary>HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE (issue 5b/7).</summary>
    public const byte DevPrivateRemote = 0x30;

    /// <summary>HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL (issue 5b/7).</summary>
    public const byte DevCoherentLocal = 0x40;

    /// <summary>HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE (issue 5b/7).</summary>
    public const byte DevCoherentRemote = 0x50;

    /// <summary>dmirror_mkentry: the byte for one hmm_range_fault output word (system memory only, this issue).</summary>
    /// <param name="hmmPfn">An output of hmm_range_fault.</param>
    public static byte FromHmmPfn(ulong hmmPfn)
    {
        var p = new HmmPfn(hmmPfn);
        if (p.IsError)
        {
            return Error;
        }

        if (!p.IsValid)
        {
            return None;
        }

        byte b = p.Pfn == PhysicalMemory.ZeroPfn ? Zero : None;
        b |= p.IsWritable ? Write : Read;
        if (p.Order + PageGeometry.PageShift == PageGeometry.PmdShift)
        {
            b |= Pmd;
        }
        else if (p.Order + PageGeometry.PageShift == PageGeometry.PudShift)
        {
            b |= Pud;
        }

        return b;
    }
}
