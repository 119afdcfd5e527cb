using System.Text.Json;
using System.Text.Json.Serialization;

namespace MirrorEmu.Workloads;

/// <summary>
/// A scenario for <c>mirroremu run</c> (README "Scenario files"): mappings in one address space, some registered with
/// userfaultfd and served by a monitor, one device mirroring them under a userfaultfd policy, steps (device launches,
/// CPU-side invalidation storms, alone or during a launch), and assertions on counters and data.
/// </summary>
public sealed record ScenarioFile
{
    /// <summary>The schema version this reader knows.</summary>
    public const int CurrentSchemaVersion = 1;

    /// <summary>The schema version (1).</summary>
    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    /// <summary>The scenario's name.</summary>
    public required string Name { get; init; }

    /// <summary>What it shows, in words.</summary>
    public string? Description { get; init; }

    /// <summary>The launcher: direct, cpu, cuda, opencl or auto.</summary>
    public string Launcher { get; init; } = "direct";

    /// <summary>Seeds every workload (order, draws, and each page's element).</summary>
    public int Seed { get; init; } = 12345;

    /// <summary>The device.</summary>
    public ScenarioDevice Device { get; init; } = new();

    /// <summary>The mappings, in the order they are mapped.</summary>
    public required IReadOnlyList<ScenarioMapping> Mappings { get; init; }

    /// <summary>The steps, in order.</summary>
    public IReadOnlyList<ScenarioStep> Steps { get; init; } = [];

    /// <summary>The assertions, checked after the last step.</summary>
    public IReadOnlyList<ScenarioAssertion> Assertions { get; init; } = [];

    /// <summary>The reader's options: camelCase, an unknown field refused, comments and trailing commas allowed.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = CreateOptions();

    /// <summary>Reads a scenario.</summary>
    /// <param name="json">The file's text.</param>
    /// <param name="file">The file's name, for messages.</param>
    /// <returns>The scenario, checked (<see cref="Check"/>).</returns>
    /// <exception cref="ScenarioFormatException">Malformed JSON, an unknown or missing field (named with its line), or a
    /// value out of range (named with its path).</exception>
    public static ScenarioFile Parse(string json, string file)
    {
        ScenarioFile? scenario;
        try
        {
            scenario = JsonSerializer.Deserialize<ScenarioFile>(json, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new ScenarioFormatException($"{file}:{(e.LineNumber ?? 0) + 1}: {Describe(e)}");
        }

        if (scenario is null)
        {
            throw new ScenarioFormatException($"{file}:1: the file holds null, not a scenario");
        }

        return scenario.Check() is { } problem ? throw new ScenarioFormatException($"{file}: {problem}") : scenario;
    }

    /// <summary>Checks the values the schema cannot: ranges, names that must exist, one kind per step.</summary>
    /// <returns>The first problem, naming its path ("steps[1].launch.mapping"), or null.</returns>
    public string? Check()
    {
        if (SchemaVersion != CurrentSchemaVersion)
        {
            return $"schemaVersion: {SchemaVersion} is not {CurrentSchemaVersion}";
        }

        // The same rule as compare --seed: a whole number from 0 up.
        if (Seed < 0)
        {
            return $"seed: {Seed} is not a whole number from 0 to {int.MaxValue}";
        }

        if (Mappings.Count == 0)
        {
            return "mappings: name at least one mapping";
        }

        if (!ComparePolicies.TryParse(Device.Policy, out ComparePolicy policy) || policy == ComparePolicy.Regular)
        {
            return $"device.policy: '{Device.Policy}' is not one of uffd-unsupported, uffd-single, uffd-batched, uffd-range";
        }

        if (!ReplayPolicies.TryParse(Device.Replay, out _))
        {
            return $"device.replay: '{Device.Replay}' is not one of {string.Join(", ", ReplayPolicies.Names)}";
        }

        if (Device.FaultBatch is < 1 or > 65_536)
        {
            return $"device.faultBatch: {Device.FaultBatch} must be between 1 and 65536";
        }

        var names = new HashSet<string>();
        for (int i = 0; i < Mappings.Count; i++)
        {
            ScenarioMapping m = Mappings[i];
            if (!names.Add(m.Name))
            {
                return $"mappings[{i}].name: '{m.Name}' is used twice";
            }

            if (m.Pages < 1 || m.Pages > 1 << 20)
            {
                return $"mappings[{i}].pages: {m.Pages} must be between 1 and 1048576";
            }

            if (m.Userfaultfd is { } u && u.Check() is { } bad)
            {
                return $"mappings[{i}].userfaultfd.{bad}";
            }
        }

        for (int i = 0; i < Steps.Count; i++)
        {
            if (Steps[i].Check(names) is { } bad)
            {
                return $"steps[{i}].{bad}";
            }
        }

        for (int i = 0; i < Assertions.Count; i++)
        {
            if (Assertions[i].Check(names) is { } bad)
            {
                return $"assertions[{i}]{bad}";
            }
        }

        return null;
    }

    /// <summary>The mapping named <paramref name="name"/>.</summary>
    /// <param name="name">Its name.</param>
    public ScenarioMapping Mapping(string name) => Mappings.First(m => m.Name == name);

    /// <summary>Turns a serializer's message into one line naming the field.</summary>
    private static string Describe(JsonException e)
    {
        string path = e.Path is { Length: > 2 } p ? p[2..] : "the top level";
        string message = e.Message;
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
        {
            int q0 = message.IndexOf('\'', StringComparison.Ordinal);
            int q1 = q0 >= 0 ? message.IndexOf('\'', q0 + 1) : -1;
            string field = q1 > q0 ? message[(q0 + 1)..q1] : path;
            return $"unknown field '{field}' (at {path}; see README \"Scenario files\" for the fields)";
        }

        if (message.Contains("missing required properties", StringComparison.Ordinal))
        {
            int colon = message.IndexOf(": ", StringComparison.Ordinal);
            string fields = colon > 0 ? message[(colon + 2)..].Split('.')[0] : "a required field";
            return $"missing required field {fields} (in {path})";
        }

        if (message.Contains("could not be converted", StringComparison.Ordinal))
        {
            return $"'{path}' has a value of the wrong type";
        }

        int dot = message.IndexOf(". ", StringComparison.Ordinal);
        return "malformed JSON: " + (dot > 0 ? message[..dot] : message).ReplaceLineEndings(" ");
    }

    /// <summary>The reader's options.</summary>
    private static JsonSerializerOptions CreateOptions()
    {
        var o = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            ReadCommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            RespectNullableAnnotations = true,
        };
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}
