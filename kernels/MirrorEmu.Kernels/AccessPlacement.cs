using System.Runtime.CompilerServices;

namespace MirrorEmu.Kernels;

/// <summary>
/// Where a work item's accesses went. An item method returns a count word: one per access, <see cref="System"/> for an
/// access that reached the CPU's frames and <see cref="Device"/> for one that reached the device's memory, added up (0
/// when the item faulted), so that adding the words of many items counts both at once: the <c>direct</c> launcher does
/// that in a register. The ILGPU launchers store each completed item's word as a placement byte (<see cref="ToByte"/>,
/// the system count in bits 1..0 and the device count in bits 3..2) and count the bytes after the launch.
/// </summary>
public static class AccessPlacement
{
    /// <summary>Where the device count sits in a count word.</summary>
    public const int DeviceShift = 32;

    /// <summary>The count word of one access to the CPU's frames.</summary>
    public const long System = 1;

    /// <summary>The count word of one access to the device's memory.</summary>
    public const long Device = 1L << DeviceShift;

    /// <summary>Where the device count sits in a placement byte.</summary>
    public const int ByteDeviceShift = 2;

    /// <summary>Accesses to the CPU's frames in a sum of count words (of at most 2^32 - 1 of them).</summary>
    /// <param name="sum">Count words added up.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long SystemAccesses(long sum) => sum & uint.MaxValue;

    /// <summary>Accesses to the device's memory in a sum of count words.</summary>
    /// <param name="sum">Count words added up.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long DeviceAccesses(long sum) => sum >>> DeviceShift;

    /// <summary>The placement byte of one item's count word (at most three accesses of each kind).</summary>
    /// <param name="word">What the item method returned.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte ToByte(long word) => (byte)((word & 3) | ((word >>> DeviceShift) << ByteDeviceShift));
}
