using System.Diagnostics;
using MirrorEmu.Cli;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.CliRunner;

namespace MirrorEmu.Tests.Cli;

/// <summary>Ctrl-C stops a run within a second, exits with 130, and leaves no output file: in process (the token), and in a
/// child process sent SIGINT (the real handler).</summary>
public class InterruptTests
{
    [Fact]
    public void CancellingACompareExitsWith130WithinASecondAndWritesNothing()
    {
        string dir = EmptyConfigDirectory();
        string json = Path.Combine(dir, "r.json");
        string chart = Path.Combine(dir, "c.png");
        using var interrupt = new CancellationTokenSource();
        var sw = Stopwatch.StartNew();
        interrupt.CancelAfter(TimeSpan.FromMilliseconds(800));
        (int code, _, string err) = Run(
            ["compare", "--pages", "16384", "--repeat", "1000", "--json", json, "--chart", chart],
            c => c with { Cancellation = interrupt.Token });
        Assert.Equal(CliApp.Interrupted, code);
        Assert.True(sw.Elapsed < TimeSpan.FromMilliseconds(800 + 1000), $"exited {sw.Elapsed.TotalMilliseconds:F0} ms after the start, 800 ms of them before Ctrl-C");
        Assert.Equal("mirroremu: interrupted; nothing was written", err.TrimEnd());
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
    }

    [Fact]
    public void CancellingARegressSaveOrAppendExitsWith130AndWritesNothing()
    {
        // Ctrl-C before the counter scenarios end: no baseline saved, no history line appended (the regress run once
        // exited 0 and wrote counters.json).
        string dir = EmptyConfigDirectory();
        string history = Path.Combine(dir, "h.jsonl");
        using var interrupt = new CancellationTokenSource();
        interrupt.Cancel();
        (int code, string output, string err) = Run(
            ["regress", "--scenarios", "hmm/*", "--save", dir, "--append-history", history],
            c => c with { Cancellation = interrupt.Token });
        Assert.Equal(CliApp.Interrupted, code);
        Assert.Equal("mirroremu: interrupted; nothing was written", err.TrimEnd());
        Assert.Equal(string.Empty, output);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
    }

    [Fact]
    public void CancellingAHistoryChartExitsWith130AndWritesNoChart()
    {
        string dir = EmptyConfigDirectory();
        string history = Path.Combine(dir, "h.jsonl");
        for (int i = 0; i < 2; i++)
        {
            (int made, _, string madeErr) = Run("regress", "--scenarios", "hmm/uffd-rangeevent", "--append-history", history, "--baseline", Path.Combine(RepoPaths.Root, "bench", "baselines"));
            Assert.True(made == 0, madeErr);
        }

        string chart = Path.Combine(dir, "t.png");
        using var interrupt = new CancellationTokenSource();
        interrupt.Cancel();
        (int code, _, string err) = Run(["regress", "--history", history, "--chart", chart, "--figures", "hmm/uffd-rangeevent:roundTrips"], c => c with { Cancellation = interrupt.Token });
        Assert.Equal(CliApp.Interrupted, code);
        Assert.Contains("mirroremu: interrupted; nothing was written", err);
        Assert.False(File.Exists(chart));
        Assert.Equal([history], Directory.EnumerateFileSystemEntries(dir));
    }

    [Fact]
    public void CancellingAFootprintExitsWith130AndPrintsNoResult()
    {
        // footprint once touched all its pages after Ctrl-C (12 s at 2M pages) and printed its result with exit 0.
        using var interrupt = new CancellationTokenSource();
        interrupt.Cancel();
        (int code, string output, string err) = Run(["footprint", "--mapping-gib", "1", "--touched-pages", "4096"], c => c with { Cancellation = interrupt.Token });
        Assert.Equal(CliApp.Interrupted, code);
        Assert.Equal("mirroremu: interrupted; nothing was written", err.TrimEnd());
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public void TheCounterScenariosStopBetweenScenariosWhenCancelled()
    {
        using var interrupt = new CancellationTokenSource();
        var started = new List<string>();
        Assert.Throws<OperationCanceledException>(() => MirrorEmu.Regression.CounterScenarios.Run("hmm/*", name =>
        {
            started.Add(name);
            interrupt.Cancel(); // Ctrl-C during the first scenario
        }, interrupt.Token));
        Assert.Single(started);
    }

    [Fact]
    public void TheFootprintProbeStopsInsideItsTouchLoopWhenCancelled()
    {
        using var interrupt = new CancellationTokenSource();
        interrupt.Cancel();
        Assert.Throws<OperationCanceledException>(() => MirrorEmu.Workloads.FootprintProbe.Measure(1UL << 30, 4096, interrupt.Token));
    }

    [Fact]
    public void OnATerminalProgressGoesToStderrAndCtrlCGivesTheCursorBack()
    {
        const string hideCursor = "\u001b[?25l";
        using var interrupt = new CancellationTokenSource();
        interrupt.CancelAfter(TimeSpan.FromMilliseconds(1500));
        (int code, string output, string err) = Run(
            ["compare", "--pages", "16384", "--repeat", "1000"],
            c => c with { Cancellation = interrupt.Token, OutIsTerminal = true, ErrorIsTerminal = true });
        Assert.Equal(CliApp.Interrupted, code);
        Assert.Contains(hideCursor, err);              // the progress bar hid the cursor...
        Assert.Contains("round", err);                 // ...and drew on stderr
        Assert.DoesNotContain("round", output);        // never on stdout
        Assert.True(err.LastIndexOf(CliApp.ShowCursor, StringComparison.Ordinal) > err.LastIndexOf(hideCursor, StringComparison.Ordinal), "the cursor was left hidden after Ctrl-C");
    }

    [Fact]
    public async Task SigintStopsTheProcessWith130WithinASecondAndLeavesNoFile()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "sends SIGINT with kill(1)");
        Assert.SkipWhen(SigintIgnored(), "SIGINT is ignored in this process (a non-interactive shell started it in the background), so the child inherits that and rightly keeps running, as under nohup");
        string dir = EmptyConfigDirectory();
        string json = Path.Combine(dir, "r.json");
        using Process child = ChildProcess.Start(ChildProcess.Dotnet, [ChildProcess.Cli, "compare", "--pages", "16384", "--repeat", "1000", "--json", json, "--calibration", "none"]);
        Task<string> stderr = child.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);

        // Wait for the header (the run has started), then a little longer, then Ctrl-C.
        string? first = child.StandardOutput.ReadLine();
        Assert.StartsWith("mirroremu compare:", first);
        Task<string> rest = child.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        Thread.Sleep(500);
        Assert.False(child.HasExited, "the run ended before the interrupt: make it longer");
        var sw = Stopwatch.StartNew();
        using (Process kill = Process.Start("kill", ["-INT", child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!)
        {
            kill.WaitForExit(10_000);
        }

        Assert.True(child.WaitForExit(10_000), "the child did not exit within 10 s of SIGINT");
        TestContext.Current.TestOutputHelper?.WriteLine($"exited {sw.Elapsed.TotalMilliseconds:F0} ms after SIGINT");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"exited {sw.Elapsed.TotalMilliseconds:F0} ms after SIGINT");
        Assert.Equal(CliApp.Interrupted, child.ExitCode);
        Assert.Contains("mirroremu: interrupted; nothing was written", await stderr);
        _ = await rest;
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
    }

    /// <summary>True when this process ignores SIGINT (bit 1 of SigIgn in /proc/self/status), as a child would too.</summary>
    private static bool SigintIgnored()
    {
        string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (ulong.Parse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture) & 0x2) != 0;
    }
}
