using System.Buffers.Binary;
using System.Xml.Linq;
using static MirrorEmu.Tests.Helpers.CliRunner;

namespace MirrorEmu.Tests.Cli;

/// <summary>compare --chart writes a valid PNG or SVG (rendered headless), for the per-policy bars and for a sweep's
/// log-log plot; a chart is written whole or not at all.</summary>
public class ChartTests
{
    [Fact]
    public void APngChartIsAValidPngOfTheDocumentedSize()
    {
        string file = Path.Combine(EmptyConfigDirectory(), "compare.png");
        (int code, _, string err) = Run("compare", "--pages", "256", "--repeat", "2", "--chart", file);
        Assert.True(code == 0, err);
        byte[] png = File.ReadAllBytes(file);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
        Assert.Equal(900, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(520, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
        Assert.Equal("IEND", System.Text.Encoding.ASCII.GetString(png, png.Length - 8, 4));
        Assert.Empty(Directory.EnumerateFiles(Path.GetDirectoryName(file)!, "*.tmp"));
    }

    [Fact]
    public void AnSvgChartOfASweepIsValidSvgNamingEachPolicy()
    {
        string file = Path.Combine(EmptyConfigDirectory(), "sweep.svg");
        (int code, string output, string err) = Run("compare", "--sweep", "64..256", "--repeat", "1", "--chart", file);
        Assert.True(code == 0, err);
        Assert.Contains("log-log slope of total time against pages", output);
        XDocument svg = XDocument.Load(file);
        Assert.Equal("svg", svg.Root!.Name.LocalName);
        string text = svg.ToString();
        Assert.Contains("regular", text);
        Assert.Contains("uffd-batched", text);
    }
}
