using System.Diagnostics.CodeAnalysis;

namespace MirrorEmu.Mm;

/// <summary>Out-of-line throws; messages print addresses in hex.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowMemoryFault(ulong address, Signal signal, string reason) =>
        throw new MemoryFaultException(address, signal, reason);

    [DoesNotReturn]
    public static void ThrowDisposed(string what) => throw new ObjectDisposedException(what);
}
