#!/usr/bin/env bash
# The Debian packages: trailer-alpr (the appliance: binary, ONNX Runtime, models, unit,
# sysusers, tmpfiles, a commented example configuration) and trailer-alpr-server (the server:
# binary, units and timers, a drop-in for Debian's mosquitto.service).
#
# Built with Debian's own dpkg-deb from a staged tree, not cargo-deb: the binaries are already
# built by the workspace (one build for tests, packages and the image), the units and the
# maintainer scripts are plain files under review here, and nothing has to be fetched or
# compiled for packaging. The packages are reproducible: every file's time is
# SOURCE_DATE_EPOCH (the last commit's, unless set), owners are root, and the same inputs give
# byte-identical .deb files.
#
#   scripts/packages.sh [--bin-dir DIR] [--out DIR]
#     --bin-dir  where `appliance` and `sync-server` are (default: $CARGO_TARGET_DIR/release)
#     --out      where the .deb files go (default: dist/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${CARGO_TARGET_DIR:-$root/target}/release
out=$root/dist
while [ $# -gt 0 ]; do
  case $1 in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--bin-dir DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
say() { echo "packages: $*" >&2; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 1796083200)
fi
export SOURCE_DATE_EPOCH
for b in appliance sync-server; do
  [ -x "$bin_dir/$b" ] || { say "$bin_dir/$b is missing: run make build-release"; exit 1; }
done
for m in libonnxruntime.so.1.31.1 platedet-384x640-int8.onnx ppocrv6_rec.onnx ppocrv6_dict.txt; do
  [ -f "$root/models/$m" ] || { say "models/$m is missing: run make setup"; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"

# put SRC DEST MODE: one file into the staged tree.
put() { install -D -m "$3" "$1" "$pkg/$2"; }

# The Debian packages a binary's own shared libraries (its NEEDED entries, not theirs) come
# from, found in the build machine's dpkg database; libc6 is essential and left out.
lib_packages() {
  local needed
  needed=$(objdump -p "$1" | awk '$1 == "NEEDED" {print $2}')
  ldd "$1" | awk '/=> \//{print $1, $3}' | while read -r name lib; do
    grep -qxF "$name" <<<"$needed" || continue
    dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null \
      || { say "no Debian package owns $lib ($1 needs it)"; exit 1; }
  done | cut -d: -f1 | sort -u | grep -v '^libc6$' | paste -sd, | sed 's/,/, /g'
}

# finish NAME DEPENDS DESCRIPTION: control file, maintainer scripts, reproducible build.
finish() {
  local name=$1 depends=$2 description=$3
  local size
  size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
  cat > "$pkg/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: amd64
Maintainer: Trailer ALPR <support@trailer-alpr.invalid>
Installed-Size: $size
Depends: $depends
Section: misc
Priority: optional
Homepage: https://trailer-alpr.invalid/
Description: $description
EOF
  (cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort \
    | xargs -r md5sum > DEBIAN/md5sums)
  chmod 0755 "$pkg"/DEBIAN/post* "$pkg"/DEBIAN/pre* 2>/dev/null || true
  find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  local deb="$out/${name}_${version}_amd64.deb"
  dpkg-deb --root-owner-group -Zzstd --build "$pkg" "$deb" >/dev/null
  say "built $deb ($(du -h "$deb" | cut -f1))"
}

# ---- trailer-alpr: the appliance -------------------------------------------------------------
pkg=$stage/trailer-alpr
mkdir -p "$pkg/DEBIAN"
put "$bin_dir/appliance" usr/bin/appliance 0755
strip --strip-unneeded "$pkg/usr/bin/appliance"
# ONNX Runtime beside the models: a private library the engine opens by path (not linked), at
# the version the models were checked with.
for m in libonnxruntime.so.1.31.1 platedet-384x640-int8.onnx ppocrv6_rec.onnx ppocrv6_dict.txt; do
  put "$root/models/$m" "usr/share/trailer-alpr/models/$m" 0644
done
put "$root/systemd/trailer-alpr.service" lib/systemd/system/trailer-alpr.service 0644
put "$root/systemd/trailer-alpr.sysusers.conf" usr/lib/sysusers.d/trailer-alpr.conf 0644
put "$root/systemd/trailer-alpr.tmpfiles.conf" usr/lib/tmpfiles.d/trailer-alpr.conf 0644
put "$root/appliance/appliance.example.toml" usr/share/doc/trailer-alpr/appliance.example.toml 0644
put "$root/appliance/appliance.example.toml" etc/trailer-alpr/appliance.toml 0644
put "$root/README.md" usr/share/doc/trailer-alpr/README.md 0644
echo /etc/trailer-alpr/appliance.toml > "$pkg/DEBIAN/conffiles"
cat > "$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemd-sysusers trailer-alpr.conf
  systemd-tmpfiles --create trailer-alpr.conf
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
  # Enabled, not started: the trailer is enrolled first (appliance enroll, then --complete).
  systemctl enable trailer-alpr.service >/dev/null 2>&1 || true
fi
EOF
cat > "$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop trailer-alpr.service || true
fi
EOF
cat > "$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
  systemctl disable trailer-alpr.service >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
fi
EOF
depends="$(lib_packages "$bin_dir/appliance"), gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, gstreamer1.0-libav, chrony, gpsd, systemd"
finish trailer-alpr "${depends#, }" "ALPR trailer appliance (capture, plate reading, 60-day store, sync)
 Reads license plates from the trailer's camera, keeps reads for at most 60 days
 (Minn. Stat. 13.824), and syncs them over MQTT with mutual TLS to the agency's
 server."

# ---- trailer-alpr-server: the agency's server ------------------------------------------------
pkg=$stage/trailer-alpr-server
mkdir -p "$pkg/DEBIAN"
put "$bin_dir/sync-server" usr/bin/sync-server 0755
strip --strip-unneeded "$pkg/usr/bin/sync-server"
for u in trailer-alpr-server.service trailer-alpr-public-export.service \
  trailer-alpr-public-export.timer trailer-alpr-audit-verify.service trailer-alpr-audit-verify.timer; do
  put "$root/systemd/$u" "lib/systemd/system/$u" 0644
done
put "$root/systemd/mosquitto-trailer-alpr.conf" lib/systemd/system/mosquitto.service.d/trailer-alpr.conf 0644
put "$root/systemd/trailer-alpr-server.sysusers.conf" usr/lib/sysusers.d/trailer-alpr-server.conf 0644
put "$root/systemd/trailer-alpr-server.tmpfiles.conf" usr/lib/tmpfiles.d/trailer-alpr-server.conf 0644
put "$root/sync-server/server.example.toml" usr/share/doc/trailer-alpr-server/server.example.toml 0644
put "$root/sync-server/server.example.toml" etc/trailer-alpr-server/server.toml 0644
put "$root/README.md" usr/share/doc/trailer-alpr-server/README.md 0644
echo /etc/trailer-alpr-server/server.toml > "$pkg/DEBIAN/conffiles"
cat > "$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemd-sysusers trailer-alpr-server.conf
  systemd-tmpfiles --create trailer-alpr-server.conf
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
  # Enabled, not started: the server refuses the example agency's name until the
  # configuration is the agency's own (README: "Install the server").
  systemctl enable trailer-alpr-server.service trailer-alpr-public-export.timer \
    trailer-alpr-audit-verify.timer >/dev/null 2>&1 || true
fi
EOF
cat > "$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop trailer-alpr-server.service trailer-alpr-public-export.timer \
    trailer-alpr-audit-verify.timer || true
fi
EOF
cat > "$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
  systemctl disable trailer-alpr-server.service trailer-alpr-public-export.timer \
    trailer-alpr-audit-verify.timer >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
fi
EOF
depends="$(lib_packages "$bin_dir/sync-server"), mosquitto, systemd"
finish trailer-alpr-server "${depends#, }" "ALPR agency sync server (ingestion, public pages, retention, audit)
 Receives the trailers' reads over MQTT, records where each trailer stood,
 notifies the BCA, publishes the public location list and log of use, and
 audits every access."
