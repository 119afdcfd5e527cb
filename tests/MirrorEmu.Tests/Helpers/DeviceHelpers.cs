using System.Runtime.InteropServices;
using MirrorEmu.Device;
using MirrorEmu.Mm;

namespace MirrorEmu.Tests.Helpers;

/// <summary>Helpers for device tests: element patterns as bytes, CPU reads of elements, and checked device calls.</summary>
public static class DeviceHelpers
{
    /// <summary>Elements per page.</summary>
    public const int PageElements = PageGeometry.PageSizeInt / sizeof(ulong);

    /// <summary>The bytes of <paramref name="pages"/> pages whose element k holds <paramref name="value"/>(k).</summary>
    public static byte[] Pattern(int pages, Func<int, ulong> value)
    {
        var elements = new ulong[pages * PageElements];
        for (int k = 0; k < elements.Length; k++)
        {
            elements[k] = value(k);
        }

        return MemoryMarshal.AsBytes(elements.AsSpan()).ToArray();
    }

    /// <summary>Elements [0, count) at <paramref name="address"/>, read by the CPU.</summary>
    public static ulong[] CpuElements(AddressSpace mm, ulong address, int count)
    {
        var elements = new ulong[count];
        mm.CpuRead(address, MemoryMarshal.AsBytes(elements.AsSpan()));
        return elements;
    }

    /// <summary>The bytes as elements.</summary>
    public static ulong[] Elements(byte[] bytes) => MemoryMarshal.Cast<byte, ulong>(bytes).ToArray();

    /// <summary>A device with test-friendly options on <paramref name="launcher"/>.</summary>
    public static MirrorDevice NewDevice(AddressSpace mm, DeviceLauncher launcher, DeviceOptions? options = null) =>
        new(mm, launcher, options ?? new DeviceOptions { Name = "test device" });

    /// <summary>Asserts a kernel-style call succeeded, printing its message otherwise.</summary>
    public static void Ok(KResult r) => Assert.True(r.IsOk, r.ToString());
}
