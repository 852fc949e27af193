#!/usr/bin/env bash
# Redirect benchmark: a bare axum server answering 302 (no storage) against
# Tribute's /r/{code} on SQLite, same machine, same load, one run:
# wrk -t2 -c64 for DURATION seconds each, alternating bare/Tribute for
# ROUNDS rounds (this machine's speed drifts between runs, so one pair of
# runs is not enough). Reports throughput, p50/p99 latency per round, the
# median ratio Tribute/bare, and checks that every redirect Tribute served
# was recorded as a click.
#
#   scripts/bench-redirect.sh [DURATION_SECONDS] [ROUNDS]
#
# With BENCH_WRK_SCRIPT=scripts/wrk-visitors.lua every request comes from
# another address (serve with --trust-proxy in BENCH_SERVERS' extra args).
#
# Several Tributes can be compared in the same run (each on its own fresh
# database, all alternating with the bare server): set BENCH_SERVERS to
# `label|binary|extra serve args` entries separated by `;`, e.g.
#   BENCH_SERVERS="before|/tmp/old/tribute|;limits off|target/release/tribute|;\
#   limit on|target/release/tribute|--redirect-rate-limit-ip 1000000"
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${2:-3}
BARE=127.0.0.1:18180

command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
cargo build --release -q -p tribute
cargo build --release -q -p tribute-server --example bare302
BIN=target/release/tribute
IFS=';' read -r -a SERVERS <<< "${BENCH_SERVERS:-tribute|$BIN|}"
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "http://$1/" && return 0; sleep 0.1; done; echo "server $1 did not start" >&2; exit 1; }

# Each Tribute with one program, partner and link `bench`, on its own port
# and database. /metrics is read from --metrics-listen where the binary
# has it (otherwise it is open on the main address, as it was before).
labels=(); addrs=(); metrics=(); tpids=()
for i in "${!SERVERS[@]}"; do
  IFS='|' read -r label bin extra <<< "${SERVERS[$i]}"
  addr=127.0.0.1:$((18181 + i)); db="sqlite://$WORK/bench$i.db"
  margs=(); murl="http://$addr/metrics"
  if "$bin" serve --help | grep -q -- --metrics-listen; then
    margs=(--metrics-listen "127.0.0.1:$((18281 + i))"); murl="http://127.0.0.1:$((18281 + i))/metrics"
  fi
  # shellcheck disable=SC2086
  TRIBUTE_LOG=warn "$bin" --database-url "$db" serve --listen "$addr" "${margs[@]}" $extra & pids+=($!); tpids+=($!)
  wait_up "$addr"
  KEY=$("$bin" --database-url "$db" key create --scope admin | tail -n1)
  api() { curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$2" "http://$addr/api/v1/$1"; }
  PRG=$(api programs '{"name":"Bench","currency":"USD","allowed_domains":["example.com"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  PTN=$(api partners "{\"program_id\":\"$PRG\",\"slug\":\"bench\",\"name\":\"Bench\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  # BENCH_FRAUD: a JSON patch of the program's fraud settings, e.g.
  # '{"velocity":{"per_partner_per_minute":100000000,"per_link_per_minute":100000000}}'
  # so that one link's flood is not itself flagged.
  if [ -n "${BENCH_FRAUD:-}" ]; then
    curl -sf -X PATCH -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
      -d "$BENCH_FRAUD" "http://$addr/api/v1/programs/$PRG/fraud" >/dev/null
  fi
  api links "{\"partner_id\":\"$PTN\",\"destination\":\"https://example.com/pricing?plan=pro#faq\",\"code\":\"bench\",\"source\":\"website\"}" >/dev/null
  labels+=("$label"); addrs+=("$addr"); metrics+=("$murl")
done

target/release/examples/bare302 "$BARE" & pids+=($!)
wait_up "$BARE"

UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36'
# BENCH_WRK_SCRIPT: a wrk Lua script shaping each request (e.g.
# scripts/wrk-visitors.lua: a new client address per request).
WRK_ARGS=(); [ -n "${BENCH_WRK_SCRIPT:-}" ] && WRK_ARGS=(-s "$BENCH_WRK_SCRIPT")
run() { wrk -t2 -c64 -d"${DURATION}s" --latency "${WRK_ARGS[@]}" -H "User-Agent: $UA" "http://$1/r/bench"; }
# Warm everything up (connection setup, link cache), then measure.
wrk -t2 -c64 -d2s "http://$BARE/r/bench" >/dev/null
for a in "${addrs[@]}"; do wrk -t2 -c64 -d2s -H "User-Agent: $UA" "http://$a/r/bench" >/dev/null; done
outs=()
for _ in $(seq "$ROUNDS"); do
  outs+=("$(run "$BARE")")
  for a in "${addrs[@]}"; do outs+=("$(run "$a")"); done
done

checks=()
for i in "${!addrs[@]}"; do
  served=$(curl -s "${metrics[$i]}" | awk '/^tribute_redirects_total\{recorded="true"\}/ {print $2}')
  kill -TERM "${tpids[$i]}"; wait "${tpids[$i]}" 2>/dev/null || true   # flushes the click queue
  clicks=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from clicks').fetchone()[0])" "$WORK/bench$i.db")
  checks+=("${labels[$i]}|$served|$clicks")
done

python3 - "$DURATION" "${#addrs[@]}" "${labels[@]}" "${checks[@]}" "${outs[@]}" <<'PY'
import re, statistics, sys
duration, n = sys.argv[1], int(sys.argv[2])
labels = sys.argv[3:3 + n]
checks = sys.argv[3 + n:3 + 2 * n]
runs = sys.argv[3 + 2 * n:]
def parse(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def lat(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        v, unit = float(m.group(1)), m.group(2)
        return v * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat(50), lat(99), total, int(errors.group(1)) if errors else 0
print(f"wrk -t2 -c64 -d{duration}s, loopback, bare and tribute alternating")
print(f"{'round':<7}{'server':<28}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'requests':>12}{'ratio':>8}")
ratios, errs = {l: [] for l in labels}, 0
for r, i in enumerate(range(0, len(runs), n + 1)):
    b = parse(runs[i])
    errs += b[4]
    print(f"{r+1:<7}{'bare axum 302':<28}{b[0]:>12.0f}{b[1]:>10.3f}{b[2]:>10.3f}{b[3]:>12}")
    for j, label in enumerate(labels):
        t = parse(runs[i + 1 + j])
        errs += t[4]
        ratios[label].append(t[0] / b[0])
        print(f"{'':<7}{label:<28}{t[0]:>12.0f}{t[1]:>10.3f}{t[2]:>10.3f}{t[3]:>12}{ratios[label][-1]:>8.2f}")
ok = True
for label, check in zip(labels, checks):
    _, served, clicks = check.split("|")
    print(f"{label}: median ratio tribute/bare {statistics.median(ratios[label]):.2f} (target >= 0.60); "
          f"redirects served (incl. warm-up) {served}, clicks recorded {clicks}: "
          f"{'EQUAL' if served == clicks else 'MISMATCH'}")
    ok = ok and served == clicks
if errs:
    print(f"non-3xx responses: {errs}")
sys.exit(0 if ok else 1)
PY
