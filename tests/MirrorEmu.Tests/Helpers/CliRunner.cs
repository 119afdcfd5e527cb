using MirrorEmu.Cli;

namespace MirrorEmu.Tests.Helpers;

/// <summary>Runs the mirroremu command in this process, with its output captured, a configuration folder of its own (so a
/// calibration in the user's folder never changes a test), and optionally a Ctrl-C token or a userfaultfd probe.</summary>
public static class CliRunner
{
    /// <summary>Runs <paramref name="args"/>; <paramref name="configure"/> may change the context.</summary>
    /// <param name="args">The arguments.</param>
    /// <param name="configure">Changes the context (a token, a probe, a folder); may be null.</param>
    /// <returns>The exit code, standard output and standard error.</returns>
    public static (int Code, string Out, string Err) Run(string[] args, Func<CliContext, CliContext>? configure = null)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        CliContext context = CliContext.Plain(o, e) with { ConfigDirectory = EmptyConfigDirectory() };
        int code = CliApp.Run(args, configure?.Invoke(context) ?? context);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>Runs <paramref name="args"/> with a fresh empty configuration folder.</summary>
    /// <param name="args">The arguments.</param>
    public static (int Code, string Out, string Err) Run(params string[] args) => Run(args, null);

    /// <summary>A new empty folder under the temporary folder, for a test's files.</summary>
    public static string EmptyConfigDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "mirroremu-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
