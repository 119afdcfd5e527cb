using System.Runtime.InteropServices;

namespace MirrorEmu.Bench;

/// <summary>
/// Native memory that starts <c>offset</c> bytes past a page boundary, so that the relative alignment of a
/// benchmark's buffers is the same in every run (two managed arrays land wherever the GC puts them, and the
/// platform memcpy's speed depends on their distance modulo 32).
/// </summary>
public sealed unsafe class AlignedBuffer : IDisposable
{
    private readonly byte* _base;

    /// <summary>Allocates <paramref name="bytes"/> bytes starting <paramref name="offset"/> bytes past a 4 KiB boundary, filled with zeros.</summary>
    /// <param name="bytes">Usable length in bytes.</param>
    /// <param name="offset">Bytes past the page boundary, below 4096.</param>
    public AlignedBuffer(long bytes, int offset = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(offset, MirrorEmu.Mm.PageGeometry.PageSizeInt);
        _base = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes + offset), (nuint)MirrorEmu.Mm.PageGeometry.PageSizeInt);
        NativeMemory.Clear(_base, (nuint)(bytes + offset));
        Pointer = _base + offset;
        Length = bytes;
    }

    /// <summary>The first usable byte.</summary>
    public byte* Pointer { get; }

    /// <summary>Usable length in bytes.</summary>
    public long Length { get; }

    /// <summary>The buffer as bytes.</summary>
    public Span<byte> Bytes => new(Pointer, checked((int)Length));

    /// <summary>The buffer as 64-bit words (the length rounded down).</summary>
    public Span<ulong> Words => new(Pointer, checked((int)(Length / sizeof(ulong))));

    /// <inheritdoc/>
    public void Dispose() => NativeMemory.AlignedFree(_base);
}
