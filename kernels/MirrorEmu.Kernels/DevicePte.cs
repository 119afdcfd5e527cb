using System.Runtime.CompilerServices;

namespace MirrorEmu.Kernels;

/// <summary>What a valid <see cref="DevicePte"/> points at.</summary>
public enum DeviceFrameKind
{
    /// <summary>A frame of the CPU's physical memory, addressed in place (the frame field is a pfn of the pool).</summary>
    System = 0,

    /// <summary>Reserved for device-private memory (issue 5b/7): the frame field is a frame of the device's own pool.
    /// Nothing makes such entries yet; kernels treat them as a miss.</summary>
    Device = 1,

    /// <summary>A directory entry: the frame field is the index of the next level's table block.</summary>
    Table = 2,
}

// [63 VALID][62 WRITE][61 ATOMIC, reserved for 5b][60..59 kind][58 reserved][57..53 order][52..0 frame]

/// <summary>
/// One 64-bit entry of the device page table, at every level: a directory entry (<see cref="DeviceFrameKind.Table"/>,
/// the frame field is the next block's index), a leaf mapping one page, or a huge leaf at level 1 whose
/// <see cref="Order"/> is 9 (a 2 MiB PMD mapping from hmm_range_fault's order bits, mapped as one entry). The order
/// field sits where HMM's does (bits 57..53) and is as wide.
/// </summary>
/// <remarks>Shared by the kernels and the host; no code outside this struct shifts its bits.</remarks>
public readonly struct DevicePte : IEquatable<DevicePte>
{
    /// <summary>The entry maps something.</summary>
    public const ulong ValidBit = 1UL << 63;

    /// <summary>The device may write through the entry.</summary>
    public const ulong WriteBit = 1UL << 62;

    /// <summary>Reserved for device-exclusive (atomic) mappings, issue 5b/7 (dmirror's DPT_XA_TAG_ATOMIC).</summary>
    public const ulong AtomicBit = 1UL << 61;

    /// <summary>Lowest bit of the kind field.</summary>
    public const int KindShift = 59;

    /// <summary>Width of the kind field.</summary>
    public const int KindBits = 2;

    /// <summary>The kind field in place.</summary>
    public const ulong KindMask = ((1UL << KindBits) - 1) << KindShift;

    /// <summary>Lowest bit of the order field (as HMM_PFN_ORDER_SHIFT).</summary>
    public const int OrderShift = 53;

    /// <summary>Width of the order field.</summary>
    public const int OrderBits = 5;

    /// <summary>The order field in place.</summary>
    public const ulong OrderMask = ((1UL << OrderBits) - 1) << OrderShift;

    /// <summary>The frame field: a pfn, a device frame or a block index.</summary>
    public const ulong FrameMask = (1UL << OrderShift) - 1;

    private readonly ulong _value;

    /// <summary>Wraps a raw word.</summary>
    /// <param name="value">The word.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public DevicePte(ulong value) => _value = value;

    /// <summary>The raw word.</summary>
    public ulong Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _value;
    }

    /// <summary>True if the entry maps something.</summary>
    public bool IsValid
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & ValidBit) != 0;
    }

    /// <summary>True if writes may go through the entry.</summary>
    public bool IsWritable
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & WriteBit) != 0;
    }

    /// <summary>What the frame field names.</summary>
    public DeviceFrameKind Kind
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (DeviceFrameKind)(int)((_value & KindMask) >> KindShift);
    }

    /// <summary>True for a valid directory entry.</summary>
    public bool IsTable
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & (ValidBit | KindMask)) == (ValidBit | ((ulong)DeviceFrameKind.Table << KindShift));
    }

    /// <summary>log2 of the pages the leaf maps (0 for a page, 9 for a 2 MiB huge leaf).</summary>
    public int Order
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (int)((_value & OrderMask) >> OrderShift);
    }

    /// <summary>The frame field.</summary>
    public ulong Frame
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _value & FrameMask;
    }

    /// <summary>An empty (invalid) entry.</summary>
    public static DevicePte None => default;

    /// <summary>A leaf mapping <paramref name="pfn"/> of the CPU's memory.</summary>
    /// <param name="pfn">The first frame of the mapping.</param>
    /// <param name="writable">Whether the device may write.</param>
    /// <param name="order">0 for a page, 9 for a 2 MiB huge leaf (level 1 only).</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DevicePte SystemFrame(ulong pfn, bool writable, int order = 0) =>
        new(ValidBit | (writable ? WriteBit : 0) | ((ulong)DeviceFrameKind.System << KindShift) | ((ulong)order << OrderShift) | (pfn & FrameMask));

    /// <summary>A directory entry pointing at table block <paramref name="block"/>.</summary>
    /// <param name="block">The block's index in the table's pool.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DevicePte TableEntry(long block) =>
        new(ValidBit | ((ulong)DeviceFrameKind.Table << KindShift) | ((ulong)block & FrameMask));

    /// <summary>The entry for one page of this leaf: for a huge leaf, the frame of page <paramref name="vpn"/> inside it
    /// (the frame field of a huge leaf is aligned to its order, so the add never carries into the flags); a page
    /// leaf as it is.</summary>
    /// <param name="vpn">A virtual page number the leaf maps.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public DevicePte PageOf(ulong vpn) => new(_value + (vpn & ((1UL << Order) - 1)));

    /// <summary>The same entry with the write bit set or cleared.</summary>
    /// <param name="writable">The new write permission.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public DevicePte WithWritable(bool writable) => new(writable ? _value | WriteBit : _value & ~WriteBit);

    /// <inheritdoc/>
    public bool Equals(DevicePte other) => _value == other._value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is DevicePte other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _value.GetHashCode();

    /// <summary>Compares words.</summary>
    /// <param name="left">An entry.</param>
    /// <param name="right">Another.</param>
    public static bool operator ==(DevicePte left, DevicePte right) => left._value == right._value;

    /// <summary>Compares words.</summary>
    /// <param name="left">An entry.</param>
    /// <param name="right">Another.</param>
    public static bool operator !=(DevicePte left, DevicePte right) => left._value != right._value;

    /// <summary>Prints <c>pfn=0x1a2b V W order=9</c>, <c>table=0x3 V</c> or <c>none</c>.</summary>
    public override string ToString()
    {
        if (_value == 0)
        {
            return "none";
        }

        string frame = Kind switch
        {
            DeviceFrameKind.Table => $"table=0x{Frame:x}",
            DeviceFrameKind.Device => $"dfn=0x{Frame:x}",
            _ => $"pfn=0x{Frame:x}",
        };
        return frame + (IsValid ? " V" : string.Empty) + (IsWritable ? " W" : string.Empty) + ((_value & AtomicBit) != 0 ? " A" : string.Empty) + (Order != 0 ? $" order={Order}" : string.Empty);
    }
}
