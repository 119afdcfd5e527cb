using CsCheck;
using MirrorEmu.Mm;

namespace MirrorEmu.Tests.Mm;

/// <summary>
/// Model-based random testing: random sequences of mmap (private/shared, anonymous/file), munmap,
/// mprotect, madvise (DONTNEED, POPULATE_*), mremap, fork, exit, CpuWrite and CpuRead against a small
/// reference model of bytes and protection per page, compared after every step. The model follows
/// Linux over holes: mprotect changes the mapped prefix, madvise the mapped parts, populate stops at
/// the first page it cannot fault (the differential test checks the same against the host kernel). CsCheck prints the
/// seed of a failing sequence (set CsCheck_Seed to replay it) and shrinks it.
/// </summary>
public class AddressSpaceModelTests
{
    private const int WindowPages = 32;
    private const ulong Base = 0x1000_0000;
    private const int FilePages = 16;
    private const int PageSize = PageGeometry.PageSizeInt;
    private static readonly Prot[] s_prots = [Prot.None, Prot.Read, Prot.ReadWrite, Prot.Read | Prot.Exec];

    /// <summary>One random operation; its fields are interpreted per kind (so that CsCheck can shrink them as numbers).</summary>
    public readonly record struct Op(int Kind, int A, int B, int C, int D);

    private static readonly Gen<Op> s_genOp = Gen.Select(Gen.Int[0, 12], Gen.Int[0, WindowPages - 1], Gen.Int[1, 10], Gen.Int[0, 7], Gen.Int[0, 255])
        .Select(t => new Op(t.Item1, t.Item2, t.Item3, t.Item4, t.Item5));

    [Fact]
    public void TwoThousandRandomSequencesMatchTheReferenceModel()
    {
        s_genOp.Array[1, 24].Sample(ops => new ModelRun().Run(ops), iter: 2000, print: ops => string.Join(", ", ops));
    }

    private sealed class Cell
    {
        public byte[] Data = new byte[PageSize];

        public Cell Clone() => new() { Data = (byte[])Data.Clone() };
    }

    private enum PageKind
    {
        PrivateAnon,
        SharedAnon,
        PrivateFile,
        SharedFile,
    }

    private sealed class ModelPage
    {
        public Prot Prot;
        public PageKind Kind;
        public Cell? Own;         // private copy (PrivateAnon, or PrivateFile after its first write)
        public Cell? SharedCell;  // SharedAnon
        public Cell[]? File;      // PrivateFile, SharedFile
        public int FileIndex;

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
        };

        public byte[] Read() => Kind switch
        {
            PageKind.PrivateAnon => Own?.Data ?? new byte[PageSize],
            PageKind.SharedAnon => SharedCell!.Data,
            PageKind.PrivateFile => Own?.Data ?? File![FileIndex].Data,
            _ => File![FileIndex].Data,
        };

