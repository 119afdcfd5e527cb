namespace MirrorEmu.Telemetry;

/// <summary>Writes a file whole or not at all: into a temporary file beside it, renamed over the target only when the
/// writer finished. An exception or a cancellation leaves no partial file (and no temporary one).</summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>.</summary>
    /// <param name="path">The target; its folder must exist.</param>
    /// <param name="write">Writes the content; may throw.</param>
    /// <param name="cancellation">Checked before the rename: a cancelled write leaves nothing.</param>
    public static void Write(string path, Action<Stream> write, CancellationToken cancellation = default)
    {
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            cancellation.ThrowIfCancellationRequested();
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>Why <paramref name="path"/> cannot be written, or null when its folder exists and it is not a folder
    /// itself: checked before a run starts, so bad input is refused before any work.</summary>
    /// <param name="path">The target.</param>
    public static string? WhyNotWritable(string path)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"'{path}' is not a valid path";
        }

        if (Directory.Exists(full))
        {
            return $"'{path}' is a folder";
        }

        string? folder = Path.GetDirectoryName(full);
        return folder is not null && !Directory.Exists(folder) ? $"the folder of '{path}' does not exist" : null;
    }
}
