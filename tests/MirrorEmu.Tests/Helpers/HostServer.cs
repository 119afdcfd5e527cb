using MirrorEmu.Calibration;

namespace MirrorEmu.Tests.Helpers;

/// <summary>Starts the forked host syscall server (<see cref="LinuxMmProcess.TrySpawnBase"/>) for a test, patiently: on a
/// loaded machine the handshake of a fork of the test host (thousands of mappings) has missed a 5 s bound, which skipped a
/// test that should have run. Three tries of up to 20 s each; then the test is skipped with every reason.</summary>
internal static class HostServer
{
    private const int HandshakeMs = 20_000;

    /// <summary>The base server, or a skip naming why it could not start.</summary>
    /// <param name="scratch">Its scratch area.</param>
    /// <param name="scratchPages">Pages in the scratch area.</param>
    public static LinuxMmProcess SpawnOrSkip(ulong scratch, int scratchPages)
    {
        Assert.SkipUnless(LinuxMm.IsSupported(out string why), why);
        var reasons = new List<string>();
        for (int attempt = 0; attempt < 3; attempt++)
        {
            if (LinuxMmProcess.TrySpawnBase(scratch, scratchPages, HandshakeMs, out why) is { } server)
            {
                return server;
            }

            reasons.Add(why);
        }

        Assert.Skip($"no host server after 3 tries: {string.Join("; ", reasons)}");
        return null!;
    }
}
