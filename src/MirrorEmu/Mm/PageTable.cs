using System.Runtime.CompilerServices;

namespace MirrorEmu.Mm;

/// <summary>
/// A 4-level page table (PGD → PUD → PMD → PTE) of 512 64-bit entries per table. Each leaf table is
/// one contiguous 512-entry <c>ulong[]</c>, so a walker can scan a whole table with SIMD; a PMD slot
/// holds either a leaf table or a 2 MiB huge leaf (<see cref="Pte.HugeBit"/>), never both.
/// </summary>
/// <remarks>
/// <para>Concurrency model:</para> readers (faults and walks under the mmap read lock) read slots
/// with <see cref="Volatile"/> and never lock. PTE words change only through
/// <see cref="TryUpdate"/> (compare-and-exchange: the kernel's pte_same check). PMD-slot transitions
/// (install a leaf table, install a huge leaf, split a huge leaf) take the PMD table's own lock
/// (the kernel's pmd_lock). Tables are freed only under the mmap write lock, so no reader holds one.
/// <list type="table">
/// <listheader><term>step</term><description>what a racing reader sees</description></listheader>
/// <item><term>leaf install (CAS null → table)</term><description>null (→ none) or the new table</description></item>
/// <item><term>split: publish leaf, then clear huge</term><description>the huge leaf, or the leaf table; a reader that saw no leaf and then no huge re-reads the leaf (<see cref="ReadPmd"/>)</description></item>
/// </list>
/// </remarks>
public sealed class PageTable
{
    private readonly PudTable?[] _pgd = new PudTable?[PageGeometry.LevelEntries];
    private long _leafTables;
    private long _pmdTables;
    private long _pudTables;

    /// <summary>Leaf (PTE) tables allocated now.</summary>
    public long LeafTables => Volatile.Read(ref _leafTables);

    /// <summary>Bytes of page-table memory held now (every level, the per-array header included).</summary>
    public long BookkeepingBytes =>
        (Volatile.Read(ref _leafTables) * (PageGeometry.LevelEntries * sizeof(ulong) + ArrayOverhead))
        + (Volatile.Read(ref _pmdTables) * (PageGeometry.LevelEntries * 2 * sizeof(ulong) + 3 * ArrayOverhead))
        + (Volatile.Read(ref _pudTables) * (PageGeometry.LevelEntries * sizeof(ulong) + 2 * ArrayOverhead))
        + (PageGeometry.LevelEntries * sizeof(ulong));

    private const int ArrayOverhead = 24;

    /// <summary>The PMD table covering <paramref name="va"/>, or null if none was ever needed.</summary>
    /// <param name="va">A virtual address.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal PmdTable? FindPmdTable(ulong va)
    {
        PudTable? pud = Volatile.Read(ref _pgd[PageGeometry.Index(va, 3)]);
        return pud is null ? null : Volatile.Read(ref pud.Entries[PageGeometry.Index(va, 2)]);
    }

    /// <summary>The PMD table covering <paramref name="va"/>, created if missing.</summary>
    /// <param name="va">A virtual address.</param>
    internal PmdTable GetOrCreatePmdTable(ulong va)
    {
        ref PudTable? pudSlot = ref _pgd[PageGeometry.Index(va, 3)];
        PudTable? pud = Volatile.Read(ref pudSlot);
        if (pud is null)
        {
            var fresh = new PudTable();
            pud = Interlocked.CompareExchange(ref pudSlot, fresh, null) ?? fresh;
            if (ReferenceEquals(pud, fresh))
            {
                Interlocked.Increment(ref _pudTables);
            }
        }

        ref PmdTable? pmdSlot = ref pud.Entries[PageGeometry.Index(va, 2)];
        PmdTable? pmd = Volatile.Read(ref pmdSlot);
        if (pmd is null)
        {
            var fresh = new PmdTable();
            pmd = Interlocked.CompareExchange(ref pmdSlot, fresh, null) ?? fresh;
            if (ReferenceEquals(pmd, fresh))
            {
                Interlocked.Increment(ref _pmdTables);
            }
        }

        return pmd;
    }

