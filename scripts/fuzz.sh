#!/usr/bin/env bash
# Coverage-guided fuzzing (AFL++ through `cargo afl`, stable Rust) of every decoder that takes
# outside bytes: the wire codec, console requests, hotlist CSV, gpsd JSON, certificate requests,
# the broker's control answers. Each target runs for FUZZ_SECONDS (default 60) from its corpus in
# fuzz/corpus/TARGET; a crash fails the run and its input is copied to fuzz/crashes/TARGET for
# reproduction (`target/fuzz/release/TARGET < INPUT`). Installs cargo-afl if missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-60}
targets=(wire_decode console_request hotlist_csv gpsd_json certificate_request broker_response)
say() { printf 'fuzz: %s\n' "$*" >&2; }

if ! cargo afl --version >/dev/null 2>&1; then
  say "installing cargo-afl 0.18.2 (AFL++ for Rust, from crates.io)"
  cargo install cargo-afl --locked --version 0.18.2 >&2
fi
target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}/fuzz}
target_dir=$(mkdir -p "$target_dir" && cd "$target_dir" && pwd)
say "building the targets (instrumented, in $target_dir)"
(cd fuzz && CARGO_TARGET_DIR="$target_dir" cargo afl build --release --locked 2>&1 | tail -n 3 >&2)

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
out=$target_dir/afl-out
failed=0
for t in "${targets[@]}"; do
  rm -rf "${out:?}/$t"
  mkdir -p "$out"
  cargo afl fuzz -V "$seconds" -i "fuzz/corpus/$t" -o "$out/$t" "$target_dir/release/$t" >"$out/$t.log" 2>&1 || {
    say "$t: afl-fuzz failed to run; see $out/$t.log"; failed=1; continue; }
  stats="$out/$t/default/fuzzer_stats"
  execs=$(awk -F': *' '/^execs_done/ {print $2}' "$stats")
  crashes=$(awk -F': *' '/^saved_crashes/ {print $2}' "$stats")
  edges=$(awk -F': *' '/^edges_found/ {print $2}' "$stats")
  say "$t: $execs runs, $edges edges, $crashes crashes"
  if [ "${crashes:-0}" != 0 ]; then
    mkdir -p "fuzz/crashes/$t"
    cp "$out/$t/default/crashes/"id:* "fuzz/crashes/$t/" 2>/dev/null || true
    failed=1
  fi
done
exit $failed
