namespace MirrorEmu.Device;

/// <summary>
/// When the driver replays faulted work items (NVIDIA UVM's uvm_perf_fault_replay_policy_t,
/// kernel-open/nvidia-uvm/uvm_gpu_replayable_faults.c). Work items whose faults are still pending when a replay runs fault again; their new
/// entries are duplicates the driver counts and drops.
/// </summary>
public enum ReplayPolicy
{
    /// <summary>UVM_PERF_FAULT_REPLAY_POLICY_BLOCK: replay after the faults of each 2 MiB VA block of a batch are serviced.</summary>
    Block = 0,

    /// <summary>UVM_PERF_FAULT_REPLAY_POLICY_BATCH: replay after each batch.</summary>
    Batch = 1,

    /// <summary>UVM_PERF_FAULT_REPLAY_POLICY_BATCH_FLUSH (UVM's default): like <see cref="Batch"/>, but the entries still
    /// waiting in the fault buffer are flushed first, since the replay raises again those that still matter.</summary>
    BatchFlush = 2,

    /// <summary>UVM_PERF_FAULT_REPLAY_POLICY_ONCE: one replay after the whole fault buffer is drained.</summary>
    Once = 3,
}
