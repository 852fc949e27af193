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
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${2:-3}
BARE=127.0.0.1:18180
TRIB=127.0.0.1:18181

command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
cargo build --release -q -p tribute
cargo build --release -q -p tribute-server --example bare302
BIN=target/release/tribute
WORK=$(mktemp -d)
DB="sqlite://$WORK/bench.db"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "http://$1/" && return 0; sleep 0.1; done; echo "server $1 did not start" >&2; exit 1; }

# Tribute with one program, partner and link `bench`.
TRIBUTE_LOG=warn $BIN --database-url "$DB" serve --listen "$TRIB" & pids+=($!)
wait_up "$TRIB"
KEY=$($BIN --database-url "$DB" key create --scope admin | tail -n1)
api() { curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$2" "http://$TRIB/api/v1/$1"; }
PRG=$(api programs '{"name":"Bench","currency":"USD","allowed_domains":["example.com"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
PTN=$(api partners "{\"program_id\":\"$PRG\",\"slug\":\"bench\",\"name\":\"Bench\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api links "{\"partner_id\":\"$PTN\",\"destination\":\"https://example.com/pricing?plan=pro#faq\",\"code\":\"bench\",\"source\":\"website\"}" >/dev/null

target/release/examples/bare302 "$BARE" & pids+=($!)
wait_up "$BARE"

UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36'
run() { wrk -t2 -c64 -d"${DURATION}s" --latency -H "User-Agent: $UA" "http://$1/r/bench"; }
# Warm both up (connection setup, link cache), then measure.
wrk -t2 -c64 -d2s "http://$BARE/r/bench" >/dev/null
wrk -t2 -c64 -d2s -H "User-Agent: $UA" "http://$TRIB/r/bench" >/dev/null
outs=()
for _ in $(seq "$ROUNDS"); do
  outs+=("$(run "$BARE")" "$(run "$TRIB")")
done

served=$(curl -s "http://$TRIB/metrics" | awk '/^tribute_redirects_total\{recorded="true"\}/ {print $2}')
kill -TERM "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true   # flushes the click queue
clicks=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from clicks').fetchone()[0])" "$WORK/bench.db")

python3 - "$served" "$clicks" "$DURATION" "${outs[@]}" <<'PY'
import re, statistics, sys
served, clicks, duration = sys.argv[1:4]
runs = sys.argv[4:]
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
print(f"{'round':<7}{'server':<22}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'requests':>12}{'ratio':>8}")
ratios, errs = [], 0
for i in range(0, len(runs), 2):
    b, t = parse(runs[i]), parse(runs[i + 1])
    ratios.append(t[0] / b[0])
    errs += b[4] + t[4]
    print(f"{i//2+1:<7}{'bare axum 302':<22}{b[0]:>12.0f}{b[1]:>10.3f}{b[2]:>10.3f}{b[3]:>12}")
    print(f"{'':<7}{'tribute /r/{code}':<22}{t[0]:>12.0f}{t[1]:>10.3f}{t[2]:>10.3f}{t[3]:>12}{ratios[-1]:>8.2f}")
print(f"median ratio tribute/bare: {statistics.median(ratios):.2f} (target >= 0.60)")
print(f"redirects served (server count, incl. warm-up): {served}; clicks recorded: {clicks}; "
      f"{'EQUAL' if served == clicks else 'MISMATCH'}")
if errs:
    print(f"non-3xx responses: {errs}")
sys.exit(0 if served == clicks else 1)
PY
