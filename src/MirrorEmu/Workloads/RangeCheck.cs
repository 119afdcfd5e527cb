using System.Buffers.Binary;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;

namespace MirrorEmu.Workloads;

/// <summary>
/// Checks every byte of a range after a workload ran, without faulting anything: a snapshot of the CPU page table
/// (hmm_range_fault with no fault requested, as dmirror's snapshot does) gives each present page's frame, and the frame
/// must hold the fill byte everywhere but at the touched element, which must hold the fill word plus what was added to
/// it. A touched page must be present (and writable, unless the caller allows a write-protected one); a page no item touched must be absent or hold only the fill byte (a monitor may
/// fill the whole block around a fault).
/// </summary>
public static class RangeCheck
{
    /// <summary>The 64-bit word every element of a page filled with <paramref name="fill"/> holds.</summary>
    /// <param name="fill">The byte.</param>
    public static ulong FillWord(byte fill) => fill * 0x0101_0101_0101_0101UL;

    /// <summary>Checks [<paramref name="start"/>, + <paramref name="expected"/>.Pages pages) of <paramref name="mm"/>.</summary>
    /// <param name="mm">The address space.</param>
    /// <param name="start">Page-aligned start of the range.</param>
    /// <param name="expected">What each page must hold.</param>
    /// <param name="fill">The byte every page was filled with before the items ran (0 for a regular VMA).</param>
    /// <param name="requireWritable">Whether a touched page must be mapped writable (after a fork it may be write-protected
    /// until the next write, with the right bytes).</param>
    /// <param name="touchedPage">Called for each touched page with its address and the CPU's pfn; returns a mismatch in
    /// words or null (a device checks that it maps the same frame); may be null.</param>
    /// <returns>Null when every byte is as expected, else the first mismatch.</returns>
    public static string? Verify(AddressSpace mm, ulong start, RangeExpectation expected, byte fill, bool requireWritable = true, Func<ulong, ulong, string?>? touchedPage = null)
    {
        ArgumentNullException.ThrowIfNull(mm);
        ArgumentNullException.ThrowIfNull(expected);
        if (!expected.Known)
        {
            return "the range's contents are not known (a launch over it failed half-way)";
        }

        ulong end = start + ((ulong)expected.Pages << PageGeometry.PageShift);
        var ops = new SeqNotifierOps();
        var notifier = new MmuIntervalNotifier(ops);
        mm.Notifiers.Insert(notifier, start, end - start).ThrowIfError();
        try
        {
            var snapshot = new HmmRange(mm, notifier, start, end) { DefaultFlags = 0, PfnFlagsMask = 0 };
            KResult rc = HmmDriverLoop.Run(snapshot, ops.DriverLock, HmmFault.DefaultTimeoutMs);
            if (!rc.IsOk)
            {
                return $"the snapshot of the range failed: {rc}";
            }

            ulong fillWord = FillWord(fill);
            for (int page = 0; page < expected.Pages; page++)
            {
                ulong va = start + ((ulong)page << PageGeometry.PageShift);
                var pfn = new HmmPfn(snapshot.HmmPfns[page]);
                int hits = expected.Hits[page];
                if (!pfn.IsValid || pfn.IsError)
                {
                    if (hits > 0)
                    {
                        return $"page 0x{va:X16} was touched {hits} times but is not present";
                    }

                    continue;
                }

                Span<byte> frame = mm.Memory.Frame(pfn.Pfn);
                if (hits == 0)
                {
                    if (frame.IndexOfAnyExcept(fill) is int at and >= 0)
                    {
                        return $"page 0x{va:X16}, touched by no item, holds 0x{frame[at]:X2} at byte {at}, not the fill 0x{fill:X2}";
                    }

                    continue;
                }

                if (requireWritable && !pfn.IsWritable)
                {
                    return $"page 0x{va:X16} was written but is mapped read-only";
                }

                int element = expected.ElementOf(page) * sizeof(ulong);
                ulong want = fillWord + expected.Added[page];
                ulong actual = BinaryPrimitives.ReadUInt64LittleEndian(frame[element..]);
                if (actual != want)
                {
                    return $"page 0x{va:X16}: element at byte {element} holds 0x{actual:X16}, not 0x{want:X16} (fill plus {hits} adds)";
                }

                if (frame[..element].IndexOfAnyExcept(fill) is int before and >= 0)
                {
                    return $"page 0x{va:X16} holds 0x{frame[before]:X2} at byte {before}, not the fill 0x{fill:X2}";
                }

                if (frame[(element + sizeof(ulong))..].IndexOfAnyExcept(fill) is int after and >= 0)
                {
                    return $"page 0x{va:X16} holds 0x{frame[element + sizeof(ulong) + after]:X2} at byte {element + sizeof(ulong) + after}, not the fill 0x{fill:X2}";
                }

                if (touchedPage?.Invoke(va, pfn.Pfn) is { } mismatch)
                {
                    return mismatch;
                }
            }

            return null;
        }
        finally
        {
            mm.Notifiers.Remove(notifier, HmmFault.DefaultTimeoutMs);
        }
    }
}
