namespace MirrorEmu.Kernels;

/// <summary>
/// Slots of the fault buffer's state view (32-bit words), written by kernels with atomics and read and reset by
/// the driver between passes.
/// </summary>
public static class FaultBufferState
{
    /// <summary>Appends attempted in this pass (entries at and above the buffer's length were dropped).</summary>
    public const int Count = 0;

    /// <summary>Appends dropped because the buffer was full (the work items stay marked; a replay appends them again).</summary>
    public const int Dropped = 1;

    /// <summary>The first work item that hit an error, plus one (0: none).</summary>
    public const int ErrorItem = 2;

    /// <summary>What that error was (<see cref="ErrorIndexOutOfRange"/>).</summary>
    public const int ErrorKind = 3;

    /// <summary>The offending value of that error (the index).</summary>
    public const int ErrorValue = 4;

    /// <summary>Words in the state view.</summary>
    public const int Length = 5;

    /// <summary>A gather or scatter index outside [0, elements).</summary>
    public const int ErrorIndexOutOfRange = 1;
}
