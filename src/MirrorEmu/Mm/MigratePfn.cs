using System.Runtime.CompilerServices;

namespace MirrorEmu.Mm;

// [63..6 pfn][5..4 reserved][3 WRITE][2 reserved][1 MIGRATE][0 VALID]

/// <summary>
/// One entry of a migration's src or dst array (include/linux/migrate.h: migrate_pfn(), MIGRATE_PFN_*): a pfn (system
/// or device) with VALID, plus MIGRATE (the page may move / moved) and WRITE (the mapping was writable).
/// </summary>
public readonly struct MigratePfn : IEquatable<MigratePfn>
{
    /// <summary>MIGRATE_PFN_VALID: the pfn field names a page.</summary>
    public const ulong ValidBit = 1UL << 0;

    /// <summary>MIGRATE_PFN_MIGRATE: the page (or the empty slot) is to be migrated; cleared when it cannot be.</summary>
    public const ulong MigrateBit = 1UL << 1;

    /// <summary>MIGRATE_PFN_WRITE: the mapping allowed writes.</summary>
    public const ulong WriteBit = 1UL << 3;

    /// <summary>MIGRATE_PFN_SHIFT: where the pfn starts.</summary>
    public const int PfnShift = 6;

    private readonly ulong _value;

    /// <summary>Wraps a raw word.</summary>
    /// <param name="value">The word.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MigratePfn(ulong value) => _value = value;

    /// <summary>The raw word.</summary>
    public ulong Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _value;
    }

    /// <summary>migrate_pfn(pfn): a valid entry naming <paramref name="pfn"/>.</summary>
    /// <param name="pfn">A system or device pfn.</param>
    /// <param name="write">MIGRATE_PFN_WRITE.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static MigratePfn Of(ulong pfn, bool write = false) => new((pfn << PfnShift) | ValidBit | (write ? WriteBit : 0));

    /// <summary>The entry of an empty slot (a hole or the zero page) that may be populated: MIGRATE without a page.</summary>
    public static MigratePfn Empty => new(MigrateBit);

    /// <summary>Names a page.</summary>
    public bool IsValid
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & ValidBit) != 0;
    }

    /// <summary>MIGRATE is set.</summary>
    public bool IsMigrating
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & MigrateBit) != 0;
    }

    /// <summary>WRITE is set.</summary>
    public bool IsWritable
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & WriteBit) != 0;
    }

    /// <summary>The page's pfn (meaningful when <see cref="IsValid"/>).</summary>
    public ulong Pfn
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _value >> PfnShift;
    }

    /// <summary>The same entry with MIGRATE set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MigratePfn WithMigrate() => new(_value | MigrateBit);

    /// <summary>The same entry with MIGRATE cleared (the page stays).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MigratePfn WithoutMigrate() => new(_value & ~MigrateBit);

    /// <inheritdoc/>
    public bool Equals(MigratePfn other) => _value == other._value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is MigratePfn other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _value.GetHashCode();

    /// <summary>Compares words.</summary>
    /// <param name="left">An entry.</param>
    /// <param name="right">Another.</param>
    public static bool operator ==(MigratePfn left, MigratePfn right) => left._value == right._value;

    /// <summary>Compares words.</summary>
    /// <param name="left">An entry.</param>
    /// <param name="right">Another.</param>
    public static bool operator !=(MigratePfn left, MigratePfn right) => left._value != right._value;

    /// <summary>Prints <c>pfn=0x1a2b V M W</c>, <c>M</c> (an empty slot) or <c>0</c>.</summary>
    public override string ToString() =>
        _value == 0 ? "0"
        : (IsValid ? $"pfn=0x{Pfn:x} V" : string.Empty) + (IsMigrating ? (IsValid ? " M" : "M") : string.Empty) + (IsWritable ? " W" : string.Empty);
}
