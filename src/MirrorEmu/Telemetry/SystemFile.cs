namespace MirrorEmu.Telemetry;

/// <summary>Reads the small files the kernel publishes under /proc and /sys, where a missing or unreadable file (not Linux,
/// a container that hides it) means "unknown", not an error.</summary>
internal static class SystemFile
{
    /// <summary>The file's text, trimmed; empty where it does not exist or cannot be read.</summary>
    /// <param name="path">The file.</param>
    public static string Read(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path).Trim() : string.Empty;
        }
        catch (IOException)
        {
            return string.Empty;
        }
        catch (UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }
}
