using System.Globalization;
using System.Runtime.InteropServices;

namespace MirrorEmu.Telemetry;

/// <summary>
/// How much memory a run may still take on this machine, and what limits it: the physical memory
/// available (Linux MemAvailable), the process's memory cgroup (v2 memory.max, or v1
/// memory.limit_in_bytes, less what it uses) and its address-space limit (RLIMIT_AS, less the virtual
/// memory the process already maps: a .NET process reserves much of it at start-up). A run that needs
/// more than <see cref="AvailableBytes"/> is refused before it starts, with this as the reason, rather
/// than dying half-way when an allocation fails.
/// </summary>
/// <param name="AvailableBytes">The smallest of the limits, less a safety margin for the runtime itself.</param>
/// <param name="LimitedBy">Which limit that is ("MemAvailable", "cgroup memory.max", "RLIMIT_AS").</param>
/// <param name="PhysicalBytes">Physical memory available, or -1 where unknown.</param>
/// <param name="CgroupBytes">What the memory cgroup still allows, or -1 where there is no limit.</param>
/// <param name="AddressSpaceBytes">Virtual address space left under RLIMIT_AS, or -1 where unlimited.</param>
public readonly partial record struct MemoryBudget(long AvailableBytes, string LimitedBy, long PhysicalBytes, long CgroupBytes, long AddressSpaceBytes)
{
    /// <summary>Kept free for the runtime (its heaps, stacks and code) on top of what a run says it needs.</summary>
    public const long RuntimeMarginBytes = 256L << 20;

    /// <summary>Reads the limits now.</summary>
    public static MemoryBudget Current()
    {
        long physical = ReadMemAvailable();
        long cgroup = ReadCgroupRemaining();
        long addressSpace = ReadAddressSpaceRemaining();
        if (physical < 0)
        {
            physical = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        }

        (long least, string by) = (physical, "physical memory available (MemAvailable)");
        if (cgroup >= 0 && cgroup < least)
        {
            (least, by) = (cgroup, "the memory cgroup's limit");
        }

        if (addressSpace >= 0 && addressSpace < least)
        {
            (least, by) = (addressSpace, "the address-space limit (RLIMIT_AS, ulimit -v)");
        }

        return new MemoryBudget(Math.Max(0, least - RuntimeMarginBytes - (least / 20)), by, physical, cgroup, addressSpace);
    }

    /// <summary>One line for an error message: how much is available and what limits it.</summary>
    public string Describe() => $"{Gib(AvailableBytes)} is available here (limited by {LimitedBy})";

    /// <summary>Formats bytes as GiB with two decimals.</summary>
    /// <param name="bytes">Bytes.</param>
    public static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("F2", CultureInfo.InvariantCulture) + " GiB";

    private static long ReadMemAvailable()
    {
        foreach (string line in ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
            {
                return ParseKib(line);
            }
        }

        return -1;
    }

    private static long ReadCgroupRemaining()
    {
        foreach (string line in ReadLines("/proc/self/cgroup"))
        {
            string[] parts = line.Split(':', 3);
            if (parts.Length != 3)
            {
                continue;
            }

            if (parts[0] == "0" && parts[1].Length == 0)
            {
                long v2 = Remaining(Path.Combine("/sys/fs/cgroup", parts[2].TrimStart('/')), "memory.max", "memory.current");
                if (v2 >= 0)
                {
                    return v2;
                }
            }
            else if (parts[1].Split(',').Contains("memory"))
            {
                string dir = Path.Combine("/sys/fs/cgroup/memory", parts[2].TrimStart('/'));
                long v1 = Remaining(Directory.Exists(dir) ? dir : "/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes");
                if (v1 >= 0)
                {
                    return v1;
                }
            }
        }

        return -1;
    }

    private static long Remaining(string dir, string limitFile, string usageFile)
    {
        string limit = SystemFile.Read(Path.Combine(dir, limitFile));
        if (limit.Length == 0 || limit == "max" || !long.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out long max) || max >= long.MaxValue / 2)
        {
            return -1;
        }

        long used = long.TryParse(SystemFile.Read(Path.Combine(dir, usageFile)), NumberStyles.None, CultureInfo.InvariantCulture, out long u) ? u : 0;
        return Math.Max(0, max - used);
    }

    private static unsafe long ReadAddressSpaceRemaining()
    {
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }

        ulong* limit = stackalloc ulong[2];
        try
        {
            if (GetRlimit(RlimitAs, limit) != 0 || limit[0] == ulong.MaxValue)
            {
                return -1;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return -1;
        }

        long mapped = 0;
        foreach (string line in ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmSize:", StringComparison.Ordinal))
            {
                mapped = ParseKib(line);
            }
        }

        return Math.Max(0, (long)Math.Min(limit[0], long.MaxValue) - mapped);
    }

    private const int RlimitAs = 9;

    [LibraryImport("libc", EntryPoint = "getrlimit")]
    private static unsafe partial int GetRlimit(int resource, ulong* limit);

    private static long ParseKib(string line)
    {
        string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 2 && long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out long kib) ? kib * 1024 : -1;
    }

    private static IEnumerable<string> ReadLines(string path)
    {
        string text = SystemFile.Read(path);
        return text.Length == 0 ? [] : text.Split('\n');
    }
}
