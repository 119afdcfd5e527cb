using MirrorEmu.Mm;

namespace MirrorEmu.Tests.Mm;

/// <summary>The 4-level table: contiguous leaf tables, huge leaves, splits and the CAS helper.</summary>
public class PageTableTests
{
    [Fact]
    public void LeafTablesAre512ContiguousEntriesPerTwoMegabytes()
    {
        var pt = new PageTable();
        ulong va = 0x7F12_3456_7000;
        ulong[] leaf = pt.GetOrCreateLeaf(va)!;
        Assert.Equal(512, leaf.Length);
        Assert.Same(leaf, pt.GetOrCreateLeaf(va + PageGeometry.PageSize));
        Assert.Same(leaf, pt.FindLeaf((va & ~PageGeometry.PmdMask) + PageGeometry.PmdSize - 1));
        Assert.Null(pt.FindLeaf(va + PageGeometry.PmdSize));
        Assert.Equal(1, pt.LeafTables);
    }

    [Fact]
    public void TryUpdateFailsWhenTheEntryChangedMeanwhile()
    {
        ulong slot = 0;
        Assert.True(PageTable.TryUpdate(ref slot, Pte.None, Pte.Present(5, true)));
        Assert.False(PageTable.TryUpdate(ref slot, Pte.None, Pte.Present(6, true)));
        Assert.Equal(5UL, new Pte(slot).Pfn);
    }

    [Fact]
    public void SplitHugeKeepsEveryFrameAndBit()
    {
        var pt = new PageTable();
        ulong va = 0x4000_0000;
        Pte huge = Pte.Present(1024, writable: false).WithHuge(true);
        Assert.True(pt.TryInstallHuge(va, huge));
        Assert.Null(pt.GetOrCreateLeaf(va)); // occupied by the huge leaf
        Assert.Equal(1024UL + 3, pt.Read(va + 3 * PageGeometry.PageSize).Pfn);
        Assert.True(pt.SplitHuge(va));
        Assert.True(pt.FindHuge(va).IsNone);
        ulong[] leaf = pt.FindLeaf(va)!;
        for (int i = 0; i < 512; i++)
        {
            var p = new Pte(leaf[i]);
            Assert.Equal(1024UL + (ulong)i, p.Pfn);
            Assert.False(p.IsHuge);
            Assert.False(p.IsWritable);
            Assert.True(p.IsPresent);
        }
    }
}
