using MirrorEmu.Telemetry;

namespace MirrorEmu.Cli;

/// <summary>The output options' files (--json, --chart, --output, --save, --append-history): checked before a run starts,
/// and written after it in messages that name the option and the user's path.</summary>
internal static class OutputFiles
{
    /// <summary>Refuses, as bad input, a file that cannot be written: a missing folder, a folder in its place, or a folder
    /// that refuses new files (read-only, /proc, no permission). Probing here, before the run, is what spares a user a
    /// whole run that ends by failing to save it.</summary>
    /// <param name="option">The option ("--json").</param>
    /// <param name="path">The user's path; null when the option was not given.</param>
    /// <param name="append">True when the file is appended to (--append-history).</param>
    /// <exception cref="CliUsageException">It cannot be written.</exception>
    public static void Check(string option, string? path, bool append = false)
    {
        if (path is not null && AtomicFile.WhyNotWritable(path, append) is { } why)
        {
            throw new CliUsageException($"{option}: {why}");
        }
    }

    /// <summary>Refuses, as bad input, a folder that does not exist or in which no file can be created (--save DIR).</summary>
    /// <param name="option">The option.</param>
    /// <param name="folder">The user's folder.</param>
    /// <exception cref="CliUsageException">It cannot be written in.</exception>
    public static void CheckFolder(string option, string folder)
    {
        if (!Directory.Exists(folder))
        {
            throw new CliUsageException($"{option} {folder}: no such folder");
        }

        if (AtomicFile.WhyNotCreatable(folder) is { } why)
        {
            throw new CliUsageException($"{option} {folder}: cannot write in {folder}: {why}");
        }
    }

    /// <summary>Writes <paramref name="text"/> and a newline to <paramref name="path"/> in UTF-8, whole or not at all
    /// (<see cref="AtomicFile"/>), for <paramref name="option"/> (<see cref="Write"/>); a cancelled write leaves none.</summary>
    /// <param name="option">The option.</param>
    /// <param name="path">The user's path.</param>
    /// <param name="text">The file's text, without its final newline.</param>
    /// <param name="cancellation">Checked before the file is put in place.</param>
    /// <exception cref="IOException">The write failed; the message is "option: why".</exception>
    public static void WriteText(string option, string path, string text, CancellationToken cancellation) =>
        Write(option, () => AtomicFile.Write(path, s => s.Write(System.Text.Encoding.UTF8.GetBytes(text + "\n")), cancellation));

    /// <summary>Runs a write for <paramref name="option"/>; a failure that the check could not foresee (the disk filled,
    /// the folder changed during the run) still fails the run, in one line naming the option.</summary>
    /// <param name="option">The option.</param>
    /// <param name="write">The write; its own message names the user's path (<see cref="AtomicFile"/>).</param>
    /// <exception cref="IOException">The write failed; the message is "option: why".</exception>
    public static void Write(string option, Action write)
    {
        try
        {
            write();
        }
        catch (IOException e)
        {
            throw new IOException($"{option}: {e.Message}", e);
        }
    }
}
