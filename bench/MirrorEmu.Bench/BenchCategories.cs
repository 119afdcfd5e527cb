namespace MirrorEmu.Bench;

/// <summary>The categories every benchmark must carry one of (checked by <see cref="MandatoryCategoryValidator"/>).</summary>
public static class BenchCategories
{
    public const string Walk = "Walk";
    public const string Fault = "Fault";
    public const string Invalidate = "Invalidate";
    public const string Kernel = "Kernel";
    public const string Uffd = "Uffd";

    public static readonly string[] All = [Walk, Fault, Invalidate, Kernel, Uffd];
}
