#!/usr/bin/env bash
# Builds convstore and runs the whole test suite, as CI does:
#   1. clang-format check of every C++ file;
#   2. RelWithDebInfo build (line tables only, -g1, as every build here) with
#      warnings as errors, the Catch2 suite via ctest,
#      and a run of the demo;
#   3. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer;
#   4. the same suite under ThreadSanitizer;
#   5. the libFuzzer targets in fuzz/ (clang, ASan + UBSan), all three at
#      once, each for CONVSTORE_FUZZ_SECONDS (default 75) from a small seed
#      corpus.
# Each build has its own directory (build-ci, build-asan, build-tsan,
# build-fuzz).
# CONVSTORE_SLOW=1 also runs the tests labelled "slow" (long crash loops).
# CONVSTORE_SKIP_SETUP=1 skips installing packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CONVSTORE_SKIP_SETUP:-0}" != "1" ]; then
  bash scripts/setup.sh
fi

label_args=(-LE slow)
if [ "${CONVSTORE_SLOW:-0}" = "1" ]; then label_args=(); fi
step() { printf '\n==== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "clang-format"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -- '*.h' '*.cc' | xargs clang-format --dry-run -Werror
else
  find include src tests tools benchmarks -name '*.h' -o -name '*.cc' |
    xargs clang-format --dry-run -Werror
fi

# Every build keeps line tables only (-g1): sanitizer reports, crash
# backtraces and perf still get functions, files and lines, and nothing here
# debugs variables (with GCC an inlined function's frame folds into its
# caller's; configure with -g to see it). Full -g made the compiler spend
# 20-40% longer per library file on this 2-core host (keys_impl.cc at -O2:
# 17-25 s against 12-14 s; under ASan 19-26 s against 17; under TSan 17 s
# against 13-14).
debug_info=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
  -DCMAKE_CXX_FLAGS_DEBUG="-g1")

build_and_test() {  # dir, extra cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCONVSTORE_WERROR=ON "${debug_info[@]}" "$@" \
    >/dev/null
  cmake --build "$dir"
  ctest --test-dir "$dir" --output-on-failure -j2 "${label_args[@]}"
}

step "build + tests (RelWithDebInfo, -Werror)"
build_and_test build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo
step "demo"
./build-ci/convstore demo --db build-ci/demo.db

# The sanitizer and fuzz builds are unity builds (CMake batches 8 sources
# of a target into one translation unit): each of the library's files
# spends most of its compile time on the same abseil/spdlog/SQLite headers
# and template instances, and the library's ASan build takes 222 CPU-s this
# way against 551 s file by file. build-ci stays file by file, so a source
# that misses an #include still fails there. Names in anonymous namespaces
# must therefore be unique within a target. The sanitizer builds also
# parse Catch2 and testutil.h once, into a precompiled header (1-4 s less
# per test file).
# They also register one ctest test per test file (CONVSTORE_CTEST_PER_FILE,
# see tests/CMakeLists.txt): a sanitized process takes 0.12-0.25 s to start,
# and `ctest -j2 -LE slow` ran the ASan suite in 116 s that way against 173 s
# case by case (TSan: 162 s against 198 s). build-ci still runs every case in a process
# of its own, so a case that leans on an earlier one still fails there.
unity=(-DCMAKE_UNITY_BUILD=ON)
sanitizer_tests=("${unity[@]}" -DCONVSTORE_PRECOMPILE_TEST_HEADERS=ON
  -DCONVSTORE_CTEST_PER_FILE=ON)

step "AddressSanitizer + UndefinedBehaviorSanitizer"
export ASAN_OPTIONS=abort_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DCONVSTORE_SANITIZE=address \
  -DCONVSTORE_BUILD_BENCHMARKS=OFF "${sanitizer_tests[@]}"

step "ThreadSanitizer"
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
build_and_test build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVSTORE_SANITIZE=thread \
  -DCONVSTORE_BUILD_BENCHMARKS=OFF "${sanitizer_tests[@]}"

