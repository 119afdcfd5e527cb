namespace MirrorEmu.Regression;

/// <summary>Input that regression tracking cannot use (a malformed or missing file, a field with a bad value, a baseline of
/// another schema version): the message is one line naming the file, the field and the value.</summary>
/// <param name="message">The line.</param>
public sealed class RegressionInputException(string message) : Exception(message);
