using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Tests.Helpers;
using MirrorEmu.Uffd;

namespace MirrorEmu.Tests.Mm;

/// <summary>
/// Model-based random testing of the Mm layer: seeded sequences of mmap (private/shared, anonymous/file, MAP_POPULATE),
/// munmap, mprotect, madvise (DONTNEED, POPULATE_*, HUGEPAGE/NOHUGEPAGE, PAGEOUT with swap), mremap, fork, exit, CPU writes
/// and reads, userfaultfd MISSING registration (a monitor answers each fault with UFFDIO_COPY) and an interval-notifier
/// subscription, against a reference model of the bytes, protection, huge-page advice, registration and presence of every
/// page of a 1,024-page window (two 2 MiB spans, so anonymous VMAs with MADV_HUGEPAGE get huge pages and the huge zero page).
/// After every step the model and the address space are compared through <see cref="AddressSpace.TestPeek"/>, which reads
/// without faulting, so that the next step still meets first-touch writes, copy-on-write of pages never read, and faults
/// of pages a userfaultfd monitor must fill. The model predicts, independently of the code, each step's return code, the
/// userfaultfd messages (PAGEFAULT, UNMAP, REMOVE, REMAP) and the invalidations the subscription must see (event and pages
/// covered) and may see (where). The model follows Linux over holes: mprotect changes the mapped prefix, madvise the mapped
/// parts, populate stops at the first page it cannot fault (the differential test checks the same against the host kernel).
/// A failing sequence is shrunk and printed with its seed.
/// </summary>
public class AddressSpaceModelTests
{
    private const int WindowPages = 1024;
    private const int SpanPages = 1 << PageGeometry.PmdOrder;
    private const ulong Base = 0x4000_0000; // 2 MiB aligned
    private const int FilePages = 16;
    private const int PageSize = PageGeometry.PageSizeInt;
    private const int DefaultSequences = 250;
    private static readonly Prot[] s_prots = [Prot.None, Prot.Read, Prot.ReadWrite, Prot.Read | Prot.Exec];

