using MirrorEmu.Cli;

// Ctrl-C (SIGINT) cancels the run: it stops within a second, leaves no partial file and exits with 130. A second Ctrl-C
// ends the process at once. Either way a terminal gets its cursor back (a progress bar hides it).
using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    if (!Console.IsErrorRedirected)
    {
        Console.Error.Write(CliApp.ShowCursor);
    }

    e.Cancel = !interrupt.IsCancellationRequested;
    interrupt.Cancel();
};

try
{
    return CliApp.Run(args, CliContext.FromConsole(interrupt.Token));
}
finally
{
    if (!Console.IsErrorRedirected)
    {
        Console.Error.Write(CliApp.ShowCursor);
    }
}
