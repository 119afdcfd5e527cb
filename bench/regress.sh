#!/usr/bin/env bash
# Regression tracking (README "Regression tracking"): runs the counter scenarios, the regression set of benchmarks and a
# short `mirroremu compare` (its JSON report), then either compares them with the committed baseline and appends the run
# to the history, or refreshes the baseline.
#
#   bench/regress.sh            compare with bench/baselines (exit 1 on a counter regression; timings warn) and append
#                               the run to bench/baselines/history.jsonl
#   bench/regress.sh refresh    write bench/baselines/counters.json and timings.json from this run (commit them)
#
# The regression set runs in this process with the project's job (warmup 1, 15 iterations of 250 ms), about 3 minutes on
# a 2-core machine; BenchmarkDotNet's JSON lands in a temporary folder with the host's load beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-compare}
case "$mode" in
  compare|refresh) ;;
  *) echo "usage: bench/regress.sh [refresh]" >&2; exit 2 ;;
esac

regression_set=(
  '*.PolicyBenchmarks.*'
  '*.IntervalTreeBenchmarks.*'
  '*.UffdRoundTripBenchmarks.*'
  '*.DeviceFirstTouchBenchmarks.*'
  '*.CpuAccessBenchmarks.*'
  '*.PopulateBenchmarks.*'
)

dotnet build -c Release --nologo -v quiet
artifacts=$(mktemp -d)
trap 'rm -rf "$artifacts"' EXIT
dotnet bench/MirrorEmu.Bench/bin/Release/net10.0/MirrorEmu.Bench.dll --filter "${regression_set[@]}" --inProcess --artifacts "$artifacts" \
  > "$artifacts/bench.log" 2>&1 || { tail -20 "$artifacts/bench.log"; exit 1; }
tail -1 "$artifacts/bench.log"

mirroremu=(dotnet src/MirrorEmu.Cli/bin/Release/net10.0/MirrorEmu.Cli.dll)
# The headline comparison through the device, small enough to take seconds: its per-policy medians are timings too.
"${mirroremu[@]}" compare --pages 16384 --repeat 9 --no-progress --json "$artifacts/compare.json" > "$artifacts/compare.log" 2>&1 \
  || { tail -5 "$artifacts/compare.log"; exit 1; }
timings=(--bdn "$artifacts/results" --compare-json "$artifacts/compare.json")
if [ "$mode" = refresh ]; then
  "${mirroremu[@]}" regress "${timings[@]}" --save bench/baselines
else
  "${mirroremu[@]}" regress "${timings[@]}" --append-history bench/baselines/history.jsonl
fi
