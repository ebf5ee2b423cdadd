#!/usr/bin/env bash
# Checks ramscope on a real CUDA process (needs an NVIDIA GPU and a Python with CUDA torch):
# pinned host memory, the driver mappings and CUDA libraries are attributed to their
# categories, a CUDA child shares library pages with its parent, and `calibrate` measures the
# CUDA context. Results go to $OUT (default ./gpu-check-out).
#
#   scripts/gpu-check.sh [path/to/ramscope] [python]
set -euo pipefail
bin=${1:-target/release/ramscope}
python=${2:-python3}
out=${OUT:-gpu-check-out}
mkdir -p "$out"
nvidia-smi -L | tee "$out/gpu.txt"
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$out/gpu.txt"

# A CUDA process in known stages: context, pinned buffers (5 MiB + 300 MiB), cuBLAS work, and a
# child that only creates a context.
fifo=$(mktemp -u); mkfifo "$fifo"
"$python" -u - > "$fifo" <<'PY' &
import os, sys, time, subprocess, torch
torch.ones(1, device="cuda"); torch.cuda.synchronize()
small = torch.empty(5 << 20 >> 2, dtype=torch.int32, pin_memory=True)
big = torch.empty(300 << 20, dtype=torch.uint8, pin_memory=True); big.fill_(1)
a = torch.randn(2048, 2048, device="cuda"); (a @ a).sum().item()
child = subprocess.Popen([sys.executable, "-c", "import torch,time; torch.ones(1,device='cuda'); print('child', flush=True); time.sleep(120)"], stdout=subprocess.PIPE)
child.stdout.readline()
print("ready", os.getpid(), flush=True)
time.sleep(120)
PY
probe=$!
read -r word pid < "$fifo"
[[ $word == ready ]] || { echo "probe failed"; exit 1; }
"$bin" measure "$pid" --json > "$out/measure.json"
"$bin" measure "$pid" --by category > "$out/measure-category.txt"
"$bin" measure "$pid" --by mapping --top 25 > "$out/measure-mapping.txt"
kill "$probe" 2>/dev/null || true; pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true
"$python" - "$out/measure.json" <<'PY' | tee "$out/verdict.txt"
import json, sys
d = json.load(open(sys.argv[1]))
parent, child = d["processes"][0], d["processes"][1]
cat = lambda p, c, f="pss_bytes": p["categories"].get(c, {}).get(f, 0)
checks = {
    "pinned >= 512 MiB + 8 MiB (power-of-two rounding)": cat(parent, "pinned", "rss_bytes") >= (520 << 20),
    "gpu-driver mapped": cat(parent, "gpu-driver", "size_bytes") > 0,
    "code.cuda resident": cat(parent, "code.cuda") > (50 << 20),
    "code.torch resident": cat(parent, "code.torch") > (30 << 20),
    "other is zero": cat(parent, "other") == 0 and cat(child, "other") == 0,
    "child PSS below its RSS (shared libraries)": child["pss_bytes"] < child["rss_bytes"],
    "uses_gpu": parent["uses_gpu"] and child["uses_gpu"],
}
for k, v in checks.items():
    print(("PASS " if v else "FAIL ") + k)
print("parent PSS MiB", parent["pss_bytes"] >> 20, "child PSS MiB", child["pss_bytes"] >> 20, "tree PSS", d["total"]["pss_bytes"] >> 20, "RSS sum", d["total"]["rss_sum_bytes"] >> 20)
sys.exit(0 if all(checks.values()) else 1)
PY
"$bin" calibrate --python "$python" --out "$out/calibration.json" --json > "$out/calibrate.txt" 2>&1 || echo "calibrate exited $?" >> "$out/calibrate.txt"
"$bin" estimate --calibration "$out/calibration.json" --json -- vllm serve Qwen/Qwen3-8B --max-model-len 5120 > "$out/estimate.json" || true
echo done
