namespace MirrorEmu.Kernels;

/// <summary>How a work item touched a page when it faulted (the access kind of a fault-buffer entry).</summary>
public enum DeviceAccess
{
    /// <summary>A load: the page must be mapped.</summary>
    Read = 0,

    /// <summary>A store: the page must be mapped writable.</summary>
    Write = 1,

    /// <summary>An atomic read-modify-write: the page must be mapped writable.</summary>
    Atomic = 2,
}