    /// <summary>Reads one PMD slot consistently: a leaf table, a huge leaf, or neither.</summary>
    /// <param name="pmd">The PMD table.</param>
    /// <param name="index">The slot (<see cref="PageGeometry.Index"/> at level 1).</param>
    /// <param name="huge">The huge leaf word when there is no leaf table; 0 otherwise.</param>
    /// <returns>The leaf table, or null.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong[]? ReadPmd(PmdTable pmd, int index, out ulong huge)
    {
        ulong[]? leaf = Volatile.Read(ref pmd.Leaves[index]);
        if (leaf is not null)
        {
            huge = 0;
            return leaf;
        }

        huge = Volatile.Read(ref pmd.Huge[index]);
        if (huge == 0)
        {
            // A split publishes the leaf before clearing the huge word: look again.
            leaf = Volatile.Read(ref pmd.Leaves[index]);
        }

        return leaf;
    }

    /// <summary>The leaf table covering <paramref name="va"/>, or null (none, or a huge leaf there).</summary>
    /// <param name="va">A virtual address.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong[]? FindLeaf(ulong va)
    {
        PmdTable? pmd = FindPmdTable(va);
        return pmd is null ? null : Volatile.Read(ref pmd.Leaves[PageGeometry.Index(va, 1)]);
    }

    /// <summary>The huge PMD leaf covering <paramref name="va"/>, or <see cref="Pte.None"/>.</summary>
    /// <param name="va">A virtual address.</param>
    public Pte FindHuge(ulong va)
    {
        PmdTable? pmd = FindPmdTable(va);
        if (pmd is null)
        {
            return Pte.None;
        }

        ReadPmd(pmd, PageGeometry.Index(va, 1), out ulong huge);
        return new Pte(huge);
    }

    /// <summary>Reads the entry that maps <paramref name="va"/>: the PTE, or for a huge leaf the
    /// equivalent small-page entry (pfn advanced to the page, huge bit kept).</summary>
    /// <param name="va">A virtual address.</param>
    public Pte Read(ulong va)
    {
        PmdTable? pmd = FindPmdTable(va);
        if (pmd is null)
        {
            return Pte.None;
        }

        ulong[]? leaf = ReadPmd(pmd, PageGeometry.Index(va, 1), out ulong huge);
        if (leaf is not null)
        {
            return new Pte(Volatile.Read(ref leaf[PageGeometry.Index(va, 0)]));
        }

        var h = new Pte(huge);
        return h.IsNone ? h : h.WithPfn(h.Pfn + (ulong)PageGeometry.Index(va, 0));
    }

    /// <summary>The leaf table covering <paramref name="va"/>, created if missing.</summary>
    /// <param name="va">A virtual address.</param>
    /// <returns>The table, or null when a huge leaf occupies the slot (split it first).</returns>
    internal ulong[]? GetOrCreateLeaf(ulong va)
    {
        PmdTable pmd = GetOrCreatePmdTable(va);
        int index = PageGeometry.Index(va, 1);
        ulong[]? leaf = ReadPmd(pmd, index, out ulong huge);
        if (leaf is not null)
        {
            return leaf;
        }

        if (huge != 0)
        {
            return null;
        }

        using (new RankedMonitor(pmd, LockRank.PageTable))
        {
            leaf = pmd.Leaves[index];
            if (leaf is not null)
            {
                return leaf;
            }

            if (pmd.Huge[index] != 0)
            {
                return null;
            }

            leaf = new ulong[PageGeometry.LevelEntries];
            Volatile.Write(ref pmd.Leaves[index], leaf);
            Interlocked.Increment(ref _leafTables);
            return leaf;
        }
    }

    /// <summary>Installs a huge leaf in an empty PMD slot (no leaf table, no huge leaf).</summary>
    /// <param name="va">A 2 MiB aligned virtual address.</param>
    /// <param name="entry">The huge entry (<see cref="Pte.HugeBit"/> set).</param>
    /// <returns>False if the slot was not empty.</returns>
    internal bool TryInstallHuge(ulong va, Pte entry)
    {
        PmdTable pmd = GetOrCreatePmdTable(va);
        int index = PageGeometry.Index(va, 1);
        using (new RankedMonitor(pmd, LockRank.PageTable))
        {
            if (pmd.Leaves[index] is not null || pmd.Huge[index] != 0)
            {
                return false;
            }

            Volatile.Write(ref pmd.Huge[index], entry.Value);
            return true;
        }
    }

