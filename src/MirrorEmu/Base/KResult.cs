namespace MirrorEmu;

/// <summary>
/// The result of a kernel-style call: 0 or a negated errno (<see cref="Errno"/>), plus, on an
/// error, one line that names the offending field and value (addresses in hex).
/// </summary>
/// <remarks>Success allocates nothing; only the error path builds a message.</remarks>
public readonly struct KResult : IEquatable<KResult>
{
    /// <summary>0 on success, else a negated errno such as <c>-Errno.EINVAL</c>.</summary>
    public int Code { get; }

    /// <summary>What was wrong, naming the field and the value; null on success.</summary>
    public string? Message { get; }

    private KResult(int code, string? message)
    {
        Code = code;
        Message = message;
    }

    /// <summary>The success value.</summary>
    public static KResult Ok => default;

    /// <summary>True when <see cref="Code"/> is 0.</summary>
    public bool IsOk => Code == 0;

    /// <summary>Builds an error result.</summary>
    /// <param name="errno">The positive errno (<see cref="Errno.EINVAL"/> and so on).</param>
    /// <param name="message">One line naming the field and value.</param>
    public static KResult Error(int errno, string message) => new(-Math.Abs(errno), message);

    /// <summary>Throws <see cref="KernelErrorException"/> if this is an error.</summary>
    public void ThrowIfError()
    {
        if (Code != 0)
        {
            Throw(this);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Throw(KResult result) => throw new KernelErrorException(result);

    /// <inheritdoc/>
    public bool Equals(KResult other) => Code == other.Code;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is KResult other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => Code;

    /// <summary>Compares codes only.</summary>
    public static bool operator ==(KResult left, KResult right) => left.Equals(right);

    /// <summary>Compares codes only.</summary>
    public static bool operator !=(KResult left, KResult right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => Code == 0 ? "0" : $"{Errno.Name(Code)}: {Message}";
}

/// <summary>A kernel-style error raised as an exception by convenience wrappers.</summary>
public sealed class KernelErrorException : Exception
{
    /// <summary>Creates the exception from a failed result.</summary>
    /// <param name="result">The failed call's result.</param>
    public KernelErrorException(KResult result)
        : base(result.ToString())
    {
        Code = result.Code;
    }

    /// <summary>The negated errno.</summary>
    public int Code { get; }
}
