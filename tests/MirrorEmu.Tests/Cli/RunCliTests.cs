using MirrorEmu.Cli;
using MirrorEmu.Workloads;
using static MirrorEmu.Tests.Helpers.CliRunner;

namespace MirrorEmu.Tests.Cli;

/// <summary><c>mirroremu run</c>: a scenario file that cannot be run is refused at load (exit 2, one line naming the field
/// or the file), before any step runs.</summary>
public class RunCliTests
{
    private const string Scenario = """
        {
          "name": "one-launch",
          "seed": SEED,
          "device": { "policy": "uffd-batched" },
          "mappings": [ { "name": "plain", "pages": 64 } ],
          "steps": [ { "launch": { "mapping": "plain", "expect": "EXPECT" } } ],
          "assertions": [ { "data": "plain" } ]
        }
        """;

    private static string Write(string expect = "ok", int seed = 1)
    {
        string file = Path.Combine(EmptyConfigDirectory(), "s.json");
        File.WriteAllText(file, Scenario.Replace("EXPECT", expect, StringComparison.Ordinal).Replace("SEED", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        return file;
    }

    private static void AssertBadInput(string[] args, string message)
    {
        (int code, string output, string err) = Run(args);
        Assert.Equal(CliApp.UsageError, code);
        string line = Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Equal("mirroremu: " + message, line);
        Assert.Equal(string.Empty, output); // nothing ran
    }

    [Fact]
    public void AValidScenarioRunsAndCountsInTheSingularForOne()
    {
        (int code, string output, string err) = Run("run", Write());
        Assert.True(code == 0, err + output);
        Assert.Contains("1 mapping, 1 step, 1 assertion;", output);
        Assert.Contains("passed: all 2 checks", output);
    }

    [Fact]
    public void AnUnknownExpectIsRefusedAtLoadListingWhatIsAccepted()
    {
        // "-EWHAT" once ran the whole scenario and failed its check with exit 1.
        string file = Write("-EWHAT");
        AssertBadInput(["run", file], $"{file}: steps[0].launch.expect: '-EWHAT' is not one of {string.Join(", ", ScenarioLaunch.Accepted)}");
        Assert.Contains("-EFAULT", ScenarioLaunch.Accepted);
        Assert.Contains("ok", ScenarioLaunch.Accepted);
    }

    [Fact]
    public void EveryAcceptedExpectIsAResultALaunchCanReport()
    {
        // The list is built from the errno names, so each one is what a failed launch prints (Errno.Name), never "-E22".
        Assert.All(ScenarioLaunch.Accepted.Skip(1), e => Assert.Matches("^-E[A-Z]+$", e));
        Assert.Equal(ScenarioLaunch.Accepted.Count, ScenarioLaunch.Accepted.Distinct().Count());
    }

    [Fact]
    public void ANegativeSeedIsRefusedAsCompareRefusesIt()
    {
        string file = Write(seed: -1);
        AssertBadInput(["run", file], $"{file}: seed: -1 is not a whole number from 0 to 2147483647");
    }

    [Fact]
    public void AFolderIsNamedAsAFolder()
    {
        string dir = EmptyConfigDirectory();
        AssertBadInput(["run", dir], $"run: '{dir}' is a folder, not a scenario file");
    }

    [Fact]
    public void AMissingFileIsNamedInOneLine()
    {
        string file = Path.Combine(EmptyConfigDirectory(), "missing.json");
        AssertBadInput(["run", file], $"run: no such file: '{file}'");
    }
}
