using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using ILGPU;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

/// <summary>
/// One device's page table: sparse over the 48-bit space as a pool of 512-entry blocks, a root (block 0) and two
/// more directory levels above leaf blocks of 512 page entries, one <see cref="DevicePte"/> word per entry. A level-1
/// entry is either a directory entry naming a leaf block or a huge leaf mapping 2 MiB at once. Mirroring 64 GiB
/// sparsely costs one 4 KiB leaf block per 2 MiB actually mapped, plus the directory blocks above them.
/// </summary>
/// <remarks>
/// <para>Concurrency model:</para> changed only by the driver under the device's <see cref="Notifier.DriverLock"/>
/// (faults fill it, invalidations clear it), and read by kernels only during a pass, which also holds that lock.
/// Host reads (<see cref="Lookup"/>) need the lock too, or a quiescent device. The pool grows by reallocation,
/// which is safe because no pass runs while the lock is held. Leaf blocks whose whole 2 MiB is invalidated go back
/// to a free list; directory blocks are kept. Every block written since the last <see cref="TakeDirtyBlocks"/> is
/// marked dirty, so a launcher with a copy of the table in accelerator memory uploads only those.
/// </remarks>
public sealed unsafe class DevicePageTable : IDisposable
{
    private const int InitialBlocks = 16;

    private readonly Stack<int> _freeBlocks = new();
    private ulong* _pool;
    private int _capacity;      // blocks allocated in _pool
    private int _used;          // blocks handed out from the top (free ones included)
    private ulong[] _dirty = [];
    private ArrayView<ulong> _view;
    private bool _disposed;

    /// <summary>Creates an empty table (a root block with no entries).</summary>
    public DevicePageTable()
    {
        Grow(InitialBlocks);
        _used = 1; // the root
        MarkDirty(0);
    }

    /// <summary>Leaf entries that map something: page leaves plus huge leaves.</summary>
    public long ValidEntries { get; private set; }

    /// <summary>Huge (2 MiB) leaves among <see cref="ValidEntries"/>.</summary>
    public long HugeEntries { get; private set; }

    /// <summary>Leaf blocks in use.</summary>
    public int LeafBlocks { get; private set; }

    /// <summary>Directory blocks in use, the root included.</summary>
    public int DirectoryBlocks => _used - _freeBlocks.Count - LeafBlocks;

    /// <summary>Bytes of the pool (every block allocated, in use or free).</summary>
    public long BookkeepingBytes => (long)_capacity * DeviceGeometry.BlockEntries * sizeof(ulong);

    /// <summary>Blocks the pool can hold before it grows.</summary>
    public int CapacityBlocks => _capacity;

    /// <summary>Incremented each time the pool is reallocated (a device copy must then be uploaded whole).</summary>
    public int Generation { get; private set; }

    /// <summary>A view over the pool for kernels that read host memory in place (valid until the next growth).</summary>
    internal ArrayView<ulong> View => _view;

    /// <summary>The pool's elements (valid until the next growth).</summary>
    internal ReadOnlySpan<ulong> Pool => new(_pool, _capacity * DeviceGeometry.BlockEntries);

    /// <summary>The entry for <paramref name="va"/>'s page, through the same walker the kernels use (<see cref="MirrorMmu.Walk"/>).</summary>
    /// <param name="va">A virtual address below 2^48.</param>
    /// <remarks>Call under the driver lock, or with no driver and no invalidation running.</remarks>
    public DevicePte Lookup(ulong va) => MirrorMmu.Walk(_view, va);

    /// <summary>Maps the page at <paramref name="va"/> with a page leaf, replacing what was there (a huge leaf over it is
    /// dropped whole: the other pages fault again).</summary>
    /// <param name="va">A page-aligned virtual address below 2^48.</param>
    /// <param name="entry">A valid leaf of order 0.</param>
    /// <remarks>Call under the driver lock.</remarks>
    public void Map(ulong va, DevicePte entry)
    {
        Debug.Assert(entry.IsValid && entry.Order == 0 && !entry.IsTable, "Map takes a page leaf");
        long block = DescendToLeafBlock(va);
        ref ulong slot = ref _pool[(block << DeviceGeometry.LevelBits) + DeviceGeometry.Index(va >> DeviceGeometry.PageShift, 0)];
        if (!new DevicePte(slot).IsValid)
        {
            ValidEntries++;
        }

        slot = entry.Value;
        MarkDirty(block);
    }

