using System.Runtime.InteropServices;

namespace MirrorEmu.Mm;

/// <summary>
/// Frames in one contiguous reservation of address space, committed a chunk at a time: on Linux and macOS an
/// <c>mmap(PROT_NONE, MAP_NORESERVE)</c> of the whole span whose chunks become readable and writable with
/// <c>mprotect</c>; on Windows <c>VirtualAlloc(MEM_RESERVE)</c> then <c>MEM_COMMIT</c> per chunk. Reserving
/// costs no memory; a chunk costs memory once touched. Contiguous, so a device addresses frame <c>pfn</c> at
/// <see cref="BaseAddress"/> + <c>pfn</c> * page size through one view.
/// </summary>
/// <remarks>A commit that the operating system refuses (a strict overcommit limit, a Windows commit limit)
/// makes <see cref="TryCommit"/> return 0; the pool then reports the allocation as failed.</remarks>
public sealed unsafe partial class ReservedFrameArena : FrameArena
{
    private const int ProtNone = 0;
    private const int ProtReadWrite = 0x1 | 0x2;
    private const int MemCommit = 0x1000;
    private const int MemReserve = 0x2000;
    private const int MemRelease = 0x8000;
    private const int PageNoAccess = 0x01;
    private const int PageReadWrite = 0x04;

    private readonly nint _base;

    // Set once per chunk under the pool's lock (TryCommit); read by TryCommit only.
    private readonly bool[] _committed;
    private bool _disposed;

    /// <summary>Reserves address space for <paramref name="chunkCount"/> chunks.</summary>
    /// <param name="chunkCount">Chunks the arena can hold.</param>
    /// <exception cref="PlatformNotSupportedException">Not Linux, macOS or Windows.</exception>
    /// <exception cref="OutOfMemoryException">The operating system refused the reservation.</exception>
    public ReservedFrameArena(int chunkCount)
        : base(chunkCount)
    {
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException("a reserved frame arena needs Linux, macOS or Windows; use FrameArenaKind.Chunked");
        }

        _committed = new bool[chunkCount];
        nint p = OperatingSystem.IsWindows()
            ? VirtualAlloc(0, (nuint)SpanBytes, MemReserve, PageNoAccess)
            : Mmap(0, (nuint)SpanBytes, ProtNone, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
        if (p == 0 || p == -1)
        {
            throw new OutOfMemoryException($"reserving 0x{SpanBytes:X} bytes of address space for frames failed (errno {Marshal.GetLastPInvokeError()})");
        }

        _base = p;
    }

    /// <summary>True where this arena works: Linux, macOS and Windows on a 64-bit process.</summary>
    public static bool IsSupported =>
        Environment.Is64BitProcess && (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() || OperatingSystem.IsWindows());

    /// <inheritdoc/>
    public override bool IsContiguous => true;

    /// <inheritdoc/>
    public override nint BaseAddress => _base;

    /// <inheritdoc/>
    public override string Description => $"reserved: 0x{SpanBytes:X} bytes at 0x{_base:X}, contiguous, committed in chunks of {ChunkBytes >> 20} MiB";

    private static int MapPrivate => 0x02;

    private static int MapAnonymous => OperatingSystem.IsMacOS() ? 0x1000 : 0x20;

    private static int MapNoReserve => OperatingSystem.IsMacOS() ? 0x40 : 0x4000;

    /// <inheritdoc/>
    public override nint TryCommit(int chunk)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        nint at = _base + (nint)((ulong)chunk * ChunkBytes);
        if (_committed[chunk])
        {
            return at;
        }

        bool ok = OperatingSystem.IsWindows()
            ? VirtualAlloc(at, (nuint)ChunkBytes, MemCommit, PageReadWrite) == at
            : Mprotect(at, (nuint)ChunkBytes, ProtReadWrite) == 0;
        if (!ok)
        {
            return 0;
        }

        _committed[chunk] = true;
        return at;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (OperatingSystem.IsWindows())
        {
            VirtualFree(_base, 0, MemRelease);
        }
        else
        {
            Munmap(_base, (nuint)SpanBytes);
        }
    }

    /// <summary>Returns the reservation if the owner forgot to dispose.</summary>
    ~ReservedFrameArena() => Dispose(disposing: false);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(nint address, nuint length, int prot);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(nint address, nuint length);

    [LibraryImport("kernel32", EntryPoint = "VirtualAlloc", SetLastError = true)]
    private static partial nint VirtualAlloc(nint address, nuint size, int allocationType, int protect);

    [LibraryImport("kernel32", EntryPoint = "VirtualFree")]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool VirtualFree(nint address, nuint size, int freeType);
}