step "libFuzzer targets (clang, ASan + UBSan)"
# The library is built again with clang and -fsanitize=fuzzer-no-link,...;
# only the fuzz executables are built (a unity build, see above), then each
# runs for a bounded time. Crash reproducers land in build-fuzz/.
fuzz_seconds=${CONVSTORE_FUZZ_SECONDS:-75}
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVSTORE_FUZZ=ON -DCONVSTORE_WERROR=ON \
  -DCONVSTORE_BUILD_TESTS=OFF -DCONVSTORE_BUILD_BENCHMARKS=OFF \
  -DCONVSTORE_BUILD_TOOLS=OFF -DCONVSTORE_INSTALL=OFF "${unity[@]}" \
  "${debug_info[@]}" >/dev/null
cmake --build build-fuzz
seeds=build-fuzz/seeds
rm -rf "$seeds"
mkdir -p "$seeds/store_ops" "$seeds/open_corrupt" "$seeds/engines_ops"
# store_ops: FuzzedDataProvider reads choices from the end and strings from
# the front; a few fixed byte strings are enough to start from.
printf 'hello\x00\x01\x02\x03\x04\x05\x06\x07' >"$seeds/store_ops/a"
printf '{"k":1}\xff\xfe\x10\x20\x30\x09\x08\x07\x06\x05' >"$seeds/store_ops/b"
printf "x'); DROP TABLE messages;--\x00\x00\x09\x07\x03\x01" >"$seeds/store_ops/c"
# open_corrupt: byte 0 picks the mode (see fuzz/open_corrupt_fuzzer.cc).
printf '\x01' >"$seeds/open_corrupt/valid"
printf '\x05' >"$seeds/open_corrupt/valid_verified"
printf '\x03\x00\x40\x00\x00\x00' >"$seeds/open_corrupt/truncated"
printf '\x01\x1c\x00\x00\x00\xff\x00\x10\x00\x00\x00' >"$seeds/open_corrupt/patched"
printf '\x00SQLite format 3\x00\x10\x00\x02\x02' >"$seeds/open_corrupt/header_only"
printf '\x00this is not a database\n' >"$seeds/open_corrupt/text"
# engines_ops: byte 0 picks the options (bit 0 a tight cache bound, bit 1
# the other durability classes); the rest feeds FuzzedDataProvider as above.
printf '\x00ns\x00key{"a":1}\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b' >"$seeds/engines_ops/a"
printf '\x01\xff\xfe\xed\xa0\x80csk_\x10\x20\x30\x40\x50\x60\x70\x80\x90' >"$seeds/engines_ops/b"
printf '\x02s0\x00\x00\x00\x1e\x16\x07\x0c\x1a\x1b\x13\x1c\x18\x0e' >"$seeds/engines_ops/c"
{ printf '\x03'; head -c 200 /dev/zero | tr '\0' z; } >"$seeds/engines_ops/d"
# The three run at once, each into its own log: one target alone leaves
# part of the second core idle. Run 60 s at once, they made 67-89% of the
# executions each made in 45 s one after the other (646 against 958, 1,353
# against 1,884, 698 against 788), in 62 s of wall clock against 135 s;
# 75 s each makes about as many.
targets=(store_ops open_corrupt engines_ops)
pids=()
# A script stopped early (an interrupt, a CI timeout) stops them too.
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for target in "${targets[@]}"; do
  ./build-fuzz/fuzz/${target}_fuzzer -max_total_time="$fuzz_seconds" \
    -print_final_stats=1 -artifact_prefix=build-fuzz/${target}- \
    "$seeds/$target" >"build-fuzz/${target}.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!targets[@]}"; do
  if wait "${pids[$i]}"; then
    echo "-- ${targets[$i]}: $(grep -E 'stat::number_of_executed_units' \
      "build-fuzz/${targets[$i]}.log")"
  else
    # From the first report on (the watchdog's comes before its gdb
    # stacks), or the last lines when there is none.
    log="build-fuzz/${targets[$i]}.log"
    first=$(grep -n -m1 -E 'ERROR|fuzz check failed|deadly signal' "$log" |
      cut -d: -f1 || true)
    echo "-- ${targets[$i]} FAILED; $log from line ${first:-(last 150)}:"
    if [ -n "$first" ]; then tail -n "+$first" "$log"; else tail -n 150 "$log"; fi
    failed=1
  fi
done
trap - EXIT
if [ "$failed" != 0 ]; then exit 1; fi

step "all test suites passed"
