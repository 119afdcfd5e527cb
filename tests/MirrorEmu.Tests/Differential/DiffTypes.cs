namespace MirrorEmu.Tests.Differential;

/// <summary>What one step returned on one side, in canonical text so that the two sides compare as strings.</summary>
public sealed class StepOutcome
{
    /// <summary>The return value: "0", "-EINVAL", "0 at W+0x2000", "0 elsewhere", "ok", "SIGSEGV at W+0x3000".</summary>
    public string Result { get; set; } = "ok";

    /// <summary>What else the call returned (bytes read, mincore's vector, UFFDIO_COPY's count, REGISTER's ioctls), or empty.</summary>
    public string Detail { get; set; } = string.Empty;

    /// <summary>The userfaultfd messages read during the step and the monitor's answers, in order.</summary>
    public List<string> Messages { get; } = [];

    /// <summary>The emulator's message for an error (it names the field), for grouping divergences; null on the kernel side.</summary>
    public string? Why { get; set; }

    /// <summary>Fork: the child process, which the side takes over (then null).</summary>
    public object? Child { get; set; }

    /// <summary>mmap/mremap success: where the mapping is, which the side turns into <see cref="Result"/> (then null).</summary>
    public ulong? MappedAt { get; set; }

    /// <summary>A result with the return value only.</summary>
    /// <param name="rc">0 or a negated errno.</param>
    /// <param name="why">The emulator's message, if any.</param>
    public static StepOutcome Rc(long rc, string? why = null) => new() { Result = DiffFormat.Rc(rc), Why = rc == 0 ? null : why };
}

/// <summary>One process's state inside the compared areas: its VMAs and its pages, one line each.</summary>
/// <param name="Vmas">"start-end perms kind [pgoff] [flags] thp=N" per VMA.</param>
/// <param name="Pages">"address content [wp]" per mapped page.</param>
public sealed record ProcessState(List<string> Vmas, List<string> Pages);

/// <summary>A userfaultfd message as both sides read it.</summary>
/// <param name="Event">UFFD_EVENT_*.</param>
/// <param name="Address">PAGEFAULT: the address; REMAP: from; REMOVE/UNMAP: start.</param>
/// <param name="Flags">PAGEFAULT: UFFD_PAGEFAULT_FLAG_*; REMAP: to; REMOVE/UNMAP: end.</param>
/// <param name="Length">REMAP: the length.</param>
/// <param name="Child">FORK: the child's context.</param>
public readonly record struct DiffMsg(byte Event, ulong Address, ulong Flags, ulong Length, IDiffUffd? Child)
{
    /// <summary>UFFD_EVENT_PAGEFAULT.</summary>
    public const byte Pagefault = 0x12;

    /// <summary>UFFD_EVENT_FORK.</summary>
    public const byte Fork = 0x13;

    /// <inheritdoc/>
    public override string ToString() => Event switch
    {
        Pagefault => $"PAGEFAULT {At(Address)} flags={Flags}",
        Fork => "FORK",
        0x14 => $"REMAP {At(Address)}→{At(Flags)} {DiffFormat.Len(Length)}",
        0x15 => $"REMOVE {At(Address)}-{At(Flags)}",
        0x16 => $"UNMAP {At(Address)}-{At(Flags)}",
        _ => $"EVENT 0x{Event:x}",
    };

    // Where each side places what is not fixed differs by design (see DiffSide): outside the windows only "elsewhere" counts.
    private static string At(ulong a) => DiffWindow.InCompareArea(a) || a == DiffWindow.CompareHigh ? DiffFormat.Addr(a) : "elsewhere";
}

/// <summary>
/// One userfaultfd context on either side. Calls return 0 or a negated errno; the counts are the
/// kernel's struct fields (bytes done, or the negated errno when nothing was done).
/// </summary>
public interface IDiffUffd
{
    /// <summary>A non-blocking read of one message.</summary>
    /// <param name="msg">The message.</param>
    /// <returns>False when none is queued.</returns>
    bool TryRead(out DiffMsg msg);

    /// <summary>UFFDIO_REGISTER.</summary>
    long Register(ulong start, ulong len, ulong mode, out ulong ioctls);

    /// <summary>UFFDIO_UNREGISTER.</summary>
    long Unregister(ulong start, ulong len);

    /// <summary>UFFDIO_COPY.</summary>
    long Copy(ulong dst, byte[] src, ulong mode, out long count);

    /// <summary>UFFDIO_ZEROPAGE.</summary>
    long ZeroPage(ulong dst, ulong len, ulong mode, out long count);

    /// <summary>UFFDIO_WRITEPROTECT.</summary>
    long WriteProtect(ulong start, ulong len, ulong mode);

    /// <summary>UFFDIO_CONTINUE.</summary>
    long Continue(ulong start, ulong len, ulong mode, out long count);

    /// <summary>UFFDIO_MOVE.</summary>
    long Move(ulong dst, ulong src, ulong len, ulong mode, out long count);

    /// <summary>UFFDIO_WAKE.</summary>
    long Wake(ulong start, ulong len);

    /// <summary>close(): releases the context (its registrations go, its waiters wake).</summary>
    void Close();
}

/// <summary>An operation under way on one side: polled until it completes, then finished into its outcome.</summary>
/// <param name="poll">Waits up to the given milliseconds; true once the operation completed.</param>
/// <param name="finish">Builds the outcome (called once, after completion).</param>
public sealed class DiffPending(Func<int, bool> poll, Func<StepOutcome> finish)
{
    /// <summary>An operation that already completed.</summary>
    /// <param name="outcome">Its outcome.</param>
    public static DiffPending Done(StepOutcome outcome) => new(_ => true, () => outcome);

    /// <summary>Waits up to <paramref name="ms"/> for completion.</summary>
    /// <param name="ms">Milliseconds.</param>
    public bool TryComplete(int ms) => poll(ms);

    /// <summary>The outcome.</summary>
    public StepOutcome Finish() => finish();
}

/// <summary>Bytes the sequences write and copy: a function of a seed and the position, so both sides write the same.</summary>
public static class DiffData
{
    /// <summary><paramref name="length"/> bytes for <paramref name="seed"/>.</summary>
    /// <param name="seed">The operation's seed.</param>
    /// <param name="length">Bytes.</param>
    public static byte[] Pattern(ulong seed, int length)
    {
        var b = new byte[length];
        for (int i = 0; i < length; i++)
        {
            b[i] = (byte)((seed * 37) + ((ulong)i * 131) + ((ulong)i >> 9));
        }

        return b;
    }

    /// <summary>A short content id for a page or a run of bytes: "zero", or a 64-bit hash in hex.</summary>
    /// <param name="bytes">The bytes.</param>
    public static string Id(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IndexOfAnyExcept((byte)0) < 0)
        {
            return bytes.Length == 4096 ? "zero" : $"zero*{bytes.Length}";
        }

        ulong h = 14695981039346656037UL;
        foreach (byte b in bytes)
        {
            h = (h ^ b) * 1099511628211UL;
        }

        return $"{h:x16}";
    }
}
