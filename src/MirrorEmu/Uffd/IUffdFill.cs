namespace MirrorEmu.Uffd;

/// <summary>What a monitor puts into the pages it resolves.</summary>
public interface IUffdFill
{
    /// <summary>Writes the contents of the pages starting at <paramref name="address"/> into <paramref name="destination"/>.</summary>
    /// <param name="address">Page-aligned virtual address of the first page.</param>
    /// <param name="destination">A whole number of pages.</param>
    void Fill(ulong address, Span<byte> destination);

    /// <summary>The bytes of the pages starting at <paramref name="address"/> where they already exist in memory
    /// (a snapshot image, a prepared pattern), so that UFFDIO_COPY reads them directly, as a real monitor
    /// copies from the buffer its data arrived in; empty when the monitor must <see cref="Fill"/> a buffer first.</summary>
    /// <param name="address">Page-aligned virtual address of the first page.</param>
    /// <param name="length">Bytes wanted, a whole number of pages.</param>
    ReadOnlySpan<byte> Source(ulong address, int length) => default;
}

/// <summary>Zero-filled pages, copied (so the pages are private and writable, unlike UFFDIO_ZEROPAGE's zero page).</summary>
public sealed class ZeroFill : IUffdFill
{
    private static readonly byte[] s_zeros = new byte[PatternFill.MaxBytes];

    /// <inheritdoc/>
    public void Fill(ulong address, Span<byte> destination) => destination.Clear();

    /// <inheritdoc/>
    public ReadOnlySpan<byte> Source(ulong address, int length) => length <= s_zeros.Length ? s_zeros.AsSpan(0, length) : default;
}

/// <summary>Every byte of every page is one value.</summary>
public sealed class PatternFill : IUffdFill
{
    /// <summary>The longest run a prepared source covers: 512 pages (2 MiB).</summary>
    public const int MaxBytes = Mm.PageGeometry.LevelEntries * Mm.PageGeometry.PageSizeInt;

    private readonly byte[] _pattern;

    /// <summary>Prepares 2 MiB of the byte, the source of every copy.</summary>
    /// <param name="value">The byte.</param>
    public PatternFill(byte value)
    {
        Value = value;
        _pattern = GC.AllocateUninitializedArray<byte>(MaxBytes, pinned: true);
        _pattern.AsSpan().Fill(value);
    }

    /// <summary>The byte written.</summary>
    public byte Value { get; }

    /// <inheritdoc/>
    public void Fill(ulong address, Span<byte> destination) => destination.Fill(Value);

    /// <inheritdoc/>
    public ReadOnlySpan<byte> Source(ulong address, int length) => length <= _pattern.Length ? _pattern.AsSpan(0, length) : default;
}

/// <summary>Bytes from a backing snapshot (post-copy migration's source image): page at address A gets
/// snapshot[A - base]; pages outside the snapshot get zeros.</summary>
/// <param name="baseAddress">The virtual address of the snapshot's first byte.</param>
/// <param name="snapshot">The image.</param>
public sealed class SnapshotFill(ulong baseAddress, ReadOnlyMemory<byte> snapshot) : IUffdFill
{
    /// <inheritdoc/>
    public void Fill(ulong address, Span<byte> destination)
    {
        destination.Clear();
        if (address + (ulong)destination.Length <= baseAddress || address >= baseAddress + (ulong)snapshot.Length)
        {
            return;
        }

        long offset = (long)(address - baseAddress);
        int skip = offset < 0 ? (int)-offset : 0;
        int from = offset < 0 ? 0 : (int)offset;
        int n = Math.Min(destination.Length - skip, snapshot.Length - from);
        snapshot.Span.Slice(from, n).CopyTo(destination[skip..]);
    }

    /// <inheritdoc/>
    public ReadOnlySpan<byte> Source(ulong address, int length) =>
        address >= baseAddress && address - baseAddress + (ulong)length <= (ulong)snapshot.Length
            ? snapshot.Span.Slice((int)(address - baseAddress), length)
            : default;
}
