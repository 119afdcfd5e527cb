using System.Runtime.CompilerServices;

namespace MirrorEmu.Kernels;

/// <summary>
/// Where a work item's accesses went, as the kernels record it: one byte per work item in the launch's placement view,
/// written when the item completes (a faulted item writes nothing until its replay). An item with one access holds
/// <see cref="System"/> or <see cref="Device"/>; a copy holds its source's in the low two bits and its destination's
/// shifted by <see cref="SecondShift"/>. The host counts the bytes after the launch (the <c>direct</c> launcher adds the
/// codes up as it runs instead).
/// </summary>
public static class AccessPlacement
{
    /// <summary>The access reached a frame of the CPU's memory in place.</summary>
    public const byte System = 1;

    /// <summary>The access reached a frame of the device's own memory.</summary>
    public const byte Device = 2;

    /// <summary>Where the second access of a two-access item (a copy's destination) is recorded.</summary>
    public const int SecondShift = 2;

    /// <summary>How many of the accesses a placement code records reached the CPU's frames (0, 1 or 2).</summary>
    /// <param name="code">A code an item method returned, or a placement byte.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SystemAccesses(int code) => (code & 1) + ((code >> SecondShift) & 1);

    /// <summary>How many of the accesses a placement code records reached the device's memory (0, 1 or 2).</summary>
    /// <param name="code">A code an item method returned, or a placement byte.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DeviceAccesses(int code) => ((code >> 1) & 1) + (code >> (SecondShift + 1));
}