    /// <summary>Maps the 2 MiB at <paramref name="va"/> with one huge leaf at level 1, replacing a leaf block or another huge
    /// leaf there.</summary>
    /// <param name="va">A 2 MiB-aligned virtual address below 2^48.</param>
    /// <param name="entry">A valid leaf of order 9 whose frame is 512-aligned.</param>
    /// <remarks>Call under the driver lock.</remarks>
    public void MapHuge(ulong va, DevicePte entry)
    {
        Debug.Assert(entry.IsValid && entry.Order == DeviceGeometry.PmdOrder && (entry.Frame & DeviceGeometry.BlockMask) == 0, "MapHuge takes an aligned order-9 leaf");
        long dir = DescendToLevel1Block(va);
        long at = (dir << DeviceGeometry.LevelBits) + DeviceGeometry.Index(va >> DeviceGeometry.PageShift, 1);
        ClearLevel1(at);
        _pool[at] = entry.Value;
        ValidEntries++;
        HugeEntries++;
        MarkDirty(dir);
    }

    /// <summary>Clears every entry of [<paramref name="start"/>, <paramref name="end"/>): a huge leaf that overlaps it is
    /// cleared whole, and a leaf block whose whole 2 MiB is covered goes back to the free list.</summary>
    /// <param name="start">First address.</param>
    /// <param name="end">Half-open end; values above 2^48 stand for 2^48 (RELEASE passes the top of the space).</param>
    /// <returns>Leaf entries cleared (a huge leaf counts once).</returns>
    /// <remarks>Call under the driver lock.</remarks>
    public long Unmap(ulong start, ulong end)
    {
        end = Math.Min(end, DeviceGeometry.AddressSpaceSize);
        long cleared = 0;
        ulong va = start & ~DeviceGeometry.PageMask;
        while (va < end)
        {
            // Find the level-1 block for va without creating anything; skip whole absent subtrees.
            ulong vpn = va >> DeviceGeometry.PageShift;
            long block = 0;
            int level = DeviceGeometry.Levels - 1;
            for (; level > 1; level--)
            {
                var e = new DevicePte(_pool[(block << DeviceGeometry.LevelBits) + DeviceGeometry.Index(vpn, level)]);
                if (!e.IsTable)
                {
                    break;
                }

                block = (long)e.Frame;
            }

            if (level > 1)
            {
                va = NextBoundary(va, level); // nothing mapped under this directory entry
                continue;
            }

            ulong pmdEnd = Math.Min(end, NextBoundary(va, 1));
            long at = (block << DeviceGeometry.LevelBits) + DeviceGeometry.Index(vpn, 1);
            var e1 = new DevicePte(_pool[at]);
            if (e1.IsTable && (va & PmdMask) == 0 && pmdEnd == NextBoundary(va, 1))
            {
                cleared += ClearLevel1(at); // the whole 2 MiB: the leaf block goes back
                MarkDirty(block);
            }
            else if (e1.IsTable)
            {
                long leaf = (long)e1.Frame;
                for (ulong a = va; a < pmdEnd; a += DeviceGeometry.PageSize)
                {
                    ref ulong slot = ref _pool[(leaf << DeviceGeometry.LevelBits) + DeviceGeometry.Index(a >> DeviceGeometry.PageShift, 0)];
                    if (slot != 0)
                    {
                        slot = 0;
                        cleared++;
                        ValidEntries--;
                    }
                }

                MarkDirty(leaf);
            }
            else if (e1.IsValid)
            {
                cleared += ClearLevel1(at); // a huge leaf overlapping the range goes whole
                MarkDirty(block);
            }

            va = NextBoundary(va, 1);
        }

        return cleared;
    }

