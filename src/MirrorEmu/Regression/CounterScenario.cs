namespace MirrorEmu.Regression;

/// <summary>
/// A fixed, deterministic scenario that runs the real code paths (policies, the driver, the device, the allocation-free
/// paths) and reports the counters those paths incremented. Names are stable identities, like benchmark names: a changed
/// scenario gets a new name. Every counter is compared exactly unless the scenario states a tolerance for it.
/// </summary>
public abstract class CounterScenario
{
    /// <summary>The stable name ("hmm/uffd-batched").</summary>
    public abstract string Name { get; }

    /// <summary>One line: what runs.</summary>
    public abstract string Description { get; }

    /// <summary>Runs the scenario once, from a fresh address space, and returns its counters.</summary>
    /// <returns>The counters, each with its tolerance.</returns>
    /// <exception cref="InvalidOperationException">The scenario did not end as it must (an unexpected error code, wrong
    /// data): the message names the scenario and what went wrong.</exception>
    public abstract IReadOnlyList<CounterFigure> Run();

    /// <summary>A counter of this scenario.</summary>
    /// <param name="counter">The counter's name.</param>
    /// <param name="value">Its value.</param>
    /// <param name="tolerance">Relative tolerance (0: exact).</param>
    protected CounterFigure Figure(string counter, long value, double tolerance = 0) => new(Name, counter, value, tolerance);

    /// <summary>Throws naming this scenario when <paramref name="ok"/> is false.</summary>
    /// <param name="ok">The condition the scenario must meet.</param>
    /// <param name="what">What went wrong.</param>
    protected void Require(bool ok, string what)
    {
        if (!ok)
        {
            throw new InvalidOperationException($"counter scenario {Name}: {what}");
        }
    }
}
