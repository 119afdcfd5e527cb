using System.Text.RegularExpressions;

namespace MirrorEmu.Tests.Differential;

/// <summary>
/// The canonical lines both sides' state is written in, and the comparison of two states: the first
/// difference, described for a person and reduced to a signature that groups divergences by cause.
/// </summary>
public static partial class DiffState
{
    /// <summary>The /proc/&lt;pid&gt;/smaps VmFlags compared (the rest are bookkeeping the emulator has no use for):
    /// huge-page advice, userfaultfd modes, DONTFORK, WIPEONFORK, mlock, DONTDUMP, read-ahead advice. VM_ACCOUNT and VM_NORESERVE
    /// are not compared directly: what they change (which VMAs merge) is.</summary>
    public static readonly string[] ComparedFlags = ["hg", "nh", "um", "uw", "ui", "dc", "wf", "lo", "lf", "dd", "sr", "rr"];

    /// <summary>One VMA's line.</summary>
    public static string Vma(ulong start, ulong end, string perms, string kind, ulong pgoff, string flags, long anonHugeKb) =>
        $"{DiffFormat.Addr(start)}-{DiffFormat.Addr(end)} {perms} {kind}{(kind == "anon" ? string.Empty : $" pgoff={pgoff}")} [{flags}]{(anonHugeKb == 0 ? string.Empty : $" thp={anonHugeKb}kB")}";

    /// <summary>One page's line.</summary>
    public static string Page(ulong va, string content, bool uffdWp) => $"{DiffFormat.Addr(va)} {content}{(uffdWp ? " wp" : string.Empty)}";

    /// <summary>The compared subset of smaps mnemonics, in <see cref="ComparedFlags"/> order.</summary>
    /// <param name="mnemonics">All of a VMA's mnemonics.</param>
    public static string Flags(IEnumerable<string> mnemonics)
    {
        var set = new HashSet<string>(mnemonics);
        return string.Join(' ', ComparedFlags.Where(set.Contains));
    }

    /// <summary>The first difference between the kernel's and the emulator's step, or null if they agree.</summary>
    /// <param name="op">The step's operation.</param>
    /// <param name="k">The kernel's outcome.</param>
    /// <param name="e">The emulator's outcome.</param>
    /// <param name="ks">The kernel's state after the step.</param>
    /// <param name="es">The emulator's state after the step.</param>
    public static Divergence? Compare(DiffOp op, StepOutcome k, StepOutcome e, List<ProcessState>? ks, List<ProcessState>? es)
    {
        string label = Label(op);
        if (k.Result != e.Result)
        {
            string why = e.Why is null ? string.Empty : $" ({Normalize(e.Why)})";
            return new Divergence($"{label}: returns {Normalize(k.Result)} on the kernel, {Normalize(e.Result)}{why} on the emulator",
                $"returns: kernel {k.Result}; emulator {e.Result}{(e.Why is null ? string.Empty : $" ({e.Why})")}");
        }

        if (k.Detail != e.Detail)
        {
            return new Divergence($"{label}: {Normalize(FieldName(k.Detail.Length > 0 ? k.Detail : e.Detail))} differs", $"kernel {k.Detail}; emulator {e.Detail}");
        }

        if (!k.Messages.SequenceEqual(e.Messages))
        {
            return new Divergence(
                $"{label}: userfaultfd messages: kernel [{Normalize(string.Join(", ", k.Messages))}] emulator [{Normalize(string.Join(", ", e.Messages))}]",
                $"messages: kernel [{string.Join(", ", k.Messages)}]; emulator [{string.Join(", ", e.Messages)}]");
        }

        if (ks is null || es is null)
        {
            return null;
        }

        if (ks.Count != es.Count)
        {
            return new Divergence($"{label}: process count differs", $"kernel {ks.Count} processes; emulator {es.Count}");
        }

        for (int p = 0; p < ks.Count; p++)
        {
            if (!ks[p].Vmas.SequenceEqual(es[p].Vmas))
            {
                return new Divergence($"{label}: VMAs: {VmaAspect(ks[p].Vmas, es[p].Vmas)}", $"process {p} VMAs:\n      kernel:   {string.Join("\n                ", ks[p].Vmas)}\n      emulator: {string.Join("\n                ", es[p].Vmas)}");
            }

            if (!ks[p].Pages.SequenceEqual(es[p].Pages))
            {
                int i = 0;
                while (i < ks[p].Pages.Count && i < es[p].Pages.Count && ks[p].Pages[i] == es[p].Pages[i])
                {
                    i++;
                }

                string kl = i < ks[p].Pages.Count ? ks[p].Pages[i] : "(none)";
                string el = i < es[p].Pages.Count ? es[p].Pages[i] : "(none)";
                return new Divergence($"{label}: pages: {PageAspect(kl, el)}", $"process {p} first differing page: kernel {kl}; emulator {el}");
            }
        }

        return null;
    }

