#!/usr/bin/env bash
# `make lint`: cargo fmt --check, clippy with warnings as errors, and cargo deny (installed if
# missing, pinned). cargo deny checks licences, bans and sources offline; advisories need the
# RustSec database, which this machine cannot fetch from GitHub: point DENY_ADVISORY_DB at a
# clone of github.com/rustsec/advisory-db (its default place is ~/.cache/trailer-alpr/advisory-db)
# and they are checked against it, offline; without one the run says so and skips them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf 'lint: %s\n' "$*" >&2; }
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
if ! cargo deny --version >/dev/null 2>&1; then
  say "installing cargo-deny 0.20.2 (from crates.io)"
  cargo install cargo-deny --locked --version 0.20.2 >&2
fi
cargo deny --offline check licenses bans sources
db=${DENY_ADVISORY_DB:-$HOME/.cache/trailer-alpr/advisory-db}
if [ -d "$db/crates" ]; then
  # cargo deny looks for the database of its default address here (the name is that address's
  # hash), and with --offline uses it as it is.
  mkdir -p "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
  ln -sfn "$db" "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
  say "advisories against the RustSec database at $db ($(git -C "$db" log -1 --format=%cs 2>/dev/null || echo undated))"
  cargo deny --offline check advisories
else
  say "advisories not checked: no RustSec database at $db (set DENY_ADVISORY_DB)"
fi
