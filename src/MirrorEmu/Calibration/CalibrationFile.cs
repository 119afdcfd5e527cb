using System.Text.Json;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Calibration;

/// <summary>Where the calibration lives and how it is read and written: JSON in the user's configuration folder
/// ($XDG_CONFIG_HOME/mirroremu/calibration.json, ~/.config/mirroremu/calibration.json where that is unset), written whole
/// or not at all.</summary>
public static class CalibrationFile
{
    /// <summary>The file name inside the configuration folder.</summary>
    public const string FileName = "calibration.json";

    /// <summary>The user's configuration folder: $XDG_CONFIG_HOME, else ~/.config on Linux (the platform's
    /// application-data folder elsewhere).</summary>
    public static string UserConfigDirectory => Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify);

    /// <summary>The default path under <paramref name="configDirectory"/>.</summary>
    /// <param name="configDirectory">The configuration folder.</param>
    public static string DefaultPath(string configDirectory) => Path.Combine(configDirectory, "mirroremu", FileName);

    /// <summary>Writes <paramref name="report"/> to <paramref name="path"/>, creating its folder.</summary>
    /// <param name="report">The calibration.</param>
    /// <param name="path">Where.</param>
    public static void Save(CalibrationReport report, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.Write(path, s => JsonSerializer.Serialize(s, report, ReportJson.Options));
    }

    /// <summary>Reads a calibration.</summary>
    /// <param name="path">The file.</param>
    /// <param name="report">The calibration, when it could be read.</param>
    /// <param name="error">Why not, in one line naming the file (and the line, for malformed JSON).</param>
    /// <returns>True when read.</returns>
    public static bool TryLoad(string path, out CalibrationReport? report, out string? error)
    {
        report = null;
        try
        {
            using FileStream s = File.OpenRead(path);
            report = JsonSerializer.Deserialize<CalibrationReport>(s, ReportJson.Options);
        }
        catch (JsonException e)
        {
            error = $"{path}:{e.LineNumber + 1}: not a calibration file ({FirstSentence(e.Message)})";
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"{path}: {e.Message}";
            return false;
        }

        if (report is null || report.SchemaVersion != CalibrationReport.CurrentSchemaVersion)
        {
            error = $"{path}: schemaVersion {report?.SchemaVersion} is not {CalibrationReport.CurrentSchemaVersion}; run 'mirroremu calibrate' again";
            report = null;
            return false;
        }

        error = null;
        return true;
    }

    /// <summary>The serializer message's first sentence, on one line.</summary>
    private static string FirstSentence(string message)
    {
        int dot = message.IndexOf(". ", StringComparison.Ordinal);
        return (dot > 0 ? message[..dot] : message).ReplaceLineEndings(" ");
    }
}
