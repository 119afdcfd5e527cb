using MirrorEmu.Calibration;

namespace MirrorEmu.Cli;

/// <summary>Everything a command reads from its surroundings, so a test can give its own: the output streams and whether
/// they are terminals, the configuration folder, the Ctrl-C token, and the userfaultfd probe of <c>calibrate</c>.</summary>
public sealed record CliContext
{
    /// <summary>Where results go (tables, JSON with <c>--json -</c>).</summary>
    public required TextWriter Out { get; init; }

    /// <summary>Where errors, warnings of the run itself, and progress go.</summary>
    public required TextWriter Error { get; init; }

    /// <summary>True when <see cref="Out"/> is a terminal (a table is then as wide as it needs; progress may show).</summary>
    public bool OutIsTerminal { get; init; }

    /// <summary>True when <see cref="Error"/> is a terminal: progress shows only then, and only when <see cref="Out"/> is
    /// one too.</summary>
    public bool ErrorIsTerminal { get; init; }

    /// <summary>The user's configuration folder, where <c>calibrate</c> saves and <c>compare</c> looks for the calibration.</summary>
    public string ConfigDirectory { get; init; } = CalibrationFile.UserConfigDirectory;

    /// <summary>Cancelled by Ctrl-C: a run stops within a second and the command exits with 130.</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>Says why userfaultfd cannot be used here, or null when it can; null for the real probe.</summary>
    public Func<string?>? UserfaultfdProbe { get; init; }

    /// <summary>A context over two writers that are not terminals (tests, pipes).</summary>
    /// <param name="stdout">Results.</param>
    /// <param name="stderr">Errors.</param>
    public static CliContext Plain(TextWriter stdout, TextWriter stderr) => new() { Out = stdout, Error = stderr };

    /// <summary>The process's own console: standard output and error, each a terminal or not.</summary>
    /// <param name="cancellation">The Ctrl-C token.</param>
    public static CliContext FromConsole(CancellationToken cancellation) => new()
    {
        Out = Console.Out,
        Error = Console.Error,
        OutIsTerminal = !Console.IsOutputRedirected,
        ErrorIsTerminal = !Console.IsErrorRedirected,
        Cancellation = cancellation,
    };
}
