#!/usr/bin/env bash
# Builds convstore and runs the whole test suite, as CI does:
#   1. clang-format check of every C++ file;
#   2. RelWithDebInfo build with warnings as errors, the Catch2 suite via ctest,
#      and a run of the demo;
#   3. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer;
#   4. the same suite under ThreadSanitizer.
# Each build has its own directory (build-ci, build-asan, build-tsan).
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

build_and_test() {  # dir, extra cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCONVSTORE_WERROR=ON "$@" >/dev/null
  cmake --build "$dir"
  ctest --test-dir "$dir" --output-on-failure -j2 "${label_args[@]}"
}

step "build + tests (RelWithDebInfo, -Werror)"
build_and_test build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo
step "demo"
./build-ci/convstore demo --db build-ci/demo.db

step "AddressSanitizer + UndefinedBehaviorSanitizer"
export ASAN_OPTIONS=abort_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DCONVSTORE_SANITIZE=address \
  -DCONVSTORE_BUILD_BENCHMARKS=OFF

step "ThreadSanitizer"
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
build_and_test build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVSTORE_SANITIZE=thread \
  -DCONVSTORE_BUILD_BENCHMARKS=OFF

step "all test suites passed"
