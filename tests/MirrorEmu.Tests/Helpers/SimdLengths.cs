namespace MirrorEmu.Tests.Helpers;

/// <summary>The lengths every SIMD path is tested at: below, at and above each vector width and a leaf table.</summary>
public static class SimdLengths
{
    /// <summary>0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 511, 512, 513.</summary>
    public static readonly int[] All = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 511, 512, 513];
}
