using System.CommandLine;
using System.CommandLine.Help;
using System.Reflection;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Cli;

/// <summary>The <c>mirroremu</c> command line: parsing, dispatch and the exit-code contract: 0 success, 1 a failed run or
/// assertion, 2 bad input (one line on stderr, no stack trace, no output file), 130 interrupted by Ctrl-C (no output
/// file).</summary>
public static class CliApp
{
    /// <summary>Exit code for a run that failed (or a scenario assertion that did not hold).</summary>
    public const int RunFailed = 1;

    /// <summary>Exit code for bad input.</summary>
    public const int UsageError = 2;

    /// <summary>Exit code after Ctrl-C (128 + SIGINT, as a shell reports it).</summary>
    public const int Interrupted = 130;

    /// <summary>The terminal sequence that shows the cursor again (a progress bar hides it).</summary>
    public const string ShowCursor = "\u001b[?25h";

    /// <summary>The commands, for messages.</summary>
    public const string CommandList = "compare, calibrate, run, devices, info, footprint, regress";

    /// <summary>Parses and runs a command line with plain (non-terminal) writers and no Ctrl-C.</summary>
    /// <param name="args">The arguments.</param>
    /// <param name="stdout">Where results go.</param>
    /// <param name="stderr">Where the one-line error goes.</param>
    /// <returns>The exit code.</returns>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) => Run(args, CliContext.Plain(stdout, stderr));

    /// <summary>Parses and runs a command line.</summary>
    /// <param name="args">The arguments.</param>
    /// <param name="context">The streams, terminal flags, configuration folder and Ctrl-C token.</param>
    /// <returns>The exit code.</returns>
    public static int Run(string[] args, CliContext context)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(context);
        Command root = Build(context);
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            context.Error.WriteLine($"mirroremu: {DescribeParseError(parsed, root)}");
            return UsageError;
        }

        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = context.Out, Error = context.Error, EnableDefaultExceptionHandler = false });
        }
        catch (CliUsageException e)
        {
            context.Error.WriteLine($"mirroremu: {OneLine(e.Message)}");
            return UsageError;
        }
        catch (OperationCanceledException) when (context.Cancellation.IsCancellationRequested)
        {
            context.Error.WriteLine("mirroremu: interrupted; nothing was written");
            return Interrupted;
        }
        catch (Exception e) when (e is OutOfMemoryException or InsufficientMemoryException or Mm.MemoryFaultException or KernelErrorException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            // A run that failed (the host ran out of memory after all, an emulated fault that could not be served, a file
            // that could not be written): one line, exit 1, no stack trace.
            context.Error.WriteLine($"mirroremu: the run failed: {OneLine(e.Message)}");
            return RunFailed;
        }
    }

    /// <summary>Refuses a run that needs more memory than this machine (and its limits) allows, before it starts.</summary>
    /// <param name="what">The option that sized the run, for the message ("--pages=16777216").</param>
    /// <param name="neededBytes">What the run needs.</param>
    /// <exception cref="CliUsageException">It needs more than <see cref="MemoryBudget.AvailableBytes"/>.</exception>
    internal static void CheckMemory(string what, long neededBytes)
    {
        MemoryBudget budget = MemoryBudget.Current();
        if (neededBytes > budget.AvailableBytes)
        {
            throw new CliUsageException($"{what} needs about {MemoryBudget.Gib(neededBytes)} of memory, but only {budget.Describe()}");
        }
    }

    /// <summary>The version printed by <c>--version</c>.</summary>
    public static string Version =>
        typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>"mirroremu 0.1.0", as reports name the tool.</summary>
    public static string Tool => $"mirroremu {Version}";

    /// <summary>A count and its noun, singular for exactly one ("1 round", "3 rounds", "1,024 pages").</summary>
    /// <param name="count">The count.</param>
    /// <param name="noun">The noun in the singular; the plural adds an s.</param>
    internal static string Count(long count, string noun) =>
        $"{count.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} {noun}{(count == 1 ? string.Empty : "s")}";

    /// <summary>Text made one line.</summary>
    /// <param name="text">The text.</param>
    internal static string OneLine(string text) => text.ReplaceLineEndings(" ");

    /// <summary>One line for the parse errors: the option's own message where it gave one, else an unknown command or
    /// option with a pointer to --help, else System.CommandLine's first message.</summary>
    private static string DescribeParseError(ParseResult parsed, Command root)
    {
        IReadOnlyList<System.CommandLine.Parsing.ParseError> errors = parsed.Errors;
        string? own = errors.Select(e => e.Message).FirstOrDefault(m => m.StartsWith("--", StringComparison.Ordinal));
        if (own is not null)
        {
            return own;
        }

        Command command = parsed.CommandResult.Command;
        if (parsed.UnmatchedTokens.Count > 0)
        {
            string token = parsed.UnmatchedTokens[0];
            return command == root
                ? token.StartsWith('-') ? $"unknown option '{token}'; see 'mirroremu --help'" : $"unknown command '{token}' (commands: {CommandList}); see 'mirroremu --help'"
                : $"'{command.Name}' has no option or argument '{token}'; see 'mirroremu {command.Name} --help'";
        }

        if (command == root)
        {
            return $"name a command ({CommandList}); see 'mirroremu --help'";
        }

        return $"{OneLine(errors[0].Message)} (see 'mirroremu {command.Name} --help')";
    }

    /// <summary>The command tree.</summary>
    private static Command Build(CliContext context)
    {
        // A plain command named mirroremu rather than a RootCommand, which takes its name from the host executable
        // ("MirrorEmu.Cli" under dotnet run, the test host in tests): help and messages name the tool as users type it.
        var root = new Command("mirroremu", "Emulate a GPU that mirrors a process's CPU page table (Linux HMM) and measure what mirroring costs.");
        root.Options.Add(new HelpOption { Recursive = true });
        root.Options.Add(new VersionOption { Action = new PrintVersion(context.Out) }); // the CLI's own version, whoever hosts it

        root.Subcommands.Add(CompareCommand.Create(context));
        root.Subcommands.Add(CalibrateCommand.Create(context));
        root.Subcommands.Add(RunCommand.Create(context));
        root.Subcommands.Add(DevicesCommand.Create(context));
        root.Subcommands.Add(InfoCommand.Create(context));
        root.Subcommands.Add(FootprintCommand.Create(context));
        root.Subcommands.Add(RegressCommand.Create(context));
        return root;
    }
}
