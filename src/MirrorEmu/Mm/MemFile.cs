namespace MirrorEmu.Mm;

/// <summary>
/// An in-memory file whose page cache holds its pages in frames of a <see cref="PhysicalMemory"/>:
/// what MAP_SHARED mappings of it write is what <see cref="Read"/> returns, and MAP_PRIVATE
/// mappings copy a page on their first write. Shared anonymous mappings use one of these too
/// (as shmem does).
/// </summary>
/// <remarks>
/// <para>Concurrency model:</para> the page-cache array, the size and the set of address spaces that
/// map the file are guarded by <see cref="_lock"/> (rank <see cref="LockRank.PageCache"/>, taken inside
/// an mmap lock, never around one); a page, once in the cache, stays until <see cref="Truncate"/>,
/// <see cref="PunchHole"/> or <see cref="Dispose"/> drops it, after every mapping of it was zapped; its
/// bytes are shared memory, written by whoever maps it writable.
/// </remarks>
public sealed class MemFile : IDisposable
{
    // Guards _pages (slots and growth), SizeBytes and _mappers.
    private readonly object _lock = new();
    private readonly PhysicalMemory _memory;
    private readonly Dictionary<AddressSpace, int> _mappers = [];
    private ulong[] _pages; // pfn + 1 per page index, 0 = not cached
    private bool _disposed;
    private int _mappings;

