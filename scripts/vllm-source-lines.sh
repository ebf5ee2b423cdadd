#!/usr/bin/env bash
# Regenerates crates/ramscope/src/engines/vllm/source_lines.tsv: where each estimator
# component's allocation is in every vLLM release ramscope models (one per minor, listed in
# scripts/vllm-releases.txt), from `ramscope scan --check --source-lines` of that release's
# source archive (fetched once by scripts/vllm-sources.sh). The rows come from the sites
# table and the scan alone, so one configuration serves every component. tests/scan_vllm.rs
# fails when the table and the sources disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=target/release/ramscope
config=(-- vllm serve Qwen/Qwen3-8B --max-model-len 5120 --max-num-seqs 256)
mapfile -t releases < <(grep -v '^#' scripts/vllm-releases.txt)
out=crates/ramscope/src/engines/vllm/source_lines.tsv
tmp=$(mktemp)
while read -r version dir; do
  # A release whose check fails still lists where its components are.
  "$bin" scan "$dir" --check --source-lines "${config[@]}" >> "$tmp" || true
  if ! grep -q "^$version	" "$tmp"; then
    echo "no source lines for vllm $version ($dir)" >&2
    exit 1
  fi
done < <(scripts/vllm-sources.sh "${releases[@]}")
mv "$tmp" "$out"
echo "wrote $out ($(wc -l < "$out") rows, ${#releases[@]} releases)"
