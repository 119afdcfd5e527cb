using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MirrorEmu;

/// <summary>
/// Width-generic operations on <c>Vector128&lt;ulong&gt;</c>, <c>Vector256&lt;ulong&gt;</c> and <c>Vector512&lt;ulong&gt;</c>,
/// so that one loop body, written <c>Body&lt;TVector&gt;(...) where TVector : struct</c> and instantiated with each BCL
/// vector type, serves every width, the way dotnet/runtime's SpanHelpers use <c>ISimdVector&lt;TSelf, T&gt;</c>.
/// Each member forwards to the BCL member of the same name for the width of
/// <c>TVector</c>, with the same semantics; the JIT folds the width tests of every instantiation. Any other
/// type argument fails in <see cref="Unsafe.BitCast{TFrom, TTo}"/> (its size differs from Vector512's).
/// </summary>
/// <remarks>
/// <para><c>System.Runtime.Intrinsics.ISimdVector&lt;TSelf, T&gt;</c> is internal in .NET 10: it is not in the
/// System.Runtime.Intrinsics reference assembly, and neither are the generic-math operator interfaces the BCL
/// vectors inherit through it, so code outside System.Private.CoreLib can constrain on neither. This class is the
/// narrowest workaround: only the members our loops use, over the BCL types themselves.</para>
/// <para>It has no wrapper struct on purpose: with one (an <c>ISimdVector</c>-like interface over a one-field
/// struct) .NET 10 turned every AVX-512 comparison mask into a vector and back (vpmovm2q, vpmovq2m) before
/// <c>ExtractMostSignificantBits</c>; over the BCL types, <see cref="EqualLanes{TVector}"/> compiles to one
/// <c>vpcmpeqq k</c> and one <c>kmov</c> (checked with DOTNET_JitDisasm; bench Hmm/WalkerBenchmarks.Scan).</para>
/// </remarks>
internal static class WordVector
{
    /// <summary>Words per vector.</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong.</typeparam>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Count<TVector>()
        where TVector : struct => Unsafe.SizeOf<TVector>() / sizeof(ulong);

    /// <summary>Every lane set to <paramref name="value"/>.</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong.</typeparam>
    /// <param name="value">The word.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Create<TVector>(ulong value)
        where TVector : struct =>
        typeof(TVector) == typeof(Vector128<ulong>) ? Unsafe.BitCast<Vector128<ulong>, TVector>(Vector128.Create(value))
        : typeof(TVector) == typeof(Vector256<ulong>) ? Unsafe.BitCast<Vector256<ulong>, TVector>(Vector256.Create(value))
        : Unsafe.BitCast<Vector512<ulong>, TVector>(Vector512.Create(value));

    /// <summary>Loads one vector of words from <paramref name="source"/> + <paramref name="elementOffset"/>, any alignment.</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong.</typeparam>
    /// <param name="source">The first word of the buffer.</param>
    /// <param name="elementOffset">Offset in words.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector LoadUnsafe<TVector>(ref readonly ulong source, nuint elementOffset)
        where TVector : struct =>
        typeof(TVector) == typeof(Vector128<ulong>) ? Unsafe.BitCast<Vector128<ulong>, TVector>(Vector128.LoadUnsafe(in source, elementOffset))
        : typeof(TVector) == typeof(Vector256<ulong>) ? Unsafe.BitCast<Vector256<ulong>, TVector>(Vector256.LoadUnsafe(in source, elementOffset))
        : Unsafe.BitCast<Vector512<ulong>, TVector>(Vector512.LoadUnsafe(in source, elementOffset));

    /// <summary>Stores the lanes of <paramref name="value"/> at <paramref name="destination"/> + <paramref name="elementOffset"/>, any alignment.</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong.</typeparam>
    /// <param name="value">The vector.</param>
    /// <param name="destination">The first word of the buffer.</param>
    /// <param name="elementOffset">Offset in words.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreUnsafe<TVector>(TVector value, ref ulong destination, nuint elementOffset)
        where TVector : struct
    {
        if (typeof(TVector) == typeof(Vector128<ulong>))
        {
            Unsafe.BitCast<TVector, Vector128<ulong>>(value).StoreUnsafe(ref destination, elementOffset);
        }
        else if (typeof(TVector) == typeof(Vector256<ulong>))
        {
            Unsafe.BitCast<TVector, Vector256<ulong>>(value).StoreUnsafe(ref destination, elementOffset);
        }
        else
        {
            Unsafe.BitCast<TVector, Vector512<ulong>>(value).StoreUnsafe(ref destination, elementOffset);
        }
    }

