using System.Diagnostics;
using System.Text;
using MirrorEmu.Calibration;

namespace MirrorEmu.Tests.Differential;

/// <summary>
/// Runs sequences on both sides step by step, compares after every step (return values, userfaultfd
/// messages, every process's VMAs and pages), stops a sequence at its first divergence, and shrinks
/// each new kind of divergence to a minimal reproduction.
/// </summary>
/// <param name="baseServer">The host's base server.</param>
/// <param name="kernel">The host kernel's release, for <see cref="KnownDivergences"/>.</param>
internal sealed class DiffRunner(LinuxMmProcess baseServer, string kernel)
{
    private readonly Dictionary<string, Found> _found = [];

    /// <summary>Sequences run.</summary>
    public int Sequences { get; private set; }

    /// <summary>Steps run (on each side) in the sequences, minimisation excluded.</summary>
    public long Steps { get; private set; }

    /// <summary>Sequences that diverged.</summary>
    public int DivergentSequences { get; private set; }

    /// <summary>Each distinct divergence (by signature), with its first minimal reproduction.</summary>
    public IReadOnlyCollection<Found> Distinct => _found.Values;

    /// <summary>Total time minimising may take, across all divergences.</summary>
    public TimeSpan MinimizeBudget { get; init; } = TimeSpan.FromSeconds(40);

    private TimeSpan _minimizeSpent;

    /// <summary>A distinct divergence.</summary>
    /// <param name="Signature">Its cause.</param>
    /// <param name="Seed">The first sequence's seed.</param>
    /// <param name="Repro">A minimal operation list that shows it (the last operation diverges).</param>
    /// <param name="Detail">What each side said at the last operation.</param>
    /// <param name="Known">Why it is expected (a kernel version, or an item left for another change), or null.</param>
    public sealed record Found(string Signature, int Seed, DiffOp[] Repro, string Detail, string? Known)
    {
        /// <summary>How many sequences showed it.</summary>
        public int Count { get; set; }
    }

    /// <summary>
    /// Runs one sequence; records its divergences. A known divergence that left both sides' state equal (a return
    /// value or a count that differs, say) is recorded and the sequence goes on; any other divergence ends it.
    /// </summary>
    /// <param name="ops">The operations.</param>
    /// <param name="seed">The sequence's seed (printed with reproductions).</param>
    /// <param name="setupFailure">Why the host window could not be set up, or null.</param>
    public void Run(DiffOp[] ops, int seed, out string? setupFailure)
    {
        var passed = new List<(int Step, Divergence D)>();
        (int step, Divergence? d) = RunOnce(ops, ops.Length, out setupFailure, passed, target: null);
        if (setupFailure is not null)
        {
            return;
        }

        Sequences++;
        if (d is not null)
        {
            passed.Add((step, d));
        }

        if (passed.Count > 0)
        {
            DivergentSequences++;
        }

        foreach ((int at, Divergence found) in passed)
        {
            if (_found.TryGetValue(found.Signature, out Found? seen))
            {
                seen.Count++;
                continue;
            }

            DiffOp[] repro = Minimize(ops[..(at + 1)], found, out Divergence last);
            _found[found.Signature] = new Found(found.Signature, seed, repro, last.Detail, KnownDivergences.Explain(found.Signature, kernel, repro)) { Count = 1 };
        }
    }

    /// <summary>A report of everything found: the counts, then each distinct divergence once with its reproduction.</summary>
    public string Report()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"host kernel {kernel}: {Sequences} sequences, {Steps} steps, {DivergentSequences} divergent sequences, {_found.Count} distinct divergences ({_found.Values.Count(f => f.Known is null)} unexplained)");
        foreach (Found f in _found.Values.OrderBy(f => f.Known is not null).ThenBy(f => f.Signature, StringComparer.Ordinal))
        {
            sb.AppendLine();
            sb.AppendLine($"* {f.Signature}");
            sb.AppendLine($"  {(f.Known is null ? "UNEXPLAINED" : "known: " + f.Known)}; {f.Count} sequence(s), first seed {f.Seed}");
            sb.AppendLine($"  repro: {DiffFormat.Sequence(f.Repro)}");
            sb.AppendLine($"  {f.Detail}");
        }

        return sb.ToString();
    }

    /// <summary>Runs <paramref name="ops"/> up to <paramref name="limit"/> steps; returns the first divergence that ends the
    /// sequence: <paramref name="target"/> if given, else one that is unknown or left the states different. Known
    /// divergences that left the states equal are collected in <paramref name="passed"/> (when given) and run past.</summary>
    private (int Step, Divergence? D) RunOnce(DiffOp[] ops, int limit, out string? setupFailure, List<(int Step, Divergence D)>? passed, string? target)
    {
        using HostSide? host = HostSide.TryCreate(baseServer, out string why);
        setupFailure = host is null ? why : null;
        if (host is null)
        {
            return (-1, null);
        }

        using var emu = new EmuSide();
        for (int i = 0; i < limit; i++)
        {
            StepOutcome k = host.Execute(ops[i]);
            StepOutcome e = emu.Execute(ops[i]);
            if (passed is not null)
            {
                Steps++;
            }

            bool broken = host.Broken || emu.Broken;
            List<ProcessState>? ks = broken ? null : host.Snapshot();
            List<ProcessState>? es = broken ? null : emu.Snapshot();
            Divergence? d = DiffState.Compare(ops[i], k, e, ks, es);
            if (d is null && broken)
            {
                d = new Divergence($"{DiffState.Label(ops[i])}: both sides hung", $"kernel {k.Result}; emulator {e.Result}");
            }

            if (d is null)
            {
                continue;
            }

            bool runPast = target is null ? KnownDivergences.Explain(d.Signature, kernel, ops[..(i + 1)]) is not null : d.Signature != target;
            if (runPast && ks is not null && es is not null && DiffState.Compare(ops[i], k, k, ks, es) is null)
            {
                passed?.Add((i, d));
                continue;
            }

            return (i, d);
        }

        return (-1, null);
    }

    /// <summary>
    /// Shrinks a sequence whose last operation diverges to one that still ends in the same divergence:
    /// first chunks, then single operations are dropped (delta debugging), within <see cref="MinimizeBudget"/>.
    /// </summary>
    private DiffOp[] Minimize(DiffOp[] ops, Divergence d, out Divergence last)
    {
        last = d;
        var sw = Stopwatch.StartNew();
        var current = ops.ToList();
        for (int chunk = Math.Max(1, (current.Count - 1) / 2); chunk >= 1; chunk /= 2)
        {
            bool removed = true;
            while (removed)
            {
                removed = false;
                for (int at = 0; at + chunk < current.Count; at += chunk)
                {
                    if (_minimizeSpent + sw.Elapsed > MinimizeBudget)
                    {
                        _minimizeSpent += sw.Elapsed;
                        return [.. current];
                    }

                    List<DiffOp> candidate = [.. current[..at], .. current[(at + chunk)..]];
                    DiffOp[] arr = [.. candidate];
                    (int step, Divergence? got) = RunOnce(arr, arr.Length, out string? fail, passed: null, target: d.Signature);
                    if (fail is null && got is not null && got.Signature == d.Signature)
                    {
                        current = candidate[..(step + 1)];
                        last = got;
                        removed = true;
                        break;
                    }
                }
            }
        }

        _minimizeSpent += sw.Elapsed;
        return [.. current];
    }
}