    /// <summary>Creates a file of <paramref name="sizeBytes"/> bytes, all zero, nothing cached yet.</summary>
    /// <param name="memory">The pool its page cache draws on.</param>
    /// <param name="sizeBytes">File size in bytes; pages at or beyond it cannot be faulted (SIGBUS).</param>
    /// <param name="name">A name for messages.</param>
    public MemFile(PhysicalMemory memory, ulong sizeBytes, string name = "memfile")
    {
        _memory = memory;
        Name = name;
        if (sizeBytes > MaxSizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), $"sizeBytes=0x{sizeBytes:X} is larger than a MemFile holds (0x{MaxSizeBytes:X})");
        }

        SizeBytes = sizeBytes;
        _pages = new ulong[(int)PagesFor(sizeBytes)];
    }

    /// <summary>The largest size a MemFile may have, in bytes (int.MaxValue pages).</summary>
    public const ulong MaxSizeBytes = (ulong)int.MaxValue << PageGeometry.PageShift;

    /// <summary>The file's name.</summary>
    public string Name { get; }

    /// <summary>The file's size in bytes (i_size); <see cref="Truncate"/> changes it.</summary>
    public ulong SizeBytes { get; private set; }

    /// <summary>Pages in the file (size rounded up): a mapping's fault at this index or beyond is SIGBUS.</summary>
    public ulong PageCount => (ulong)Volatile.Read(ref _pages).LongLength;

    /// <summary>Pages now in the page cache.</summary>
    public int CachedPages
    {
        get
        {
            using (new RankedMonitor(_lock, LockRank.PageCache))
            {
                int n = 0;
                foreach (ulong p in _pages)
                {
                    n += p != 0 ? 1 : 0;
                }

                return n;
            }
        }
    }

    /// <summary>The cached frame of a page, without creating it.</summary>
    /// <param name="index">Page index in the file.</param>
    /// <param name="pfn">The frame.</param>
    public bool TryFindPage(ulong index, out ulong pfn)
    {
        using (new RankedMonitor(_lock, LockRank.PageCache))
        {
            ulong slot = index < (ulong)_pages.LongLength ? _pages[index] : 0;
            pfn = slot - 1;
            return slot != 0;
        }
    }

    /// <summary>The cached frame of a page, read in (zero-filled) if missing. Takes no reference for the caller.</summary>
    /// <param name="index">Page index in the file (below <see cref="PageCount"/>).</param>
    /// <param name="pfn">The frame.</param>
    /// <returns>False at the pool's limit.</returns>
    public bool TryGetOrCreatePage(ulong index, out ulong pfn)
    {
        using (new RankedMonitor(_lock, LockRank.PageCache))
        {
            ThrowIfDisposed();
            if (index >= (ulong)_pages.LongLength)
            {
                pfn = 0;
                return false; // a truncate won the race with the caller's size check
            }

            if (_pages[index] != 0)
            {
                pfn = _pages[index] - 1;
                return true;
            }

            if (!_memory.TryAllocate(out pfn))
            {
                return false;
            }

            _memory.Frame(pfn).Clear();
            _memory.MarkPageCache(pfn);
            _pages[index] = pfn + 1;
            return true;
        }
    }

    /// <summary>Puts an allocated frame into the page cache at <paramref name="index"/> (the cache takes
    /// over the caller's reference), unless a page is already there.</summary>
    /// <param name="index">Page index in the file (below <see cref="PageCount"/>).</param>
    /// <param name="pfn">A frame with count 1, filled by the caller.</param>
    /// <returns>False if the index was already cached (the caller still owns the frame).</returns>
    internal bool TryAddPage(ulong index, ulong pfn)
    {
        using (new RankedMonitor(_lock, LockRank.PageCache))
        {
            ThrowIfDisposed();
            if (index >= (ulong)_pages.LongLength || _pages[index] != 0)
            {
                return false;
            }

            _memory.MarkPageCache(pfn);
            _pages[index] = pfn + 1;
            return true;
        }
    }

    /// <summary>Reads file bytes through the page cache (pread); uncached pages read as zeros.</summary>
    /// <param name="offset">Byte offset in the file.</param>
    /// <param name="destination">Where the bytes go; must end within the file.</param>
    public void Read(ulong offset, Span<byte> destination)
    {
        CheckRange(offset, (ulong)destination.Length);
        while (!destination.IsEmpty)
        {
            int inPage = (int)(offset & PageGeometry.PageMask);
            int n = Math.Min(destination.Length, PageGeometry.PageSizeInt - inPage);
            if (TryFindPage(offset >> PageGeometry.PageShift, out ulong pfn))
            {
                _memory.Frame(pfn).Slice(inPage, n).CopyTo(destination);
            }
            else
            {
                destination[..n].Clear();
            }

            destination = destination[n..];
            offset += (ulong)n;
        }
    }

    /// <summary>Writes file bytes through the page cache (pwrite); every shared mapping sees them.</summary>
    /// <param name="offset">Byte offset in the file.</param>
    /// <param name="source">The bytes; must end within the file.</param>
    /// <returns>-ENOMEM at the pool's limit (pages before it are written), else 0.</returns>
    public int Write(ulong offset, ReadOnlySpan<byte> source)
    {
        CheckRange(offset, (ulong)source.Length);
        while (!source.IsEmpty)
        {
            int inPage = (int)(offset & PageGeometry.PageMask);
            int n = Math.Min(source.Length, PageGeometry.PageSizeInt - inPage);
            if (!TryGetOrCreatePage(offset >> PageGeometry.PageShift, out ulong pfn))
            {
                return -Errno.ENOMEM;
            }

            source[..n].CopyTo(_memory.Frame(pfn).Slice(inPage, n));
            source = source[n..];
            offset += (ulong)n;
        }

        return 0;
    }

    /// <summary>True for the object behind a shared anonymous mapping: released with the last VMA that maps it.</summary>
    public bool IsShmem { get; init; }

    /// <summary>Number of VMAs (in every address space) that map this file now.</summary>
    public int Mappings => Volatile.Read(ref _mappings);

    /// <summary>A VMA of <paramref name="mm"/> maps this file (vma_link_file). Called under mm's mmap write lock.</summary>
    internal void AddMapping(AddressSpace mm)
    {
        Interlocked.Increment(ref _mappings);
        using (new RankedMonitor(_lock, LockRank.PageCache))
        {
            _mappers[mm] = _mappers.TryGetValue(mm, out int n) ? n + 1 : 1;
        }
    }

    /// <summary>A VMA of <paramref name="mm"/> no longer maps this file; shmem goes with its last VMA.</summary>
    internal void RemoveMapping(AddressSpace mm)
    {
        using (new RankedMonitor(_lock, LockRank.PageCache))
        {
            if (_mappers.TryGetValue(mm, out int n))
            {
                if (n <= 1)
                {
                    _mappers.Remove(mm);
                }
                else
                {
                    _mappers[mm] = n - 1;
                }
            }
        }

        if (Interlocked.Decrement(ref _mappings) == 0 && IsShmem)
        {
            Dispose();
        }
    }

    /// <summary>
    /// ftruncate(2) (shmem_setattr): sets the size to <paramref name="sizeBytes"/>. Shrinking first unmaps, in every
    /// address space, the pages wholly beyond the new end, private copies of them included (truncate_pagecache, so a
    /// later access there is SIGBUS), then zeroes the part of the last page beyond the end and drops the page cache
    /// beyond it. Growing adds pages that read as zeros.
    /// </summary>
    /// <param name="sizeBytes">The new size in bytes.</param>
    /// <returns>0, or -EFBIG (larger than <see cref="MaxSizeBytes"/>; nothing changes).</returns>
    /// <remarks>Takes each mapper's mmap read lock in turn; call with no mmap lock held.</remarks>
    public KResult Truncate(ulong sizeBytes)
    {
        if (sizeBytes > MaxSizeBytes)
        {
            return KResult.Error(Errno.EFBIG, $"ftruncate: length=0x{sizeBytes:X} is larger than a MemFile holds (0x{MaxSizeBytes:X})");
        }

        ulong oldPages;
        ulong keep = PagesFor(sizeBytes);
        ulong[] dropped = [];
        using (new RankedMonitor(_lock, LockRank.PageCache))
        {
            ThrowIfDisposed();
            oldPages = (ulong)_pages.LongLength;
            SizeBytes = sizeBytes;
            ulong tail = sizeBytes & PageGeometry.PageMask;
            ulong last = sizeBytes >> PageGeometry.PageShift;
            if (tail != 0 && last < oldPages && _pages[last] != 0)
            {
                _memory.Frame(_pages[last] - 1)[(int)tail..].Clear(); // truncate_inode_partial_folio
            }

            // The size goes first, so that a fault beyond the new end is SIGBUS from now on; the pages
            // beyond it leave the cache here and lose the cache's reference once no mapping can reach them.
            if (keep < oldPages)
            {
                dropped = _pages[(int)keep..];
            }

            if (keep != oldPages)
            {
                ulong[] resized = new ulong[keep];
                Array.Copy(_pages, resized, (int)Math.Min(keep, oldPages));
                Volatile.Write(ref _pages, resized);
            }
        }

        if (dropped.Length > 0)
        {
            foreach (AddressSpace mm in Mappers())
            {
                mm.UnmapFilePages(this, keep, oldPages, evenCows: true);
            }

            foreach (ulong slot in dropped)
            {
                if (slot != 0)
                {
                    _memory.Put(slot - 1);
                }
            }
        }

        return KResult.Ok;
    }

    /// <summary>
    /// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) as MADV_REMOVE does it (shmem_fallocate): unmaps the page-cache
    /// pages of [<paramref name="firstPage"/>, <paramref name="endPage"/>) from every address space (private copies stay),
    /// then drops them: the hole reads as zeros.
    /// </summary>
    /// <param name="firstPage">First page index.</param>
    /// <param name="endPage">One past the last page index.</param>
    /// <remarks>Takes each mapper's mmap read lock in turn; call with no mmap lock held.</remarks>
    public void PunchHole(ulong firstPage, ulong endPage)
    {
        endPage = Math.Min(endPage, PageCount);
        if (firstPage >= endPage)
        {
            return;
        }

        foreach (AddressSpace mm in Mappers())
        {
            mm.UnmapFilePages(this, firstPage, endPage, evenCows: false);
        }

        using (new RankedMonitor(_lock, LockRank.PageCache))
        {
            DropPagesLocked(firstPage, Math.Min(endPage, (ulong)_pages.LongLength));
        }
    }

    private List<AddressSpace> Mappers()
    {
        using (new RankedMonitor(_lock, LockRank.PageCache))
        {
            return [.. _mappers.Keys];
        }
    }

    private void DropPagesLocked(ulong first, ulong end)
    {
        for (ulong i = first; i < end; i++)
        {
            if (_pages[i] != 0)
            {
                _memory.Put(_pages[i] - 1);
                _pages[i] = 0;
            }
        }
    }

    private static ulong PagesFor(ulong sizeBytes) => (sizeBytes + PageGeometry.PageMask) >> PageGeometry.PageShift;

    /// <summary>Drops the page cache's references; frames still mapped stay until unmapped.</summary>
    public void Dispose()
    {
        using (new RankedMonitor(_lock, LockRank.PageCache))
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            for (int i = 0; i < _pages.Length; i++)
            {
                if (_pages[i] != 0)
                {
                    _memory.Put(_pages[i] - 1);
                    _pages[i] = 0;
                }
            }
        }
    }

    private void CheckRange(ulong offset, ulong length)
    {
        if (offset > SizeBytes || length > SizeBytes - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"offset=0x{offset:X} length=0x{length:X} runs past the end of {Name} (size 0x{SizeBytes:X})");
        }
    }

    private void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowHelper.ThrowDisposed(Name);
        }
    }
}
