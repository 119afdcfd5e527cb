using System.Text.Json;
using System.Text.Json.Serialization;

namespace MirrorEmu.Telemetry;

/// <summary>The JSON conventions of every report the project writes (compare, calibrate): camelCase names, indented,
/// enums as strings, nulls written out so every documented field is present, and an unknown field refused on reading.</summary>
public static class ReportJson
{
    /// <summary>The serializer options.</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    /// <summary>The options, read-only.</summary>
    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            WriteIndented = true,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        o.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}
