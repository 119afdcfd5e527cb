using System.Runtime.InteropServices;

namespace MirrorEmu.Telemetry;

/// <summary>Writes a file whole or not at all: into a temporary file beside it, renamed over the target only when the
/// writer finished. An exception or a cancellation leaves no partial file (and no temporary one).</summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>.</summary>
    /// <param name="path">The target; its folder must exist.</param>
    /// <param name="write">Writes the content; may throw.</param>
    /// <param name="cancellation">Checked before the rename: a cancelled write leaves nothing.</param>
    /// <exception cref="IOException">The file could not be written: the message names <paramref name="path"/> as given
    /// and the system's reason, never the temporary file (a name the user never gave).</exception>
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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot write '{path}': {Reason(e)}", e);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>Appends <paramref name="text"/> to <paramref name="path"/>, creating it.</summary>
    /// <param name="path">The file; its folder must exist.</param>
    /// <param name="text">What to append.</param>
    /// <exception cref="IOException">It could not be appended: the message names <paramref name="path"/> and the reason.</exception>
    public static void Append(string path, string text)
    {
        try
        {
            File.AppendAllText(path, text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot append to '{path}': {Reason(e)}", e);
        }
    }

    /// <summary>Why <paramref name="path"/> cannot be written, or null when it can: its folder exists, it is not a folder
    /// itself, and a file can be created (and deleted) in that folder. Checked before a run starts, so bad input (a
    /// read-only file system, a folder that refuses new files) is refused before any work rather than after it.</summary>
    /// <param name="path">The target.</param>
    /// <param name="append">True when the file is appended to: an existing file must then open for writing too.</param>
    public static string? WhyNotWritable(string path, bool append = false)
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
        if (folder is null)
        {
            return null;
        }

        if (!Directory.Exists(folder))
        {
            return File.Exists(folder) ? $"the folder of '{path}' is a file, not a folder" : $"the folder of '{path}' does not exist";
        }

        if (append && File.Exists(full))
        {
            try
            {
                // Opening for append changes neither the content nor the modification time.
                using (new FileStream(full, FileMode.Append, FileAccess.Write, FileShare.ReadWrite))
                {
                }

                return null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return $"cannot append to '{path}': {Reason(e)}";
            }
        }

        return WhyNotCreatable(folder) is { } why ? $"cannot write '{path}' in {folder}: {why}" : null;
    }

    /// <summary>Why no file can be created in <paramref name="folder"/> (the system's reason), or null when one can: creates
    /// an empty file of a name no one else uses and deletes it. Only trying tells: permissions, a read-only mount, or a
    /// file system such as /proc that refuses new files all look like a writable folder from outside.</summary>
    /// <param name="folder">An existing folder.</param>
    public static string? WhyNotCreatable(string folder)
    {
        string probe = Path.Combine(folder, $".mirroremu-probe.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
            }

            File.Delete(probe);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Reason(e);
        }
    }

    /// <summary>The system's reason for a failed file operation ("Read-only file system"), without the path .NET puts in its
    /// messages (which may be a temporary file the user never named).</summary>
    /// <param name="e">The exception.</param>
    public static string Reason(Exception e) => e switch
    {
        UnauthorizedAccessException { InnerException: IOException { HResult: > 0 and < 4096 } inner } => Marshal.GetPInvokeErrorMessage(inner.HResult),
        UnauthorizedAccessException => "Permission denied",
        FileNotFoundException => "No such file or directory",
        DirectoryNotFoundException => "a folder on the path does not exist",
        PathTooLongException => "File name too long",
        // On Unix .NET gives an IOException the errno as its HResult; strerror says it without a path.
        IOException { HResult: > 0 and < 4096 } io => Marshal.GetPInvokeErrorMessage(io.HResult),
        _ => e.Message,
    };
}
