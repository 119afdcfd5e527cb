namespace MirrorEmu.Notifier;

/// <summary>Why a range is invalidated (enum mmu_notifier_event, include/linux/mmu_notifier.h).</summary>
public enum NotifierEvent
{
    /// <summary>MMU_NOTIFY_UNMAP: munmap, or mremap moving the range; the VMA goes away.</summary>
    Unmap = 0,
    /// <summary>MMU_NOTIFY_CLEAR: PTEs cleared for other reasons (madvise, COW, zero-page replacement, zap).</summary>
    Clear,
    /// <summary>MMU_NOTIFY_PROTECTION_VMA: mprotect; the VMA's protection describes the range.</summary>
    ProtectionVma,
    /// <summary>MMU_NOTIFY_PROTECTION_PAGE: per-page permission change (fork's write-protect of private pages).</summary>
    ProtectionPage,
    /// <summary>MMU_NOTIFY_SOFT_DIRTY: soft-dirty reset.</summary>
    SoftDirty,
    /// <summary>MMU_NOTIFY_RELEASE: the address space is torn down.</summary>
    Release,
    /// <summary>MMU_NOTIFY_MIGRATE: migrate_vma_collect; the range's owner is the pgmap owner.</summary>
    Migrate,
    /// <summary>MMU_NOTIFY_EXCLUSIVE: conversion to or from a device-exclusive entry.</summary>
    Exclusive,
}
