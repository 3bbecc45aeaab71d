#!/usr/bin/env bash
# Apple MDM load benchmark: a real `steward serve` process and the device
# simulator (`steward simulate apple`) on the same machine, signed requests.
#
#   bash bench/mdm/run.sh [DEVICES] [CONCURRENCY] [SECONDS] [DB]
#
# DB empty means SQLite in a fresh data directory; a postgres:// DSN uses that
# database (give an empty one: the benchmark fills it; psql must be installed). Prints enrolment,
# idle check-in and command round-trip throughput with percentiles, the time
# to queue one command for the run's devices through the bulk API, and the
# server's peak RSS. Exits non-zero, with the end of the simulator's
# progress and errors, when any of its operations failed.
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
for _ in $(seq 1 50); do
  grep -q "bootstrap --server" "$work/serve.log" 2>/dev/null && break
  kill -0 $server 2>/dev/null || break
  sleep 0.2
done
# Without a bootstrap code the benchmark cannot sign in: the server did not
# start, or its database already has an owner.
code=$(grep -o 'stb_[A-Za-z0-9]*' "$work/serve.log" | head -1 || true)
if [ -z "$code" ]; then
  if ! kill -0 $server 2>/dev/null; then
    echo "run.sh: the server did not start:" >&2
  elif [ -n "$db" ]; then
    echo "run.sh: the server printed no bootstrap code: the database must be empty (it already has an owner; give a fresh database)" >&2
  else
    echo "run.sh: the server printed no bootstrap code within 10 s:" >&2
  fi
  tail -n 20 "$work/serve.log" >&2
  exit 1
fi
export STEWARD_FINGERPRINT=$(grep -o 'SHA256:[0-9a-f]*' "$work/serve.log" | head -1)
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
# The simulator's progress (and any error or panic) goes to a file, shown
# when it fails; its summary goes to the terminal.
simulate=("$work/steward" simulate apple --setup --ec-identity -n "$devices" -c "$conc" -t "${secs}s")
status=0
if [ -z "$profile" ]; then
  "${simulate[@]}" 2>"$work/progress" || status=$?
else
  "${simulate[@]}" --cpu-profile "$profile" 2>"$work/progress" &
  simulator=$!
  # The simulator shows each phase's progress line as the phase starts.
  # Each server profile starts about a second into its phase and lasts
  # SECONDS-2 s, leaving about a second at the end of the idle and
  # round-trip phases (phases of 4 s or less get 2 s profiles, which reach
  # the end of a 3 s phase and run past a shorter one). The enrolment
  # phase has no set length: its profile covers the same span, which may
  # be only part of the phase or run past its end.
  for phase in "enrolled :enrolment" "idle check-ins:idle" "command round trips:rounds"; do
    until grep -q "${phase%:*}" "$work/progress" 2>/dev/null || ! kill -0 $simulator 2>/dev/null; do sleep 0.2; done
    kill -0 $simulator 2>/dev/null || break
    sleep 1
    curl -sf -o "$profile/${phase#*:}.pprof" "http://127.0.0.1:$((port + 1))/debug/pprof/profile?seconds=$((secs > 4 ? secs - 2 : 2))" ||
      echo "run.sh: no server profile of the ${phase#*:} phase" >&2
  done
  wait $simulator || status=$?
fi
echo "server peak RSS: $(awk '/VmHWM/{print $2/1024 " MiB"}' /proc/$server/status)"
if [ $status -ne 0 ]; then
  echo "run.sh: the simulator failed (exit status $status); the end of its progress and errors:" >&2
  tr '\r' '\n' <"$work/progress" | grep -v '^$' | tail -n 20 >&2
  exit $status
fi