    [Fact]
    public void SeededRandomSequencesMatchTheReferenceModel()
    {
        int seed = TestSeeds.Get(20240611);
        int sequences = TestKnobs.Count("MIRROREMU_MODEL_SEQUENCES", DefaultSequences);
        var coverage = new Coverage();
        for (int i = 0; i < sequences; i++)
        {
            Op[] ops = Generate(seed + i);
            string? failure = RunCatching(ops, coverage);
            if (failure is not null)
            {
                Op[] minimal = Shrink(ops);
                Assert.Fail($"sequence seed {seed + i} failed (MIRROREMU_SEED={seed + i} MIRROREMU_MODEL_SEQUENCES=1 replays it): {failure}\n"
                    + $"  minimal reproduction ({minimal.Length} of {ops.Length} operations): {string.Join("; ", minimal)}\n  fails with: {RunCatching(minimal, new Coverage())}");
            }
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{sequences} sequences (set MIRROREMU_MODEL_SEQUENCES to run more): {coverage}");
        Assert.True(coverage.HugePages > 0 && coverage.HugeZeroPages > 0 && coverage.SwapEntries > 0 && coverage.UffdFaults > 0 && coverage.UffdEvents > 0 && coverage.RequiredCopies > 0,
            $"the sequences did not reach what the model is for: {coverage}");
    }

    /// <summary>What the sequences reached, counted so that a generator change that stops reaching it fails the test.</summary>
    private sealed class Coverage
    {
        public long Steps;
        public long HugePages;
        public long HugeZeroPages;
        public long SwapEntries;
        public long UffdFaults;
        public long UffdEvents;
        public long RequiredInvalidations;
        public long RequiredCopies;

        public override string ToString() =>
            $"{Steps} steps; seen after a step: {HugePages} huge pages, {HugeZeroPages} huge zero pages, {SwapEntries} swap entries; "
            + $"{UffdFaults} userfaultfd faults answered, {UffdEvents} other userfaultfd events, {RequiredInvalidations} required invalidations checked ({RequiredCopies} of copy-on-write)";
    }

    /// <summary>The operations; their fields are interpreted per kind.</summary>
    public enum OpKind
    {
        /// <summary>mmap private anonymous (D bit 0: MAP_POPULATE).</summary>
        MapAnon,
        /// <summary>mmap shared anonymous.</summary>
        MapShared,
        /// <summary>mmap of file D bit 1 at page offset D &gt;&gt; 2, shared if D bit 0.</summary>
        MapFile,
        /// <summary>munmap.</summary>
        Unmap,
        /// <summary>mprotect.</summary>
        Protect,
        /// <summary>MADV_DONTNEED.</summary>
        DontNeed,
        /// <summary>MADV_POPULATE_WRITE if P is odd, else _READ.</summary>
        Populate,
        /// <summary>A CPU write of P * 900 + 1 bytes at offset D * 13 into the first page.</summary>
        Write,
        /// <summary>A CPU read of Len pages (at most 4).</summary>
        Read,
        /// <summary>fork (at most three processes).</summary>
        Fork,
        /// <summary>Switch to the next process; exit the current one first if D is odd.</summary>
        Switch,
        /// <summary>mremap MAYMOVE|FIXED of an anonymous range to page D, new size P + 1 pages.</summary>
        Remap,
        /// <summary>MADV_HUGEPAGE if D is odd, else MADV_NOHUGEPAGE.</summary>
        HugeAdvice,
        /// <summary>MADV_PAGEOUT (the pool has swap).</summary>
        PageOut,
        /// <summary>UFFDIO_REGISTER (MISSING) of private anonymous pages.</summary>
        Register,
        /// <summary>UFFDIO_UNREGISTER.</summary>
        Unregister,
        /// <summary>Moves the process's interval-notifier subscription to [Start, Start + Len).</summary>
        Subscribe,
    }

    /// <summary>One operation.</summary>
    /// <param name="Kind">What.</param>
    /// <param name="Start">First page in the window.</param>
    /// <param name="Len">Pages.</param>
    /// <param name="P">A small number: the protection's index, populate's kind, the new size.</param>
    /// <param name="D">A byte of detail.</param>
    public readonly record struct Op(OpKind Kind, int Start, int Len, int P, int D)
    {
        /// <inheritdoc/>
        public override string ToString() => $"{Kind}({Start},{Len},{P},{D})";
    }

    private static Op[] Generate(int seed)
    {
        var rng = new Random(seed);
        List<Op> ops = [];

        // An interval-notifier subscription from the start: over the window, or over a part around the 2 MiB boundary.
        int subStart = rng.Next(2) == 0 ? 0 : SpanPages - 64 + rng.Next(64);
        ops.Add(new Op(OpKind.Subscribe, subStart, subStart == 0 ? WindowPages : rng.Next(1, 128), 0, 0));
        if (rng.Next(5) < 2)
        {
            // Often a 2 MiB span (or the window) of anonymous memory with MADV_HUGEPAGE, so that faults meet huge pages.
            int spanStart = rng.Next(2) * SpanPages;
            int spanLen = rng.Next(3) == 0 ? WindowPages - spanStart : SpanPages;
            ops.Add(new Op(OpKind.MapAnon, spanStart, spanLen, 2 + rng.Next(2), rng.Next(128) * 2));
            ops.Add(new Op(OpKind.HugeAdvice, spanStart, spanLen, 0, 1));
        }
        else if (rng.Next(3) == 0)
        {
            // Or a range registered with userfaultfd, so that faults go to the monitor.
            int start = SpanPages - 16 + rng.Next(32);
            int len = rng.Next(1, 12);
            ops.Add(new Op(OpKind.MapAnon, start, len, 2, rng.Next(128) * 2));
            int from = start + rng.Next(len);
            ops.Add(new Op(OpKind.Register, from, 1 + rng.Next(start + len - from), 0, 0));
        }

        int length = ops.Count + rng.Next(1, 23);
        while (ops.Count < length)
        {
            int r = rng.Next(100);
            OpKind kind = r switch
            {
                < 14 => OpKind.MapAnon,
                < 18 => OpKind.MapShared,
                < 23 => OpKind.MapFile,
                < 28 => OpKind.Unmap,
                < 34 => OpKind.Protect,
                < 39 => OpKind.DontNeed,
                < 44 => OpKind.Populate,
                < 56 => OpKind.Write,
                < 62 => OpKind.Read,
                < 66 => OpKind.Fork,
                < 69 => OpKind.Switch,
                < 74 => OpKind.Remap,
                < 80 => OpKind.HugeAdvice,
                < 84 => OpKind.PageOut,
                < 92 => OpKind.Register,
                < 95 => OpKind.Unregister,
                _ => OpKind.Subscribe,
            };

            // Most ranges sit around the 2 MiB boundary (page 512), where VMAs meet; some cover a whole 2 MiB span or the window.
            int start, len;
            int shape = rng.Next(100);
            if (shape < 15)
            {
                start = rng.Next(2) * SpanPages;
                len = rng.Next(3) == 0 ? WindowPages - start : SpanPages;
            }
            else if (shape < 30)
            {
                start = rng.Next(WindowPages);
                len = rng.Next(1, 64);
            }
            else if (kind is OpKind.Read or OpKind.Write or OpKind.Populate && ops.Count > 1 && rng.Next(2) == 0)
            {
                // An access near an earlier operation's start: reads then writes of one page, faults after a zap.
                Op earlier = ops[1 + rng.Next(ops.Count - 1)];
                start = Math.Clamp(earlier.Start + rng.Next(-1, 3), 0, WindowPages - 1);
                len = rng.Next(1, 4);
            }
            else
            {
                start = SpanPages - 16 + rng.Next(32);
                len = rng.Next(1, 12);
            }

            if (kind == OpKind.Write && rng.Next(3) == 0)
            {
                ops.Add(new Op(OpKind.Read, start, 1, 0, 0)); // a read first: the write then copies what the read mapped
            }

            ops.Add(new Op(kind, start, Math.Min(len, WindowPages - start), rng.Next(8), rng.Next(256)));
        }

        return [.. ops];
    }

    /// <summary>Runs a sequence; returns null, or why it failed (an assertion or an exception).</summary>
    private static string? RunCatching(Op[] ops, Coverage coverage)
    {
        var run = new ModelRun(coverage);
        try
        {
            run.Run(ops);
            return null;
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>Removes operations while the sequence still fails (greedy, to a fixed point).</summary>
    private static Op[] Shrink(Op[] ops)
    {
        List<Op> current = [.. ops];
        bool progress = true;
        while (progress)
        {
            progress = false;
            for (int i = current.Count - 1; i >= 0; i--)
            {
                List<Op> candidate = [.. current];
                candidate.RemoveAt(i);
                if (candidate.Count > 0 && RunCatching([.. candidate], new Coverage()) is not null)
                {
                    current = candidate;
                    progress = true;
                }
            }
        }

        return [.. current];
    }

    private sealed class Cell
    {
        public byte[] Data = new byte[PageSize];

        public Cell Clone() => new() { Data = (byte[])Data.Clone() };

        public static Cell Filled(byte value)
        {
            var c = new Cell();
            Array.Fill(c.Data, value);
            return c;
        }
    }

    private enum PageKind
    {
        PrivateAnon,
        SharedAnon,
        PrivateFile,
        SharedFile,
    }

    /// <summary>Whether an entry maps the page: known absent, known present, or not known (the model does not follow a
    /// huge-page fault's neighbours, a fork's copy of never-written pages, or reclaim of page-cache pages).</summary>
    private enum Presence
    {
        No,
        Yes,
        Unknown,
    }

    private sealed class ModelPage
    {
        public Prot Prot;
        public PageKind Kind;
        public Cell? Own;         // private copy (PrivateAnon, or PrivateFile after its first write)
        public Cell? SharedCell;  // SharedAnon
        public Cell[]? File;      // PrivateFile, SharedFile
        public int FileIndex;
        public bool Huge;         // VM_HUGEPAGE
        public bool Registered;   // userfaultfd MISSING with this process's context
        public Presence Presence;
        public bool Cow;          // known to map a page it shares read-only (the zero page, a page-cache page): a write copies it

        public bool Shared => Kind is PageKind.SharedAnon or PageKind.SharedFile;

        public bool BeyondEof => File is not null && FileIndex >= FilePages;

        public ModelPage ForkCopy() => new()
        {
            Prot = Prot,
            Kind = Kind,
            Own = Own?.Clone(),
            SharedCell = SharedCell,
            File = File,
            FileIndex = FileIndex,
            Huge = Huge,
            Registered = false, // without UFFD_FEATURE_EVENT_FORK the child's VMAs are not registered
            Presence = Own is not null ? Presence.Yes : Presence.Unknown,
        };

        public byte[]? Read() => Kind switch
        {
            PageKind.PrivateAnon => Own?.Data,
            PageKind.SharedAnon => SharedCell!.Data,
            PageKind.PrivateFile => Own?.Data ?? File![FileIndex].Data,
            _ => File![FileIndex].Data,
        };

        /// <summary>The cell a write goes to (breaking COW for private file pages).</summary>
        public Cell WriteTarget()
        {
            Cow = false;
            switch (Kind)
            {
                case PageKind.PrivateAnon:
                    return Own ??= new Cell();
                case PageKind.SharedAnon:
                    return SharedCell!;
                case PageKind.PrivateFile:
                    return Own ??= File![FileIndex].Clone();
                default:
                    return File![FileIndex];
            }
        }
    }

    /// <summary>An interval-notifier subscription over window pages [Start, End) that records every invalidation it gets.</summary>
    private sealed class Recorder : NotifierRecorder
    {
        public MmuIntervalNotifier? Subscription { get; set; }

        public int Start { get; set; }

        public int End { get; set; }
    }

    private sealed class Process(AddressSpace mm)
    {
        public AddressSpace Mm { get; } = mm;

        public ModelPage?[] Pages { get; init; } = new ModelPage?[WindowPages];

        public Userfaultfd? Uffd { get; set; }

        public Recorder? Notifier { get; set; }
    }

    /// <summary>What one step must produce besides its return code: userfaultfd messages, and invalidations.</summary>
    private sealed class Expectation
    {
        public List<string> Messages { get; } = [];

        /// <summary>Pages that must be invalidated, with the event.</summary>
        public List<(int Page, NotifierEvent Event)> Required { get; } = [];

        /// <summary>Where invalidations may happen, in pages (ranges are widened to whole 2 MiB spans by the check).</summary>
        public List<(int Start, int End)> Allowed { get; } = [];

        public bool AllowAnywhere { get; set; }

        public void Allow(int start, int end) => Allowed.Add((start, end));
    }

    private sealed class ModelRun(Coverage coverage)
    {
        private readonly List<Process> _procs = [];
        private readonly Cell[][] _modelFiles = new Cell[2][];
        private readonly MemFile[] _files = new MemFile[2];
        private int _current;
        private int _step;

        public void Run(Op[] ops)
        {
            using var memory = new PhysicalMemory(8192 * PageGeometry.PageSize) { SwapEnabled = true };
            for (int f = 0; f < 2; f++)
            {
                _files[f] = new MemFile(memory, (ulong)FilePages * PageGeometry.PageSize, $"file{f}");
                _modelFiles[f] = new Cell[FilePages];
                for (int i = 0; i < FilePages; i++)
                {
                    Cell c = Cell.Filled((byte)(0x80 + (f * FilePages) + i));
                    _modelFiles[f][i] = c;
                    _files[f].Write((ulong)i * PageGeometry.PageSize, c.Data);
                }
            }

            _procs.Add(new Process(new AddressSpace(memory)));
            try
            {
                for (_step = 0; _step < ops.Length; _step++)
                {
                    Op op = ops[_step];
                    Process proc = _procs[_current];
                    var expect = new Expectation();
                    proc.Notifier?.Calls.Clear();
                    List<string> messages = Apply(proc, op, expect);
                    CheckMessages(op, expect, messages);
                    if (_procs.Contains(proc))
                    {
                        CheckInvalidations(proc, op, expect);
                    }

                    foreach (Process p in _procs)
                    {
                        Compare(p, op);
                    }

                    coverage.Steps++;
                }
            }
            finally
            {
                foreach (Process p in _procs)
                {
                    p.Uffd?.Dispose();
                    p.Mm.Dispose();
                }

                foreach (MemFile f in _files)
                {
                    f.Dispose();
                }
            }

            Assert.True(memory.FramesInUse == 0, $"{memory.FramesInUse} frames leaked after every process and file was released");
        }

        private static ulong Addr(int page) => Base + ((ulong)page * PageGeometry.PageSize);

        private static ulong Bytes(int pages) => (ulong)pages * PageGeometry.PageSize;

        private static string P(int page) => $"p{page}";

        private string At(Op op) => $"step {_step} {op}";

        /// <summary>The bytes the monitor copies into a page it is asked for: a function of the step and the page.</summary>
        private byte FillFor(int page) => (byte)(0x40 + (_step * 7) + page);

        private List<string> Apply(Process proc, Op op, Expectation expect)
        {
            AddressSpace mm = proc.Mm;
            int start = op.Start;
            int len = op.Len;
            int end = start + len;
            Prot prot = s_prots[op.P % s_prots.Length];
            List<string> messages = [];
            switch (op.Kind)
            {
                case OpKind.MapAnon:
                case OpKind.MapShared:
                case OpKind.MapFile:
                {
                    bool file = op.Kind == OpKind.MapFile;
                    bool shared = op.Kind == OpKind.MapShared || (file && (op.D & 1) != 0);
                    bool populate = op.Kind == OpKind.MapAnon && (op.D & 1) != 0;
                    int f = (op.D >> 1) & 1;
                    int offset = (op.D >> 2) % FilePages;
                    ExpectUnmap(proc, start, end, expect);
                    MapFlags flags = MapFlags.Fixed | (shared ? MapFlags.Shared : MapFlags.Private) | (file ? MapFlags.None : MapFlags.Anonymous)
                        | (populate ? MapFlags.Populate : MapFlags.None);
                    KResult r = Serviced(proc, messages, () => mm.Mmap(Addr(start), Bytes(len), prot, flags, file ? _files[f] : null, file ? Bytes(offset) : 0, out _));
                    Assert.True(r.IsOk, $"{At(op)}: mmap: {r}");
                    Cell[]? shm = op.Kind == OpKind.MapShared ? Enumerable.Range(0, len).Select(_ => new Cell()).ToArray() : null;
                    for (int i = 0; i < len; i++)
                    {
                        var page = new ModelPage
                        {
                            Prot = prot,
                            Kind = file ? (shared ? PageKind.SharedFile : PageKind.PrivateFile) : shared ? PageKind.SharedAnon : PageKind.PrivateAnon,
                            SharedCell = shm?[i],
                            File = file ? _modelFiles[f] : null,
                            FileIndex = offset + i,
                            Presence = Presence.No,
                        };
                        if (populate && prot != Prot.None)
                        {
                            // mm_populate: a write fault where the private mapping is writable, else a read fault (the zero page).
                            page.Presence = Presence.Yes;
                            if ((prot & Prot.Write) != 0)
                            {
                                page.Own = new Cell();
                            }
                            else
                            {
                                page.Cow = true;
                            }
                        }

                        proc.Pages[start + i] = page;
                    }

                    break;
                }

                case OpKind.Unmap:
                {
                    ExpectUnmap(proc, start, end, expect);
                    KResult r = Serviced(proc, messages, () => mm.Munmap(Addr(start), Bytes(len)));
                    Assert.True(r.IsOk, $"{At(op)}: munmap: {r}");
                    Array.Fill(proc.Pages, null, start, len);
                    break;
                }

                case OpKind.Protect:
                {
                    // Linux changes the mapped pages from the start up to the first hole, then says -ENOMEM. Pages with an
                    // entry whose protection changes are invalidated (change_pmd_range notifies populated tables only).
                    int mapped = 0;
                    while (mapped < len && proc.Pages[start + mapped] is not null)
                    {
                        mapped++;
                    }

                    expect.Allow(start, end);
                    for (int i = start; i < start + mapped; i++)
                    {
                        ModelPage p = proc.Pages[i]!;
                        if (p.Presence == Presence.Yes && p.Prot != prot)
                        {
                            expect.Required.Add((i, NotifierEvent.ProtectionVma));
                        }
                    }

                    KResult r = Serviced(proc, messages, () => mm.Mprotect(Addr(start), Bytes(len), prot));
                    Assert.True(r.Code == (mapped < len ? -Errno.ENOMEM : 0), $"{At(op)}: mprotect expected {(mapped < len ? "-ENOMEM" : "0")}, got {r}");
                    for (int i = start; i < start + mapped; i++)
                    {
                        proc.Pages[i]!.Prot = prot;
                    }

                    break;
                }

                case OpKind.DontNeed:
                {
                    // Applied to every mapped page (CLEAR over each VMA's part, REMOVE to userfaultfd for registered ones); a hole is -ENOMEM.
                    expect.Allow(start, end);
                    bool hole = false;
                    int run = -1;
                    for (int i = start; i <= end; i++)
                    {
                        ModelPage? p = i < end ? proc.Pages[i] : null;
                        hole |= i < end && p is null;
                        if (p is { Registered: true } && run < 0)
                        {
                            run = i;
                        }
                        else if (p is not { Registered: true } && run >= 0)
                        {
                            expect.Messages.Add($"REMOVE [{P(run)}, {P(i)})");
                            run = -1;
                        }

                        if (p is not null)
                        {
                            expect.Required.Add((i, NotifierEvent.Clear));
                        }
                    }

                    KResult r = Serviced(proc, messages, () => mm.Madvise(Addr(start), Bytes(len), Advice.DontNeed));
                    Assert.True(r.Code == (hole ? -Errno.ENOMEM : 0), $"{At(op)}: DONTNEED got {r}");
                    for (int i = start; i < end; i++)
                    {
                        if (proc.Pages[i] is { } p)
                        {
                            if (!p.Shared)
                            {
                                p.Own = null;
                            }

                            p.Presence = Presence.No;
                            p.Cow = false;
                        }
                    }

                    break;
                }

                case OpKind.Populate:
                {
                    // The populate advices fault pages in from the start and stop at the first page they cannot:
                    // a hole (-ENOMEM), a protection that forbids the access (-EINVAL), beyond the file's end (-EFAULT).
                    bool write = (op.P & 1) != 0;
                    expect.Allow(start, end);
                    int expected = 0;
                    for (int i = start; i < end && expected == 0; i++)
                    {
                        ModelPage? p = proc.Pages[i];
                        expected = p is null ? -Errno.ENOMEM
                            : (p.Prot & (write ? Prot.Write : Prot.Read)) == 0 ? -Errno.EINVAL
                            : p.BeyondEof ? -Errno.EFAULT
                            : 0;
                        if (expected == 0)
                        {
                            Touch(proc, i, write, expect);
                        }
                    }

                    KResult r = Serviced(proc, messages, () => mm.Madvise(Addr(start), Bytes(len), write ? Advice.PopulateWrite : Advice.PopulateRead));
                    Assert.True(expected == r.Code, $"{At(op)}: populate expected {Errno.Name(expected)}, got {r}");
                    break;
                }

                case OpKind.Write:
                    CpuWrite(proc, op, expect, messages);
                    break;

                case OpKind.Read:
                    CpuRead(proc, op, expect, messages);
                    break;

                case OpKind.Fork:
                    if (_procs.Count < 3)
                    {
                        // copy_page_range write-protects the private pages of every VMA that has an anon_vma (PROTECTION_PAGE).
                        expect.AllowAnywhere = true;
                        for (int i = 0; i < WindowPages; i++)
                        {
                            if (proc.Pages[i] is { Shared: false, Own: not null })
                            {
                                expect.Required.Add((i, NotifierEvent.ProtectionPage));
                            }
                        }

                        AddressSpace child = mm.Fork();
                        _procs.Add(new Process(child) { Pages = proc.Pages.Select(p => p?.ForkCopy()).ToArray() });
                    }

                    break;

                case OpKind.Switch:
                    if ((op.D & 1) != 0 && _procs.Count > 1)
                    {
                        expect.AllowAnywhere = true; // RELEASE
                        proc.Uffd?.Dispose();
                        proc.Mm.Dispose();
                        _procs.RemoveAt(_current);
                    }

                    _current = (_current + 1) % _procs.Count;
                    break;

                case OpKind.Remap:
                    Mremap(proc, op, expect, messages);
                    break;

                case OpKind.HugeAdvice:
                {
                    expect.Allow(start, end);
                    bool huge = (op.D & 1) != 0;
                    bool hole = proc.Pages.AsSpan(start, len).Contains(null);
                    KResult r = Serviced(proc, messages, () => mm.Madvise(Addr(start), Bytes(len), huge ? Advice.HugePage : Advice.NoHugePage));
                    Assert.True(r.Code == (hole ? -Errno.ENOMEM : 0), $"{At(op)}: {(huge ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE")} got {r}");
                    foreach (ModelPage? p in proc.Pages.AsSpan(start, len))
                    {
                        if (p is not null)
                        {
                            p.Huge = huge;
                        }
                    }

                    break;
                }

                case OpKind.PageOut:
                {
                    // The bytes stay. Anonymous pages stay present (swap entries hold them); page-cache pages mapped here alone
                    // are unmapped; which pages are shared with a fork child the model does not follow.
                    expect.Allow(start, end);
                    bool hole = proc.Pages.AsSpan(start, len).Contains(null);
                    KResult r = Serviced(proc, messages, () => mm.Madvise(Addr(start), Bytes(len), Advice.PageOut));
                    Assert.True(r.Code == (hole ? -Errno.ENOMEM : 0), $"{At(op)}: MADV_PAGEOUT got {r}");
                    foreach (ModelPage? p in proc.Pages.AsSpan(start, len))
                    {
                        if (p is not null && p.Kind != PageKind.PrivateAnon && p.Own is null)
                        {
                            p.Presence = Presence.Unknown;
                            p.Cow = false;
                        }
                    }

                    break;
                }

                case OpKind.Register:
                    Register(proc, op, expect, messages);
                    break;

                case OpKind.Unregister:
                {
                    if (proc.Uffd is null || !AllPrivateAnon(proc, start, end, knownPresence: false))
                    {
                        break;
                    }

                    expect.Allow(start, end);
                    KResult r = Serviced(proc, messages, () => proc.Uffd.Unregister(Addr(start), Bytes(len)));
                    Assert.True(r.IsOk, $"{At(op)}: UFFDIO_UNREGISTER: {r}");
                    foreach (ModelPage? p in proc.Pages.AsSpan(start, len))
                    {
                        p!.Registered = false;
                    }

                    break;
                }

                case OpKind.Subscribe:
                {
                    if (proc.Notifier?.Subscription is { } old)
                    {
                        Assert.True(mm.Notifiers.Remove(old).IsOk, $"{At(op)}: removing the subscription");
                    }

                    var rec = new Recorder { Start = start, End = end };
                    rec.Subscription = new MmuIntervalNotifier(rec);
                    Assert.True(mm.Notifiers.Insert(rec.Subscription, Addr(start), Bytes(len)).IsOk, $"{At(op)}: inserting the subscription");
                    proc.Notifier = rec;
                    break;
                }
            }

            return messages;
        }

        /// <summary>A munmap (or what MAP_FIXED and mremap's destination replace) of [start, end): UNMAP to userfaultfd if a
        /// registered page is there, UNMAP invalidations over every mapped page.</summary>
        private static void ExpectUnmap(Process proc, int start, int end, Expectation expect)
        {
            expect.Allow(start, end);
            bool registered = false;
            for (int i = start; i < end; i++)
            {
                if (proc.Pages[i] is { } p)
                {
                    registered |= p.Registered;
                    expect.Required.Add((i, NotifierEvent.Unmap));
                }
            }

            if (registered)
            {
                expect.Messages.Add($"UNMAP [{P(start)}, {P(end)})");
            }
        }

        /// <summary>A successful fault at page <paramref name="i"/> (a CPU access or populate): a registered page with no entry
        /// asks the monitor first (its copy arrives), a write to a page known to be shared read-only copies it (CLEAR), and a
        /// first fault in a huge-page span may map the whole span (its neighbours' presence is then unknown).</summary>
        private void Touch(Process proc, int i, bool write, Expectation expect)
        {
            ModelPage p = proc.Pages[i]!;
            if (p.Registered && p.Presence == Presence.No)
            {
                expect.Messages.Add($"PAGEFAULT {P(i)}{(write ? " w" : string.Empty)}");
                p.Own = Cell.Filled(FillFor(i));
                p.Presence = Presence.Yes;
                p.Cow = false;
            }

            if (p.Presence != Presence.Yes && MayBeHuge(proc, i))
            {
                int span = i / SpanPages * SpanPages;
                for (int k = span; k < span + SpanPages; k++)
                {
                    if (k != i && proc.Pages[k] is { Presence: Presence.No } q)
                    {
                        q.Presence = Presence.Unknown;
                    }
                }
            }

            if (write)
            {
                if (p.Cow && !p.Shared)
                {
                    expect.Required.Add((i, NotifierEvent.Clear));
                }

                p.WriteTarget();
            }
            else if (p.Presence == Presence.No)
            {
                p.Cow = !p.Shared && !p.Huge && p.Own is null;
            }

            p.Presence = Presence.Yes;
        }

        /// <summary>True if a fault at page <paramref name="i"/> may map its whole 2 MiB span (a huge page or the huge zero page):
        /// every page of the span is private anonymous memory with MADV_HUGEPAGE, not registered, and of one protection (so
        /// possibly one VMA that covers the span).</summary>
        private static bool MayBeHuge(Process proc, int i)
        {
            ModelPage p = proc.Pages[i]!;
            int span = i / SpanPages * SpanPages;
            for (int k = span; k < span + SpanPages; k++)
            {
                if (proc.Pages[k] is not { Kind: PageKind.PrivateAnon, Huge: true, Registered: false } q || q.Prot != p.Prot)
                {
                    return false;
                }
            }

            return true;
        }

        private void CpuWrite(Process proc, Op op, Expectation expect, List<string> messages)
        {
            int page = op.Start;
            int offset = op.D * 13;
            int length = Math.Min((op.P * 900) + 1, (WindowPages * PageSize) - (page * PageSize) - offset);
            if (length <= 0)
            {
                return;
            }

            byte value = (byte)(op.D ^ (_step * 31) ^ 0x5A);
            var data = new byte[length];
            Array.Fill(data, value);
            ulong va = Addr(page) + (ulong)offset;
            Signal? expected = null;
            int done = 0;
            expect.Allow(page, page + 1 + ((offset + length) / PageSize));
            while (done < length)
            {
                ulong at = va + (ulong)done;
                int pg = (int)((at - Base) >> PageGeometry.PageShift);
                int inPage = (int)(at & PageGeometry.PageMask);
                int n = Math.Min(length - done, PageSize - inPage);
                ModelPage? p = proc.Pages[pg];
                if (p is null || (p.Prot & Prot.Write) == 0)
                {
                    expected = Signal.SIGSEGV;
                    break;
                }

                if (p.BeyondEof)
                {
                    expected = Signal.SIGBUS;
                    break;
                }

                Touch(proc, pg, write: true, expect);
                Array.Fill(p.WriteTarget().Data, value, inPage, n);
                done += n;
            }

            MemoryFaultException? e = Serviced(proc, messages, () => Record.Exception(() => proc.Mm.CpuWrite(va, data)) as MemoryFaultException);
            Assert.True(expected == e?.Signal, $"{At(op)}: CpuWrite at 0x{va:X} expected {expected?.ToString() ?? "success"}, got {e?.Message ?? "success"}");
        }

        private void CpuRead(Process proc, Op op, Expectation expect, List<string> messages)
        {
            int page = op.Start;
            int pages = Math.Min(op.Len, 4);
            int length = pages * PageSize;
            ulong va = Addr(page);
            var expectedBytes = new byte[length];
            Signal? expected = null;
            expect.Allow(page, page + pages);
            for (int i = 0; i < pages; i++)
            {
                ModelPage? p = proc.Pages[page + i];
                if (p is null || p.Prot == Prot.None)
                {
                    expected = Signal.SIGSEGV;
                    break;
                }

                if (p.BeyondEof)
                {
                    expected = Signal.SIGBUS;
                    break;
                }

                Touch(proc, page + i, write: false, expect);
                p.Read()?.CopyTo(expectedBytes, i * PageSize);
            }

            var actual = new byte[length];
            MemoryFaultException? e = Serviced(proc, messages, () => Record.Exception(() => proc.Mm.CpuRead(va, actual)) as MemoryFaultException);
            Assert.True(expected == e?.Signal, $"{At(op)}: CpuRead at 0x{va:X} expected {expected?.ToString() ?? "success"}, got {e?.Message ?? "success"}");
            if (expected is null)
            {
                Assert.True(expectedBytes.AsSpan().SequenceEqual(actual), $"{At(op)}: bytes read at 0x{va:X} differ from the model");
            }
        }

        private void Mremap(Process proc, Op op, Expectation expect, List<string> messages)
        {
            // The argument is chosen within the VMA the address space has there (a move may not cross a VMA's end); what
            // happens then is the model's.
            int oldStart = op.Start;
            Vma? vma = proc.Mm.SnapshotVmas().FirstOrDefault(v => v.Start <= Addr(oldStart) && Addr(oldStart) < v.End);
            if (vma is null || !vma.IsAnonymous || vma.IsShared)
            {
                return;
            }

            int vmaEndPage = (int)Math.Min((vma.End - Base) >> PageGeometry.PageShift, WindowPages);
            int oldLen = Math.Min(op.Len, vmaEndPage - oldStart);
            int newLen = op.P + 1;
            int dest = op.D * WindowPages / 256;
            if (dest + newLen > WindowPages || (dest < oldStart + oldLen && oldStart < dest + newLen) || !AllPrivateAnon(proc, oldStart, oldStart + oldLen, knownPresence: false))
            {
                return;
            }

            int moved = Math.Min(oldLen, newLen);
            ModelPage first = proc.Pages[oldStart]!;
            ExpectUnmap(proc, dest, dest + newLen, expect); // MREMAP_FIXED unmaps the destination first (uf_unmap_early)
            expect.Allow(oldStart, oldStart + oldLen);
            for (int i = oldStart; i < oldStart + oldLen; i++)
            {
                expect.Required.Add((i, NotifierEvent.Unmap));
            }

            if (first.Registered)
            {
                // mremap_userfaultfd_complete, then the uf_unmap list: the shrunk tail, then the source.
                expect.Messages.Add($"REMAP {P(oldStart)}→{P(dest)} {moved} pages");
                if (oldLen > newLen)
                {
                    expect.Messages.Add($"UNMAP [{P(oldStart + newLen)}, {P(oldStart + oldLen)})");
                }

                expect.Messages.Add($"UNMAP [{P(oldStart)}, {P(oldStart + moved)})");
            }

            KResult r = Serviced(proc, messages, () => proc.Mm.Mremap(Addr(oldStart), Bytes(oldLen), Bytes(newLen), MremapFlags.MayMove | MremapFlags.Fixed, Addr(dest), out _));
            Assert.True(r.IsOk, $"{At(op)}: mremap {r}");
            ModelPage?[] old = proc.Pages[oldStart..(oldStart + oldLen)];
            Array.Fill(proc.Pages, null, oldStart, oldLen);
            for (int i = 0; i < newLen; i++)
            {
                proc.Pages[dest + i] = i < oldLen ? old[i]
                    : new ModelPage { Prot = first.Prot, Kind = PageKind.PrivateAnon, Huge = first.Huge, Registered = first.Registered, Presence = Presence.No };
            }
        }

        private void Register(Process proc, Op op, Expectation expect, List<string> messages)
        {
            int start = op.Start;
            int end = start + op.Len;
            if (!AllPrivateAnon(proc, start, end, knownPresence: true))
            {
                return;
            }

            if (proc.Uffd is null)
            {
                proc.Uffd = new Userfaultfd(proc.Mm);
                Assert.True(proc.Uffd.Api(UffdApi.Version, UffdFeatures.EventUnmap | UffdFeatures.EventRemove | UffdFeatures.EventRemap, out _).IsOk, $"{At(op)}: UFFDIO_API");
            }

            expect.Allow(start, end);
            KResult r = Serviced(proc, messages, () => proc.Uffd.Register(Addr(start), Bytes(op.Len), UffdRegisterMode.Missing, out _));
            Assert.True(r.IsOk, $"{At(op)}: UFFDIO_REGISTER: {r}");
            foreach (ModelPage? p in proc.Pages.AsSpan(start, op.Len))
            {
                p!.Registered = true;
            }
        }

        /// <summary>True if every page of [start, end) is private anonymous memory (and, if asked, its presence is known).</summary>
        private static bool AllPrivateAnon(Process proc, int start, int end, bool knownPresence)
        {
            for (int i = start; i < end; i++)
            {
                if (proc.Pages[i] is not { Kind: PageKind.PrivateAnon } p || (knownPresence && p.Presence == Presence.Unknown))
                {
                    return false;
                }
            }

            return end > start;
        }

        /// <summary>Runs <paramref name="call"/>; while the process has a userfaultfd context, on a worker thread, with this
        /// thread as the monitor: every PAGEFAULT is answered with a UFFDIO_COPY of the page the model expects, and every
        /// message is kept (REMOVEs that touch are merged) in <paramref name="messages"/>.</summary>
        private T Serviced<T>(Process proc, List<string> messages, Func<T> call)
        {
            Userfaultfd? ctx = proc.Uffd;
            if (ctx is null)
            {
                return call();
            }

            Task<T> task = Task.Run(call);
            var batch = new UffdMsg[8];
            while (true)
            {
                bool finished = task.IsCompleted;
                KResult read = ctx.Read(batch, out int n, timeoutMs: 0);
                Assert.True(read.IsOk || read.Code == -Errno.EAGAIN, $"step {_step}: reading userfaultfd messages: {read}");
                for (int k = 0; k < n; k++)
                {
                    Take(ctx, batch[k], messages);
                }

                if (finished && n == 0)
                {
                    return task.GetAwaiter().GetResult();
                }

                if (n == 0)
                {
                    task.Wait(1); // a fault's message comes within microseconds; the operation's end wakes this at once
                }
            }
        }

        private void Take(Userfaultfd ctx, UffdMsg m, List<string> messages)
        {
            int page = (int)((m.Address - Base) >> PageGeometry.PageShift);
            int arg = (int)((m.Arg - Base) >> PageGeometry.PageShift);
            switch (m.Event)
            {
                case UffdEventType.Pagefault:
                {
                    coverage.UffdFaults++;
                    messages.Add($"PAGEFAULT {P(page)}{((m.Flags & UffdPagefaultFlags.Write) != 0 ? " w" : string.Empty)}");
                    KResult r = ctx.Copy(PageGeometry.PageDown(m.Address), Cell.Filled(FillFor(page)).Data, UffdCopyMode.None, out _);
                    if (r.Code == -Errno.EEXIST)
                    {
                        ctx.Wake(PageGeometry.PageDown(m.Address), PageGeometry.PageSize); // someone filled it meanwhile: the fault retries
                    }
                    else
                    {
                        Assert.True(r.IsOk, $"step {_step}: UFFDIO_COPY to {P(page)}: {r}");
                    }
                    break;
                }

                case UffdEventType.Remove:
                    coverage.UffdEvents++;
                    if (messages.Count > 0 && messages[^1].StartsWith($"REMOVE [", StringComparison.Ordinal) && messages[^1].EndsWith($", {P(page)})", StringComparison.Ordinal))
                    {
                        messages[^1] = messages[^1][..messages[^1].LastIndexOf(',')] + $", {P(arg)})";
                    }
                    else
                    {
                        messages.Add($"REMOVE [{P(page)}, {P(arg)})");
                    }

                    break;
                case UffdEventType.Unmap:
                    coverage.UffdEvents++;
                    messages.Add($"UNMAP [{P(page)}, {P(arg)})");
                    break;
                case UffdEventType.Remap:
                    coverage.UffdEvents++;
                    messages.Add($"REMAP {P(page)}→{P(arg)} {m.Length >> PageGeometry.PageShift} pages");
                    break;
                default:
                    messages.Add(m.Event.ToString());
                    break;
            }
        }

        private void CheckMessages(Op op, Expectation expect, List<string> messages) =>
            Assert.True(expect.Messages.SequenceEqual(messages),
                $"{At(op)}: userfaultfd messages: model [{string.Join(", ", expect.Messages)}], address space [{string.Join(", ", messages)}]");

        /// <summary>Every page the model says must be invalidated (inside the subscription) was, with that event; every
        /// invalidation lies where the operation may reach (widened to whole 2 MiB spans, for huge-page splits).</summary>
        private void CheckInvalidations(Process proc, Op op, Expectation expect)
        {
            if (proc.Notifier is not { } rec)
            {
                return;
            }

            foreach ((int page, NotifierEvent ev) in expect.Required)
            {
                if (page < rec.Start || page >= rec.End)
                {
                    continue;
                }

                coverage.RequiredInvalidations++;
                coverage.RequiredCopies += op.Kind is OpKind.Write or OpKind.Populate ? 1 : 0;

                ulong va = Addr(page);
                Assert.True(rec.Calls.Any(c => c.Event == ev && c.Start <= va && va + PageGeometry.PageSize <= c.End),
                    $"{At(op)}: the subscription [{P(rec.Start)}, {P(rec.End)}) got no {ev} over {P(page)}; it got [{string.Join(", ", rec.Calls)}]");
            }

            if (expect.AllowAnywhere)
            {
                return;
            }

            foreach (NotifierRange c in rec.Calls)
            {
                bool allowed = expect.Allowed.Any(a =>
                    Addr(a.Start / SpanPages * SpanPages) <= c.Start && c.End <= Addr(Math.Min(WindowPages, (a.End + SpanPages - 1) / SpanPages * SpanPages)));
                Assert.True(allowed, $"{At(op)}: invalidation {c} lies outside what the operation may reach");
            }
        }

        private void Compare(Process proc, Op op)
        {
            IReadOnlyList<Vma> vmas = proc.Mm.SnapshotVmas();
            for (int i = 1; i < vmas.Count; i++)
            {
                Assert.True(vmas[i - 1].End <= vmas[i].Start, $"{At(op)}: VMAs overlap or are out of order");
            }

            Span<byte> actual = stackalloc byte[PageSize];
            int v = 0;
            for (int pg = 0; pg < WindowPages; pg++)
            {
                ulong va = Addr(pg);
                while (v < vmas.Count && vmas[v].End <= va)
                {
                    v++;
                }

                Vma? vma = v < vmas.Count && vmas[v].Start <= va ? vmas[v] : null;
                ModelPage? m = proc.Pages[pg];
                Assert.True((vma is null) == (m is null), $"{At(op)}: {P(pg)} mapped={vma is not null}, the model says {m is not null}");
                if (m is null)
                {
                    continue;
                }

                Assert.True(vma!.Prot == m.Prot && vma.IsShared == m.Shared, $"{At(op)}: {P(pg)} is {vma}, the model says {m.Prot} shared={m.Shared}");
                Assert.True(((vma.Flags & VmFlags.HugePage) != 0) == m.Huge, $"{At(op)}: {P(pg)} is {vma}, the model says VM_HUGEPAGE={m.Huge}");
                Assert.True(((vma.Flags & VmFlags.UffdMissing) != 0) == m.Registered, $"{At(op)}: {P(pg)} is {vma}, the model says registered={m.Registered}");
                if (pg % SpanPages == 0 && proc.Mm.PageTable.FindHuge(va) is { IsNone: false } huge)
                {
                    _ = huge.IsSpecial ? coverage.HugeZeroPages++ : coverage.HugePages++;
                }

                coverage.SwapEntries += proc.Mm.PageTable.Read(va).Swap == SwapType.Swap ? 1 : 0;
                PeekKind kind = proc.Mm.TestPeek(va, actual);
                if (m.BeyondEof)
                {
                    Assert.True(kind == PeekKind.BeyondEof, $"{At(op)}: {P(pg)} is {kind}, the model says beyond the end of the file");
                    continue;
                }

                Assert.True(kind is PeekKind.Frame or PeekKind.NotPresent, $"{At(op)}: {P(pg)} is {kind}");
                if (m.Kind == PageKind.PrivateAnon && m.Presence != Presence.Unknown)
                {
                    Assert.True((kind == PeekKind.Frame) == (m.Presence == Presence.Yes), $"{At(op)}: {P(pg)} is {kind}, the model says present={m.Presence}");
                }

                byte[]? expected = m.Read();
                bool same = expected is null ? actual.IndexOfAnyExcept((byte)0) < 0 : actual.SequenceEqual(expected);
                Assert.True(same, $"{At(op)}: {P(pg)} bytes differ from the model ({kind})");
            }
        }
    }
}
