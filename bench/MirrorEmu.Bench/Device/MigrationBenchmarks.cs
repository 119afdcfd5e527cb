using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using MirrorEmu.Device;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Device;

/// <summary>
/// Issue 13's migration target, same run, per page: <see cref="MigrateToDevice"/> (migrate_vma_setup, a device page and
/// its copy per page, migrate_vma_pages, the device page-table map, migrate_vma_finalize, over 16,384 written pages of
/// 64 MiB in 512-page chunks) and <see cref="MigrateToSystem"/> (the way back: a system frame and its copy per page) at
/// least 50 % of the rate of <see cref="CopyLoop"/>, an explicit vector copy loop over the same number of bytes between
/// two buffers of the same size (the floor under any migration). <see cref="CopyLoopStreaming"/> is the same loop with
/// non-temporal stores, as a migration copies into frames nobody reads yet; <see cref="Memcpy"/> is the platform's copy
/// of the same bytes (NativeMemory.Copy: glibc's memmove), reported beside. The direct launcher; the device's memory is
/// a pool of host memory, so both directions copy host memory to host memory.
/// </summary>
[BenchmarkCategory(BenchCategories.Kernel)]
public unsafe class MigrationBenchmarks
{
    public const int Pages = 16384;
    private const ulong Bytes = (ulong)Pages << PageGeometry.PageShift;

    private AddressSpace _mm = null!;
    private DeviceLauncher _launcher = null!;
    private MirrorDevice _device = null!;
    private ulong _toDevice;   // starts each round in system memory
    private ulong _toSystem;   // starts each round in device memory
    private byte* _source;
    private byte* _destination;

    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(2UL << 30);
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _toDevice).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _toSystem).ThrowIfError();
        for (int p = 0; p < Pages; p++)
        {
            _mm.CpuWriteUInt64(_toDevice + ((ulong)p << PageGeometry.PageShift), (ulong)p + 1);
            _mm.CpuWriteUInt64(_toSystem + ((ulong)p << PageGeometry.PageShift), (ulong)p + 1);
        }

        _launcher = DeviceLauncher.Create(LauncherKind.Direct);
        _device = new MirrorDevice(_mm, _launcher, new DeviceOptions { DeviceMemoryBytes = 2 * Bytes, Name = "migration" });
        _source = (byte*)NativeMemory.AlignedAlloc((nuint)Bytes, (nuint)PageGeometry.PageSize);
        _destination = (byte*)NativeMemory.AlignedAlloc((nuint)Bytes, (nuint)PageGeometry.PageSize);
        new Span<byte>(_source, (int)Bytes).Fill(0x5A);
        new Span<byte>(_destination, (int)Bytes).Clear();
        Reset();
        if (MigrateToDevice() != Pages || MigrateToSystem() != Pages || _mm.CpuReadUInt64(_toSystem + Bytes - PageGeometry.PageSize) != Pages)
        {
            throw new InvalidOperationException("a migration moved fewer pages than asked, or lost data");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _device.Dispose();
        _launcher.Dispose();
        _mm.Dispose();
        NativeMemory.AlignedFree(_source);
        NativeMemory.AlignedFree(_destination);
    }

    /// <summary>Puts the first range back in system memory and the second on the device (not timed).</summary>
    [IterationSetup]
    public void Reset()
    {
        var back = new DmirrorCmd(_toDevice, Pages);
        _device.MigrateToSystem(ref back).ThrowIfError();
        _device.MigrateToDevice(_toSystem, Pages, out _).ThrowIfError();
    }

    /// <summary>The floor: 32-byte vector loads and ordinary stores over the same bytes.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Pages)]
    public ulong CopyLoop()
    {
        Copy(_destination, _source, Bytes, streaming: false);
        return *(ulong*)(_destination + Bytes - sizeof(ulong));
    }

    /// <summary>The same loop with non-temporal stores (what a migration's copy of 64 pages or more uses).</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong CopyLoopStreaming()
    {
        Copy(_destination, _source, Bytes, streaming: true);
        return *(ulong*)(_destination + Bytes - sizeof(ulong));
    }

    /// <summary>The platform's memcpy (NativeMemory.Copy → memmove) of the same bytes, for scale.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong Memcpy()
    {
        NativeMemory.Copy(_source, _destination, (nuint)Bytes);
        return *(ulong*)(_destination + Bytes - sizeof(ulong));
    }

    /// <summary>System → device: every page of the first range.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong MigrateToDevice()
    {
        _device.MigrateToDevice(_toDevice, Pages, out ulong moved).ThrowIfError();
        return moved;
    }

    /// <summary>Device → system: every page of the second range.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong MigrateToSystem()
    {
        var cmd = new DmirrorCmd(_toSystem, Pages);
        _device.MigrateToSystem(ref cmd).ThrowIfError();
        return cmd.Cpages;
    }

    /// <summary>The explicit copy loop: 32-byte vector loads and aligned stores, ordinary or non-temporal.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Copy(byte* to, byte* from, ulong bytes, bool streaming)
    {
        for (ulong o = 0; o < bytes; o += (ulong)Vector256<byte>.Count)
        {
            Vector256<byte> v = Vector256.Load(from + o);
            if (streaming)
            {
                Vector256.StoreAlignedNonTemporal(v, to + o);
            }
            else
            {
                Vector256.StoreAligned(v, to + o);
            }
        }

        if (streaming)
        {
            PageCopy.Fence();
        }
    }
}
