using System.Text.Json.Serialization;

namespace MirrorEmu.Regression;

/// <summary>One counter of one fixed scenario, as the code path that did the work counted it (docs/design.md, "Invariants every change keeps"),
/// with the tolerance the scenario states for it.</summary>
/// <param name="Scenario">The scenario's stable name ("hmm/uffd-batched").</param>
/// <param name="Counter">The counter's stable name ("roundTrips").</param>
/// <param name="Value">The count.</param>
/// <param name="Tolerance">The relative change allowed before it is a regression: 0 for an exact counter, 0.1 for
/// ±10 %.</param>
public sealed record CounterFigure(string Scenario, string Counter, long Value, double Tolerance = 0)
{
    /// <summary>"scenario/counter": the figure's identity in baselines and histories.</summary>
    [JsonIgnore]
    public string Id => $"{Scenario}:{Counter}";

    /// <summary>True when <paramref name="current"/> is within <see cref="Tolerance"/> of this (the baseline's) value.</summary>
    /// <param name="current">The current count.</param>
    public bool Accepts(long current) => Math.Abs(current - Value) <= Tolerance * Math.Abs(Value);
}
