#!/usr/bin/env bash
# Runs every test: unit tests of each crate, then the end-to-end scenarios (one binary) against a
# real Mosquitto, the real server and appliance binaries, GStreamer and ONNX Runtime.
# Expects `make build` to have run (the Makefile's `test` target does).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The end-to-end tests start their binaries from target/debug and their own Mosquitto.
command -v mosquitto >/dev/null || { echo "mosquitto missing: run make setup" >&2; exit 1; }
cargo test --workspace --no-fail-fast -- --test-threads 2
