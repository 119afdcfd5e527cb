using MirrorEmu.Calibration;

namespace MirrorEmu.Tests.Calibration;

/// <summary>The host kernel's userfaultfd, which the Uffd benchmarks measure beside the emulator's. Skipped
/// where the host has none (not Linux, or no permission).</summary>
public class LinuxUffdTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(1)]
    public void PopulateOfARegisteredRangeIsAnsweredByOneCopyPerBlock(int blockPages)
    {
        nuint length = (nuint)(256 * LinuxUffd.PageSize);
        nint start = OperatingSystem.IsLinux() ? LinuxUffd.MapAnonymous(length) : 0;
        try
        {
            Assert.SkipUnless(OperatingSystem.IsLinux(), "userfaultfd is Linux's");
            Assert.SkipWhen(LinuxUffd.PopulateWrite(start, (nuint)LinuxUffd.PageSize) == -22, "MADV_POPULATE_WRITE needs Linux 5.14 or later");
            Assert.Equal(0, LinuxUffd.DontNeed(start, (nuint)LinuxUffd.PageSize));
            using LinuxUffd? uffd = LinuxUffd.TryOpen(start, length, blockPages, 0x5A, out string why);
            Assert.SkipUnless(uffd is not null, $"the host has no usable userfaultfd: {why}");

            // One round trip per aligned block the range touches (the mapping need not be block aligned).
            long blockBytes = (long)blockPages * LinuxUffd.PageSize;
            long roundTrips = (((long)start + (long)length - 1) / blockBytes) - ((long)start / blockBytes) + 1;

            Assert.Equal(0, LinuxUffd.PopulateWrite(start, length));
            uffd!.ThrowIfMonitorFailed();
            Assert.Equal(roundTrips, uffd.RoundTrips);
            Assert.Equal(256, uffd.PagesCopied);
            byte[] bytes = new byte[(int)length];
            System.Runtime.InteropServices.Marshal.Copy(start, bytes, 0, bytes.Length);
            Assert.Equal(-1, bytes.AsSpan().IndexOfAnyExcept((byte)0x5A));

            // Missing again: the next populate faults every block once more.
            Assert.Equal(0, LinuxUffd.DontNeed(start, length));
            Assert.Equal(0, LinuxUffd.PopulateWrite(start, length));
            Assert.Equal(2 * roundTrips, uffd.RoundTrips);
        }
        finally
        {
            if (start != 0)
            {
                LinuxUffd.Unmap(start, length);
            }
        }
    }
}