    /// <summary>A step's label for signatures: the operation and the argument that selects its behaviour.</summary>
    /// <param name="op">The operation.</param>
    public static string Label(DiffOp op) => op.Kind switch
    {
        DiffOpKind.Madvise => $"madvise {DiffFormat.Advice(op.A)}",
        DiffOpKind.Mremap => $"mremap {DiffFormat.MremapFlags(op.B)}",
        DiffOpKind.Mmap => $"mmap {((op.B & 0x20) != 0 ? "anon" : "file")} {((op.B & 3) == 1 ? "shared" : (op.B & 3) == 2 ? "private" : "type" + (op.B & 3))}",
        _ => op.Kind.ToString().ToLowerInvariant(),
    };

    /// <summary>Replaces addresses and numbers by placeholders, so that one cause gives one signature.</summary>
    /// <param name="s">Text.</param>
    public static string Normalize(string s) => Digits().Replace(Hex().Replace(Address().Replace(s, "@"), "#"), "#");

    private static string FieldName(string detail)
    {
        int eq = detail.IndexOf('=', StringComparison.Ordinal);
        return eq < 0 ? detail : detail[..eq];
    }

    private static string VmaAspect(List<string> k, List<string> e)
    {
        if (k.Count != e.Count)
        {
            return $"layout (kernel {k.Count} VMAs, emulator {e.Count})";
        }

        for (int i = 0; i < k.Count; i++)
        {
            if (k[i] == e[i])
            {
                continue;
            }

            string[] a = k[i].Split(' ');
            string[] b = e[i].Split(' ');
            return a[0] != b[0] ? "layout (ranges differ)"
                : a[1] != b[1] ? $"permissions {a[1]} vs {b[1]}"
                : a[2] != b[2] ? $"kind {a[2]} vs {b[2]}"
                : k[i].Contains("pgoff", StringComparison.Ordinal) && a[3] != b[3] ? "page offset"
                : $"flags [{FlagPart(k[i])}] vs [{FlagPart(e[i])}]";
        }

        return "order";
    }

    private static string FlagPart(string line)
    {
        int open = line.IndexOf('[', StringComparison.Ordinal);
        int close = line.IndexOf(']', StringComparison.Ordinal);
        string flags = open >= 0 && close > open ? line[(open + 1)..close] : string.Empty;
        int thp = line.IndexOf(" thp=", StringComparison.Ordinal);
        return thp >= 0 ? flags + line[thp..] : flags;
    }

    private static string PageAspect(string k, string e)
    {
        string[] a = k.Split(' ');
        string[] b = e.Split(' ');
        if (a[0] != b[0])
        {
            return "mapped pages differ";
        }

        string ka = a.Length > 1 ? a[1] : string.Empty;
        string eb = b.Length > 1 ? b[1] : string.Empty;
        if (ka != eb)
        {
            static string Kind(string c) => c is "zero" or "sigbus" or "guard" ? c : "data";
            return $"contents ({Kind(ka)} vs {Kind(eb)})";
        }

        return $"uffd-wp bit ({(k.EndsWith(" wp", StringComparison.Ordinal) ? "set" : "clear")} on the kernel)";
    }

    [GeneratedRegex(@"[WH][+-]0x[0-9a-f]+")]
    private static partial Regex Address();

    [GeneratedRegex(@"0x[0-9a-fA-F]+|\b[0-9a-f]{16}\b")]
    private static partial Regex Hex();

    [GeneratedRegex(@"(?<![A-Za-z])\d+")]
    private static partial Regex Digits();
}

/// <summary>One step where the kernel and the emulator disagree.</summary>
/// <param name="Signature">The cause, without addresses or numbers: divergences with one signature are counted once.</param>
/// <param name="Detail">What each side said, for a person.</param>
public sealed record Divergence(string Signature, string Detail);
