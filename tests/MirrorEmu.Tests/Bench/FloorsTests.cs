using MirrorEmu.Bench;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Bench;

/// <summary>The benchmark floors against plain scalar loops: the copy copies every word, the read sees every word.
/// In the SIMD category, so .ci/run runs them again at each narrower ISA (each width of the floors then runs).</summary>
[Trait("Category", "Simd")]
public class FloorsTests
{
    [Fact]
    public void CopyFloorCopiesEveryWordAtAnyLength()
    {
        int seed = TestSeeds.Get(31);
        var rng = new Random(seed);
        foreach (int n in SimdLengths.All)
        {
            ulong[] source = RandomWords(rng, n);
            ulong[] destination = new ulong[n + 1];
            destination[n] = 0xDEAD;
            Floors.Copy(source, destination.AsSpan(0, n));
            Assert.True(source.AsSpan().SequenceEqual(destination.AsSpan(0, n)), $"the copy floor lost a word at length {n} (seed {seed})");
            Assert.True(destination[n] == 0xDEAD, $"the copy floor wrote past the end at length {n}");
        }
    }

    [Fact]
    public void ReadFloorReturnsTheOrOfEveryWord()
    {
        int seed = TestSeeds.Get(32);
        var rng = new Random(seed);
        foreach (int n in SimdLengths.All)
        {
            for (int i = 0; i < n; i++)
            {
                // One bit set in one word at a time: a read that skipped any word would miss it.
                ulong[] words = new ulong[n];
                ulong bit = 1UL << rng.Next(64);
                words[i] = bit;
                Assert.True(Floors.Read(words) == bit, $"the read floor missed word {i} of {n} (seed {seed})");
            }

            ulong[] random = RandomWords(rng, n);
            ulong expected = 0;
            foreach (ulong w in random)
            {
                expected |= w;
            }

            Assert.Equal(expected, Floors.Read(random));
        }
    }

    private static ulong[] RandomWords(Random rng, int n)
    {
        var words = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            words[i] = (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63);
        }

        return words;
    }
}
