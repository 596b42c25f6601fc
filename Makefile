# Two commands do everything on a fresh Debian 12 machine (as root):
#   make demo   - the main job: Mosquitto + sync server + appliance reading plates from a video
#   make test   - every test
# Both install what is missing first (scripts/setup.sh) and are idempotent.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: setup build build-release demo test lint fmt fuzz bench-alpr bench-store bench-capture bench-videos photo-videos bench-video-vs-stills bench-sync bench-server bench-alerts clean-demo example-configs packages

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
	@test -n "$(VIDEO)" || { echo "usage: make bench-capture VIDEO=<file> [EXPECTED=<passes.csv>]  (make bench-videos renders scenes; make photo-videos turns the benchmark photos into videos)"; exit 2; }
	$${CARGO_TARGET_DIR:-target}/release/bench-capture $(if $(EXPECTED),--expected $(EXPECTED)) $(VIDEO)

# The benchmark photos as a roadside camera would record them (1080p15 H.264, a keyframe every
# 2 s, each car in view 2 s, 1 s of road between), with their passes in a .csv beside each video.
PHOTO_SETS ?= us-dev eu
BENCH_DATA ?= ../shared/data/openalpr-benchmarks
photo-videos: build-release
	@mkdir -p bench-videos
	@for set in $(PHOTO_SETS); do \
	  $${CARGO_TARGET_DIR:-target}/release/photo-video --out bench-videos/photos-$$set.mp4 $(BENCH_DATA)/$$set || exit 1; \
	done

# Video against stills on the same cars, in one run: bench-alpr on each set's photos and
# bench-capture on its video; one JSON line with both `exact` figures per set.
bench-video-vs-stills: photo-videos
	@bash scripts/bench-video-vs-stills.sh $(BENCH_DATA) $(PHOTO_SETS)

# Scenes for bench-capture: a static road (60 s), 12 vehicles passing (1080p30), and a car parked
# in view for 2 minutes (1080p15).
bench-videos: build-release
	@mkdir -p bench-videos
	$${CARGO_TARGET_DIR:-target}/release/make-scene-video --out bench-videos/static-1080p.mp4 --vehicles 0 --idle-s 60 --fps 30 --width 1920 --height 1080
	$${CARGO_TARGET_DIR:-target}/release/make-scene-video --out bench-videos/busy-1080p.mp4 --vehicles 12 --fps 30 --width 1920 --height 1080 --seed 7
	$${CARGO_TARGET_DIR:-target}/release/make-scene-video --out bench-videos/parked-1080p.mp4 --vehicles 0 --parked-s 120 --fps 15 --width 1920 --height 1080 --seed 5

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
