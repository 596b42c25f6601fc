#!/usr/bin/env bash
# The main job, end to end on one machine: a private Mosquitto with mutual TLS and per-client access,
# the sync server on its embedded SQLite store, and the appliance reading plates from a generated
# video with the real models. Prints the reads as the server stored them and the public list's URL,
# then keeps the server up until Ctrl-C. All state lives in $DEMO_DIR (default ./demo-state).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/release}
state=$(mkdir -p "${DEMO_DIR:-$root/demo-state}" && cd "${DEMO_DIR:-$root/demo-state}" && pwd)
trailer=${DEMO_TRAILER:-trailer-01}
say() { printf '\033[1mdemo:\033[0m %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  say "stopped; state kept in $state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "state directory: $state"
"$bin/sync-server" pki init --dir "$state/pki" --agency "Demo Police Department" >/dev/null

broker_port=$(free_port)
http_port=$(free_port)
run_as=(); [ "$(id -u)" -eq 0 ] && run_as=(--run-as root)
"$bin/sync-server" broker-config --pki "$state/pki" --out "$state/broker" --port "$broker_port" "${run_as[@]}" >/dev/null
mosquitto -c "$state/broker/mosquitto.conf" 2>"$state/broker/mosquitto.log" &
pids+=($!)
wait_port "$broker_port" || { say "Mosquitto did not start: see $state/broker/mosquitto.log"; exit 1; }
say "Mosquitto (mutual TLS) on 127.0.0.1:$broker_port"

cat >"$state/server.toml" <<TOML
[agency]
name = "Demo Police Department"
contact = "Demo records unit, (555) 555-0142"
[server]
data_dir = "$state/server"
[broker]
host = "localhost"
port = $broker_port
ca_file = "$state/pki/ca.pem"
cert_file = "$state/pki/sync-server.pem"
key_file = "$state/pki/sync-server.key"
[http]
listen = "127.0.0.1:$http_port"
# Metrics for a Prometheus beside the server (off in the demo, which picks free ports).
monitor_listen = ""
[review]
# The demo publishes new locations at once; an agency leaves a day to mark one security information.
hours = 0
[acp]
key_file = "$state/pki/acp.key"
[pki]
dir = "$state/pki"
TOML
# The trailer is enrolled (its key and certificate made here, for the demo; a real trailer makes
# its own key: `appliance enroll`): the broker lets in only enrolled trailers.
"$bin/sync-server" trailer enroll --config "$state/server.toml" --note "demo" "$trailer" >/dev/null
"$bin/sync-server" run --config "$state/server.toml" 2>"$state/server.log" &
pids+=($!)
for _ in $(seq 1 300); do grep -q "subscribed to trailer uplinks" "$state/server.log" && break; sleep 0.1; done
grep -q "subscribed to trailer uplinks" "$state/server.log" || { say "the server did not start: see $state/server.log"; exit 1; }
say "sync server up (log: $state/server.log)"

video="$state/sample.mp4"
if [ ! -f "$video" ]; then
  say "rendering a sample video with vehicles (each checked against the engine first)"
  "$bin/make-scene-video" --out "$video.tmp.mp4" --vehicles "${DEMO_VEHICLES:-4}" --seed "${DEMO_SEED:-7}" > "$state/expected.json"
  mv "$video.tmp.mp4" "$video"
fi
say "expected plates: $(cat "$state/expected.json" 2>/dev/null || echo unknown)"

cat >"$state/appliance.toml" <<TOML
[trailer]
id = "$trailer"
data_dir = "$state/appliance"
[location]
gpsd = ""   # no GPS receiver on a demo machine: the configured position is used
[capture]
source = "file://$video"
[store]
acp_key_file = "$state/pki/acp.key"
[sync]
broker_host = "localhost"
broker_port = $broker_port
ca_file = "$state/pki/ca.pem"
cert_file = "$state/pki/$trailer.pem"
key_file = "$state/pki/$trailer.key"
TOML
# A demo hotlist: the state's plate data file would list stolen vehicles, warrants and so on.
hit=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["plates"]; print(p[len(p)//2])' "$state/expected.json")
printf 'plate,state,category,source,case_number\n%s,MN,stolen vehicle,MN BCA plate data file (demo),\n' "$hit" > "$state/hotlist.csv"
"$bin/appliance" hotlist-import --config "$state/appliance.toml" --name mn-state --version "$(date +%s)" \
  --source "MN BCA plate data file (demo)" "$state/hotlist.csv" >&2
say "appliance reading $video"
"$bin/appliance" run --config "$state/appliance.toml" 2> >(tee "$state/appliance.log" | grep --line-buffered -E 'read stored|drained|ERROR|WARN' >&2)

say "reads as the server stored them (an audited access by $(id -un), a records supervisor here):"
# On the command line a person acts as their login, with the console role granted to it.
"$bin/sync-server" user grant --config "$state/server.toml" --name "$(id -un)" --role records-supervisor \
  --authorised-by "Demo Chief" --authorisation "demo authorisation" >/dev/null
"$bin/sync-server" reads --config "$state/server.toml" --purpose "demo: show the thin path" --case DEMO-1
say "hotlist alerts as the server stored them (an audited access by $(id -un), an operator now):"
"$bin/sync-server" user grant --config "$state/server.toml" --name "$(id -un)" --role operator \
  --authorised-by "Demo Chief" --authorisation "demo authorisation" >/dev/null
"$bin/sync-server" alerts --config "$state/server.toml" --purpose "demo: show alerts" --case DEMO-1
# An operator's console request over the broker, with the operator's own certificate.
[ -f "$state/pki/demo-operator.pem" ] || "$bin/sync-server" pki issue --dir "$state/pki" --role operator demo-operator >/dev/null
"$bin/sync-server" user grant --config "$state/server.toml" --name demo-operator --role operator \
  --authorised-by "Demo Chief" --authorisation "demo authorisation" >/dev/null
say "open alerts through the operator console (sync-server console as demo-operator):"
"$bin/sync-server" console --broker-port "$broker_port" --ca "$state/pki/ca.pem" \
  --cert "$state/pki/demo-operator.pem" --key "$state/pki/demo-operator.key" --user demo-operator alerts.list
say "public location list: http://127.0.0.1:$http_port/public/locations (also .json, .csv)"
if [ -t 0 ] && [ -z "${CI:-}" ]; then
  say "press Ctrl-C to stop"
  wait
fi
