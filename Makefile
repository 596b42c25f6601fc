# Two commands do everything on a fresh Debian 12 machine (as root):
#   make demo   - the main job: Mosquitto + sync server + appliance reading plates from a video
#   make test   - every test
# Both install what is missing first (scripts/setup.sh) and are idempotent.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: setup build build-release demo test lint fmt bench-alpr bench-store clean-demo

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

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean-demo:
	rm -rf demo-state

# Engine accuracy and speed on a folder in the OpenALPR benchmark layout, e.g.
#   make bench-alpr DIR=../shared/data/openalpr-benchmarks/us-dev
bench-alpr: build-release
	@test -n "$(DIR)" || { echo "usage: make bench-alpr DIR=<folder>"; exit 2; }
	$${CARGO_TARGET_DIR:-target}/release/bench-alpr $(DIR)

# The trailer store: write rate, bytes on disk per payload byte, 60-day purge, open, hotlists.
bench-store: build-release
	$${CARGO_TARGET_DIR:-target}/release/bench-store
