using MirrorEmu.Device;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Device;

/// <summary>The device page table: the walker against a dictionary model on random maps and unmaps, huge leaves, sparse
/// cost, block reuse and the dirty-block tracking a device copy relies on.</summary>
public class DevicePageTableTests
{
    private static readonly ulong Pmd = (ulong)DeviceGeometry.PmdPages << DeviceGeometry.PageShift;

    [Fact]
    public void TheWalkerAgreesWithAModelOnRandomMapsAndUnmaps()
    {
        int seed = TestSeeds.Get();
        var rng = new Random(seed);
        using var table = new DevicePageTable();
        var model = new Dictionary<ulong, DevicePte>();
        // Pages in a few clusters spread over the 48-bit space, so every directory level branches.
        ulong[] bases = [0x1000_0000UL, 0x7F00_0000_0000UL, 0x40_0000_0000UL, 0x3FF_FFE0_0000UL];
        for (int step = 0; step < 4000; step++)
        {
            ulong va = bases[rng.Next(bases.Length)] + ((ulong)rng.Next(3 * DeviceGeometry.PmdPages) << DeviceGeometry.PageShift);
            if (rng.Next(4) != 0)
            {
                DevicePte pte = DevicePte.SystemFrame((ulong)rng.NextInt64(1, 1L << 40), rng.Next(2) == 0);
                table.Map(va, pte);
                model[va] = pte;
            }
            else
            {
                ulong end = va + ((ulong)rng.Next(1, 600) << DeviceGeometry.PageShift);
                table.Unmap(va, end);
                foreach (ulong k in model.Keys.Where(k => k >= va && k < end).ToList())
                {
                    model.Remove(k);
                }
            }
        }

        Assert.Equal(model.Count, table.ValidEntries);
        foreach ((ulong va, DevicePte pte) in model)
        {
            Assert.True(pte == table.Lookup(va + 123), $"va=0x{va:X}: table has {table.Lookup(va)}, model {pte} (seed {seed})");
        }

        for (int i = 0; i < 2000; i++)
        {
            ulong va = bases[rng.Next(bases.Length)] + ((ulong)rng.Next(3 * DeviceGeometry.PmdPages) << DeviceGeometry.PageShift);
            Assert.Equal(model.TryGetValue(va, out DevicePte pte) ? pte : DevicePte.None, table.Lookup(va));
        }
    }

    [Fact]
    public void AHugeLeafMapsEveryPageOfItsBlockAndGoesWholeOnAnyOverlappingUnmap()
    {
        using var table = new DevicePageTable();
        ulong a = 0x7F12_3440_0000UL;
        table.Map(a + 0x3000, DevicePte.SystemFrame(99, true)); // a leaf block that the huge leaf replaces
        Assert.Equal(1, table.LeafBlocks);
        table.MapHuge(a, DevicePte.SystemFrame(0x200, false, DeviceGeometry.PmdOrder));
        Assert.Equal(0, table.LeafBlocks);
        Assert.Equal(1, table.ValidEntries);
        Assert.Equal(1, table.HugeEntries);
        for (int p = 0; p < DeviceGeometry.PmdPages; p += 37)
        {
            DevicePte e = table.Lookup(a + ((ulong)p << DeviceGeometry.PageShift));
            Assert.Equal(0x200UL + (ulong)p, e.Frame);
            Assert.False(e.IsWritable);
            Assert.Equal(DeviceGeometry.PmdOrder, e.Order);
        }

        Assert.Equal(1, table.Unmap(a + 0x5000, a + 0x6000));
        Assert.False(table.Lookup(a).IsValid);
        Assert.Equal(0, table.HugeEntries);
        Assert.Equal(0, table.ValidEntries);
    }

    [Fact]
    public void AWholeBlockUnmapReturnsItsLeafBlockForReuse()
    {
        using var table = new DevicePageTable();
        ulong a = 0x10_0000_0000UL;
        for (int p = 0; p < 10; p++)
        {
            table.Map(a + ((ulong)p << DeviceGeometry.PageShift), DevicePte.SystemFrame((ulong)p + 1, true));
        }

        int blocks = table.LeafBlocks + table.DirectoryBlocks;
        Assert.Equal(10, table.Unmap(a, a + Pmd));
        Assert.Equal(0, table.LeafBlocks);
        table.Map(a + (5 * Pmd), DevicePte.SystemFrame(1, true)); // a new leaf block under the same level-1 block
        Assert.Equal(blocks, table.LeafBlocks + table.DirectoryBlocks);
        Assert.False(table.Lookup(a).IsValid, "a reused block kept an old entry");
    }

    [Fact]
    public void MirroringSparselyOver64GiBCostsOneLeafBlockPerTouched2MiB()
    {
        using var table = new DevicePageTable();
        ulong a = 0x7000_0000_0000UL;
        const int Touched = 64; // one page in each of 64 blocks spread over 64 GiB
        for (int i = 0; i < Touched; i++)
        {
            table.Map(a + ((ulong)i * (1UL << 30)), DevicePte.SystemFrame((ulong)i + 1, true));
        }

        Assert.Equal(Touched, table.LeafBlocks);
        Assert.True(table.DirectoryBlocks <= 1 + 2 + Touched, $"{table.DirectoryBlocks} directory blocks for {Touched} pages");
        Assert.True(table.BookkeepingBytes <= 256 * 4096, $"{table.BookkeepingBytes} bytes for {Touched} pages over 64 GiB");
    }

    [Fact]
    public void EveryChangedBlockIsReportedDirtyOnce()
    {
        using var table = new DevicePageTable();
        var dirty = new List<int>();
        table.TakeDirtyBlocks(dirty);
        Assert.Equal([0], dirty); // the root, new
        table.TakeDirtyBlocks(dirty);
        Assert.Empty(dirty);

        ulong a = 0x20_0000_0000UL;
        table.Map(a, DevicePte.SystemFrame(5, true));
        table.TakeDirtyBlocks(dirty);
        Assert.Equal(4, dirty.Count); // root, two directory blocks, one leaf block
        ReadOnlySpan<ulong> pool = table.Pool;
        int leaf = dirty[^1];
        Assert.Equal(DevicePte.SystemFrame(5, true).Value, pool[(leaf * DeviceGeometry.BlockEntries) + DeviceGeometry.Index(a >> DeviceGeometry.PageShift, 0)]);

        table.Map(a + 0x1000, DevicePte.SystemFrame(6, true));
        table.TakeDirtyBlocks(dirty);
        Assert.Equal([leaf], dirty);
        table.Unmap(a, a + 0x1000);
        table.TakeDirtyBlocks(dirty);
        Assert.Equal([leaf], dirty);
    }

    [Fact]
    public void GrowingThePoolKeepsEveryEntryAndBumpsTheGeneration()
    {
        using var table = new DevicePageTable();
        int generation = table.Generation;
        int capacity = table.CapacityBlocks;
        for (int i = 0; i < 3 * capacity; i++)
        {
            table.Map(0x1000_0000UL + ((ulong)i * Pmd), DevicePte.SystemFrame((ulong)i + 1, true));
        }

        Assert.True(table.CapacityBlocks > capacity);
        Assert.True(table.Generation > generation);
        for (int i = 0; i < 3 * capacity; i++)
        {
            Assert.Equal((ulong)i + 1, table.Lookup(0x1000_0000UL + ((ulong)i * Pmd)).Frame);
        }
    }
}
