namespace MirrorEmu.Workloads;

/// <summary>A scenario file that cannot be run: malformed JSON, an unknown or missing field (with its line), or a value out
/// of range (with its path). The message is one line that starts with the file's name.</summary>
/// <param name="message">The line.</param>
public sealed class ScenarioFormatException(string message) : Exception(message);
