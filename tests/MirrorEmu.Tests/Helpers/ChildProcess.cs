using System.Diagnostics;

namespace MirrorEmu.Tests.Helpers;

/// <summary>Starts a program built beside the tests (the CLI, the benchmark runner) in a child process, for the tests that
/// need a process of its own: a real SIGINT, a <c>ulimit -v</c>, a process-wide allocation count.</summary>
public static class ChildProcess
{
    /// <summary>The dotnet host running the tests, so that the child runs on the same runtime; "dotnet" from the PATH when
    /// the tests run under their own executable.</summary>
    public static string Dotnet => Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";

    /// <summary>The CLI's assembly, built beside the tests.</summary>
    public static string Cli => Path.Combine(AppContext.BaseDirectory, "MirrorEmu.Cli.dll");

    /// <summary>Starts <paramref name="file"/> with its standard output and error redirected.</summary>
    /// <param name="file">The program.</param>
    /// <param name="arguments">Its arguments, each passed as it is.</param>
    /// <param name="workingDirectory">Its working directory; this process's when null.</param>
    public static Process Start(string file, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? string.Empty,
        };
        return Process.Start(psi)!;
    }
}
