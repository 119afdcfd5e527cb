namespace MirrorEmu.Mm;

/// <summary>
/// The identity of an anon_vma (mm/rmap.c): the root that the anonymous pages of one or more VMAs hang from.
/// The emulator keeps no reverse map; it keeps the identity because Linux merges two anonymous VMAs only if
/// their anon_vmas are the same or one of them has none (mm/vma.c: is_mergeable_anon_vma).
/// </summary>
/// <remarks>
/// A VMA gets one when it first holds an anonymous page (a write fault, a copy-on-write, UFFDIO_COPY, a guard
/// marker), by reusing a compatible neighbour's (find_mergeable_anon_vma) or making a new one; its pieces
/// share it after a split; a fork child gets a new one chained to the parent's.
/// </remarks>
internal sealed class AnonVma
{
}
