#!/usr/bin/env bash
# Regenerates crates/ramscope/src/engines/vllm/cited_lines.tsv: for every estimator component
# that is not one allocation site (cited_lines.spec: runtime baselines, Python objects,
# shared-memory queues, packed weights), the line of each vLLM release ramscope models
# (scripts/vllm-releases.txt) where the code that creates it is, found by its symbol in the
# release's source archive (fetched once by scripts/vllm-sources.sh). A component with no
# match in a release gets no row there (its source stays the bare file). The lines are
# checked against the trees by `cargo test -p ramscope --lib cited_lines`.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t releases < <(grep -v '^#' scripts/vllm-releases.txt)
here=crates/ramscope/src/engines/vllm
scripts/vllm-sources.sh "${releases[@]}" | python3 -c '
import sys

spec = [
    line.rstrip("\n").split("\t")
    for line in open(sys.argv[1], encoding="utf-8")
    if line.strip() and not line.startswith("#")
]
out = []
for entry in sys.stdin:
    release, tree = entry.split()
    done = set()
    for component, described, files, symbol in spec:
        key = (component, described)
        if key in done:
            continue
        for rel in files.split(","):
            try:
                with open(f"{tree}/{rel}", encoding="utf-8", errors="replace") as f:
                    lines = f.readlines()
            except FileNotFoundError:
                continue
            hit = next((i for i, l in enumerate(lines, 1) if symbol in l), None)
            if hit is not None:
                done.add(key)
                out.append("\t".join([release, component, described, f"{rel}:{hit}", symbol]))
                break
sys.stdout.write("".join(row + "\n" for row in out))
' "$here/cited_lines.spec" > "$here/cited_lines.tsv.tmp"
mv "$here/cited_lines.tsv.tmp" "$here/cited_lines.tsv"
echo "wrote $here/cited_lines.tsv ($(wc -l < "$here/cited_lines.tsv") rows, ${#releases[@]} releases)"