    /// <summary>Writes the indices of the blocks changed since the last call into <paramref name="blocks"/> and forgets them.</summary>
    /// <param name="blocks">Receives block indices in ascending order (cleared first).</param>
    /// <remarks>Call under the driver lock.</remarks>
    internal void TakeDirtyBlocks(List<int> blocks)
    {
        blocks.Clear();
        for (int w = 0; w < _dirty.Length; w++)
        {
            ulong bits = _dirty[w];
            while (bits != 0)
            {
                blocks.Add((w << 6) + BitOperations.TrailingZeroCount(bits));
                bits &= bits - 1;
            }

            _dirty[w] = 0;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        NativeMemory.AlignedFree(_pool);
        _pool = null;
        _view = default;
    }

    private const ulong PmdMask = ((ulong)DeviceGeometry.PmdPages << DeviceGeometry.PageShift) - 1;

    /// <summary>The first address above <paramref name="va"/> that starts a new entry of <paramref name="level"/>.</summary>
    private static ulong NextBoundary(ulong va, int level)
    {
        int shift = DeviceGeometry.PageShift + (DeviceGeometry.LevelBits * level);
        return ((va >> shift) + 1) << shift;
    }

    /// <summary>Clears the level-1 entry at pool index <paramref name="at"/>: a huge leaf, or a leaf block (freed).</summary>
    /// <returns>Leaf entries cleared.</returns>
    private long ClearLevel1(long at)
    {
        var e = new DevicePte(_pool[at]);
        _pool[at] = 0;
        if (e.IsTable)
        {
            long leaf = (long)e.Frame;
            long valid = 0;
            ReadOnlySpan<ulong> entries = new(_pool + (leaf << DeviceGeometry.LevelBits), DeviceGeometry.BlockEntries);
            foreach (ulong w in entries)
            {
                valid += w != 0 ? 1 : 0;
            }

            NativeMemory.Clear(_pool + (leaf << DeviceGeometry.LevelBits), (nuint)(DeviceGeometry.BlockEntries * sizeof(ulong)));
            _freeBlocks.Push((int)leaf);
            LeafBlocks--;
            ValidEntries -= valid;
            MarkDirty(leaf);
            return valid;
        }

        if (e.IsValid)
        {
            ValidEntries--;
            HugeEntries--;
            return 1;
        }

        return 0;
    }

    /// <summary>The leaf block for <paramref name="va"/>, creating directory and leaf blocks on the way.</summary>
    private long DescendToLeafBlock(ulong va)
    {
        long dir = DescendToLevel1Block(va);
        long at = (dir << DeviceGeometry.LevelBits) + DeviceGeometry.Index(va >> DeviceGeometry.PageShift, 1);
        var e = new DevicePte(_pool[at]);
        if (e.IsTable)
        {
            return (long)e.Frame;
        }

        ClearLevel1(at); // a huge leaf goes whole
        long leaf = AllocateBlock();
        LeafBlocks++;
        _pool[at] = DevicePte.TableEntry(leaf).Value;
        MarkDirty(dir);
        return leaf;
    }

    /// <summary>The level-1 directory block for <paramref name="va"/>, creating directory blocks on the way.</summary>
    private long DescendToLevel1Block(ulong va)
    {
        Debug.Assert(va < DeviceGeometry.AddressSpaceSize, "address beyond 48 bits");
        ulong vpn = va >> DeviceGeometry.PageShift;
        long block = 0;
        for (int level = DeviceGeometry.Levels - 1; level > 1; level--)
        {
            long at = (block << DeviceGeometry.LevelBits) + DeviceGeometry.Index(vpn, level);
            var e = new DevicePte(_pool[at]);
            if (!e.IsTable)
            {
                long next = AllocateBlock(); // may move the pool: index it again below
                _pool[at] = DevicePte.TableEntry(next).Value;
                MarkDirty(block);
                block = next;
            }
            else
            {
                block = (long)e.Frame;
            }
        }

        return block;
    }

    /// <summary>A zeroed block: a freed one, or a fresh one from the top (growing the pool when full).</summary>
    private long AllocateBlock()
    {
        if (_freeBlocks.TryPop(out int reused))
        {
            return reused;
        }

        if (_used == _capacity)
        {
            Grow(_capacity * 2);
        }

        return _used++;
    }

    private void Grow(int blocks)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        nuint bytes = (nuint)blocks * DeviceGeometry.BlockEntries * sizeof(ulong);
        var grown = (ulong*)NativeMemory.AlignedAlloc(bytes, (nuint)DeviceGeometry.PageSize);
        NativeMemory.Clear(grown, bytes);
        if (_pool != null)
        {
            Buffer.MemoryCopy(_pool, grown, bytes, (nuint)_capacity * DeviceGeometry.BlockEntries * sizeof(ulong));
            NativeMemory.AlignedFree(_pool);
        }

        _pool = grown;
        _capacity = blocks;
        _view = HostMemoryBuffer.View<ulong>(null, (nint)_pool, (long)blocks * DeviceGeometry.BlockEntries);
        Array.Resize(ref _dirty, (blocks + 63) >> 6);
        Generation++;
    }

    private void MarkDirty(long block) => _dirty[block >> 6] |= 1UL << (int)(block & 63);
}
