#!/usr/bin/env bash
# Builds (once) a real llama-server, and llama-quantize, from the llama.cpp sources that PyPI's
# llama-cpp-python source archive carries, plus a virtualenv with PyPI's `gguf` package for
# writing small GGUF models; prints "BIN_DIR VENV". Idempotent: a finished build is reused; a
# half-built one is rebuilt. Nothing is downloaded from a model hub.
#
#   scripts/llama-server-env.sh              # llama-cpp-python 0.3.36 (llama.cpp 0c1e570)
#   scripts/llama-server-env.sh 0.3.36
#
# Cache location: $RAMSCOPE_E2E_CACHE, else ~/.cache/ramscope-e2e (outside the repository).
# Needs cmake (installed with apt-get when missing and running as root) and a C++ compiler.
# About 15 minutes on 2 cores the first time.
set -euo pipefail
cache=${RAMSCOPE_E2E_CACHE:-$HOME/.cache/ramscope-e2e}
version=${1:-${RAMSCOPE_LLAMA_CPP_PYTHON_VERSION:-0.3.36}}
python=${RAMSCOPE_PYTHON:-python3}
root=$cache/llama-server-$version
bin=$root/build/bin
venv=$root/venv
stamp=$root/.ready-v1

if [[ -f $stamp ]]; then
  echo "$bin $venv"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock-llama-server-$version"
flock 9
if [[ -f $stamp ]]; then echo "$bin $venv"; exit 0; fi

log() { echo "[llama-server-env $version] $*" >&2; }
if ! command -v cmake >/dev/null; then
  if [[ $(id -u) -eq 0 ]]; then
    log "installing cmake"
    apt-get install -y -q cmake >&2
  else
    echo "cmake is needed (apt-get install cmake)" >&2
    exit 1
  fi
fi
rm -rf "$root"
mkdir -p "$root/src"
log "virtualenv with gguf and scikit-build-core"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q gguf numpy scikit-build-core >&2
log "downloading the llama-cpp-python $version source archive"
"$venv/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation \
  "llama-cpp-python==$version" -d "$root/src" >&2
tar xzf "$root/src/llama_cpp_python-$version.tar.gz" -C "$root/src"
llama=$root/src/llama_cpp_python-$version/vendor/llama.cpp
log "configuring llama.cpp"
cmake -B "$root/build" "$llama" -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Release >&2
log "building llama-server and llama-quantize (about 15 minutes on 2 cores)"
cmake --build "$root/build" --target llama-server llama-quantize -j"$(nproc)" >&2
"$bin/llama-server" --version >&2
touch "$stamp"
echo "$bin $venv"
