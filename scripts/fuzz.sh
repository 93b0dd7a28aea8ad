#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz/ (docs/testing.md), built with
# clang, ASan and UBSan in build-fuzz/.
#
#   scripts/fuzz.sh           every harness for FUZZ_SECONDS seconds (default 60)
#   scripts/fuzz.sh --smoke   every regression input and seed once, then every
#                             harness for FUZZ_SECONDS seconds (default 5): CI
#
#   FUZZ_HARNESSES="ready broker_core"   only these harnesses
#   FUZZ_BUILD_DIR=dir                   another build directory
#
# Prints the executions and the findings of each harness. Exits 1 when
# anything was found (each finding's reproducer is kept under
# <build>/fuzz/findings/<harness>/ and named in the output), 0 otherwise.
# New inputs the fuzzer finds interesting go to <build>/fuzz/corpus/, never
# into the repository's seeds.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
case "${1:-}" in
  --smoke) smoke=1 ;;
  "") ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac
seconds=${FUZZ_SECONDS:-$([[ $smoke == 1 ]] && echo 5 || echo 60)}
build=${FUZZ_BUILD_DIR:-build-fuzz}

scripts/install-deps.sh --fuzz
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  # Line tables are all a sanitizer report needs, and much cheaper to build
  # than full debug info.
  CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only" -DTROUPE_FUZZ=ON -DTROUPE_BUILD_BENCH=OFF >/dev/null
fi
mkdir -p "$build/fuzz"
if ! cmake --build "$build" -j "$(nproc)" --target troupe-fuzzers >"$build/fuzz/build.log" 2>&1; then
  tail -n 40 "$build/fuzz/build.log" >&2
  echo "fuzz: the harnesses do not build (log: $build/fuzz/build.log)" >&2
  exit 2
fi

if [[ -n "${FUZZ_HARNESSES:-}" ]]; then
  read -r -a harnesses <<<"$FUZZ_HARNESSES"
else
  harnesses=()
  for f in tests/fuzz/*.cpp; do
    name=$(basename "$f" .cpp)
    [[ $name == replay_main ]] || harnesses+=("$name")
  done
fi

# Per-harness limits. unpack_bounded promises allocation bounded by its
# input, so any single allocation over 16 MB is a finding there.
malloc_limit() { [[ $1 == unpack_bounded ]] && echo 16 || echo 256; }
max_len() { [[ $1 == broker_core ]] && echo 8192 || echo 4096; }

total_execs=0
findings=0
started=$SECONDS
for name in "${harnesses[@]}"; do
  exe="$build/bin/troupe-fuzz-${name//_/-}"
  [[ -x $exe ]] || { echo "$name: no such harness ($exe)" >&2; exit 2; }
  work="$build/fuzz/corpus/$name"
  found="$build/fuzz/findings/$name"
  log="$build/fuzz/logs/$name.log"
  mkdir -p "$work" "$found" "$(dirname "$log")"
  seeds=()
  for d in "tests/fuzz/regressions/$name" "tests/fuzz/corpus/$name"; do
    [[ -d $d ]] && seeds+=("$d")
  done
  opts=(-print_final_stats=1 -timeout=10 -rss_limit_mb=2048 "-malloc_limit_mb=$(malloc_limit "$name")"
        "-artifact_prefix=$found/")
  # The example actors print a line per instance built: keep the log small.
  [[ $name == dispatch ]] && opts+=(-close_fd_mask=2)

  touch "$log.start"  # findings of this run are the files newer than it
  status=0
  # The seeds and the reproducers of past findings are read first, so a
  # regression fails here before any fuzzing; -runs=0 stops after them.
  # No -max_len here: it would cut the inputs longer than that.
  if [[ $smoke == 1 && ${#seeds[@]} -gt 0 ]]; then
    "$exe" "${opts[@]}" -runs=0 "${seeds[@]}" >"$log.replay" 2>&1 || status=$?
  fi
  if [[ $status == 0 ]]; then
    "$exe" "${opts[@]}" "-max_len=$(max_len "$name")" "-max_total_time=$seconds" "$work" "${seeds[@]}" \
      >"$log" 2>&1 || status=$?
  else
    mv "$log.replay" "$log"
  fi
  rm -f "$log.replay"
  # -a: a harness's log may hold bytes of its inputs (the broker core logs names).
  execs=$(grep -ao 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  execs=${execs:-0}
  total_execs=$((total_execs + execs))
  if [[ $status == 0 ]]; then
    printf '%-15s %12s executions  corpus %5s  no finding\n' "$name" "$execs" "$(find "$work" -type f | wc -l)"
    continue
  fi
  findings=$((findings + 1))
  reproducer=$(find "$found" -type f -newer "$log.start" | head -1)
  printf '%-15s %12s executions  FINDING (exit %s)\n' "$name" "$execs" "$status"
  grep -a -m1 -E 'fuzz invariant failed|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error:|SUMMARY:' "$log" \
    | sed 's/^/    /' || true
  if [[ -n $reproducer ]]; then
    # The harness's own message went to stderr, which -close_fd_mask may hide: replay once to show it.
    "$exe" "$reproducer" 2>&1 | grep -a -m1 'fuzz invariant failed' | sed 's/^/    /' || true
    echo "    reproducer: $reproducer"
    echo "    replay:     $exe $reproducer"
  fi
  echo "    log:        $log"
done

echo "fuzz: ${#harnesses[@]} harnesses, $total_execs executions in $((SECONDS - started)) s, $findings with findings"
[[ $findings == 0 ]]
