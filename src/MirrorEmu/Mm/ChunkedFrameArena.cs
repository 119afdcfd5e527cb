using System.Runtime.InteropServices;

namespace MirrorEmu.Mm;

/// <summary>
/// Frames in separate native chunks of <see cref="FrameArena.ChunkBytes"/>, each allocated (page aligned) the
/// first time the pool needs it: the arena MirrorEmu used before devices came, and the fallback where address
/// space cannot be reserved. Not contiguous: a device cannot address its frames through one view.
/// </summary>
public sealed unsafe class ChunkedFrameArena : FrameArena
{
    // Written once per chunk under the pool's lock (TryCommit) and read by Dispose.
    private readonly nint[] _chunks;
    private bool _disposed;

    /// <summary>Creates an arena with nothing allocated yet.</summary>
    /// <param name="chunkCount">Chunks the arena can hold.</param>
    public ChunkedFrameArena(int chunkCount)
        : base(chunkCount) => _chunks = new nint[chunkCount];

    /// <inheritdoc/>
    public override bool IsContiguous => false;

    /// <inheritdoc/>
    public override nint BaseAddress => 0;

    /// <inheritdoc/>
    public override string Description => $"chunked: up to {ChunkCount} native chunks of {ChunkBytes >> 20} MiB, not contiguous";

    /// <inheritdoc/>
    public override nint TryCommit(int chunk)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_chunks[chunk] != 0)
        {
            return _chunks[chunk];
        }

        try
        {
            void* p = NativeMemory.AlignedAlloc((nuint)ChunkBytes, (nuint)PageGeometry.PageSize);
            _chunks[chunk] = (nint)p;
            return (nint)p;
        }
        catch (OutOfMemoryException)
        {
            return 0;
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        for (int i = 0; i < _chunks.Length; i++)
        {
            if (_chunks[i] != 0)
            {
                NativeMemory.AlignedFree((void*)_chunks[i]);
                _chunks[i] = 0;
            }
        }
    }

    /// <summary>Frees the chunks if the owner forgot to dispose.</summary>
    ~ChunkedFrameArena() => Dispose(disposing: false);
}
