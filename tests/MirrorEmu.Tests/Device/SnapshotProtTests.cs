using MirrorEmu.Device;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Device;

/// <summary>dmirror_mkentry's bytes for device-private pages: LOCAL for the snapshotting owner's pages, REMOTE for another
/// owner's (which hmm_range_fault never reports, but the encoding is dmirror's), with the write and order bits as for any page.</summary>
public sealed class SnapshotProtTests
{
    [Fact]
    public void ADevicePfnIsLocalForItsOwnerAndRemoteForAnyOther()
    {
        using var dev = new TestDevicePagemap(4);
        Assert.True(dev.Pool.TryAllocate(out ulong frame));
        ulong pfn = dev.Pagemap.ToPfn(frame);

        Assert.Equal(SnapshotProt.DevPrivateLocal | SnapshotProt.Write, SnapshotProt.FromHmmPfn(HmmPfn.Valid | HmmPfn.Write | pfn, dev));
        Assert.Equal(SnapshotProt.DevPrivateLocal | SnapshotProt.Read, SnapshotProt.FromHmmPfn(HmmPfn.Valid | pfn, dev));
        Assert.Equal(SnapshotProt.DevPrivateRemote | SnapshotProt.Write, SnapshotProt.FromHmmPfn(HmmPfn.Valid | HmmPfn.Write | pfn, new object()));
        Assert.Equal(SnapshotProt.Zero | SnapshotProt.Read, SnapshotProt.FromHmmPfn(HmmPfn.Valid | PhysicalMemory.ZeroPfn, dev));
        Assert.Equal(SnapshotProt.None, SnapshotProt.FromHmmPfn(pfn, dev)); // not VALID
    }
}
