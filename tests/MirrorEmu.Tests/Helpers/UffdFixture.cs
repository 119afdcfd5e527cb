using MirrorEmu.Mm;
using MirrorEmu.Uffd;

namespace MirrorEmu.Tests.Helpers;

/// <summary>An address space with a registered userfaultfd range, torn down in order.</summary>
public sealed class UffdFixture : IDisposable
{
    public UffdFixture(int pages = 16, UffdFeatures features = UffdFeatures.None, UffdRegisterMode mode = UffdRegisterMode.Missing, MapFlags flags = MapFlags.Private)
    {
        Mm = new AddressSpace();
        Mm.MmapAnonymous(Pages.Bytes(pages), Prot.ReadWrite, flags, out ulong addr).ThrowIfError();
        Address = addr;
        Ctx = new Userfaultfd(Mm) { FaultTimeoutMs = 20_000 };
        Ctx.Api(UffdApi.Version, features, out _).ThrowIfError();
        Ctx.Register(addr, Pages.Bytes(pages), mode, out _).ThrowIfError();
    }

    public AddressSpace Mm { get; }

    public Userfaultfd Ctx { get; }

    public ulong Address { get; }

    public void Dispose()
    {
        Ctx.Dispose();
        Mm.Dispose();
    }
}

/// <summary>Runs an action on its own thread and reports what it threw.</summary>
public sealed class Worker
{
    private readonly Thread _thread;

    public Worker(Action action)
    {
        _thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                Error = e;
            }
        })
        { IsBackground = true };
        _thread.Start();
    }

    public Exception? Error { get; private set; }

    public bool Join(int ms = 10_000) => _thread.Join(ms);
}
