using MirrorEmu.Cli;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.CliRunner;

namespace MirrorEmu.Tests.Cli;

/// <summary>Output options whose file cannot be written are bad input found before the run (exit 2, one line naming the
/// option, the user's path and the reason); a write that still fails at the end names the option and the user's path,
/// never the temporary file. The unwritable folders are /proc and /sys, which refuse new files even to root (a chmod would
/// not stop root).</summary>
public class OutputFileTests
{
    [Theory]
    [InlineData(new[] { "compare", "--pages", "256", "--repeat", "1", "--json", "/proc/c.json" }, "--json: cannot write '/proc/c.json' in /proc: ")]
    [InlineData(new[] { "compare", "--pages", "256", "--repeat", "1", "--json", "/sys/c.json" }, "--json: cannot write '/sys/c.json' in /sys: ")]
    [InlineData(new[] { "compare", "--pages", "256", "--repeat", "1", "--chart", "/proc/c.png" }, "--chart: cannot write '/proc/c.png' in /proc: ")]
    [InlineData(new[] { "compare", "--pages", "256", "--repeat", "1", "--json", "/etc/hostname/x.json" }, "--json: the folder of '/etc/hostname/x.json' is a file, not a folder")]
    [InlineData(new[] { "calibrate", "--output", "/proc/c.json" }, "--output: cannot write '/proc/c.json' in /proc: ")]
    [InlineData(new[] { "regress", "--scenarios", "hmm/uffd-singlepage", "--save", "/proc" }, "--save /proc: cannot write in /proc: ")]
    [InlineData(new[] { "regress", "--scenarios", "hmm/uffd-singlepage", "--save", "/nonexistent-dir" }, "--save /nonexistent-dir: no such folder")]
    [InlineData(new[] { "regress", "--scenarios", "hmm/uffd-singlepage", "--append-history", "/proc/h.jsonl" }, "--append-history: cannot write '/proc/h.jsonl' in /proc: ")]
    [InlineData(new[] { "regress", "--scenarios", "hmm/uffd-singlepage", "--append-history", "/nonexistent-dir/h.jsonl" }, "--append-history: the folder of '/nonexistent-dir/h.jsonl' does not exist")]
    public void AnUnwritableOutputIsBadInputBeforeTheRun(string[] args, string message)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "/proc and /sys are Linux's");
        string[] withBaseline = args[0] == "regress" ? [.. args, "--baseline", Path.Combine(RepoPaths.Root, "bench", "baselines")] : args;
        (int code, string output, string err) = Run(withBaseline);
        Assert.Equal(CliApp.UsageError, code);
        string line = Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith("mirroremu: " + message, line, StringComparison.Ordinal);
        Assert.DoesNotContain(".tmp", line);
        Assert.DoesNotContain("   at ", err);
        Assert.Equal(string.Empty, output); // refused before the run: no table, no result
    }

    [Fact]
    public void AHistoryChartThatCannotBeWrittenIsBadInput()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "/proc is Linux's");
        string history = Path.Combine(EmptyConfigDirectory(), "h.jsonl");
        (int made, _, string madeErr) = Run("regress", "--scenarios", "hmm/uffd-rangeevent", "--append-history", history, "--baseline", Path.Combine(RepoPaths.Root, "bench", "baselines"));
        Assert.True(made == 0, madeErr);
        (int code, string output, string err) = Run("regress", "--history", history, "--chart", "/proc/t.png");
        Assert.Equal(CliApp.UsageError, code);
        Assert.StartsWith("mirroremu: --chart: cannot write '/proc/t.png' in /proc: ", err, StringComparison.Ordinal);
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public void TheProbeLeavesNothingInAWritableFolder()
    {
        string dir = EmptyConfigDirectory();
        Assert.Null(AtomicFile.WhyNotWritable(Path.Combine(dir, "r.json")));
        Assert.Null(AtomicFile.WhyNotWritable(Path.Combine(dir, "h.jsonl"), append: true));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
    }

    [Fact]
    public void AnAppendToAFileThatCannotBeOpenedIsRefused()
    {
        // A sysfs file without a write method refuses to open for writing, even to root (a 0444 file elsewhere would not).
        const string readOnly = "/sys/devices/system/cpu/online";
        Assert.SkipUnless(File.Exists(readOnly), $"{readOnly} is not here");
        Assert.Equal($"cannot append to '{readOnly}': Permission denied", AtomicFile.WhyNotWritable(readOnly, append: true));
    }

    [Fact]
    public void AWriteThatFailsAtTheEndNamesTheOptionAndTheUsersPathNotTheTemporaryFile()
    {
        // Past the check (a disk that filled, a folder remounted read-only during the run): still one line, exit 1, but
        // naming what the user gave. The write itself is called here, as the end of a run calls it.
        Assert.SkipUnless(OperatingSystem.IsLinux(), "/proc is Linux's");
        IOException e = Assert.Throws<IOException>(() => OutputFiles.Write("--json", () => AtomicFile.Write("/proc/c.json", s => s.WriteByte(1), TestContext.Current.CancellationToken)));
        // /proc refuses a new file with ENOENT to root and EACCES to others: the reason is the system's, the names are ours.
        Assert.StartsWith("--json: cannot write '/proc/c.json': ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(".tmp", e.Message);
        IOException a = Assert.Throws<IOException>(() => OutputFiles.Write("--append-history", () => AtomicFile.Append("/proc/h.jsonl", "x\n")));
        Assert.StartsWith("--append-history: cannot append to '/proc/h.jsonl': ", a.Message, StringComparison.Ordinal);
        IOException denied = Assert.Throws<IOException>(() => AtomicFile.Write("/sys/c.json", s => s.WriteByte(1), TestContext.Current.CancellationToken));
        Assert.Equal("cannot write '/sys/c.json': Permission denied", denied.Message); // not "Access to the path '/sys/.c.json.123.tmp' is denied."
    }
}
