using System.Runtime.Intrinsics;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Hmm;

/// <summary>Every SIMD path of the PTE scanner against the scalar reference on seeded random tables (DESIGN.md invariant 4).
/// .ci/run runs this class again with AVX-512 off, with AVX2 off and with hardware intrinsics off.</summary>
[Trait("Category", "Simd")]
public class PteScannerTests
{
    public static readonly int[] Lengths = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 511, 512, 513];
    public static readonly double[] Densities = [0.0, 0.1, 0.5, 0.9, 1.0];

    public static TheoryData<string, int, double> Cases()
    {
        var data = new TheoryData<string, int, double>();
        foreach (string path in new[] { "Dispatch", "Vector128", "Vector256", "Vector512" })
        {
            foreach (int n in Lengths)
            {
                foreach (double d in Densities)
                {
                    data.Add(path, n, d);
                }
            }
        }

        return data;
    }

    private delegate int ScanFn(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store);

    [Theory]
    [MemberData(nameof(Cases))]
    public void VectorPathMatchesTheScalarReference(string path, int length, double density)
    {
        bool accelerated = path switch
        {
            "Vector128" => Vector128.IsHardwareAccelerated,
            "Vector256" => Vector256.IsHardwareAccelerated,
            "Vector512" => Vector512.IsHardwareAccelerated,
            _ => true,
        };
        Assert.SkipUnless(accelerated, $"{path} is not hardware accelerated here");
        ScanFn scan = path switch
        {
            "Vector128" => PteScanner.Scan128,
            "Vector256" => PteScanner.Scan256,
            "Vector512" => PteScanner.Scan512,
            _ => PteScanner.Scan,
        };

        int seed = TestSeeds.Get(length * 1000 + (int)(density * 100));
        var rng = new Random(seed);
        (ulong Default, ulong Mask)[] requests =
        [
            (0, 0), (HmmPfn.ReqFault, 0), (HmmPfn.ReqFault | HmmPfn.ReqWrite, 0), (0, HmmPfn.ReqFault | HmmPfn.ReqWrite), (0, ulong.MaxValue),
        ];
        for (int round = 0; round < 20; round++)
        {
            ulong[] ptes = RandomPtes(rng, length, density);
            ulong[] inputs = RandomInputs(rng, length);
            foreach ((ulong def, ulong mask) in requests)
            {
                foreach (bool store in new[] { true, false })
                {
                    ulong[] expected = (ulong[])inputs.Clone();
                    ulong[] actual = (ulong[])inputs.Clone();
                    int e = PteScanner.ScanScalar(ptes, expected, def, mask, store);
                    int a = scan(ptes, actual, def, mask, store);
                    Assert.True(e == a, $"{path} stopped at {a}, scalar at {e} (seed {seed}, round {round}, default 0x{def:X}, mask 0x{mask:X})");
                    Assert.True(expected.AsSpan().SequenceEqual(actual), $"{path} outputs differ from the scalar walker (seed {seed}, round {round})");
                }
            }
        }
    }

    [Fact]
    public void ScalarReferenceFollowsTheKernelRules()
    {
        ulong present = Pte.Present(0x1234, writable: false).Value;
        ulong[] ptes = [0, present, Pte.Present(0x99, true).Value, Pte.Special(PhysicalMemory.ZeroPfn).Value];
        ulong[] pfns = [0, HmmPfn.DmaMapped, 0, 0];
        Assert.Equal(4, PteScanner.ScanScalar(ptes, pfns, 0, 0, store: true));
        Assert.Equal(new ulong[] { 0, HmmPfn.DmaMapped | HmmPfn.Valid | 0x1234, HmmPfn.Valid | HmmPfn.Write | 0x99, HmmPfn.Valid }, pfns);
        ulong[] req = [HmmPfn.ReqFault, HmmPfn.ReqFault | HmmPfn.ReqWrite, HmmPfn.ReqFault | HmmPfn.ReqWrite, 0];
        Assert.Equal(0, PteScanner.ScanScalar(ptes, req, 0, ulong.MaxValue, store: false)); // the empty entry needs a fault
        Assert.Equal(0, PteScanner.ScanScalar(ptes[1..], req[1..], 0, ulong.MaxValue, store: false)); // read-only page with a write request
        Assert.Equal(2, PteScanner.ScanScalar(ptes[2..], req[2..], 0, ulong.MaxValue, store: false)); // writable page and the zero page with no request
        Assert.True(PteScanner.IsSlow(Pte.SwapEntry(SwapType.Swap, 5).Value));
        Assert.True(PteScanner.IsSlow(Pte.Special(7).Value));
        Assert.True(PteScanner.IsSlow(Pte.Present(7, true).WithProtNone().Value));
        Assert.False(PteScanner.IsSlow(Pte.Special(PhysicalMemory.ZeroPfn).Value));
    }

    private static ulong[] RandomPtes(Random rng, int n, double density)
    {
        var ptes = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            if (rng.NextDouble() >= density)
            {
                continue;
            }

            ulong pfn = (ulong)rng.NextInt64(1, 1L << 36);
            ptes[i] = rng.Next(100) switch
            {
                < 45 => Pte.Present(pfn, writable: true).Value,
                < 80 => Pte.Present(pfn, writable: false).Value,
                < 90 => Pte.Special(PhysicalMemory.ZeroPfn).Value,
                < 93 => Pte.Special(pfn).Value,
                < 96 => Pte.SwapEntry((SwapType)rng.Next(1, 9), pfn).Value,
                _ => Pte.Present(pfn, true).WithProtNone().Value,
            };
        }

        return ptes;
    }

    private static ulong[] RandomInputs(Random rng, int n)
    {
        ulong[] bits = [0, HmmPfn.ReqFault, HmmPfn.ReqFault | HmmPfn.ReqWrite, HmmPfn.ReqWrite, HmmPfn.DmaMapped, HmmPfn.P2pDma | HmmPfn.ReqFault, HmmPfn.Error | 0x77];
        var inputs = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            inputs[i] = bits[rng.Next(bits.Length)] | (rng.Next(4) == 0 ? (ulong)rng.Next() : 0);
        }

        return inputs;
    }
}
