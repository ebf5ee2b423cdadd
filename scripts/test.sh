#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and end-to-end tests on real processes
# (including a real vLLM CPU server, whose virtualenv is built once into ~/.cache/ramscope-e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The report and exporter tests drive a real headless browser and a real Prometheus server.
if ! command -v chromium >/dev/null || ! command -v prometheus >/dev/null; then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium prometheus
  else
    echo "chromium and prometheus are needed by the tests: apt-get install -y chromium prometheus"
    echo "(or set RAMSCOPE_SKIP_BROWSER=1 RAMSCOPE_SKIP_PROMETHEUS=1 to skip those parts)"
  fi
fi
# End-to-end tests share one vLLM server; run them on one thread so they do not compete for
# the machine's cores while it starts.
cargo test --workspace --release -- --test-threads=2