    /// <summary>Lane-wise <paramref name="left"/> AND <paramref name="right"/>.</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong.</typeparam>
    /// <param name="left">First operand.</param>
    /// <param name="right">Second operand.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector And<TVector>(TVector left, TVector right)
        where TVector : struct =>
        typeof(TVector) == typeof(Vector128<ulong>) ? Unsafe.BitCast<Vector128<ulong>, TVector>(Unsafe.BitCast<TVector, Vector128<ulong>>(left) & Unsafe.BitCast<TVector, Vector128<ulong>>(right))
        : typeof(TVector) == typeof(Vector256<ulong>) ? Unsafe.BitCast<Vector256<ulong>, TVector>(Unsafe.BitCast<TVector, Vector256<ulong>>(left) & Unsafe.BitCast<TVector, Vector256<ulong>>(right))
        : Unsafe.BitCast<Vector512<ulong>, TVector>(Unsafe.BitCast<TVector, Vector512<ulong>>(left) & Unsafe.BitCast<TVector, Vector512<ulong>>(right));

    /// <summary>Lane-wise <paramref name="left"/> OR <paramref name="right"/>.</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong.</typeparam>
    /// <param name="left">First operand.</param>
    /// <param name="right">Second operand.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Or<TVector>(TVector left, TVector right)
        where TVector : struct =>
        typeof(TVector) == typeof(Vector128<ulong>) ? Unsafe.BitCast<Vector128<ulong>, TVector>(Unsafe.BitCast<TVector, Vector128<ulong>>(left) | Unsafe.BitCast<TVector, Vector128<ulong>>(right))
        : typeof(TVector) == typeof(Vector256<ulong>) ? Unsafe.BitCast<Vector256<ulong>, TVector>(Unsafe.BitCast<TVector, Vector256<ulong>>(left) | Unsafe.BitCast<TVector, Vector256<ulong>>(right))
        : Unsafe.BitCast<Vector512<ulong>, TVector>(Unsafe.BitCast<TVector, Vector512<ulong>>(left) | Unsafe.BitCast<TVector, Vector512<ulong>>(right));

    /// <summary>Bit <c>i</c> set where lane <c>i</c> of <paramref name="left"/> equals lane <c>i</c> of <paramref name="right"/>
    /// (<c>Equals(left, right).ExtractMostSignificantBits()</c>); bits from <see cref="Count{TVector}"/> up are zero.</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong.</typeparam>
    /// <param name="left">First operand.</param>
    /// <param name="right">Second operand.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong EqualLanes<TVector>(TVector left, TVector right)
        where TVector : struct =>
        typeof(TVector) == typeof(Vector128<ulong>) ? Vector128.Equals(Unsafe.BitCast<TVector, Vector128<ulong>>(left), Unsafe.BitCast<TVector, Vector128<ulong>>(right)).ExtractMostSignificantBits()
        : typeof(TVector) == typeof(Vector256<ulong>) ? Vector256.Equals(Unsafe.BitCast<TVector, Vector256<ulong>>(left), Unsafe.BitCast<TVector, Vector256<ulong>>(right)).ExtractMostSignificantBits()
        : Vector512.Equals(Unsafe.BitCast<TVector, Vector512<ulong>>(left), Unsafe.BitCast<TVector, Vector512<ulong>>(right)).ExtractMostSignificantBits();

    /// <summary>Each lane shifted left by <paramref name="shiftCount"/> bits, zeros shifted in.</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong.</typeparam>
    /// <param name="value">The operand.</param>
    /// <param name="shiftCount">Bits, 0 to 63.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector ShiftLeft<TVector>(TVector value, int shiftCount)
        where TVector : struct =>
        typeof(TVector) == typeof(Vector128<ulong>) ? Unsafe.BitCast<Vector128<ulong>, TVector>(Vector128.ShiftLeft(Unsafe.BitCast<TVector, Vector128<ulong>>(value), shiftCount))
        : typeof(TVector) == typeof(Vector256<ulong>) ? Unsafe.BitCast<Vector256<ulong>, TVector>(Vector256.ShiftLeft(Unsafe.BitCast<TVector, Vector256<ulong>>(value), shiftCount))
        : Unsafe.BitCast<Vector512<ulong>, TVector>(Vector512.ShiftLeft(Unsafe.BitCast<TVector, Vector512<ulong>>(value), shiftCount));

    /// <summary>Each lane shifted right by <paramref name="shiftCount"/> bits, zeros shifted in.</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong.</typeparam>
    /// <param name="value">The operand.</param>
    /// <param name="shiftCount">Bits, 0 to 63.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector ShiftRightLogical<TVector>(TVector value, int shiftCount)
        where TVector : struct =>
        typeof(TVector) == typeof(Vector128<ulong>) ? Unsafe.BitCast<Vector128<ulong>, TVector>(Vector128.ShiftRightLogical(Unsafe.BitCast<TVector, Vector128<ulong>>(value), shiftCount))
        : typeof(TVector) == typeof(Vector256<ulong>) ? Unsafe.BitCast<Vector256<ulong>, TVector>(Vector256.ShiftRightLogical(Unsafe.BitCast<TVector, Vector256<ulong>>(value), shiftCount))
        : Unsafe.BitCast<Vector512<ulong>, TVector>(Vector512.ShiftRightLogical(Unsafe.BitCast<TVector, Vector512<ulong>>(value), shiftCount));
}
