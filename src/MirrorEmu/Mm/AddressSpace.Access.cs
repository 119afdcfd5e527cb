using System.Runtime.CompilerServices;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>Faults on one page that returned success without allowing the access, before the access is given up.</summary>
    private const int MaxCpuRetries = 10_000;

    /// <summary>
    /// Reads memory as a CPU would: translates each page through the page table and, where the entry
    /// does not allow the read, faults it in (FAULT_FLAG_USER | ALLOW_RETRY | KILLABLE).
    /// </summary>
    /// <param name="address">First virtual address (any alignment).</param>
    /// <param name="destination">Where the bytes go.</param>
    /// <exception cref="MemoryFaultException">SIGSEGV (no mapping, or the protection forbids it) or SIGBUS
    /// (beyond a file's end, userfaultfd SIGBUS, poison, out of memory), naming the address in hex.</exception>
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
            int done = 0;
            while (done < length)
            {
                ulong va = address + (ulong)done;
                int inPage = (int)(va & PageGeometry.PageMask);
                int n = Math.Min(length - done, PageGeometry.PageSizeInt - inPage);
                byte* frame = TranslateForAccess(va, write);
                if (write)
                {
                    Unsafe.CopyBlockUnaligned(ref *(frame + inPage), ref Unsafe.Add(ref data, done), (uint)n);
                }
                else
                {
                    Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref data, done), ref *(frame + inPage), (uint)n);
                }

                done += n;
            }
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }

    /// <summary>The frame behind <paramref name="va"/>, faulting until the entry allows the access.
    /// Called with the read lock held; returns with it held.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe byte* TranslateForAccess(ulong va, bool write)
    {
        ulong[]? leaf = PageTable.FindLeaf(va);
        if (leaf is not null)
        {
            ref ulong slot = ref leaf[PageGeometry.Index(va, 0)];
            var pte = new Pte(Volatile.Read(ref slot));
            if (pte.IsPresent && (!write || pte.IsWritable))
            {
                if (write && !pte.IsDirty)
                {
                    PageTable.TryUpdate(ref slot, pte, pte.WithYoung(write: true)); // the hardware sets D
                }

                return _memory.FramePointer(pte.Pfn);
            }
        }

        return FaultForAccess(va, write);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private unsafe byte* FaultForAccess(ulong va, bool write)
    {
        FaultFlags flags = FaultFlags.User | FaultFlags.AllowRetry | FaultFlags.Killable | (write ? FaultFlags.Write : FaultFlags.None);
        for (int attempt = 0; attempt < MaxCpuRetries; attempt++)
        {
            Pte pte = PageTable.Read(va);
            if (pte.IsPresent && (!write || pte.IsWritable))
            {
                return _memory.FramePointer(pte.Pfn);
            }

            Vma? vma = VmaLookup(va);
            if (vma is null)
            {
                ThrowHelper.ThrowMemoryFault(va, Signal.SIGSEGV, "no mapping");
            }

            if (write ? (vma.Flags & VmFlags.Write) == 0 : (vma.Flags & VmFlags.AccessMask) == 0)
            {
                ThrowHelper.ThrowMemoryFault(va, Signal.SIGSEGV, write ? "write to a mapping without PROT_WRITE" : "read of a PROT_NONE mapping");
            }

            VmFault r = FaultHandler.HandleMmFault(vma, va, flags);
            if ((r & (VmFault.Retry | VmFault.Completed)) != 0)
            {
                MmapLock.ReadLock(); // the handler dropped it; the loop looks the VMA up again
                if (CurrentTask.FatalSignalPending)
                {
                    ThrowHelper.ThrowMemoryFault(va, Signal.SIGKILL, "a fatal signal ended the fault");
                }

                flags |= FaultFlags.Tried;
                continue;
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

        ThrowHelper.ThrowMemoryFault(va, Signal.SIGBUS, $"the entry never allowed the access after {MaxCpuRetries} faults");
        return null;
    }
}

/// <summary>Span-to-ref helpers for the access paths.</summary>
internal static class MemoryMarshalHelper
{
    public static ref byte AsRef(Span<byte> span) => ref System.Runtime.InteropServices.MemoryMarshal.GetReference(span);

    public static ref byte AsRef(ReadOnlySpan<byte> span) => ref System.Runtime.InteropServices.MemoryMarshal.GetReference(span);
}
