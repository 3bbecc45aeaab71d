#!/usr/bin/env bash
# Apple MDM load benchmark: a real `steward serve` process and the device
# simulator (`steward simulate apple`) on the same machine, signed requests.
#
#   bash bench/mdm/run.sh [DEVICES] [CONCURRENCY] [SECONDS] [DB]
#
# DB empty means SQLite in a fresh data directory; a postgres:// DSN uses that
# database (give an empty one: the benchmark fills it; psql must be installed). Prints enrolment,
# idle check-in and command round-trip throughput with percentiles, the time
# to queue one command for every device, and the server's peak RSS.
#
# With PROFILE_DIR set, the server also writes CPU profiles of the enrolment,
# idle and round-trip phases there (enrolment.pprof, idle.pprof, rounds.pprof,
# and the binary they describe): `go tool pprof -top PROFILE_DIR/steward PROFILE_DIR/rounds.pprof`.
# The simulator writes its own, sim-idle.pprof and sim-rounds.pprof, for its share of the CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
devices=${1:-10000} conc=${2:-64} secs=${3:-20} db=${4:-}
work=$(mktemp -d) port=$((20000 + RANDOM % 20000))
go build -o "$work/steward" ./cmd/steward
export STEWARD_CREDENTIALS="$work/credentials.json" STEWARD_SERVER="https://127.0.0.1:$port"
serveflags=()
[ -n "$db" ] && serveflags=(--db "$db")
profile=${PROFILE_DIR:-}
if [ -n "$profile" ]; then
  mkdir -p "$profile" && cp "$work/steward" "$profile/steward"
  serveflags+=(--profile-listen "127.0.0.1:$((port + 1))")
fi
"$work/steward" serve --data "$work/data" --listen "127.0.0.1:$port" --allow-mfa-optional --log-level error \
  --apns-endpoint https://127.0.0.1:1 --enrolment-rate-limit 0 "${serveflags[@]}" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do grep -q "bootstrap --server" "$work/serve.log" 2>/dev/null && break; sleep 0.2; done
export STEWARD_FINGERPRINT=$(grep -o 'SHA256:[0-9a-f]*' "$work/serve.log" | head -1)
code=$(grep -o 'stb_[A-Za-z0-9]*' "$work/serve.log" | head -1)
pw="Vellum-Lantern-Quartz-$RANDOM"
echo "$pw" | "$work/steward" admin bootstrap --code "$code" --organisation "Load Org" --email loadtest@example.test --name "Load Tester" >/dev/null
echo "$pw" | "$work/steward" login --email loadtest@example.test >/dev/null
engine=sqlite
[ -n "$db" ] && engine=postgres
if [ -n "$db" ] && [ "$(psql "$db" -Atc 'show autovacuum')" = off ]; then
  # Without autovacuum nothing re-plans: statements prepared while the tables
  # were empty keep sequential scans as they grow. Do its work in its place.
  (while sleep 15; do psql "$db" -qc 'VACUUM (ANALYZE)'; done) >/dev/null 2>&1 &
  autovacuum=$!
  trap 'kill $server $autovacuum 2>/dev/null; rm -rf "$work"' EXIT
  echo "autovacuum is off: VACUUM (ANALYZE) runs every 15 s instead"
fi
echo "machine: $(nproc) CPUs, $(go version | cut -d' ' -f3), engine: $engine, $devices devices, concurrency $conc, ${secs}s phases"
if [ -z "$profile" ]; then
  "$work/steward" simulate apple --setup --ec-identity -n "$devices" -c "$conc" -t "${secs}s" 2>/dev/null
else
  # The simulator's progress tells when a phase starts; each profile leaves a
  # second at either end of its phase.
  "$work/steward" simulate apple --setup --ec-identity -n "$devices" -c "$conc" -t "${secs}s" --cpu-profile "$profile" 2>"$work/progress" &
  simulator=$!
  for phase in "enrolled :enrolment" "idle check-ins:idle" "command round trips:rounds"; do
    until grep -q "${phase%:*}" "$work/progress" 2>/dev/null || ! kill -0 $simulator 2>/dev/null; do sleep 0.2; done
    kill -0 $simulator 2>/dev/null || break
    sleep 1
    curl -sf -o "$profile/${phase#*:}.pprof" "http://127.0.0.1:$((port + 1))/debug/pprof/profile?seconds=$((secs > 4 ? secs - 2 : 2))"
  done
  wait $simulator
fi
echo "server peak RSS: $(awk '/VmHWM/{print $2/1024 " MiB"}' /proc/$server/status)"
