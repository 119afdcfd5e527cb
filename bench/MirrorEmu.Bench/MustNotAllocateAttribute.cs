namespace MirrorEmu.Bench;

/// <summary>
/// Marks a benchmark on a path that must not allocate (the walker, the notifier queries). After
/// every run <see cref="RunGate"/> fails the run when the memory diagnoser saw such a benchmark allocate any bytes
/// in its measured iteration; .ci/run gates on it in its dry smoke run. Timings are never gated.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class MustNotAllocateAttribute : Attribute;
