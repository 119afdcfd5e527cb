namespace MirrorEmu.Cli;

/// <summary>Bad input detected after parsing (a value out of range, a malformed file): reported as one line, exit code 2.</summary>
/// <param name="message">The line, naming the option or file and why.</param>
public sealed class CliUsageException(string message) : Exception(message);
