using System.Runtime.Intrinsics;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Hmm;

/// <summary>
/// The PTE scanner: every width (scalar, Vector128, Vector256, Vector512) and every filter against the scalar
/// reference on seeded random 64-bit words, random request flags and random inputs (docs/design.md, invariant 4), and
/// the reference against hmm_vma_handle_pte's rules. Every width runs on every machine: a width the hardware
/// lacks runs in .NET's software fallback. .ci/run runs this class again with AVX-512 off, with AVX2 off, with
/// hardware intrinsics off and, where AVX-512 exists, with DOTNET_PreferredVectorBitWidth=512, so that the JIT's
/// code for each ISA is tested too.
/// </summary>
[Trait("Category", "Simd")]
public class PteScannerTests
{
    public static readonly double[] Densities = [0.0, 0.1, 0.5, 0.9, 1.0];
    public static readonly string[] Widths = ["Scalar", "Vector128", "Vector256", "Vector512"];

    /// <summary>Random rounds per case; MIRROREMU_SCAN_ROUNDS widens it locally (CI keeps the default).</summary>
    private static readonly int s_rounds = TestKnobs.Count("MIRROREMU_SCAN_ROUNDS", 12);

    private delegate int ScanFn(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store);

    public static TheoryData<string, int, double> Cases()
    {
        var data = new TheoryData<string, int, double>();
        foreach (string width in Widths)
        {
            foreach (int n in SimdLengths.All)
            {
                foreach (double d in Densities)
                {
                    data.Add(width, n, d);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryWidthMatchesTheReferenceOnRandomWordsAndRequests(string width, int length, double density)
    {
        ScanFn scan = ScanAt(width);
        int seed = TestSeeds.Get((Array.IndexOf(Widths, width) * 100_000) + (length * 100) + (int)(density * 10));
        TestContext.Current.TestOutputHelper?.WriteLine($"rounds={s_rounds} (set MIRROREMU_SCAN_ROUNDS to widen)");
        var rng = new Random(seed);
        int compared = 0;
        for (int round = 0; round < s_rounds; round++)
        {
            ulong[] ptes = RandomPtes(rng, length, density);
            ulong[] inputs = RandomInputs(rng, length);
            (ulong def, ulong mask) = RandomRequest(rng);
            if (width == "Scalar" && (mask & (HmmPfn.ReqFault | HmmPfn.ReqWrite)) != 0)
            {
                continue; // the scalar PerPage filter is the reference itself
            }

            foreach (bool store in new[] { true, false })
            {
                ulong[] expected = (ulong[])inputs.Clone();
                ulong[] actual = (ulong[])inputs.Clone();
                int e = PteScanner.ScanReference(ptes, expected, def, mask, store);
                int a = scan(ptes, actual, def, mask, store);
                string where = $"seed {seed}, round {round}, default_flags 0x{def:X16}, pfn_flags_mask 0x{mask:X16}, store {store}";
                Assert.True(e == a, $"{width} stopped at {a}, the reference at {e}{At(ptes, inputs, Math.Min(a, e))} ({where})");
                int diff = expected.AsSpan().CommonPrefixLength(actual);
                Assert.True(diff == length, $"{width} wrote another output than the reference at {diff}{At(ptes, inputs, diff)}: 0x{(diff < length ? actual[diff] : 0):X16} vs 0x{(diff < length ? expected[diff] : 0):X16} ({where})");
                compared++;
            }
        }

        Assert.True(compared > 0 || width == "Scalar", "no round was compared");
    }

    [Fact]
    public void ScanMatchesTheReferenceWhateverWidthItTakes()
    {
        int seed = TestSeeds.Get(77);
        var rng = new Random(seed);
        foreach (int length in SimdLengths.All)
        {
            for (int round = 0; round < 20; round++)
            {
                ulong[] ptes = RandomPtes(rng, length, rng.NextDouble());
                ulong[] inputs = RandomInputs(rng, length);
                (ulong def, ulong mask) = RandomRequest(rng);
                ulong[] expected = (ulong[])inputs.Clone();
                ulong[] actual = (ulong[])inputs.Clone();
                Assert.Equal(PteScanner.ScanReference(ptes, expected, def, mask, true), PteScanner.Scan(ptes, actual, def, mask, true));
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"Scan ({PteScanner.WidthFor(length)}) wrote other outputs than the reference (seed {seed}, length {length}, round {round})");
            }
        }
    }

    [Fact]
    public void ScanTakesTheWidestAcceleratedWidthThatFits()
    {
        foreach (int length in new[] { 0, 1, 2, 3, 4, 5, 7, 8, 9, 512 })
        {
            PteScanner.ScanWidth expected =
                !Vector128.IsHardwareAccelerated || length < 2 ? PteScanner.ScanWidth.Scalar
                : Vector512.IsHardwareAccelerated && length >= 8 ? PteScanner.ScanWidth.Vector512
                : Vector256.IsHardwareAccelerated && length >= 4 ? PteScanner.ScanWidth.Vector256
                : PteScanner.ScanWidth.Vector128;
            Assert.True(expected == PteScanner.WidthFor(length), $"a table of {length} entries took {PteScanner.WidthFor(length)}, not the widest accelerated width that fits ({expected})");
        }
    }

    /// <summary>The disagreement the one body removed: for the zero page's pfn with W, NX, huge or soft-dirty set, an old
    /// vector path stopped at the entry while the reference went on. mm/hmm.c asks only is_zero_pfn(pte_pfn(pte)).</summary>
    [Theory]
    [InlineData(Pte.WriteBit)]
    [InlineData(Pte.NxBit)]
    [InlineData(Pte.HugeBit)]
    [InlineData(Pte.SoftDirtyBit)]
    [InlineData(Pte.UffdWpBit | Pte.AccessedBit | Pte.DirtyBit)]
    public void ZeroPageIsAPlainPageWhateverItsOtherBits(ulong extra)
    {
        ulong zero = Pte.Special(PhysicalMemory.ZeroPfn).Value | extra;
        foreach (string width in Widths)
        {
            ulong[] ptes = new ulong[16];
            ptes.AsSpan().Fill(Pte.Present(0x42, writable: true).Value);
            ptes[8] = zero;
            ulong[] pfns = new ulong[16];
            int stop = ScanAt(width)(ptes, pfns, HmmPfn.ReqFault, 0, store: true);
            Assert.True(stop == 16, $"{width} stopped at {stop} on the zero page with 0x{extra:X} set");
            ulong write = (extra & Pte.WriteBit) != 0 ? HmmPfn.Write : 0;
            Assert.True(pfns[8] == (HmmPfn.Valid | write | PhysicalMemory.ZeroPfn), $"{width} reported the zero page as 0x{pfns[8]:X16}");
        }
    }

    /// <summary>The last vector of a table whose length is not a multiple of the width overlaps the one before; the
    /// lanes it covers again hold outputs by then, and an output read as a request can ask for a fault its input did
    /// not (VALID is REQ_FAULT's bit). The scan must count those lanes once.</summary>
    [Fact]
    public void OverlappingLastVectorCountsEachEntryOnce()
    {
        foreach (string width in Widths[1..])
        {
            foreach (int length in new[] { 3, 5, 9, 17 })
            {
                ulong[] ptes = new ulong[length];
                ptes.AsSpan().Fill(Pte.Present(0x42, writable: false).Value);
                ulong[] pfns = new ulong[length]; // no page asks for REQ_FAULT; default_flags asks for a write
                int stop = ScanAt(width)(ptes, pfns, HmmPfn.ReqWrite, HmmPfn.ReqFault, store: true);
                Assert.True(stop == length, $"{width} stopped at {stop} of {length}: it read its own output as a request");
                Assert.All(pfns, p => Assert.Equal(HmmPfn.Valid | 0x42, p));
            }
        }
    }

    [Fact]
    public void ScalarReferenceFollowsTheKernelRules()
    {
        ulong present = Pte.Present(0x1234, writable: false).Value;
        ulong[] ptes = [0, present, Pte.Present(0x99, true).Value, Pte.Special(PhysicalMemory.ZeroPfn).Value];
        ulong[] pfns = [0, HmmPfn.DmaMapped, 0, 0];
        Assert.Equal(4, PteScanner.ScanReference(ptes, pfns, 0, 0, store: true));
        Assert.Equal(new ulong[] { 0, HmmPfn.DmaMapped | HmmPfn.Valid | 0x1234, HmmPfn.Valid | HmmPfn.Write | 0x99, HmmPfn.Valid }, pfns);
        ulong[] req = [HmmPfn.ReqFault, HmmPfn.ReqFault | HmmPfn.ReqWrite, HmmPfn.ReqFault | HmmPfn.ReqWrite, 0];
        Assert.Equal(0, PteScanner.ScanReference(ptes, req, 0, ulong.MaxValue, store: false)); // the empty entry needs a fault
        Assert.Equal(0, PteScanner.ScanReference(ptes[1..], req[1..], 0, ulong.MaxValue, store: false)); // read-only page with a write request
        Assert.Equal(2, PteScanner.ScanReference(ptes[2..], req[2..], 0, ulong.MaxValue, store: false)); // writable page and the zero page with no request
        Assert.Equal(3, PteScanner.ScanReference(ptes[1..], [0, 0, 0], HmmPfn.ReqWrite, 0, store: false)); // REQ_WRITE without REQ_FAULT asks nothing
        Assert.True(PteScanner.IsSlow(Pte.SwapEntry(SwapType.Swap, 5).Value));
        Assert.True(PteScanner.IsSlow(Pte.Special(7).Value));
        Assert.True(PteScanner.IsSlow(Pte.Present(7, true).WithProtNone().Value));
        Assert.False(PteScanner.IsSlow(Pte.Special(PhysicalMemory.ZeroPfn).Value));
        Assert.False(PteScanner.IsSlow(Pte.Special(PhysicalMemory.ZeroPfn).Value | Pte.WriteBit | Pte.NxBit | Pte.HugeBit));
        Assert.True(PteScanner.NeedsFault(present, HmmPfn.ReqWrite, HmmPfn.ReqFault, HmmPfn.ReqWrite), "a write request on a read-only page needs a fault");
        Assert.False(PteScanner.NeedsFault(present, HmmPfn.ReqWrite, 0, HmmPfn.ReqWrite), "REQ_WRITE without REQ_FAULT needs nothing");
    }

    private static ScanFn ScanAt(string width) => width switch
    {
        "Scalar" => PteScanner.Scan<PteScanner.ScalarWidth>,
        "Vector128" => PteScanner.Scan<PteScanner.VectorWidth<Vector128<ulong>>>,
        "Vector256" => PteScanner.Scan<PteScanner.VectorWidth<Vector256<ulong>>>,
        "Vector512" => PteScanner.Scan<PteScanner.VectorWidth<Vector512<ulong>>>,
        _ => throw new ArgumentException(width, nameof(width)),
    };

    private static string At(ulong[] ptes, ulong[] inputs, int i) =>
        i < ptes.Length ? $" (pte 0x{ptes[i]:X16} = {new Pte(ptes[i])}, input 0x{inputs[i]:X16})" : string.Empty;

    private static readonly ulong[] s_pteBits =
        [Pte.WriteBit, Pte.NxBit, Pte.HugeBit, Pte.SoftDirtyBit, Pte.UffdWpBit, Pte.SpecialBit, Pte.ProtNoneBit, Pte.AccessedBit, Pte.DirtyBit, Pte.UserBit, Pte.PresentBit];

    /// <summary>Entries that are empty with probability 1 - <paramref name="density"/>; the others are random words
    /// (a fifth) or a canonical entry (present, the zero page, a special pfn, a swap-type entry, protnone) with random
    /// W, NX, huge, soft-dirty, uffd-wp, special, protnone, accessed, dirty, user and present bits flipped.</summary>
    private static ulong[] RandomPtes(Random rng, int n, double density)
    {
        var ptes = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            if (rng.NextDouble() >= density)
            {
                continue;
            }

            if (rng.Next(5) == 0)
            {
                ptes[i] = (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63);
                continue;
            }

            ulong pfn = rng.Next(4) == 0 ? PhysicalMemory.ZeroPfn : (ulong)rng.NextInt64(1, 1L << Pte.PfnBits);
            ulong pte = rng.Next(6) switch
            {
                0 or 1 => Pte.Present(pfn, writable: rng.Next(2) == 0).Value,
                2 => Pte.Special(PhysicalMemory.ZeroPfn).Value,
                3 => Pte.Special(pfn).Value,
                4 => Pte.SwapEntry((SwapType)rng.Next(1, 9), pfn).Value,
                _ => Pte.Present(pfn, true).WithProtNone().Value,
            };
            foreach (ulong bit in s_pteBits)
            {
                if (rng.Next(6) == 0)
                {
                    pte ^= bit;
                }
            }

            ptes[i] = pte;
        }

        return ptes;
    }

    /// <summary>HMM words: random (a quarter), or random request and sticky bits over a random pfn.</summary>
    private static ulong[] RandomInputs(Random rng, int n)
    {
        ulong[] bits = [HmmPfn.ReqFault, HmmPfn.ReqWrite, HmmPfn.Error, HmmPfn.DmaMapped, HmmPfn.P2pDma, HmmPfn.P2pDmaBus, HmmPfn.OrderBitsFor(9)];
        var inputs = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            ulong w = rng.Next(4) == 0 ? (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63) : (ulong)rng.Next(2) * (ulong)rng.NextInt64(1L << 40);
            foreach (ulong b in bits)
            {
                if (rng.Next(3) == 0)
                {
                    w |= b;
                }
            }

            inputs[i] = w;
        }

        return inputs;
    }

    /// <summary>default_flags and pfn_flags_mask: every request shape (no fault, read, write, per page), with random
    /// other bits in both, which must not matter.</summary>
    private static (ulong Default, ulong Mask) RandomRequest(Random rng)
    {
        ulong noise = rng.Next(2) == 0 ? 0 : (ulong)rng.NextInt64() & ~(HmmPfn.ReqFault | HmmPfn.ReqWrite);
        ulong def = (rng.Next(2) == 0 ? HmmPfn.ReqFault : 0) | (rng.Next(2) == 0 ? HmmPfn.ReqWrite : 0) | (rng.Next(2) == 0 ? noise : 0);
        ulong mask = rng.Next(3) switch
        {
            0 => rng.Next(2) == 0 ? 0 : noise,
            1 => ulong.MaxValue,
            _ => (rng.Next(2) == 0 ? HmmPfn.ReqFault : 0) | (rng.Next(2) == 0 ? HmmPfn.ReqWrite : HmmPfn.ReqFault) | noise,
        };
        return (def, mask);
    }
}
