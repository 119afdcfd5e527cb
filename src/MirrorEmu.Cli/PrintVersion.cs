using System.CommandLine;

namespace MirrorEmu.Cli;

/// <summary>Prints <see cref="CliApp.Version"/>.</summary>
internal sealed class PrintVersion(TextWriter output) : System.CommandLine.Invocation.SynchronousCommandLineAction
{
    /// <inheritdoc/>
    public override int Invoke(ParseResult parseResult)
    {
        output.WriteLine(CliApp.Version);
        return 0;
    }
}
