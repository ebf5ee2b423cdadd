#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input, on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]    # default: 600 s a target, every target
#   RUNS=10000000 JOBS=2 scripts/fuzz.sh 900
#
# Each target (fuzz/fuzz_targets/*.rs) is a libFuzzer binary built with LLVM's SanitizerCoverage
# passes, which stable rustc exposes as -C passes / -C llvm-args, so no nightly toolchain is
# needed. Arithmetic overflow and debug assertions are on, so a wrapped number is a crash.
# A target stops after RUNS executions or SECONDS, whichever comes first. Limits per input:
# 1 s (a hang) and 256 MiB (memory). Seeds come from the repository's real fixtures; the
# inputs that found new coverage are merged back into fuzz/corpus/<target>/, which the normal
# test suite replays (crates/ramscope/tests/fuzz_corpora.rs). A crash lands in
# fuzz/artifacts/<target>/; minimise it (`<binary> -minimize_crash=1 FILE`), check it in under
# fuzz/regressions/<target>/ and fix the bug: the test suite replays those too.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
runs=${RUNS:-10000000}
jobs=${JOBS:-$(nproc)}
triple=$(rustc -vV | sed -n 's/^host: //p')
all_targets=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^ramscope-fuzz$')
targets=${*:-$all_targets}

export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# --target keeps these flags off build scripts, which have no libFuzzer runtime to link.
cargo build --quiet --release --manifest-path fuzz/Cargo.toml --target "$triple" --bins
bin=fuzz/target/$triple/release
fixtures=crates/ramscope/tests/fixtures
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Seeds: the real files each parser reads in production, from the repository's fixtures.
seed() {
  local target=$1 dir=$work/seeds/$1
  mkdir -p "$dir"
  case $target in
    smaps) cp "$fixtures"/cuda-torch-h100/*.smaps "$dir"/ ;;
    smaps_rollup) cp "$fixtures"/cuda-torch-h100/*.smaps_rollup "$dir"/ ;;
    status) cp "$fixtures"/cuda-torch-h100/*.status "$fixtures"/cuda-torch-h100/*.cmdline "$dir"/ ;;
    meminfo) cat /proc/meminfo > "$dir/meminfo" ;;
    config_json) cp crates/ramscope/src/catalog/configs/*.json "$dir"/ ;;
    cgroup)
      for v in v1 v2; do
        local root=$fixtures/cgroup-$v
        local stat
        stat=$(find "$root/sys" -name memory.stat | head -n1)
        { cat "$(find "$root/proc" -name cgroup | head -n1)"; printf '\0';
          cat "$(find "$root/proc" -name mountinfo | head -n1)"; printf '\0';
          cat "$stat"; } > "$dir/$v"
      done ;;
    *) local extra=fuzz/seeds/$target
       [[ -d $extra ]] && cp "$extra"/* "$dir"/ ;;
  esac
}

run_target() {
  local target=$1 corpus=fuzz/corpus/$1 log=$work/$1.log
  mkdir -p "$corpus" "fuzz/artifacts/$target" "$work/new/$target"
  seed "$target"
  local start=$SECONDS
  # Found inputs go to a scratch folder first; a merge keeps only those adding coverage.
  "$bin/$target" -runs="$runs" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=256 \
    -malloc_limit_mb=256 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$target/" "$work/new/$target" "$corpus" "$work/seeds/$target" \
    >"$log" 2>&1 || true
  "$bin/$target" -merge=1 -rss_limit_mb=256 -timeout=1 "$corpus" "$work/new/$target" \
    >/dev/null 2>&1 || true
  local execs edges crashes
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  edges=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
  crashes=$(find "fuzz/artifacts/$target" -type f | wc -l)
  printf '%-16s %12s %10s %8s %6s %8s %s\n' "$target" "${execs:-?}" \
    "$(( ${execs:-0} / ( SECONDS - start > 0 ? SECONDS - start : 1 ) ))" "${edges:-?}" \
    "$(find "$corpus" -type f | wc -l)" "$crashes" "$(grep -m1 -o 'ERROR: libFuzzer: [a-z-]*\|panicked at [^ ]*' "$log" || true)"
}

printf '%-16s %12s %10s %8s %6s %8s\n' target executions exec/s edges corpus crashes
export -f run_target seed
export bin work runs seconds fixtures
printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'run_target {}'
