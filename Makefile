# Two commands do everything on a fresh Debian 12 machine (as root):
#   make demo   - the main job: Mosquitto + sync server + appliance reading plates from a video
#   make test   - every test
# Both install what is missing first (scripts/setup.sh) and are idempotent.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: setup build build-release demo test lint fmt fuzz bench-alpr bench-store bench-capture bench-videos bench-sync bench-server bench-alerts clean-demo example-configs packages

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --workspace --bins --tests

build-release: setup
	$(CARGO) build --release --workspace --bins

demo: build-release
	@bash scripts/demo.sh

test: build
	bash scripts/test.sh

# Formatting, clippy, and cargo deny (licences, bans, sources; advisories against a local
# RustSec database when DENY_ADVISORY_DB names one: see scripts/lint.sh).
lint: setup
	bash scripts/lint.sh

# Coverage-guided fuzzing of every decoder of outside bytes, FUZZ_SECONDS (default 60) a target.
fuzz:
	bash scripts/fuzz.sh

fmt:
	$(CARGO) fmt --all

# The commented example configurations, generated from the doc comments of the config types
# (a unit test fails when a shipped example differs from what the code generates).
example-configs: build
	$${CARGO_TARGET_DIR:-target}/debug/appliance print-default-config > appliance/appliance.example.toml
	$${CARGO_TARGET_DIR:-target}/debug/sync-server print-default-config > sync-server/server.example.toml

# The Debian packages (trailer-alpr for the trailer, trailer-alpr-server for the agency) in
# dist/, reproducible: the same tree and SOURCE_DATE_EPOCH give the same bytes.
packages: build-release
	bash scripts/packages.sh

clean-demo:
	rm -rf demo-state

# Engine accuracy and speed on a folder in the OpenALPR benchmark layout, e.g.
#   make bench-alpr DIR=../shared/data/openalpr-benchmarks/us-dev
ALPR_REF ?= $(wildcard ../shared/tools/alpr-ref)
bench-alpr: build-release
	@test -n "$(DIR)" || { echo "usage: make bench-alpr DIR=<folder>"; exit 2; }
	$${CARGO_TARGET_DIR:-target}/release/bench-alpr $(if $(ALPR_REF),--reference $(ALPR_REF)) $(DIR)

# The capture path on a video: frames, gate, reads, CPU per minute of video, peak memory.
bench-capture: build-release
	@test -n "$(VIDEO)" || { echo "usage: make bench-capture VIDEO=<file>  (make bench-videos renders a static and a busy 1080p scene)"; exit 2; }
	$${CARGO_TARGET_DIR:-target}/release/bench-capture $(VIDEO)

# Two 1080p30 scenes for bench-capture: a static road (60 s) and 12 vehicles passing.
bench-videos: build-release
	@mkdir -p bench-videos
	$${CARGO_TARGET_DIR:-target}/release/make-scene-video --out bench-videos/static-1080p.mp4 --vehicles 0 --idle-s 60 --fps 30 --width 1920 --height 1080
	$${CARGO_TARGET_DIR:-target}/release/make-scene-video --out bench-videos/busy-1080p.mp4 --vehicles 12 --fps 30 --width 1920 --height 1080 --seed 7

# The trailer store: write rate, bytes on disk per payload byte, 60-day purge, open, hotlists.
bench-store: build-release
	$${CARGO_TARGET_DIR:-target}/release/bench-store

# Sync through a private Mosquitto with mutual TLS and the server binary: ingest rate, a 100k-read
# backlog's drain with an alert raised during it, bytes on the wire per read.
bench-sync: build-release
	$${CARGO_TARGET_DIR:-target}/release/bench-sync

# The server's compliance duties: destroying a day of 1M reads (SQLite, and PostgreSQL day
# partitions) while ingesting, the public log of a year of 50 trailers, audit verify over 1M.
bench-server: build-release
	$${CARGO_TARGET_DIR:-target}/release/bench-server

# A hotlist hit from a trailer to the operator's console line, through a private Mosquitto, the
# server binary and the interactive console: the median, p90 and max of BENCH_HITS (20) hits.
bench-alerts: build-release
	$${CARGO_TARGET_DIR:-target}/release/bench-alerts
