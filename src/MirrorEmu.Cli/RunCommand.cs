using System.CommandLine;
using MirrorEmu.Device;
using MirrorEmu.Workloads;

namespace MirrorEmu.Cli;

/// <summary><c>mirroremu run SCENARIO.json</c>: runs a scenario file (README "Scenario files") and prints a pass or a
/// failure per check; exit 1 when a check fails, 2 for a file that cannot be run.</summary>
internal static class RunCommand
{
    /// <summary>The command.</summary>
    /// <param name="context">The streams and the Ctrl-C token.</param>
    public static Command Create(CliContext context)
    {
        var file = new Argument<string>("SCENARIO.json") { Description = "The scenario file (examples in scenarios/)." };
        var command = new Command("run", "Run a scenario file: mappings, userfaultfd registrations and policies, device workloads, invalidation storms, and assertions on counters and data.")
        {
            file,
        };
        command.SetAction(r => Run(context, r.GetValue(file)!));
        return command;
    }

    /// <summary>Reads, checks and runs the scenario; prints a line per step and per check.</summary>
    private static int Run(CliContext context, string path)
    {
        // Said in the CLI's own words: .NET's would be "Access to the path is denied" for a folder (root can read one's
        // inode, just not as text) and "Could not find file" for a missing one.
        if (Directory.Exists(path))
        {
            throw new CliUsageException($"run: '{path}' is a folder, not a scenario file");
        }

        if (!File.Exists(path))
        {
            throw new CliUsageException($"run: no such file: '{path}'");
        }

        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliUsageException($"{path}: {e.Message}");
        }

        ScenarioFile scenario;
        try
        {
            scenario = ScenarioFile.Parse(json, path);
        }
        catch (ScenarioFormatException e)
        {
            throw new CliUsageException(e.Message);
        }

        CliApp.CheckMemory($"{path} ({scenario.Mappings.Sum(m => (long)m.Pages):N0} pages)", ScenarioRunner.EstimateBytes(scenario));
        LauncherKind kind = Enum.TryParse(scenario.Launcher, ignoreCase: true, out LauncherKind k) && Enum.IsDefined(k)
            ? k
            : throw new CliUsageException($"{path}: launcher: '{scenario.Launcher}' is not one of direct, cpu, cuda, opencl, auto");
        if (!DeviceLauncher.TryCreate(kind, out DeviceLauncher? launcher, out string reason))
        {
            throw new CliUsageException($"{path}: launcher {scenario.Launcher}: {reason}");
        }

        using (launcher)
        {
            TextWriter o = context.Out;
            o.WriteLine($"scenario '{scenario.Name}' ({path}): {CliApp.Count(scenario.Mappings.Count, "mapping")}, {CliApp.Count(scenario.Steps.Count, "step")}, {CliApp.Count(scenario.Assertions.Count, "assertion")}; device policy {scenario.Device.Policy}, {launcher.Description}");
            if (scenario.Description is { } d)
            {
                o.WriteLine(d);
            }

            ScenarioOutcome outcome = ScenarioRunner.Run(scenario, launcher, line => o.WriteLine("  " + line), context.Cancellation);
            foreach (ScenarioCheck c in outcome.Checks)
            {
                o.WriteLine($"{(c.Passed ? "PASS" : "FAIL")}  {c.What}: {c.Detail}");
            }

            int failed = outcome.Checks.Count(c => !c.Passed);
            o.WriteLine(failed == 0 ? $"passed: all {CliApp.Count(outcome.Checks.Count, "check")}" : $"FAILED: {failed} of {CliApp.Count(outcome.Checks.Count, "check")}");
            return failed == 0 ? 0 : CliApp.RunFailed;
        }
    }
}
