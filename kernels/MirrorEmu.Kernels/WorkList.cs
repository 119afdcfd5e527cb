using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace MirrorEmu.Kernels;

/// <summary>
/// Which work items a pass runs: a slice of the launch's items (<c>Offset + index</c>), or, on a replay, a
/// slice of the list of marked items (<c>Items[Offset + index]</c>).
/// </summary>
/// <param name="Items">The replay list (unused for a first pass).</param>
/// <param name="Offset">The slice's first position.</param>
/// <param name="UseList">1 to read items from <paramref name="Items"/>, 0 for the identity.</param>
public readonly record struct WorkList(ArrayView<int> Items, int Offset, int UseList)
{
    /// <summary>The work item that thread <paramref name="index"/> of the slice runs.</summary>
    /// <param name="index">The kernel's index.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Item(Index1D index) => UseList != 0 ? Items[Offset + index.X] : Offset + index.X;
}
