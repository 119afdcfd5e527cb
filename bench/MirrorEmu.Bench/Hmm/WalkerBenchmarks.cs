using BenchmarkDotNet.Attributes;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Hmm;

/// <summary>
/// The PTE scanner on L2-resident tables (64 KiB of PTEs, 16 leaf tables of 512, and 64 KiB of HMM words), one job
/// per ISA (<see cref="IsaConfig"/>), with 100, 99, 50, 1 and 0 % of the entries present and the missing ones in runs
/// (16 pages long on average), scanned the way the walker meets them: REQ_FAULT requested, outputs written up to the
/// first page that needs a fault, then only looking, with a stop at every missing page (the walker would record it;
/// here the scan goes on after it).
/// </summary>
/// <remarks>
/// Goals (issue 4/7, restated by issue 10 in bytes moved): at 100 % present, the Vector512 job's <see cref="Scan"/> at
/// least 4x the Scalar job's, and its bandwidth at least 50 % of <see cref="CopyFloor"/>'s in the same job. The scan moves
/// 24 B per entry (a PTE read, an HMM word read and written), the copy floor 16 B per word. <see cref="ReadFloor"/>
/// reads the scan's 128 KiB; <see cref="PlatformMemcpy"/> copies the copy floor's bytes with the platform memcpy. Every
/// buffer starts on a page, so the relative alignments are the same in every run. The figures are in the README.
/// </remarks>
[BenchmarkCategory(BenchCategories.Walk)]
[Config(typeof(IsaConfig))]
public class WalkerBenchmarks
{
    private const int Seed = 12345;
    private const int Entries = 8192;
    private const int MeanMissingRun = 16;

    private readonly Dictionary<int, AlignedBuffer> _tables = [];
    private AlignedBuffer _pfns = null!;

    /// <summary>The share of present entries, in percent.</summary>
    public static IEnumerable<int> PresentPercents => [100, 99, 50, 1, 0];

    /// <summary>One table set per share of present entries, from <see cref="Seed"/>, and the HMM words.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(Seed);
        foreach (int percent in PresentPercents)
        {
            var table = new AlignedBuffer(Entries * sizeof(ulong));
            FillInRuns(table.Words, percent, rng);
            _tables[percent] = table;
        }

        _pfns = new AlignedBuffer(Entries * sizeof(ulong));
    }

    /// <summary>Frees the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (AlignedBuffer table in _tables.Values)
        {
            table.Dispose();
        }

        _pfns.Dispose();
    }

    /// <summary>The scanner over 16 leaf tables, a table per call as the walker calls it.</summary>
    [Benchmark(OperationsPerInvoke = Entries)]
    [ArgumentsSource(nameof(PresentPercents))]
    [MustNotAllocate]
    public int Scan(int presentPercent)
    {
        Span<ulong> ptes = _tables[presentPercent].Words;
        Span<ulong> pfns = _pfns.Words;
        bool looking = false;
        int stops = 0;
        for (int t = 0; t < Entries; t += PageGeometry.LevelEntries)
        {
            ReadOnlySpan<ulong> table = ptes.Slice(t, PageGeometry.LevelEntries);
            Span<ulong> words = pfns.Slice(t, PageGeometry.LevelEntries);
            for (int k = 0; k < table.Length;)
            {
                int stop = k + PteScanner.Scan(table[k..], words[k..], HmmPfn.ReqFault, 0, store: !looking);
                if (stop == table.Length)
                {
                    break;
                }

                looking = true;
                stops++;
                k = stop + 1;
            }
        }

        return stops;
    }

    /// <summary>Reads the scan's bytes: the PTEs and the HMM words (128 KiB), per entry.</summary>
    [Benchmark(OperationsPerInvoke = Entries)]
    public ulong ReadFloor() => Floors.Read(_tables[100].Words) | Floors.Read(_pfns.Words);

    /// <summary>Copies the 64 KiB of PTEs into the 64 KiB of HMM words with a vector loop, per word.</summary>
    [Benchmark(OperationsPerInvoke = Entries)]
    public ulong CopyFloor()
    {
        Floors.Copy(_tables[100].Words, _pfns.Words);
        return _pfns.Words[0];
    }

    /// <summary>The same copy with the platform memcpy (Span.CopyTo), per word.</summary>
    [Benchmark(OperationsPerInvoke = Entries)]
    public ulong PlatformMemcpy()
    {
        _tables[100].Words.CopyTo(_pfns.Words);
        return _pfns.Words[0];
    }

    /// <summary>Writes present entries (random pfns, half writable) and runs of empty ones, exactly
    /// <paramref name="percent"/> % present, the empty runs <see cref="MeanMissingRun"/> long on average.</summary>
    private static void FillInRuns(Span<ulong> ptes, int percent, Random rng)
    {
        int missing = ptes.Length - (ptes.Length * percent / 100);
        int runs = missing == 0 ? 0 : Math.Max(1, missing / MeanMissingRun);
        int[] missingRuns = Split(missing, runs, rng);
        int[] presentRuns = Split(ptes.Length - missing, runs + 1, rng);
        int i = 0;
        for (int r = 0; r <= runs; r++)
        {
            for (int k = 0; k < presentRuns[r]; k++, i++)
            {
                ptes[i] = Pte.Present((ulong)rng.NextInt64(1, 1L << 30), writable: rng.Next(2) == 0).Value;
            }

            for (int k = 0; r < runs && k < missingRuns[r]; k++, i++)
            {
                ptes[i] = Pte.None.Value;
            }
        }
    }

    /// <summary><paramref name="total"/> split into <paramref name="parts"/> random parts (some may be 0).</summary>
    private static int[] Split(int total, int parts, Random rng)
    {
        var cuts = new int[parts + 1];
        for (int p = 1; p < parts; p++)
        {
            cuts[p] = rng.Next(total + 1);
        }

        cuts[parts] = total;
        Array.Sort(cuts);
        var sizes = new int[parts];
        for (int p = 0; p < parts; p++)
        {
            sizes[p] = cuts[p + 1] - cuts[p];
        }

        return sizes;
    }
}
