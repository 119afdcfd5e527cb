using MirrorEmu.Cli;
using MirrorEmu.Tests.Helpers;
using MirrorEmu.Workloads;
using static MirrorEmu.Tests.Helpers.CliRunner;

namespace MirrorEmu.Tests.Workloads;

/// <summary>Scenario files: every example under scenarios/ passes; a failed assertion exits with 1; a malformed file, an
/// unknown field (named with its line) or a bad value is one line and exit code 2.</summary>
public class ScenarioTests
{
    public static TheoryData<string> Examples() =>
        [.. Directory.EnumerateFiles(Path.Combine(RepoPaths.Root, "scenarios"), "*.json").Select(f => Path.GetFileName(f)).Order()];

    [Theory]
    [MemberData(nameof(Examples))]
    public void EveryExampleScenarioPasses(string file)
    {
        (int code, string output, string err) = Run("run", Path.Combine(RepoPaths.Root, "scenarios", file));
        TestContext.Current.TestOutputHelper?.WriteLine(output);
        Assert.True(code == 0, $"{file}: exit {code}\n{output}\n{err}");
        Assert.Contains("passed: all", output);
        Assert.DoesNotContain("FAIL", output);
    }

    [Fact]
    public void ThereAreExampleScenarios() => Assert.True(Examples().Count >= 3, "scenarios/ should hold the README's examples");

    [Fact]
    public void AFailedAssertionExitsWithOne()
    {
        string file = Write("""
            { "name": "wrong", "device": { "policy": "uffd-batched" },
              "mappings": [ { "name": "a", "pages": 128, "userfaultfd": { "monitorBatch": 64 } } ],
              "steps": [ { "launch": { "mapping": "a" } } ],
              "assertions": [ { "counter": "roundTrips", "equals": 3 }, { "data": "a" } ] }
            """);
        (int code, string output, _) = Run("run", file);
        Assert.Equal(CliApp.RunFailed, code);
        Assert.Contains("FAIL  roundTrips = 3: roundTrips = 2", output);
        Assert.Contains("PASS  data of 'a'", output);
        Assert.Contains("FAILED: 1 of 3 checks", output);
    }

    [Fact]
    public void ALaunchThatEndsOtherwiseThanExpectedFails()
    {
        string file = Write("""
            { "name": "expect", "device": { "policy": "uffd-unsupported" },
              "mappings": [ { "name": "a", "pages": 8, "userfaultfd": {} } ],
              "steps": [ { "launch": { "mapping": "a" } } ] }
            """);
        (int code, string output, _) = Run("run", file);
        Assert.Equal(CliApp.RunFailed, code);
        Assert.Contains("FAIL  step 1: launch seq on 'a' (8 work items, +1 each) ends ok: -EFAULT", output);
    }

    [Fact]
    public void DataVerificationCatchesAByteTheModelDidNotExpect()
    {
        // The runner's own model of the data is what a data assertion checks; a launch whose adds the model does not know
        // (expect says it fails, so the model cannot apply it) makes the data assertion fail rather than pass blindly.
        string file = Write("""
            { "name": "unknown-data", "device": { "policy": "uffd-unsupported" },
              "mappings": [ { "name": "a", "pages": 8, "userfaultfd": {} } ],
              "steps": [ { "launch": { "mapping": "a", "expect": "-EFAULT" } } ],
              "assertions": [ { "data": "a" } ] }
            """);
        (int code, string output, _) = Run("run", file);
        Assert.Equal(CliApp.RunFailed, code);
        Assert.Contains("FAIL  data of 'a' is every byte as the launches left it: the range's contents are not known", output);
    }

    [Theory]
    [InlineData("{ \"name\": \"x\",\n  \"mappings\": [ { \"name\": \"a\", \"pages\": 8 } ],\n  \"frobnicate\": 1 }", ":3: unknown field 'frobnicate'")]
    [InlineData("{ \"name\": \"x\",\n  \"mappings\": [\n    { \"name\": \"a\", \"pages\": 8, \"size\": 2 } ] }", ":3: unknown field 'size' (at mappings[0]")]
    [InlineData("{ \"name\": \"x\",\n  \"mappings\": [ { \"name\": \"a\", \"pages\": 8 } ],\n  \"steps\": [ { \"launch\": { \"mapping\": \"a\", \"wrkload\": \"seq\" } } ] }", ":3: unknown field 'wrkload'")]
    [InlineData("{ \"name\": \"x\", \"mappings\": [ { \"name\": \"a\", \"pages\": 8 } ]", ":1: malformed JSON")]
    [InlineData("{ \"mappings\": [ { \"name\": \"a\", \"pages\": 8 } ] }", ":1: missing required field 'name'")]
    [InlineData("{ \"name\": \"x\", \"mappings\": [ { \"name\": \"a\", \"pages\": \"many\" } ] }", ":1: 'mappings[0].pages' has a value of the wrong type")]
    [InlineData("{ \"name\": \"x\", \"mappings\": [ { \"name\": \"a\", \"pages\": 0 } ] }", ": mappings[0].pages: 0 must be between 1 and 1048576")]
    [InlineData("{ \"name\": \"x\", \"mappings\": [ { \"name\": \"a\", \"pages\": 8 } ], \"steps\": [ { \"launch\": { \"mapping\": \"b\" } } ] }", ": steps[0].launch.mapping: no mapping named 'b'")]
    [InlineData("{ \"name\": \"x\", \"mappings\": [ { \"name\": \"a\", \"pages\": 8 } ], \"steps\": [ { \"launch\": { \"mapping\": \"a\", \"during\": { \"op\": \"dontneed\" } } } ] }", ": steps[0].launch.during.op: dontneed cannot run during a launch")]
    [InlineData("{ \"name\": \"x\", \"mappings\": [ { \"name\": \"a\", \"pages\": 8 } ], \"assertions\": [ { \"counter\": \"bogus\", \"equals\": 1 } ] }", ": assertions[0].counter: 'bogus' is not one of deviceFaults")]
    [InlineData("{ \"name\": \"x\", \"device\": { \"policy\": \"regular\" }, \"mappings\": [ { \"name\": \"a\", \"pages\": 8 } ] }", ": device.policy: 'regular' is not one of")]
    [InlineData("{ \"name\": \"x\", \"launcher\": \"tpu\", \"mappings\": [ { \"name\": \"a\", \"pages\": 8 } ] }", ": launcher: 'tpu' is not one of direct")]
    public void ABadScenarioIsOneLineNamingTheFileAndLineAndExitCodeTwo(string json, string message)
    {
        string file = Write(json);
        (int code, string output, string err) = Run("run", file);
        Assert.Equal(CliApp.UsageError, code);
        string line = Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith($"mirroremu: {file}{message}", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err);
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public void AMissingScenarioFileIsBadInput()
    {
        (int code, _, string err) = Run("run", "/nonexistent/scenario.json");
        Assert.Equal(CliApp.UsageError, code);
        Assert.Equal("mirroremu: run: no such file: '/nonexistent/scenario.json'", err.TrimEnd());
    }

    private static string Write(string json)
    {
        string file = Path.Combine(EmptyConfigDirectory(), "scenario.json");
        File.WriteAllText(file, json);
        return file;
    }
}
