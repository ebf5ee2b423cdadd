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
# A release published without a source archive (0.15.0 and 0.15.1 have wheels only) is taken
# from its smallest wheel instead: its Python files and its METADATA, which carries the
# version as a source archive's PKG-INFO does; compiled libraries are not unpacked.
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
  read -r kind url sha < <(curl -fsSL --retry 3 -H 'Accept: application/vnd.pypi.simple.v1+json' \
    "$index/vllm/" | "$python" -c '
import json, sys
version = sys.argv[1]
files = json.load(sys.stdin)["files"]
sdist = "vllm-" + version + ".tar.gz"
for f in files:
    if f["filename"] == sdist:
        print("sdist", f["url"], f["hashes"]["sha256"])
        sys.exit()
wheels = [f for f in files
          if f["filename"].startswith("vllm-" + version + "-") and f["filename"].endswith(".whl")]
if not wheels:
    sys.exit("no source archive or wheel of vllm " + version + " on the registry")
w = min(wheels, key=lambda f: (f.get("size") or 0, f["filename"]))
print("wheel", w["url"], w["hashes"]["sha256"])
' "$version")
  log "fetching vllm $version ($kind, once)"
  archive=$cache/vllm-$version.$kind
  curl -fsSL --retry 3 -o "$archive.part" "$url"
  echo "$sha  $archive.part" | sha256sum -c --quiet -
  mv "$archive.part" "$archive"
  mkdir -p "$dir.part"
  if [[ $kind == sdist ]]; then
    tar -xzf "$archive" -C "$dir.part" --strip-components=1
  else
    "$python" - "$archive" "$dir.part" <<'PY'
import os, sys, zipfile
archive, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(archive) as z:
    for name in z.namelist():
        parts = name.split("/")
        wanted = (parts[0] == "vllm" and name.endswith(".py")) or (
            len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA")
        if not wanted or ".." in parts or name.startswith("/"):
            continue
        target = os.path.join(out, *parts)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(name) as src, open(target, "wb") as dst:
            dst.write(src.read())
PY
  fi
  rm -f "$archive"
  mv "$dir.part" "$dir"
  touch "$dir/.ready"
  echo "$version $dir"
done
