#!/usr/bin/env bash
# Builds the tracer's test programs from source into OUT_DIR (created if missing):
#   alloc, alloc-O2     known allocations of every kind (alloc.c), at -O1 and at -O2
#   storm               the 16-thread malloc storm (storm.c)
#   fakecuda/           libcuda.so.1 and libcudart.so.12: a fake CUDA driver and runtime
#   pinned              pinned memory through them (run with LD_LIBRARY_PATH=OUT_DIR/fakecuda)
# The Python programs (alloc.py, churn.py, calls.py) run from this folder as they are.
#
#   build.sh OUT_DIR            CC and EXTRA_CFLAGS are honoured
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: build.sh OUT_DIR" >&2; exit 2; }
src=$(cd "$(dirname "$0")" && pwd)
out=$1
cc=${CC:-gcc}
# Frame pointers and line tables, so stacks unwind and resolve to the SITE lines.
flags=(-g -fno-omit-frame-pointer -Wall -Wextra -Werror ${EXTRA_CFLAGS:-})
mkdir -p "$out/fakecuda"

"$cc" "${flags[@]}" -O1 -pthread -o "$out/alloc" "$src/alloc.c" -lrt
"$cc" "${flags[@]}" -O2 -pthread -o "$out/alloc-O2" "$src/alloc.c" -lrt
"$cc" "${flags[@]}" -O1 -pthread -o "$out/storm" "$src/storm.c"

fc=$src/fakecuda
"$cc" "${flags[@]}" -O1 -shared -fPIC -fvisibility=hidden -pthread -Wl,-soname,libcuda.so.1 \
  -o "$out/fakecuda/libcuda.so.1" "$fc/cuda.c"
"$cc" "${flags[@]}" -O1 -shared -fPIC -fvisibility=hidden -pthread -Wl,-soname,libcudart.so.12 \
  -o "$out/fakecuda/libcudart.so.12" "$fc/cudart.c" -ldl
# Linked by path, so the program's NEEDED entry is the soname libcudart.so.12 and the loader
# finds it through LD_LIBRARY_PATH, as with a real CUDA install.
"$cc" "${flags[@]}" -O1 -o "$out/pinned" "$fc/pinned.c" "$out/fakecuda/libcudart.so.12" -ldl
