#!/usr/bin/env bash
# Checks `ramscope run` on a real CUDA process (needs an NVIDIA GPU and a Python with CUDA
# torch): a 1 GiB pinned host buffer allocated at ~1 s and freed at ~2 s shows as a `pinned`
# peak of 1 GiB at the right time, and the HTML report renders. Results go to $OUT (default
# ./gpu-record-check-out).
#
#   scripts/gpu-record-check.sh [path/to/ramscope] [python]
set -euo pipefail
bin=${1:-target/release/ramscope}
python=${2:-python3}
out=${OUT:-gpu-record-check-out}
mkdir -p "$out"
nvidia-smi -L | tee "$out/gpu.txt"
"$bin" run --interval 100ms --out "$out/rec.jsonl" --json -- "$python" -c '
import sys, time, torch
torch.ones(1, device="cuda"); torch.cuda.synchronize()
time.sleep(1.0)
t0 = time.monotonic()
buf = torch.empty(1 << 30, dtype=torch.uint8, pin_memory=True); buf.fill_(1)
t1 = time.monotonic()
time.sleep(1.0)
t2 = time.monotonic()
del buf
torch.cuda.synchronize()
getattr(torch._C, "_host_emptyCache", lambda: None)()  # the caching host allocator keeps it otherwise
time.sleep(1.0)
print(f"marks {t0} {t1} {t2}", file=sys.stderr)
' > "$out/report.json" 2> "$out/run.err"
"$bin" report "$out/rec.jsonl" --html "$out/report.html" > "$out/report.txt"
"$python" - "$out/report.json" "$out/rec.jsonl" "$out/run.err" <<'PY' | tee "$out/verdict.txt"
import json, sys
report = json.load(open(sys.argv[1]))
lines = [json.loads(l) for l in open(sys.argv[2])]
header, samples = lines[0], [l for l in lines[1:] if l.get("schema") == "ramscope.snapshot/1"]
marks = [l for l in open(sys.argv[3]) if l.startswith("marks ")][0].split()[1:]
t0, t1, t2 = (float(m) - header["monotonic_start_s"] for m in marks)
def pinned(s):
    ps = [p for p in s["processes"] if p.get("categories")]
    return sum(p["categories"].get("pinned", {}).get("pss_bytes", 0) for p in ps) if ps else None
series = [(s["t_s"], pinned(s)) for s in samples if pinned(s) is not None]
before = max([v for t, v in series if t < t0] or [0])
peak_t, peak = max(((t, v) for t, v in series), key=lambda x: x[1])
after = [v for t, v in series if t > t2 + 0.3]
above = (peak - before) / 2**20
proc = max(report["processes"], key=lambda p: p["peak_rss_bytes"])
checks = {
    f"pinned peak {above:.0f} MiB above its level before is 1 GiB within 5 %": abs(above - 1024) <= 51.2,
    f"pinned peak at {peak_t:.2f} s, between allocation ({t0:.2f} s) and free ({t2:.2f} s)": t0 - 0.01 <= peak_t <= t2 + 0.01,
    f"RSS peak at {proc['peak_rss_t_s']:.2f} s, between allocation and free": t0 - 0.01 <= proc["peak_rss_t_s"] <= t2 + 0.01,
}
for k, v in checks.items():
    print(("PASS " if v else "FAIL ") + k)
print(f"pinned after the free: {[round(v / 2**20) for v in after]} MiB")
o = report["overhead"]
print(f"sampler: {o['cpu_s_per_sample']*1e3:.2f} ms CPU per sample, {o['smaps_reads']} smaps reads of {o['mean_smaps_s']*1e3:.1f} ms")
sys.exit(0 if all(checks.values()) else 1)
PY
echo done
