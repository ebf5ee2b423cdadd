#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and end-to-end tests on real processes
# (including a real vLLM CPU server, whose virtualenv is built once into ~/.cache/ramscope-e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# End-to-end tests share one vLLM server; run them on one thread so they do not compete for
# the machine's cores while it starts.
cargo test --workspace --release -- --test-threads=2
