using System.Diagnostics.CodeAnalysis;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

/// <summary>
/// Runs the device's kernels: ILGPU's CPU accelerator (<see cref="LauncherKind.Cpu"/>), the kernel methods called
/// directly (<see cref="LauncherKind.Direct"/>), or a GPU (<see cref="LauncherKind.Cuda"/>,
/// <see cref="LauncherKind.OpenCL"/>). One launcher may serve several devices. Every launcher runs the same kernel
/// source and gives the same results and the same counters on the same workload.
/// </summary>
/// <remarks>A launcher addresses the CPU's frames in place (docs/design.md, "The device model"); one that cannot is not
/// created (<see cref="TryCreate"/> says why in one line), never made to copy.</remarks>
public abstract class DeviceLauncher : IDisposable
{
    /// <summary>Which launcher this is.</summary>
    public abstract LauncherKind Kind { get; }

    /// <summary>One line naming the accelerator ("direct: Parallel.For over 2 cores", "cpu: ILGPU CPUAccelerator …").</summary>
    public abstract string Description { get; }

    /// <summary>Creates a launcher of <paramref name="kind"/>, or says in one line why there is none here.</summary>
    /// <param name="kind">The launcher.</param>
    /// <param name="launcher">The launcher, or null.</param>
    /// <param name="reason">Why none was created (empty on success).</param>
    /// <param name="debugChecks">Turns on ILGPU's kernel assertions and IR verifier (tests).</param>
    /// <returns>True if created.</returns>
    public static bool TryCreate(LauncherKind kind, [NotNullWhen(true)] out DeviceLauncher? launcher, out string reason, bool debugChecks = false)
    {
        switch (kind)
        {
            case LauncherKind.Direct:
                launcher = new DirectLauncher();
                reason = string.Empty;
                return true;
            case LauncherKind.Cpu:
                return IlgpuLauncher.TryCreateCpu(debugChecks, out launcher, out reason);
            case LauncherKind.Cuda:
                return IlgpuLauncher.TryCreateCuda(debugChecks, out launcher, out reason);
            case LauncherKind.OpenCL:
                return IlgpuLauncher.TryCreateOpenCL(debugChecks, out launcher, out reason);
            case LauncherKind.Auto:
                if (IlgpuLauncher.TryCreateCuda(debugChecks, out launcher, out _))
                {
                    reason = string.Empty;
                    return true;
                }

                launcher = new DirectLauncher();
                reason = string.Empty;
                return true;
            default:
                launcher = null;
                reason = $"kind={kind} is not one of Cpu, Direct, Cuda, OpenCL, Auto";
                return false;
        }
    }

    /// <summary>Creates a launcher of <paramref name="kind"/>.</summary>
    /// <param name="kind">The launcher.</param>
    /// <returns>The launcher.</returns>
    /// <exception cref="NotSupportedException">There is none here; the message says why.</exception>
    public static DeviceLauncher Create(LauncherKind kind) =>
        TryCreate(kind, out DeviceLauncher? launcher, out string reason) ? launcher : throw new NotSupportedException($"launcher {kind}: {reason}");

    /// <summary>Binds the launcher to a device whose frames live in <paramref name="memory"/>.</summary>
    /// <param name="memory">The pool the device's address space draws on.</param>
    /// <returns>The binding.</returns>
    /// <exception cref="NotSupportedException">The frames cannot be addressed in place (a chunked arena); the message says why.</exception>
    internal abstract LauncherBinding Bind(PhysicalMemory memory);

    /// <inheritdoc/>
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the accelerator.</summary>
    /// <param name="disposing">True from <see cref="Dispose()"/>.</param>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>Throws unless <paramref name="memory"/>'s frames lie in one contiguous arena.</summary>
    /// <param name="memory">The pool.</param>
    /// <param name="launcher">The launcher's name for the message.</param>
    protected static void RequireContiguous(PhysicalMemory memory, string launcher)
    {
        if (!memory.Arena.IsContiguous)
        {
            throw new NotSupportedException(
                $"{launcher}: the frames are in a non-contiguous arena ({memory.Arena.Description}); a device addresses frames in place through one view and needs FrameArenaKind.Reserved");
        }
    }
}
