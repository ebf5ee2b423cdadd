#!/usr/bin/env bash
# Fetches (once) vLLM's source archives from the package registry and prints the unpacked
# tree of each, for `ramscope scan` tests. Archives are checked against the registry's sha256
# and cached outside the repository; a finished tree is reused.
#
#   scripts/vllm-sources.sh 0.11.0 0.12.0 0.33.0   # prints one "VERSION DIR" line each
#
# Cache location: $RAMSCOPE_E2E_CACHE/vllm-src, else ~/.cache/ramscope-e2e/vllm-src.
# Why not `pip download --no-binary`: it builds the package's metadata, which needs torch and
# cmake; the archive itself is all a scan reads.
set -euo pipefail
cache=${RAMSCOPE_E2E_CACHE:-$HOME/.cache/ramscope-e2e}/vllm-src
index=${RAMSCOPE_PYPI_SIMPLE:-https://pypi.org/simple}
python=${RAMSCOPE_PYTHON:-python3}
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
log() { echo "[vllm-sources] $*" >&2; }

for version in "$@"; do
  dir=$cache/vllm-$version
  if [[ -f $dir/.ready ]]; then
    echo "$version $dir"
    continue
  fi
  rm -rf "$dir" "$dir.part"
  log "fetching vllm $version source archive (once)"
  read -r url sha < <(curl -fsSL --retry 3 -H 'Accept: application/vnd.pypi.simple.v1+json' \
    "$index/vllm/" | "$python" -c '
import json, sys
want = "vllm-" + sys.argv[1] + ".tar.gz"
for f in json.load(sys.stdin)["files"]:
    if f["filename"] == want:
        print(f["url"], f["hashes"]["sha256"])
        break
else:
    sys.exit("no source archive " + want + " on the registry")
' "$version")
  archive=$cache/vllm-$version.tar.gz
  curl -fsSL --retry 3 -o "$archive.part" "$url"
  echo "$sha  $archive.part" | sha256sum -c --quiet -
  mv "$archive.part" "$archive"
  mkdir -p "$dir.part"
  tar -xzf "$archive" -C "$dir.part" --strip-components=1
  rm -f "$archive"
  mv "$dir.part" "$dir"
  touch "$dir/.ready"
  echo "$version $dir"
done
