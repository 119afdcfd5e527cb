namespace MirrorEmu.Mm;

/// <summary>Which kind of <see cref="FrameArena"/> a <see cref="PhysicalMemory"/> pool uses.</summary>
public enum FrameArenaKind
{
    /// <summary><see cref="Reserved"/> where the operating system can reserve address space (Linux, macOS, Windows), else <see cref="Chunked"/>.</summary>
    Default,

    /// <summary>One contiguous reservation of the pool's whole limit, committed a chunk at a time on demand
    /// (<see cref="ReservedFrameArena"/>): frame <c>pfn</c> is at <c>BaseAddress + pfn * PageSize</c>, so one
    /// accelerator view covers every frame.</summary>
    Reserved,

    /// <summary>Separate native chunks allocated on demand (<see cref="ChunkedFrameArena"/>): works everywhere, but
    /// frames of different chunks are not adjacent, so a device cannot address them through one view.</summary>
    Chunked,
}

/// <summary>
/// Where the bytes of <see cref="PhysicalMemory"/>'s frames live: chunks of
/// <see cref="PhysicalMemory.ChunkFrames"/> frames, committed on demand. The pool asks for a chunk the first
/// time it hands out one of its frames; a chunk stays committed until the arena is disposed.
/// </summary>
/// <remarks>
/// <para>A device that mirrors the CPU page table reads and writes frames in place (docs/design.md, "The device
/// model"), so it needs to address a frame by pfn. A <see cref="IsContiguous"/> arena lets it do that with one
/// view over [<see cref="BaseAddress"/>, <see cref="BaseAddress"/> + <see cref="SpanBytes"/>); bytes of chunks
/// not committed yet must not be touched (they are reserved but inaccessible).</para>
/// <para>Concurrency model:</para> <see cref="TryCommit"/> is called under the pool's lock; addresses it
/// returned stay valid and readable without a lock until <see cref="Dispose()"/>.
/// </remarks>
public abstract class FrameArena : IDisposable
{
    /// <summary>Creates the bookkeeping for <paramref name="chunkCount"/> chunks.</summary>
    /// <param name="chunkCount">Chunks the arena can hold (the pool's limit, rounded up to chunks).</param>
    protected FrameArena(int chunkCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkCount);
        ChunkCount = chunkCount;
    }

    /// <summary>Bytes of one chunk.</summary>
    public const ulong ChunkBytes = (ulong)PhysicalMemory.ChunkFrames << PageGeometry.PageShift;

    /// <summary>Chunks the arena can hold.</summary>
    public int ChunkCount { get; }

    /// <summary>Bytes the arena spans when every chunk is committed.</summary>
    public ulong SpanBytes => (ulong)ChunkCount * ChunkBytes;

    /// <summary>True when frame <c>pfn</c> lies at <see cref="BaseAddress"/> + <c>pfn</c> * page size for every pfn.</summary>
    public abstract bool IsContiguous { get; }

    /// <summary>The address of frame 0 when <see cref="IsContiguous"/>, else 0.</summary>
    public abstract nint BaseAddress { get; }

    /// <summary>A one-line description for reports ("reserved 8 GiB at 0x7f…, contiguous").</summary>
    public abstract string Description { get; }

    /// <summary>Creates the arena of <paramref name="kind"/> for <paramref name="chunkCount"/> chunks.</summary>
    /// <param name="kind">The kind; <see cref="FrameArenaKind.Default"/> picks <see cref="FrameArenaKind.Reserved"/> where it is supported.</param>
    /// <param name="chunkCount">Chunks the arena can hold.</param>
    /// <returns>The arena.</returns>
    /// <exception cref="PlatformNotSupportedException"><see cref="FrameArenaKind.Reserved"/> was asked for on an
    /// operating system that cannot reserve address space.</exception>
    /// <exception cref="OutOfMemoryException">The reservation failed (no address space left).</exception>
    public static FrameArena Create(FrameArenaKind kind, int chunkCount) => kind switch
    {
        FrameArenaKind.Chunked => new ChunkedFrameArena(chunkCount),
        FrameArenaKind.Reserved => new ReservedFrameArena(chunkCount),
        _ => ReservedFrameArena.IsSupported ? new ReservedFrameArena(chunkCount) : new ChunkedFrameArena(chunkCount),
    };

    /// <summary>Commits chunk <paramref name="chunk"/> (readable and writable; its bytes are unspecified, the pool's callers fill frames) and returns its first byte.</summary>
    /// <param name="chunk">A chunk index below <see cref="ChunkCount"/> not committed before.</param>
    /// <returns>The chunk's address, or 0 when the memory cannot be had (the pool then allocates nothing from it).</returns>
    /// <remarks>Called once per chunk, under the pool's lock. Never throws for lack of memory.</remarks>
    public abstract nint TryCommit(int chunk);

    /// <summary>Releases every chunk and the reservation. Frames must not be touched afterwards.</summary>
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the native memory.</summary>
    /// <param name="disposing">True from <see cref="Dispose()"/>.</param>
    protected abstract void Dispose(bool disposing);
}