        /// <summary>The cell a write goes to (breaking COW for private file pages).</summary>
        public Cell WriteTarget()
        {
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

    private sealed class Process(AddressSpace mm)
    {
        public AddressSpace Mm { get; } = mm;

        public ModelPage?[] Pages { get; init; } = new ModelPage?[WindowPages];
    }

    private sealed class ModelRun
    {
        private readonly List<Process> _procs = [];
        private readonly Cell[][] _modelFiles = new Cell[2][];
        private readonly MemFile[] _files = new MemFile[2];
        private int _current;

        public void Run(Op[] ops)
        {
            using var memory = new PhysicalMemory(4096 * PageGeometry.PageSize);
            for (int f = 0; f < 2; f++)
            {
                _files[f] = new MemFile(memory, (ulong)FilePages * PageGeometry.PageSize, $"file{f}");
                _modelFiles[f] = new Cell[FilePages];
                for (int i = 0; i < FilePages; i++)
                {
                    var c = new Cell();
                    Array.Fill(c.Data, (byte)(0x80 + (f * FilePages) + i));
                    _modelFiles[f][i] = c;
                    _files[f].Write((ulong)i * PageGeometry.PageSize, c.Data);
                }
            }

            _procs.Add(new Process(new AddressSpace(memory)));
            try
            {
                for (int step = 0; step < ops.Length; step++)
                {
                    Apply(ops[step], step);
                    foreach (Process p in _procs)
                    {
                        Compare(p, step, ops[step]);
                    }
                }
            }
            finally
            {
                foreach (Process p in _procs)
                {
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

        private void Apply(Op op, int step)
        {
            Process proc = _procs[_current];
            AddressSpace mm = proc.Mm;
            int start = op.A;
            int len = Math.Min(op.B, WindowPages - start);
            Prot prot = s_prots[op.C % s_prots.Length];
            switch (op.Kind)
            {
                case 0: // private anonymous, maybe MAP_POPULATE
                case 1: // shared anonymous
                {
                    bool shared = op.Kind == 1;
                    MapFlags flags = MapFlags.Fixed | (shared ? MapFlags.Shared : MapFlags.Private) | ((op.D & 1) != 0 ? MapFlags.Populate : MapFlags.None);
                    KResult r = mm.Mmap(Addr(start), Pages(len), prot, flags | MapFlags.Anonymous, null, 0, out ulong addr);
                    Assert.True(r.IsOk && addr == Addr(start), $"step {step}: {r}");
                    Cell[]? shm = shared ? Enumerable.Range(0, len).Select(_ => new Cell()).ToArray() : null;
                    for (int i = 0; i < len; i++)
                    {
                        proc.Pages[start + i] = new ModelPage { Prot = prot, Kind = shared ? PageKind.SharedAnon : PageKind.PrivateAnon, SharedCell = shm?[i] };
                    }

                    break;
                }

                case 2: // file
                {
                    bool shared = (op.D & 1) != 0;
                    int f = (op.D >> 1) & 1;
                    int offset = (op.D >> 2) % FilePages;
                    KResult r = mm.Mmap(Addr(start), Pages(len), prot, MapFlags.Fixed | (shared ? MapFlags.Shared : MapFlags.Private), _files[f], (ulong)offset * PageGeometry.PageSize, out _);
                    Assert.True(r.IsOk, $"step {step}: {r}");
                    for (int i = 0; i < len; i++)
                    {
                        proc.Pages[start + i] = new ModelPage { Prot = prot, Kind = shared ? PageKind.SharedFile : PageKind.PrivateFile, File = _modelFiles[f], FileIndex = offset + i };
                    }

                    break;
                }

                case 3:
                    Assert.True(mm.Munmap(Addr(start), Pages(len)).IsOk);
                    Array.Fill(proc.Pages, null, start, len);
                    break;

                case 4:
                {
                    // Linux changes the mapped pages from the start up to the first hole, then says -ENOMEM.
                    KResult r = mm.Mprotect(Addr(start), Pages(len), prot);
                    int mapped = MappedPrefix(proc, start, len);
                    Assert.True(r.Code == (mapped < len ? -Errno.ENOMEM : 0), $"step {step}: mprotect expected {(mapped < len ? "-ENOMEM" : "0")} got {r}");
                    for (int i = start; i < start + mapped; i++)
                    {
                        proc.Pages[i]!.Prot = prot;
                    }

                    break;
                }

                case 5:
                {
                    // MADV_DONTNEED applies to every mapped page and says -ENOMEM if there was a hole.
                    KResult r = mm.Madvise(Addr(start), Pages(len), Advice.DontNeed);
                    Assert.True(r.Code == (AnyUnmapped(proc, start, len) ? -Errno.ENOMEM : 0), $"step {step}: DONTNEED got {r}");
                    for (int i = start; i < start + len; i++)
                    {
                        if (proc.Pages[i] is { Shared: false } p)
                        {
                            p.Own = null;
                        }
                    }

                    break;
                }

                case 6:
                {
                    // The populate advices fault pages in from the start and stop at the first page they cannot:
                    // a hole (-ENOMEM), a protection that forbids the access (-EINVAL), beyond the file's end (-EFAULT).
                    bool write = (op.C & 1) != 0;
                    KResult r = mm.Madvise(Addr(start), Pages(len), write ? Advice.PopulateWrite : Advice.PopulateRead);
                    int expected = 0;
                    for (int i = start; i < start + len && expected == 0; i++)
                    {
                        ModelPage? p = proc.Pages[i];
                        if (p is null)
                        {
                            expected = -Errno.ENOMEM;
                        }
                        else if ((p.Prot & (write ? Prot.Write : Prot.Read)) == 0)
                        {
                            expected = -Errno.EINVAL;
                        }
                        else if (p.BeyondEof)
                        {
                            expected = -Errno.EFAULT;
                        }
                        else if (write)
                        {
                            p.WriteTarget(); // a write populate breaks COW of a private file page
                        }
                    }

                    Assert.True(expected == r.Code, $"step {step}: populate expected {Errno.Name(expected)} got {r}");
                    break;
                }

                case 7:
                    CpuWrite(proc, start, op, step);
                    break;

                case 8:
                    CpuRead(proc, start, op.B * 700, step);
                    break;

                case 9:
                    if (_procs.Count < 3)
                    {
                        AddressSpace child = mm.Fork();
                        _procs.Add(new Process(child) { Pages = proc.Pages.Select(p => p?.ForkCopy()).ToArray() });
                    }

                    break;

                case 10:
                    if ((op.D & 1) != 0 && _procs.Count > 1)
                    {
                        proc.Mm.Dispose();
                        _procs.RemoveAt(_current);
                    }

                    _current = (_current + 1) % _procs.Count;
                    break;

                case 11:
                    Mremap(proc, op, step);
                    break;

                case 12:
                {
                    // Applied to the mapped parts; a hole is -ENOMEM at the end.
                    KResult r = mm.Madvise(Addr(start), Pages(len), (op.D & 1) != 0 ? Advice.HugePage : Advice.NoHugePage);
                    Assert.Equal(AnyUnmapped(proc, start, len) ? -Errno.ENOMEM : 0, r.Code);
                    break;
                }
            }
        }

        private static ulong Pages(int n) => (ulong)n * PageGeometry.PageSize;

        private static int MappedPrefix(Process p, int start, int len)
        {
            int n = 0;
            while (n < len && p.Pages[start + n] is not null)
            {
                n++;
            }

            return n;
        }

        private static bool AnyUnmapped(Process p, int start, int len)
        {
            for (int i = start; i < start + len; i++)
            {
                if (p.Pages[i] is null)
                {
                    return true;
                }
            }

            return false;
        }

        private static void CpuWrite(Process proc, int page, Op op, int step)
        {
            int offset = op.D * 13;
            int length = Math.Min(op.B * 900, (WindowPages * PageSize) - (page * PageSize) - offset);
            if (length <= 0)
            {
                return;
            }

            byte value = (byte)(op.D ^ (step * 31));
            var data = new byte[length];
            Array.Fill(data, value);
            ulong va = Addr(page) + (ulong)offset;
            Signal? expected = null;
            int done = 0;
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

                Array.Fill(p.WriteTarget().Data, value, inPage, n);
                done += n;
            }

            MemoryFaultException? e = Record.Exception(() => proc.Mm.CpuWrite(va, data)) as MemoryFaultException;
            Assert.True(expected == e?.Signal, $"step {step}: CpuWrite at 0x{va:X} expected {expected?.ToString() ?? "success"}, got {e?.Message ?? "success"}");
        }

        private static void CpuRead(Process proc, int page, int length, int step)
        {
            length = Math.Min(length, (WindowPages - page) * PageSize);
            ulong va = Addr(page);
            var expectedBytes = new byte[length];
            Signal? expected = null;
            for (int done = 0; done < length; done += PageSize)
            {
                ModelPage? p = proc.Pages[page + (done / PageSize)];
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

                int n = Math.Min(PageSize, length - done);
                Array.Copy(p.Read(), 0, expectedBytes, done, n);
            }

            var actual = new byte[length];
            MemoryFaultException? e = Record.Exception(() => proc.Mm.CpuRead(va, actual)) as MemoryFaultException;
            Assert.True(expected == e?.Signal, $"step {step}: CpuRead at 0x{va:X} expected {expected?.ToString() ?? "success"}, got {e?.Message ?? "success"}");
            if (expected is null)
            {
                Assert.True(expectedBytes.AsSpan().SequenceEqual(actual), $"step {step}: bytes read at 0x{va:X} differ from the model");
            }
        }

        private void Mremap(Process proc, Op op, int step)
        {
            int oldStart = op.A;
            Vma? vma = proc.Mm.SnapshotVmas().FirstOrDefault(v => v.Start <= Addr(oldStart) && Addr(oldStart) < v.End);
            if (vma is null || !vma.IsAnonymous)
            {
                return;
            }

            int vmaEndPage = (int)((vma.End - Base) >> PageGeometry.PageShift);
            int oldLen = Math.Min(op.B, vmaEndPage - oldStart);
            int newLen = (op.C % 6) + 1;
            int dest = op.D % WindowPages;
            if (dest + newLen > WindowPages || (dest < oldStart + oldLen && oldStart < dest + newLen))
            {
                return;
            }

            KResult r = proc.Mm.Mremap(Addr(oldStart), Pages(oldLen), Pages(newLen), MremapFlags.MayMove | MremapFlags.Fixed, Addr(dest), out ulong moved);
            Assert.True(r.IsOk && moved == Addr(dest), $"step {step}: mremap {r}");
            ModelPage?[] old = proc.Pages[oldStart..(oldStart + oldLen)];
            Array.Fill(proc.Pages, null, oldStart, oldLen);
            Prot prot = old[0]!.Prot;
            for (int i = 0; i < newLen; i++)
            {
                proc.Pages[dest + i] = i < oldLen ? old[i] : new ModelPage { Prot = prot, Kind = PageKind.PrivateAnon };
            }
        }

        private static void Compare(Process proc, int step, Op op)
        {
            IReadOnlyList<Vma> vmas = proc.Mm.SnapshotVmas();
            for (int i = 1; i < vmas.Count; i++)
            {
                Assert.True(vmas[i - 1].End <= vmas[i].Start, $"step {step} ({op}): VMAs overlap or are out of order");
            }

            for (int pg = 0; pg < WindowPages; pg++)
            {
                ulong va = Addr(pg);
                Vma? vma = vmas.FirstOrDefault(v => v.Start <= va && va < v.End);
                ModelPage? m = proc.Pages[pg];
                Assert.True((vma is null) == (m is null), $"step {step} ({op}): page {pg} mapped={vma is not null}, model says {m is not null}");
                if (m is null)
                {
                    continue;
                }

                Assert.True(vma!.Prot == m.Prot && vma.IsShared == m.Shared, $"step {step} ({op}): page {pg} is {vma}, model says {m.Prot} shared={m.Shared}");
                if (m.Prot != Prot.None && !m.BeyondEof)
                {
                    var actual = new byte[PageSize];
                    proc.Mm.CpuRead(va, actual);
                    Assert.True(m.Read().AsSpan().SequenceEqual(actual), $"step {step} ({op}): page {pg} bytes differ from the model");
                }
            }
        }
    }
}
