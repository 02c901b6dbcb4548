#!/usr/bin/env bash
# Builds Release, runs the benchmark suite with repetitions and the soak run,
# writes benchmarks/results/latest.json (Google Benchmark JSON) and
# benchmarks/results/soak.json, prints the summary table with the target
# ratios and draws the PNG plots into docs/img/.
#
#   bash benchmarks/run.sh            # everything (16 minutes here at 2f5dc26, 10 of them the soak)
#   BENCH_QUICK=1 bash benchmarks/run.sh   # 1 repetition, no 10M rows, 1M soak (3.5 minutes)
#   BENCH_HUGEPAGES=1 bash benchmarks/run.sh  # glibc's heap on huge pages
#
# BENCH_HUGEPAGES=1 runs everything with GLIBC_TUNABLES=glibc.malloc.hugetlb=1
# (glibc 2.35 and later): malloc asks for transparent huge pages, which
# matters where the kernel gives them only on request ("madvise" in
# /sys/kernel/mm/transparent_hugepage/enabled). docs/benchmarks.md, "Huge
# pages", has what it changes; each result records the settings. It writes
# the same results files and plots as a default run.
#
# Fixtures (1M and 10M message files, the 1M-turn analytics month) are
# built once and kept under
# $CONVSTORE_BENCH_FIXTURES (default /tmp/convstore_fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q && $SUDO apt-get install -y -q python3-matplotlib
fi

cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCONVSTORE_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench --target convstore_benchmark convstore_soak

mkdir -p benchmarks/results
if [ "${BENCH_HUGEPAGES:-0}" = "1" ]; then
  # Last, so that it wins over a hugetlb setting already in the variable.
  export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1"
fi
reps=3
filter='.'
soak_messages=10000000
if [ "${BENCH_QUICK:-0}" = "1" ]; then
  reps=1
  filter='-rows:10000000'
  soak_messages=1000000
fi
./build-bench/benchmarks/convstore_benchmark \
  --benchmark_filter="$filter" \
  --benchmark_repetitions="$reps" \
  --benchmark_min_time=1 \
  --benchmark_report_aggregates_only=false \
  --benchmark_out=benchmarks/results/latest.json \
  --benchmark_out_format=json

./build-bench/benchmarks/convstore_soak --messages "$soak_messages" \
  --conversations 100000 --budget-mib 256 | tee benchmarks/results/soak.json

/usr/bin/python3 benchmarks/summarize.py benchmarks/results/latest.json \
  benchmarks/results/soak.json
/usr/bin/python3 benchmarks/plot.py benchmarks/results/latest.json docs/img
