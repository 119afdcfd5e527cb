namespace MirrorEmu.Mm;

/// <summary>
/// An in-memory file whose page cache holds its pages in frames of a <see cref="PhysicalMemory"/>:
/// what MAP_SHARED mappings of it write is what <see cref="Read"/> returns, and MAP_PRIVATE
/// mappings copy a page on their first write. Shared anonymous mappings use one of these too
/// (as shmem does).
/// </summary>
/// <remarks>
/// <para>Concurrency model:</para> the page-cache array is guarded by <see cref="_lock"/>; a page,
/// once in the cache, stays until <see cref="Dispose"/>; its bytes are shared memory, written
/// by whoever maps it writable.
/// </remarks>
public sealed class MemFile : IDisposable
{
    // Guards _pages (slots and growth).
    private readonly object _lock = new();
    private readonly PhysicalMemory _memory;
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
        SizeBytes = sizeBytes;
        Name = name;
        ulong pages = (sizeBytes + PageGeometry.PageMask) >> PageGeometry.PageShift;
        if (pages > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), $"sizeBytes=0x{sizeBytes:X} is larger than a MemFile holds");
        }

        _pages = new ulong[(int)pages];
    }

    /// <summary>The file's name.</summary>
    public string Name { get; }

    /// <summary>The file's size in bytes.</summary>
    public ulong SizeBytes { get; }

    /// <summary>Pages in the file (size rounded up).</summary>
    public ulong PageCount => (ulong)_pages.LongLength;

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
            if (_pages[index] != 0)
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

    internal void AddMapping() => Interlocked.Increment(ref _mappings);

    internal void RemoveMapping()
    {
        if (Interlocked.Decrement(ref _mappings) == 0 && IsShmem)
        {
            Dispose();
        }
    }

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
