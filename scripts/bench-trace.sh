#!/usr/bin/env bash
# What `ramscope trace` costs a traced program, side by side with memray (Python and
# --native) and heaptrack, on the same machine in the same invocation:
#   py-malloc  allocation-heavy Python (tests/trace_programs/churn.py)
#   py-calls   call-heavy pure Python, few allocations (calls.py)
#   c-storm    16 threads of malloc/realloc/free (storm.c)
#   vllm       (--vllm) a vLLM CPU server: start, 16 requests, Ctrl-C, exit
# Each runs 3 times after one untraced warm-up; one table of medians and ratios to the untraced run is printed. The
# goals: at most 1.3x everywhere, at most 1.1x on vLLM, below memray. Nothing is asserted.
#
#   scripts/bench-trace.sh [--vllm] [--repeat N] [--tools a,b] [--workloads a,b] [RAMSCOPE_BIN]
#
# RAMSCOPE_BIN defaults to target/release/ramscope; libramscope_trace.so is looked for next to
# it. When `ramscope trace --help` works the ramscope column runs `ramscope trace --out DIR --
# CMD`, else LD_PRELOAD of the library with RAMSCOPE_TRACE_DIR. memray is installed from PyPI
# into a venv under $RAMSCOPE_BENCH_CACHE (default ~/.cache/ramscope-bench), heaptrack with
# apt-get when missing; the vLLM environment comes from scripts/vllm-cpu-env.sh. The vLLM
# workload waits until no other vLLM process runs (its timing would be meaningless).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${RAMSCOPE_BENCH_CACHE:-$HOME/.cache/ramscope-bench}
log() { echo "[bench-trace] $*" >&2; }

vllm=0 pass=() bin=
while [[ $# -gt 0 ]]; do
  case $1 in
    --vllm) vllm=1 ;;
    --repeat|--tools|--workloads|--storm-rounds) pass+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) bin=$1 ;;
  esac
  shift
done
bin=${bin:-$root/target/release/ramscope}
lib=${RAMSCOPE_TRACE_LIB:-$(dirname "$bin")/libramscope_trace.so}
[[ -x $bin ]] || { echo "no ramscope binary at $bin (cargo build --release)" >&2; exit 1; }
# The library is needed only when the binary has no `trace` launcher yet.
if ! "$bin" trace --help >/dev/null 2>&1 && [[ ! -f $lib ]]; then
  echo "no $lib (cargo build --release -p ramscope-trace)" >&2
  exit 1
fi

mkdir -p "$cache"
programs=$cache/programs
log "building the workloads into $programs"
bash "$root/crates/ramscope/tests/trace_programs/build.sh" "$programs"

venv=$cache/memray-venv
if [[ ! -x $venv/bin/memray ]]; then
  log "installing memray into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q memray >&2
fi
memray_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

if ! command -v heaptrack >/dev/null; then
  log "installing heaptrack"
  sudo=; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get install -y heaptrack >&2
fi

vllm_args=()
if [[ $vllm -eq 1 ]]; then
  read -r vllm_venv model < <(bash "$here/vllm-cpu-env.sh")
  vllm_args=(--vllm "$vllm_venv" "$model")
fi

# Python workloads run on memray's interpreter (memray needs it; the others get the same one).
exec python3 "$here/bench-trace.py" --programs "$programs" \
  --sources "$root/crates/ramscope/tests/trace_programs" --python "$venv/bin/python" \
  --ramscope "$bin" --lib "$lib" --memray-site "$memray_site" "${vllm_args[@]}" "${pass[@]}"
