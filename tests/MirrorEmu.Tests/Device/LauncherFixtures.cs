using MirrorEmu.Device;

namespace MirrorEmu.Tests.Device;

/// <summary>
/// One launcher shared by a test class: created once with ILGPU's kernel assertions and IR
/// verifier on, or, where this machine has none of its kind, the reason, which the tests pass to Assert.SkipUnless.
/// </summary>
public abstract class LauncherFixture : IDisposable
{
    private readonly DeviceLauncher? _launcher;

    protected LauncherFixture(LauncherKind kind, int bufferPages)
    {
        Kind = kind;
        BufferPages = bufferPages;
        Available = DeviceLauncher.TryCreate(kind, out _launcher, out string reason, debugChecks: true);
        Reason = reason;
    }

    public LauncherKind Kind { get; }

    public bool Available { get; }

    /// <summary>Why the launcher is absent (empty when available).</summary>
    public string Reason { get; }

    /// <summary>Pages of a test buffer: hmm-tests' HMM_BUFFER_SIZE (1,024 pages) where kernels run fast, fewer on
    /// ILGPU's CPU accelerator (about 0.2 M translated accesses a second here).</summary>
    public int BufferPages { get; }

    /// <summary>The launcher; skips the calling test (with the reason) when there is none.</summary>
    public DeviceLauncher Launcher
    {
        get
        {
            Assert.SkipUnless(Available, $"{Kind}: {Reason}");
            return _launcher!;
        }
    }

    public void Dispose()
    {
        _launcher?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>ILGPU's CPU accelerator: always present.</summary>
public sealed class CpuLauncherFixture() : LauncherFixture(LauncherKind.Cpu, bufferPages: 16);

/// <summary>The direct launcher: always present.</summary>
public sealed class DirectLauncherFixture() : LauncherFixture(LauncherKind.Direct, bufferPages: 1024);

/// <summary>CUDA: present on a machine with a GPU that can address host frames in place.</summary>
public sealed class CudaLauncherFixture() : LauncherFixture(LauncherKind.Cuda, bufferPages: 1024);

/// <summary>OpenCL: reports why it cannot address host frames in place (or that there is no device).</summary>
public sealed class OpenClLauncherFixture() : LauncherFixture(LauncherKind.OpenCL, bufferPages: 1024);
