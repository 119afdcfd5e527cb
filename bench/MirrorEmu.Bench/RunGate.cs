using System.Reflection;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace MirrorEmu.Bench;

/// <summary>
/// What a run must show besides timings: every benchmark ran (a benchmark that throws fails the run), and no
/// benchmark marked <see cref="MustNotAllocateAttribute"/> allocated a byte in its measured iteration (the memory
/// diagnoser's figure). Timings are reported, never gated.
/// </summary>
public static class RunGate
{
    /// <summary>Checks the summaries of one run and prints one line with the counts.</summary>
    /// <param name="summaries">What BenchmarkSwitcher returned.</param>
    /// <param name="output">Where the counts go.</param>
    /// <param name="error">Where each failure goes, one line each.</param>
    /// <returns>0 when every benchmark ran and none that must not allocate did; 1 otherwise.</returns>
    public static int Check(IEnumerable<Summary> summaries, TextWriter output, TextWriter error)
    {
        int ran = 0, failed = 0, gated = 0, allocated = 0;
        foreach (Summary summary in summaries)
        {
            foreach (var v in summary.ValidationErrors.Where(v => v.IsCritical))
            {
                error.WriteLine($"benchmark run: {v.Message}");
                failed++;
            }

            foreach (BenchmarkCase benchmark in summary.BenchmarksCases)
            {
                BenchmarkReport? report = summary.Reports.FirstOrDefault(r => r.BenchmarkCase == benchmark);
                if (report is null || !report.Success || report.ResultStatistics is null)
                {
                    error.WriteLine($"benchmark {benchmark.DisplayInfo} did not run to the end (see the log above)");
                    failed++;
                    continue;
                }

                ran++;
                if (benchmark.Descriptor.WorkloadMethod.GetCustomAttribute<MustNotAllocateAttribute>() is null)
                {
                    continue;
                }

                gated++;
                long? bytes = report.GcStats.GetTotalAllocatedBytes(excludeAllocationQuantumSideEffects: true);
                if (bytes is null or > 0)
                {
                    error.WriteLine($"benchmark {benchmark.DisplayInfo} must not allocate, and allocated {(bytes is null ? "an unknown number of" : bytes.Value.ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes in {report.GcStats.TotalOperations} operations");
                    allocated++;
                }
            }
        }

        output.WriteLine($"benchmarks: {ran} ran, {failed} failed; must-not-allocate gate: {gated} checked, {allocated} allocated");
        return failed == 0 && allocated == 0 ? 0 : 1;
    }
}
