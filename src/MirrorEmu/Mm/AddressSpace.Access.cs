using System.Runtime.CompilerServices;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// Reads memory as a CPU would: translates each page through the page table and, where the entry
    /// does not allow the read, faults it in (FAULT_FLAG_USER | ALLOW_RETRY | KILLABLE).
    /// </summary>
    /// <param name="address">First virtual address (any alignment).</param>
    /// <param name="destination">Where the bytes go.</param>
    /// <exception cref="MemoryFaultException">SIGSEGV (no mapping, or the protection forbids it) or SIGBUS
    /// (beyond a file's end, userfaultfd SIGBUS, poison, out of memory, a fault that made no progress for
    /// <see cref="FaultRetryTimeoutMs"/>), naming the address in hex; SIGKILL when a fatal signal ended a fault.</exception>
    public void CpuRead(ulong address, Span<byte> destination) => CpuAccess(address, ref MemoryMarshalHelper.AsRef(destination), destination.Length, write: false);

    /// <summary>Writes memory as a CPU would, faulting on the way (write faults allocate or break COW).</summary>
    /// <param name="address">First virtual address (any alignment).</param>
    /// <param name="source">The bytes.</param>
    /// <exception cref="MemoryFaultException">As for <see cref="CpuRead"/>.</exception>
    public void CpuWrite(ulong address, ReadOnlySpan<byte> source) => CpuAccess(address, ref MemoryMarshalHelper.AsRef(source), source.Length, write: true);

    /// <summary>Reads one 64-bit value (little endian) as a CPU would.</summary>
    /// <param name="address">Virtual address.</param>
    public ulong CpuReadUInt64(ulong address)
    {
        Span<byte> b = stackalloc byte[sizeof(ulong)];
        CpuRead(address, b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    /// <summary>Writes one 64-bit value (little endian) as a CPU would.</summary>
    /// <param name="address">Virtual address.</param>
    /// <param name="value">The value.</param>
    public void CpuWriteUInt64(ulong address, ulong value)
    {
        Span<byte> b = stackalloc byte[sizeof(ulong)];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        CpuWrite(address, b);
    }

    /// <remarks>
    /// Each page is copied inside a <see cref="Tlb"/> access section that begins before its entry is read
    /// and ends after its last byte is copied, so a frame whose entry a racing MADV_DONTNEED or COW break
    /// clears is put back only after this copy is done (frames are freed late). Faults happen outside
    /// the section, since a fault may sleep or take locks.
    /// </remarks>
    private unsafe void CpuAccess(ulong address, ref byte data, int length, bool write)
    {
        ThrowIfDisposed();
        if (length == 0)
        {
            return;
        }

        if (address >= PageGeometry.AddressSpaceSize || (ulong)length > PageGeometry.AddressSpaceSize - address)
        {
            ThrowHelper.ThrowMemoryFault(address, Signal.SIGSEGV, "beyond the 48-bit address space");
        }

        MmapLock.ReadLock();
        try
        {
            var retry = new FaultRetry(_faultRetryTimeoutMs, Counters);
            Tlb.Slot slot = Tlb.CurrentSlot();
            int done = 0;
            while (done < length)
            {
                ulong va = address + (ulong)done;
                int inPage = (int)(va & PageGeometry.PageMask);
                int n = Math.Min(length - done, PageGeometry.PageSizeInt - inPage);
                Tlb.Enter(slot);
                byte* frame = TryTranslate(va, write);
                if (frame is null)
                {
                    Tlb.Exit(slot);
                    FaultForAccess(va, write, ref retry);
                    continue; // translate again: another thread may have changed the entry meanwhile
                }

                if (write)
                {
                    Unsafe.CopyBlockUnaligned(ref *(frame + inPage), ref Unsafe.Add(ref data, done), (uint)n);
                }
                else
                {
                    Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref data, done), ref *(frame + inPage), (uint)n);
                }

                Tlb.Exit(slot);
                done += n;
            }
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }

    /// <summary>The frame behind <paramref name="va"/> if its entry allows the access (setting the dirty bit for a
    /// write, as the hardware does), else null. Call inside a <see cref="Tlb"/> section.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe byte* TryTranslate(ulong va, bool write)
    {
        ulong[]? leaf = PageTable.FindLeaf(va);
        if (leaf is null)
        {
            return TryTranslateHuge(va, write);
        }

        ref ulong slot = ref leaf[PageGeometry.Index(va, 0)];
        var pte = new Pte(Volatile.Read(ref slot));
        if (!pte.Allows(write))
        {
            return null;
        }

        if (write && !pte.IsDirty)
        {
            PageTable.TryUpdate(ref slot, pte, pte.WithYoung(write: true));
        }

        return _memory.FramePointer(pte.Pfn);
    }

    /// <summary>The huge-leaf case of <see cref="TryTranslate"/> (no leaf table there).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private unsafe byte* TryTranslateHuge(ulong va, bool write)
    {
        Pte pte = PageTable.Read(va);
        return pte.Allows(write) ? _memory.FramePointer(pte.Pfn) : null;
    }

    /// <summary>One fault for a CPU access at <paramref name="va"/>; the caller translates again afterwards.
    /// Called with the read lock held; returns with it held, or throws.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void FaultForAccess(ulong va, bool write, ref FaultRetry retry)
    {
        Vma? vma = VmaLookup(va);
        if (vma is null)
        {
            ThrowHelper.ThrowMemoryFault(va, Signal.SIGSEGV, "no mapping");
        }

        if (write ? (vma.Flags & VmFlags.Write) == 0 : (vma.Flags & VmFlags.AccessMask) == 0)
        {
            ThrowHelper.ThrowMemoryFault(va, Signal.SIGSEGV, write ? "write to a mapping without PROT_WRITE" : "read of a PROT_NONE mapping");
        }

        if (!retry.Allow(va))
        {
            ThrowHelper.ThrowMemoryFault(va, Signal.SIGBUS, retry.Describe(write ? "CPU write" : "CPU read"));
        }

        FaultFlags flags = FaultFlags.User | FaultFlags.AllowRetry | FaultFlags.Killable | (write ? FaultFlags.Write : FaultFlags.None);
        long layout = MmapLock.Sequence;
        VmFault r = FaultHandler.HandleMmFault(vma, va, flags);
        if ((r & (VmFault.Retry | VmFault.Completed)) != 0)
        {
            if (RetakeAfterRetry(va, layout, ref vma, ref flags) != 0)
            {
                ThrowHelper.ThrowMemoryFault(va, Signal.SIGKILL, "a fatal signal ended the fault");
            }

            return;
        }

        if ((r & VmFault.Error) != 0)
        {
            string reason = (r & VmFault.Oom) != 0 ? "out of memory (VM_FAULT_OOM)"
                : (r & (VmFault.HwPoison | VmFault.HwPoisonLarge)) != 0 ? "hardware-poisoned page"
                : (r & VmFault.SigSegv) != 0 ? "the fault handler answered SIGSEGV"
                : "the fault handler answered SIGBUS";
            ThrowHelper.ThrowMemoryFault(va, (r & VmFault.SigSegv) != 0 ? Signal.SIGSEGV : Signal.SIGBUS, reason);
        }
    }
}

/// <summary>Span-to-ref helpers for the access paths.</summary>
internal static class MemoryMarshalHelper
{
    public static ref byte AsRef(Span<byte> span) => ref System.Runtime.InteropServices.MemoryMarshal.GetReference(span);

    public static ref byte AsRef(ReadOnlySpan<byte> span) => ref System.Runtime.InteropServices.MemoryMarshal.GetReference(span);
}
