using System.Text.RegularExpressions;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests;

/// <summary>The library's layers use only the layers below them (README "Layout"): no cycle, nothing sideways.</summary>
public partial class LayeringTests
{
    /// <summary>The layers of src/MirrorEmu, bottom first; a folder may use its own layer and those before it.</summary>
    public static readonly string[] Layers = ["Base", "Telemetry", "Calibration", "Notifier", "Mm", "Uffd", "Hmm", "Device", "Workloads", "Regression"];

    [Fact]
    public void EveryFolderUsesOnlyTheLayersBelowIt()
    {
        string src = Path.Combine(RepoPaths.Root, "src", "MirrorEmu");
        var violations = new List<string>();
        foreach (string file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(src, file);
            if (relative.StartsWith("obj", StringComparison.Ordinal) || relative.StartsWith("bin", StringComparison.Ordinal))
            {
                continue;
            }

            string folder = relative.Split(Path.DirectorySeparatorChar)[0];
            int own = Array.IndexOf(Layers, folder);
            Assert.True(own >= 0, $"{relative}: the folder {folder} is in no layer (add it to LayeringTests.Layers and the README)");
            string code = string.Join('\n', File.ReadLines(file).Where(l => !l.TrimStart().StartsWith("//", StringComparison.Ordinal)));
            foreach (Match m in LayerReference().Matches(code))
            {
                string used = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
                int layer = Array.IndexOf(Layers, used);
                if (layer > own)
                {
                    violations.Add($"{relative} ({folder}) uses {used}: \"{m.Value.Trim()}\"");
                }
            }
        }

        Assert.True(violations.Count == 0, string.Join(Environment.NewLine, violations));
    }

    [Fact]
    public void TheCheckFindsAnUpwardReference()
    {
        // The pattern the check relies on, applied to lines that break the layering.
        Assert.Equal("Hmm", LayerReference().Match("using MirrorEmu.Hmm;").Groups[1].Value);
        Assert.Equal("Uffd", LayerReference().Match("var x = new Uffd.Userfaultfd(mm);").Groups[2].Value);
        Assert.False(LayerReference().IsMatch("vma.Mm.Counters.Increment(e);"), "a property named like a layer is not a layer reference");
    }

    [GeneratedRegex(@"(?:using\s+(?:static\s+)?MirrorEmu\.(\w+))|(?:(?<![\w.])(?:global::)?(?:MirrorEmu\.)?(Telemetry|Calibration|Notifier|Mm|Uffd|Hmm|Device|Workloads|Regression)\.[A-Z]\w*)")]
    private static partial Regex LayerReference();
}
