using Spectre.Console;

namespace MirrorEmu.Cli;

/// <summary>The Spectre consoles a command writes through: results on standard output (as wide as a table needs, so no
/// cell ever wraps; colour only on a terminal), and a progress bar on standard error, only when both are terminals.</summary>
internal static class CliConsole
{
    /// <summary>Wide enough for every table the CLI prints, at any page count.</summary>
    private const int ResultWidth = 400;

    /// <summary>A console over <see cref="CliContext.Out"/>.</summary>
    /// <param name="context">The context.</param>
    public static IAnsiConsole Results(CliContext context)
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(context.Out),
            Ansi = context.OutIsTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = context.OutIsTerminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = ResultWidth;
        console.Profile.Capabilities.Unicode = true;
        return console;
    }

    /// <summary>Runs <paramref name="work"/> with a progress bar on standard error when <paramref name="enabled"/> and both
    /// outputs are terminals; otherwise with a callback that does nothing (a pipe never gets progress).</summary>
    /// <typeparam name="T">What the work returns.</typeparam>
    /// <param name="context">The context.</param>
    /// <param name="enabled">False with --no-progress.</param>
    /// <param name="work">The work; it reports (done, total, what runs now).</param>
    /// <returns>What the work returned.</returns>
    public static T WithProgress<T>(CliContext context, bool enabled, Func<Action<int, int, string>, T> work)
    {
        if (!enabled || !context.OutIsTerminal || !context.ErrorIsTerminal)
        {
            return work(static (_, _, _) => { });
        }

        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(context.Error),
            Ansi = AnsiSupport.Detect,
            Interactive = InteractionSupport.Yes,
        });
        try
        {
            return console.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(p =>
                {
                    ProgressTask task = p.AddTask("starting", maxValue: 1);
                    return work((done, total, now) =>
                    {
                        task.MaxValue = Math.Max(1, total);
                        task.Value = done;
                        task.Description = Markup.Escape(now);
                    });
                });
        }
        finally
        {
            context.Error.Write(CliApp.ShowCursor);
        }
    }
}