    /// <summary>Changes the huge leaf covering <paramref name="va"/> from <paramref name="expected"/> to <paramref name="value"/>.</summary>
    /// <param name="va">An address inside the huge page.</param>
    /// <param name="expected">The word the caller read.</param>
    /// <param name="value">The new word (0 clears the slot).</param>
    internal bool TryUpdateHuge(ulong va, Pte expected, Pte value)
    {
        PmdTable? pmd = FindPmdTable(va);
        if (pmd is null)
        {
            return false;
        }

        int index = PageGeometry.Index(va, 1);
        using (new RankedMonitor(pmd, LockRank.PageTable))
        {
            if (pmd.Huge[index] != expected.Value)
            {
                return false;
            }

            Volatile.Write(ref pmd.Huge[index], value.Value);
            return true;
        }
    }

    /// <summary>Splits the huge leaf covering <paramref name="va"/> into a leaf table of 512 PTEs that map
    /// the same frames with the same bits (__split_huge_pmd). No-op if there is no huge leaf.</summary>
    /// <param name="va">An address inside the huge page.</param>
    /// <returns>True if a huge leaf was split.</returns>
    internal bool SplitHuge(ulong va)
    {
        PmdTable? pmd = FindPmdTable(va);
        if (pmd is null)
        {
            return false;
        }

        int index = PageGeometry.Index(va, 1);
        using (new RankedMonitor(pmd, LockRank.PageTable))
        {
            var huge = new Pte(pmd.Huge[index]);
            if (huge.IsNone)
            {
                return false;
            }

            var leaf = new ulong[PageGeometry.LevelEntries];
            Pte small = huge.WithHuge(false);
            ulong basePfn = huge.Pfn;
            for (int i = 0; i < leaf.Length; i++)
            {
                leaf[i] = small.WithPfn(basePfn + (ulong)i).Value;
            }

            Volatile.Write(ref pmd.Leaves[index], leaf);
            Volatile.Write(ref pmd.Huge[index], 0UL);
            Interlocked.Increment(ref _leafTables);
            return true;
        }
    }

    /// <summary>Removes the leaf table of a PMD slot (free_pte_range). Call only under the mmap write
    /// lock, after every entry in it was zapped.</summary>
    /// <param name="va">An address in the 2 MiB span.</param>
    internal void FreeLeaf(ulong va)
    {
        PmdTable? pmd = FindPmdTable(va);
        if (pmd is null)
        {
            return;
        }

        int index = PageGeometry.Index(va, 1);
        using (new RankedMonitor(pmd, LockRank.PageTable))
        {
            if (pmd.Leaves[index] is not null)
            {
                pmd.Leaves[index] = null;
                Interlocked.Decrement(ref _leafTables);
            }
        }
    }

    /// <summary>The one place a PTE word changes: compare-and-exchange against what the caller read.</summary>
    /// <param name="slot">The entry, in a leaf table.</param>
    /// <param name="expected">The value the caller read with <see cref="Volatile.Read(ref readonly ulong)"/>.</param>
    /// <param name="value">The new value.</param>
    /// <returns>False if someone changed the entry meanwhile; the caller re-reads and decides again.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryUpdate(ref ulong slot, Pte expected, Pte value) =>
        Interlocked.CompareExchange(ref slot, value.Value, expected.Value) == expected.Value;

    /// <summary>A PUD-level table: 512 PMD tables.</summary>
    internal sealed class PudTable
    {
        public readonly PmdTable?[] Entries = new PmdTable?[PageGeometry.LevelEntries];
    }

    /// <summary>A PMD-level table: per slot, a leaf table or a huge leaf word. Its own monitor is the pmd lock.</summary>
    internal sealed class PmdTable
    {
        public readonly ulong[]?[] Leaves = new ulong[]?[PageGeometry.LevelEntries];
        public readonly ulong[] Huge = new ulong[PageGeometry.LevelEntries];
    }
}
