namespace MirrorEmu;

/// <summary>
/// The Linux error numbers that MirrorEmu's kernel-style APIs return, negated as the kernel
/// returns them (<c>-EINVAL</c> and so on). Values are the x86-64 Linux ones (include/uapi/asm-generic/errno-base.h).
/// </summary>
public static class Errno
{
    /// <summary>Operation not permitted.</summary>
    public const int EPERM = 1;
    /// <summary>No such entry.</summary>
    public const int ENOENT = 2;
    /// <summary>Interrupted (a fatal signal or a cancellation).</summary>
    public const int EINTR = 4;
    /// <summary>Bad file descriptor (a file mapping without a file).</summary>
    public const int EBADF = 9;
    /// <summary>Try again (non-blocking path would have had to sleep, or the layout changed).</summary>
    public const int EAGAIN = 11;
    /// <summary>Out of memory, or an address range that is not mapped.</summary>
    public const int ENOMEM = 12;
    /// <summary>Permission denied.</summary>
    public const int EACCES = 13;
    /// <summary>Bad address.</summary>
    public const int EFAULT = 14;
    /// <summary>Busy: the range was invalidated, or a resource is held by someone else.</summary>
    public const int EBUSY = 16;
    /// <summary>Already exists.</summary>
    public const int EEXIST = 17;
    /// <summary>Invalid argument.</summary>
    public const int EINVAL = 22;
    /// <summary>File too large (ftruncate beyond the largest size a file may have).</summary>
    public const int EFBIG = 27;
    /// <summary>Operation not supported (MAP_SHARED_VALIDATE with a flag the kernel does not know).</summary>
    public const int EOPNOTSUPP = 95;
    /// <summary>Value too large for the type (offset or length overflow).</summary>
    public const int EOVERFLOW = 75;
    /// <summary>A hardware-poisoned page was hit.</summary>
    public const int EHWPOISON = 133;

    /// <summary>Every error number above, in the order declared: the ones that have a name
    /// (<see cref="Name"/>), so a scenario's expected result can be checked against what a call can return.</summary>
    public static IReadOnlyList<int> Known { get; } = [EPERM, ENOENT, EINTR, EBADF, EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, EINVAL, EFBIG, EOPNOTSUPP, EOVERFLOW, EHWPOISON];

    /// <summary>Returns the symbolic name of an error number, negative or positive ("-EINVAL").</summary>
    /// <param name="code">A kernel-style return value (0, or a negated errno).</param>
    public static string Name(int code)
    {
        string name = Math.Abs(code) switch
        {
            0 => "0",
            EPERM => "EPERM",
            ENOENT => "ENOENT",
            EINTR => "EINTR",
            EBADF => "EBADF",
            EAGAIN => "EAGAIN",
            ENOMEM => "ENOMEM",
            EACCES => "EACCES",
            EFAULT => "EFAULT",
            EBUSY => "EBUSY",
            EEXIST => "EEXIST",
            EINVAL => "EINVAL",
            EFBIG => "EFBIG",
            EOPNOTSUPP => "EOPNOTSUPP",
            EOVERFLOW => "EOVERFLOW",
            EHWPOISON => "EHWPOISON",
            _ => "E" + Math.Abs(code).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        return code < 0 ? "-" + name : name;
    }
}
