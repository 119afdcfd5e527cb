using System.Text.Json.Serialization;

namespace MirrorEmu.Workloads;

/// <summary>An assertion checked after the last step: a counter against a bound (<c>{"counter": "roundTrips", "equals":
/// 32}</c>, or <c>atLeast</c>/<c>atMost</c>), or a mapping's data (<c>{"data": "buf"}</c>: every byte as the launches
/// left it).</summary>
public sealed record ScenarioAssertion
{
    /// <summary>The counter's name (<see cref="ScenarioRunner.CounterNames"/>).</summary>
    public string? Counter { get; init; }

    /// <summary>The value it must equal.</summary>
    [JsonPropertyName("equals")]
    public long? EqualTo { get; init; }

    /// <summary>The least value it may have.</summary>
    public long? AtLeast { get; init; }

    /// <summary>The greatest value it may have.</summary>
    public long? AtMost { get; init; }

    /// <summary>A mapping whose every byte must be as the launches left it.</summary>
    public string? Data { get; init; }

    /// <summary>The assertion in words ("roundTrips = 32", "data of 'buf'").</summary>
    public string Describe() => Data is not null
        ? $"data of '{Data}' is every byte as the launches left it"
        : string.Join(" and ", new[]
        {
            EqualTo is { } e ? $"{Counter} = {e:N0}" : null,
            AtLeast is { } l ? $"{Counter} ≥ {l:N0}" : null,
            AtMost is { } m ? $"{Counter} ≤ {m:N0}" : null,
        }.Where(s => s is not null));

    /// <summary>The first bad value, as ".field: why", or null.</summary>
    internal string? Check(ISet<string> mappings)
    {
        if ((Counter is null) == (Data is null))
        {
            return ": an assertion names exactly one of counter and data";
        }

        if (Data is not null)
        {
            return mappings.Contains(Data) ? null : $".data: no mapping named '{Data}'";
        }

        if (!ScenarioRunner.CounterNames.Contains(Counter!))
        {
            return $".counter: '{Counter}' is not one of {string.Join(", ", ScenarioRunner.CounterNames)}";
        }

        return EqualTo is null && AtLeast is null && AtMost is null ? $".counter: give equals, atLeast or atMost for '{Counter}'" : null;
    }
}
