namespace MirrorEmu.Device;

/// <summary>
/// struct hmm_dmirror_cmd (lib/test_hmm_uapi.h) without its <c>ptr</c> (the operations
/// take a span): the caller sets <see cref="Addr"/> and <see cref="Npages"/>; on success the operation sets
/// <see cref="Cpages"/> and <see cref="Faults"/>; on an error it changes nothing (the kernel does not copy the
/// struct back).
/// </summary>
public struct DmirrorCmd
{
    /// <summary>First address, page aligned.</summary>
    public ulong Addr;

    /// <summary>Pages, above 0.</summary>
    public ulong Npages;

    /// <summary>Out: pages copied (read, written or snapshotted).</summary>
    public ulong Cpages;

    /// <summary>Out: device-fault rounds it took (times the driver was entered to service faults).</summary>
    public ulong Faults;

    /// <summary>A command over [<paramref name="addr"/>, + <paramref name="npages"/> pages).</summary>
    /// <param name="addr">First address.</param>
    /// <param name="npages">Pages.</param>
    public DmirrorCmd(ulong addr, ulong npages)
    {
        Addr = addr;
        Npages = npages;
    }
}
