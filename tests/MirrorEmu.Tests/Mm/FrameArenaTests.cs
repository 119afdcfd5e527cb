using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MirrorEmu.Mm;

namespace MirrorEmu.Tests.Mm;

/// <summary>Frame arenas: where the pool's frames live, the contiguous layout a device view relies on, and the pool's
/// allocation-failure semantics when the arena cannot commit memory (false or fewer frames, never a throw).</summary>
public class FrameArenaTests
{
    private const ulong ThreeChunks = 3 * FrameArena.ChunkBytes;

    [Fact]
    public void TheDefaultArenaIsOneContiguousReservationWhereTheSystemSupportsIt()
    {
        Assert.SkipUnless(ReservedFrameArena.IsSupported, "this operating system cannot reserve address space");
        using var mem = new PhysicalMemory(ThreeChunks);
        Assert.True(mem.Arena.IsContiguous);
        Assert.IsType<ReservedFrameArena>(mem.Arena);
    }

    [Theory]
    [InlineData(FrameArenaKind.Reserved)]
    [InlineData(FrameArenaKind.Chunked)]
    public void FramesOfEveryChunkHoldTheirOwnBytes(FrameArenaKind kind)
    {
        Assert.SkipUnless(kind != FrameArenaKind.Reserved || ReservedFrameArena.IsSupported, "this operating system cannot reserve address space");
        using var mem = new PhysicalMemory(ThreeChunks, arena: kind);
        var pfns = new ulong[PhysicalMemory.ChunkFrames + 10];
        Assert.Equal(pfns.Length, mem.TryAllocateBatch(pfns));
        foreach (ulong pfn in pfns)
        {
            mem.Frame(pfn).Fill((byte)pfn);
        }

        foreach (ulong pfn in pfns)
        {
            Assert.True(mem.Frame(pfn).IndexOfAnyExcept((byte)pfn) < 0, $"frame 0x{pfn:x} lost its bytes");
            if (mem.Arena.IsContiguous)
            {
                ref byte frame0 = ref MemoryMarshal.GetReference(mem.Frame(PhysicalMemory.ZeroPfn));
                ref byte frame = ref MemoryMarshal.GetReference(mem.Frame(pfn));
                Assert.Equal((nint)(pfn << PageGeometry.PageShift), Unsafe.ByteOffset(ref frame0, ref frame));
            }
        }

        Assert.Equal(2 * (long)FrameArena.ChunkBytes, mem.ReservedBytes);
    }

    [Fact]
    public void AnArenaThatCannotCommitMakesAllocationsFailWithoutThrowingOrChangingAnything()
    {
        var arena = new RefusingArena(PhysicalMemory.ChunksFor(ThreeChunks), commitsAllowed: 1);
        using var mem = new PhysicalMemory(ThreeChunks, arena);
        var pfns = new ulong[PhysicalMemory.ChunkFrames + 5];

        // Chunk 0 (committed for the zero page) has ChunkFrames - 1 frames left; chunk 1 cannot be committed.
        int got = mem.TryAllocateBatch(pfns);
        Assert.Equal(PhysicalMemory.ChunkFrames - 1, got);
        Assert.Equal(got, mem.FramesInUse);
        Assert.False(mem.TryAllocate(out _));
        Assert.False(mem.TryAllocateHuge(out _));
        Assert.Equal(got, mem.FramesInUse);
        Assert.Equal((long)FrameArena.ChunkBytes, mem.ReservedBytes);

        // Freed frames are handed out again: failure to grow does not stop reuse.
        mem.Put(pfns[0]);
        Assert.True(mem.TryAllocate(out ulong again));
        Assert.Equal(pfns[0], again);
        Assert.True(arena.Refusals >= 3, $"the arena was asked {arena.Refusals} times");
    }

    [Fact]
    public void AHugeAllocationThatCannotCommitLeavesTheFreshFramesUntouched()
    {
        var arena = new RefusingArena(PhysicalMemory.ChunksFor(ThreeChunks), commitsAllowed: 1);
        using var mem = new PhysicalMemory(ThreeChunks, arena);
        var pfns = new ulong[PhysicalMemory.ChunkFrames - 1];
        Assert.Equal(pfns.Length, mem.TryAllocateBatch(pfns)); // chunk 0 is full
        Assert.False(mem.TryAllocateHuge(out ulong basePfn));
        Assert.Equal(0UL, basePfn);
        Assert.Equal(pfns.Length, mem.FramesInUse);
    }

    [Fact]
    public void AFrameWrittenAfterItWasFreedIsCaughtByItsCanary()
    {
        using var mem = new PhysicalMemory(64 * PageGeometry.PageSize);
        mem.PoisonFreedFrames = true;
        Assert.True(mem.TryAllocate(out ulong a));
        Assert.True(mem.TryAllocate(out ulong b));
        mem.Put(a);
        mem.Put(b);
        Assert.True(mem.Frame(a).IndexOfAnyExcept(PhysicalMemory.CanaryByte) < 0, "a freed frame does not hold the canary");
        mem.Frame(b)[100] = 1; // a use after free
        Span<ulong> two = stackalloc ulong[2];
        Assert.Equal(2, mem.TryAllocateBatch(two));
        Assert.Equal(1, mem.CanaryViolations);
        Assert.Equal(b, mem.FirstCanaryViolation);
    }

    [Fact]
    public void AnArenaOfTheWrongSizeIsRejectedNamingBothValues()
    {
        using var arena = new ChunkedFrameArena(7);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new PhysicalMemory(ThreeChunks, arena));
        Assert.Contains("ChunkCount=7", e.Message);
        Assert.Contains("0xC000000", e.Message);
    }

    /// <summary>A chunked arena that commits the first <c>commitsAllowed</c> chunks and refuses every later one.</summary>
    private sealed class RefusingArena(int chunks, int commitsAllowed) : FrameArena(chunks)
    {
        private readonly ChunkedFrameArena _inner = new(chunks);
        private int _commits;

        public int Refusals { get; private set; }

        public override bool IsContiguous => false;

        public override nint BaseAddress => 0;

        public override string Description => "refusing test arena";

        public override nint TryCommit(int chunk)
        {
            if (_commits == commitsAllowed)
            {
                Refusals++;
                return 0;
            }

            _commits++;
            return _inner.TryCommit(chunk);
        }

        protected override void Dispose(bool disposing) => _inner.Dispose();
    }
}
