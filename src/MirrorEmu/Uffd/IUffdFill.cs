namespace MirrorEmu.Uffd;

/// <summary>What a monitor puts into the pages it resolves.</summary>
public interface IUffdFill
{
    /// <summary>Writes the contents of the pages starting at <paramref name="address"/> into <paramref name="destination"/>.</summary>
    /// <param name="address">Page-aligned virtual address of the first page.</param>
    /// <param name="destination">A whole number of pages.</param>
    void Fill(ulong address, Span<byte> destination);
}

/// <summary>Zero-filled pages (what UFFDIO_ZEROPAGE would give, through COPY).</summary>
public sealed class ZeroFill : IUffdFill
{
    /// <inheritdoc/>
    public void Fill(ulong address, Span<byte> destination) => destination.Clear();
}

/// <summary>Every byte of every page is one value.</summary>
/// <param name="value">The byte.</param>
public sealed class PatternFill(byte value) : IUffdFill
{
    /// <summary>The byte written.</summary>
    public byte Value => value;

    /// <inheritdoc/>
    public void Fill(ulong address, Span<byte> destination) => destination.Fill(value);
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
}
