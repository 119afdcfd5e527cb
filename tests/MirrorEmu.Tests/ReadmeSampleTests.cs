using System.Text.RegularExpressions;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Tests.Helpers;
using MirrorEmu.Uffd;

namespace MirrorEmu.Tests;

/// <summary>The README's code samples compile and print what the README says: each sample is kept here, between
/// markers, compiled with the tests and run, and the README must contain exactly that code.</summary>
public partial class ReadmeSampleTests
{
    [Fact]
    public void TheLibrarySampleRunsAsShown()
    {
        string[] lines = Capture(() =>
        {
            // README: begin library
            using var mm = new AddressSpace();                       // 48-bit VA, 4 KiB pages, 8 GiB frame pool
            mm.MmapAnonymous(1 << 20, Prot.ReadWrite, MapFlags.Private, out ulong addr).ThrowIfError();
            mm.CpuWrite(addr, "hello"u8);                            // faults like a CPU: zero page, COW, ...
            KResult r = mm.Mprotect(addr + 1, 4096, Prot.Read);      // kernel-style: 0 or -errno plus a message
            Console.WriteLine(r);                                     // -EINVAL: mprotect: addr=0x... is not page aligned
            using AddressSpace child = mm.Fork();                    // private pages become copy-on-write
            // README: end
        });
        Assert.Matches(@"^-EINVAL: mprotect: addr=0x[0-9A-F]+ is not page aligned$", Assert.Single(lines));
    }

    [Fact]
    public void TheUserfaultfdSampleRunsOnItsOwnAndPrintsWhatTheReadmeSays()
    {
        string[] lines = Capture(() =>
        {
            // README: begin userfaultfd
            using var mm = new AddressSpace();
            ulong len = 256 * 4096;                                                // 256 pages
            mm.MmapAnonymous(len, Prot.ReadWrite, MapFlags.Private, out ulong addr).ThrowIfError();
            using var uffd = new Userfaultfd(mm);                                  // userfaultfd(2)
            uffd.Api(UffdApi.Version, UffdFeatures.ThreadId, out _).ThrowIfError(); // UFFDIO_API
            uffd.Register(addr, len, UffdRegisterMode.Missing, out _).ThrowIfError(); // UFFDIO_REGISTER
            using var monitor = new UffdMonitor(uffd, new UffdMonitorOptions { Fill = new PatternFill(0xAB), Resolution = UffdResolution.Block, BlockPages = 64 });

            var ops = new SeqNotifierOps();                                        // set_seq under a driver lock
            var notifier = new MmuIntervalNotifier(ops);
            mm.Notifiers.Insert(notifier, addr, len).ThrowIfError();               // mmu_interval_notifier_insert
            var range = new HmmRange(mm, notifier, addr, addr + len)
            {
                DefaultFlags = HmmPfn.ReqFault | HmmPfn.ReqWrite,
                UffdPolicy = UffdFaultPolicy.Batched,                              // or Unsupported, SinglePage, RangeEvent
            };
            KResult rc = HmmDriverLoop.Run(range, ops.DriverLock, HmmFault.DefaultTimeoutMs); // read_begin → lock → hmm_range_fault → read_retry
            Console.WriteLine($"{rc} round trips={range.Stats.RoundTrips} restarts={range.Stats.EbusyRestarts} byte={mm.CpuReadUInt64(addr) & 0xFF:X2}");
            // README: end
        });
        Assert.Equal("0 round trips=4 restarts=0 byte=AB", Assert.Single(lines));
        Assert.Contains("```\n0 round trips=4 restarts=0 byte=AB\n```", Readme.Text.ReplaceLineEndings("\n"));
    }

    [Theory]
    [InlineData("library")]
    [InlineData("userfaultfd")]
    public void TheReadmeShowsExactlyTheCodeThatRuns(string sample)
    {
        string here = File.ReadAllText(Path.Combine(RepoPaths.Root, "tests", "MirrorEmu.Tests", "ReadmeSampleTests.cs"));
        Match m = Regex.Match(here, $@"// README: begin {sample}\r?\n(?<code>.*?)\r?\n\s*// README: end", RegexOptions.Singleline);
        Assert.True(m.Success, $"no '{sample}' sample in this file");
        string code = Readme.Normalize(m.Groups["code"].Value);
        Assert.True(Readme.Normalize(Readme.Text).Contains(code, StringComparison.Ordinal), $"the README's '{sample}' sample is not the code this test runs:\n{code}");
    }

