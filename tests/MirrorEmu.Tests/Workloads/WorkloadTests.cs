using MirrorEmu.Workloads;

namespace MirrorEmu.Tests.Workloads;

/// <summary>Workload specs parse as documented and generate the pages they name: seq and random every page once, stride:N
/// one in N, sparse:P each with probability P, zipf:S as many draws as pages; the same seed gives the same items.</summary>
public class WorkloadTests
{
    [Theory]
    [InlineData("seq", WorkloadKind.Seq, 0)]
    [InlineData("RANDOM", WorkloadKind.Random, 0)]
    [InlineData("stride:4", WorkloadKind.Stride, 4)]
    [InlineData("zipf:1.2", WorkloadKind.Zipf, 1.2)]
    [InlineData("sparse:0.25", WorkloadKind.Sparse, 0.25)]
    public void EachFormParsesAndPrintsBack(string text, WorkloadKind kind, double parameter)
    {
        Assert.True(Workload.TryParse(text, out Workload? w, out string? error), error);
        Assert.Equal(new Workload(kind, parameter), w);
        Assert.Equal(text.ToLowerInvariant(), w!.ToString());
    }

    [Theory]
    [InlineData("seq:1")]
    [InlineData("stride:0")]
    [InlineData("stride:1.5")]
    [InlineData("zipf:-1")]
    [InlineData("sparse:0")]
    [InlineData("sparse:1.5")]
    [InlineData("sparse:nan")]
    [InlineData("")]
    public void BadFormsAreRefusedWithAReason(string text)
    {
        Assert.False(Workload.TryParse(text, out Workload? w, out string? error));
        Assert.Null(w);
        Assert.Contains($"'{text}'", error);
    }

    [Fact]
    public void SeqAndRandomTouchEveryPageOnce()
    {
        int seed = Helpers.TestSeeds.Get();
        foreach (Workload w in new[] { Workload.Seq, new Workload(WorkloadKind.Random, 0) })
        {
            WorkItems items = w.Generate(1000, seed);
            Assert.Equal(1000, items.TouchedPages);
            Assert.All(items.Hits, h => Assert.Equal(1, h));
            Assert.Equal(Enumerable.Range(0, 1000), items.PageOrder.Order());
        }

        Assert.NotEqual(Enumerable.Range(0, 1000), new Workload(WorkloadKind.Random, 0).Generate(1000, seed).PageOrder);
    }

    [Fact]
    public void StrideTouchesOnePageInN()
    {
        WorkItems items = new Workload(WorkloadKind.Stride, 3).Generate(10, 1);
        Assert.Equal([0, 3, 6, 9], items.PageOrder);
    }

    [Fact]
    public void SparseAndZipfAreSeededAndBounded()
    {
        int seed = Helpers.TestSeeds.Get();
        WorkItems sparse = new Workload(WorkloadKind.Sparse, 0.25).Generate(10_000, seed);
        Assert.InRange(sparse.TouchedPages, 2_200, 2_800);
        Assert.Equal(sparse.PageOrder, new Workload(WorkloadKind.Sparse, 0.25).Generate(10_000, seed).PageOrder);
        WorkItems zipf = new Workload(WorkloadKind.Zipf, 1.2).Generate(10_000, seed);
        Assert.Equal(10_000, zipf.PageOrder.Length);
        Assert.True(zipf.TouchedPages < 5_000, $"zipf:1.2 touched {zipf.TouchedPages} of 10,000 pages: it should concentrate on few");
        Assert.True(zipf.Hits.Max() > 100, "the hottest page should be hit often");
    }

    [Fact]
    public void EveryItemAddressesOneElementOfItsPage()
    {
        WorkItems items = new Workload(WorkloadKind.Random, 0).Generate(300, Helpers.TestSeeds.Get());
        for (int i = 0; i < items.PageOrder.Length; i++)
        {
            int page = items.PageOrder[i];
            Assert.Equal(page, items.Elements[i] / WorkItems.ElementsPerPage);
            Assert.Equal(items.ElementOf(page), items.Elements[i] % WorkItems.ElementsPerPage);
        }

        Assert.True(Enumerable.Range(0, 300).Select(items.ElementOf).Distinct().Count() > 100, "the elements should spread over the page");
    }
}
