using CsCheck;
using MirrorEmu.Notifier;

namespace MirrorEmu.Tests.Notifier;

/// <summary>The augmented red-black interval tree against a brute-force list, plus its edge cases.</summary>
public class IntervalTreeTests
{
    private sealed class Node : IntervalTreeNode
    {
        public Node(ulong start, ulong last)
        {
            Start = start;
            Last = last;
        }
    }

    [Fact]
    public void RandomInsertRemoveQuerySequencesMatchABruteForceList()
    {
        // op: (kind 0 insert / 1 remove / 2 query, a, b)
        Gen<(int Kind, int A, int B)> op = Gen.Select(Gen.Int[0, 2], Gen.Int[0, 1000], Gen.Int[0, 200]);
        op.Array[1, 200].Sample(ops =>
        {
            var tree = new IntervalTree();
            var list = new List<Node>();
            var found = new Node[256];
            foreach ((int kind, int a, int b) in ops)
            {
                if (kind == 0 || list.Count == 0)
                {
                    var n = new Node((ulong)a, (ulong)(a + b));
                    tree.Insert(n);
                    list.Add(n);
                }
                else if (kind == 1)
                {
                    Node n = list[a % list.Count];
                    tree.Remove(n);
                    list.Remove(n);
                }
                else
                {
                    ulong start = (ulong)a;
                    ulong end = start + (ulong)b + 1;
                    Node[] expected = list.Where(n => n.Start < end && start <= n.Last).OrderBy(n => n.Start).ToArray();
                    int count = tree.FindOverlaps<Node>(start, end, found);
                    Assert.Equal(expected.Length, count);
                    Assert.Equal(expected.Select(n => n.Start), found.Take(Math.Min(count, found.Length)).Select(n => n.Start));
                    Assert.True(new HashSet<Node>(expected).SetEquals(found.Take(count)), "the tree returned other nodes than the brute-force list");
                }

                tree.Validate();
                Assert.Equal(list.Count, tree.Count);
            }
        }, iter: 500);
    }

    [Fact]
    public void HalfOpenEdgesConvertToTheKernelsInclusiveLast()
    {
        var tree = new IntervalTree();
        var sub = new Node(0x1000, IntervalTree.ToLast(0x2000)); // [0x1000, 0x2000)
        tree.Insert(sub);
        var found = new Node[1];
        Assert.Equal(1, tree.FindOverlaps<Node>(0x1FFF, 0x2000, found));
        Assert.Equal(0, tree.FindOverlaps<Node>(0x2000, 0x3000, found));
        Assert.Equal(0, tree.FindOverlaps<Node>(0x0, 0x1000, found));
        Assert.Equal(1, tree.FindOverlaps<Node>(0x0, 0x1001, found));
        Assert.Equal(0, tree.FindOverlaps<Node>(0x1500, 0x1500, found)); // empty query
    }

    [Fact]
    public void QueriesReportTheTotalEvenWhenTheSpanIsShort()
    {
        var tree = new IntervalTree();
        for (ulong i = 0; i < 10; i++)
        {
            tree.Insert(new Node(i * 10, (i * 10) + 100));
        }

        var two = new Node[2];
        Assert.Equal(10, tree.FindOverlaps<Node>(95, 96, two));
        Assert.Equal(0UL, two[0].Start);
        Assert.Equal(10UL, two[1].Start);
    }

    [Fact]
    public void RemoveShrinksTheSubtreeLastOfEveryAncestor()
    {
        var tree = new IntervalTree();
        var nodes = Enumerable.Range(0, 64).Select(i => new Node((ulong)i * 16, ((ulong)i * 16) + 8)).ToList();
        var wide = new Node(5, 1_000_000);
        nodes.ForEach(tree.Insert);
        tree.Insert(wide);
        var buf = new Node[8];
        Assert.Equal(1, tree.FindOverlaps<Node>(500_000, 500_001, buf));
        tree.Remove(wide);
        tree.Validate();
        Assert.Equal(0, tree.FindOverlaps<Node>(500_000, 500_001, buf));
    }
}