    [Fact]
    public void ASampleThatStartsWithUsingsNamesTheRootNamespaceWhenItUsesItsTypes()
    {
        // The tests that run the samples sit inside namespace MirrorEmu, which sees KResult and Errno without a using; a
        // user's program does not (a new user's copy of three samples failed with CS0246 before the usings were added).
        string readme = Readme.Text.ReplaceLineEndings("\n");
        int checkedSamples = 0;
        foreach (Match block in Regex.Matches(readme, @"```csharp\n(?<code>.*?)```", RegexOptions.Singleline))
        {
            string code = block.Groups["code"].Value;
            if (!Regex.IsMatch(code, @"^using [\w.]+;"))
            {
                continue; // no using directives: a continuation of the sample before it
            }

            checkedSamples++;
            if (Regex.IsMatch(code, @"\b(KResult|Errno)\b|\.ThrowIfError\(\)"))
            {
                Assert.True(code.Contains("using MirrorEmu;\n", StringComparison.Ordinal), "a README sample uses KResult, Errno or ThrowIfError without 'using MirrorEmu;':\n" + code[..Math.Min(code.Length, 300)]);
            }
        }

        Assert.True(checkedSamples >= 3, $"found {checkedSamples} self-contained C# samples in the README");
    }

    [Fact]
    public void NoSourceFileCitesNotesAUsersCloneDoesNotHave()
    {
        // The development notes beside the repository are not in a user's clone: code cites the kernel source, a
        // driver's source or the project's own docs (docs/design.md, the README).
        string[] names = ["STYLE" + ".md", "DESIGN" + ".md", "linux-hmm" + ".md", "uvm-amd-uffd" + ".md", "../" + "shared"];
        string[] roots = ["src", "kernels", "bench", "tests", "docs"];
        var found = new List<string>();
        foreach (string root in roots)
        {
            foreach (string file in Directory.EnumerateFiles(Path.Combine(RepoPaths.Root, root), "*", SearchOption.AllDirectories))
            {
                string rel = Path.GetRelativePath(RepoPaths.Root, file);
                if (rel.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                    || rel.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                    || Path.GetExtension(file) is not (".cs" or ".md" or ".props" or ".csproj" or ".json" or ".sh"))
                {
                    continue;
                }

                string text = File.ReadAllText(file);
                found.AddRange(names.Where(n => text.Contains(n, StringComparison.Ordinal)).Select(n => $"{rel}: {n}"));
            }
        }

        found.AddRange(names.Where(n => File.ReadAllText(Path.Combine(RepoPaths.Root, ".editorconfig")).Contains(n, StringComparison.Ordinal)).Select(n => $".editorconfig: {n}"));
        Assert.True(found.Count == 0, string.Join("\n", found));
    }

    [Fact]
    public void EveryLinkInTheReadmeResolvesInsideTheRepository()
    {
        string readme = Readme.Text;
        foreach (Match link in LocalLink().Matches(readme))
        {
            string target = link.Groups["path"].Value;
            Assert.False(target.Contains("..", StringComparison.Ordinal), $"the README links outside the repository: {target}");
            Assert.True(File.Exists(Path.Combine(RepoPaths.Root, target)) || Directory.Exists(Path.Combine(RepoPaths.Root, target)), $"the README links to {target}, which the repository does not have");
        }

        Assert.DoesNotContain("../" + "shared", readme, StringComparison.Ordinal);
        Assert.DoesNotContain("DESIGN" + ".md", readme, StringComparison.Ordinal);
    }

    [Fact]
    public void TheReadmeShowsTheExampleScenarioAsItIsInScenarios()
    {
        string readme = Readme.Normalize(Readme.Text);
        string file = Readme.Normalize(File.ReadAllText(Path.Combine(RepoPaths.Root, "scenarios", "batched-policy-counters.json")));
        Assert.True(readme.Contains(file, StringComparison.Ordinal), "the README's scenario example is not scenarios/batched-policy-counters.json");
    }

    /// <summary>Runs <paramref name="sample"/> with the console captured; returns its lines.</summary>
    private static string[] Capture(Action sample)
    {
        var output = new StringWriter();
        TextWriter original = Console.Out;
        Console.SetOut(output);
        try
        {
            sample();
        }
        finally
        {
            Console.SetOut(original);
        }

        return output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    /// <summary>Markdown links and images whose target is a path, not a URL or an anchor.</summary>
    [GeneratedRegex(@"\]\((?<path>(?!https?://|#)[^)\s]+)\)")]
    private static partial Regex LocalLink();
}
