#!/usr/bin/env bash
# Bounded loopback measurements with sipreg-loadgen: its own ceiling against sipreg-udp-echo, the
# single-threaded sipreg with challenges (every registration new) and with pre-emptive
# credentials (refreshes), an open-loop sweep, and SIPp at a rate it reaches, on the same server.
#
#   tools/loadgen/measure.sh OUT_DIR [SECONDS]
#
# The load generator runs on core 0, the server on core 1 (taskset). Every run is bounded by a
# count and a duration; every process started here is stopped by its PID. Writes one JSON
# summary per run, sipp-*.csv (SIPp's per-call response times) and latency.png into OUT_DIR.
set -euo pipefail

out="${1:?usage: $0 OUT_DIR [SECONDS]}"
secs="${2:-5}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cargo build --release --manifest-path "$root/Cargo.toml" -p sipreg -p sipreg-loadgen >&2
bin="$root/target/release"
lg="$bin/sipreg-loadgen"
users=200000
port=25060
server=""
stop_server() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=""
}
trap stop_server EXIT

"$lg" users --count "$users" --realm example.com --algorithms MD5,SHA-256 > "$out/users"
common=(--target "127.0.0.1:$port" --sources 127.0.0.2-127.0.0.41 --ports-per-source 4
        --domain example.com --duration "$secs")

# 1. The loadgen's ceiling: every datagram echoed by a bare recvmmsg/sendmmsg loop.
taskset -c 1 "$bin/sipreg-udp-echo" --listen "127.0.0.1:$port" --duration $((secs * 4 + 10)) &
server=$!
sleep 0.5
taskset -c 0 "$lg" "${common[@]}" --echo --users "$users" --count 10000000 --concurrency 512 \
  --label echo --json "$out/echo.json" >&2 || true
stop_server

start_sipreg() {
  taskset -c 1 "$bin/sipreg" serve --listen "udp:127.0.0.1:$port" --domain example.com \
    --users "$out/users" --auth-algorithms MD5,SHA-256 > "$out/sipreg.log" 2>&1 &
  server=$!
  sleep 1
}

# 2. sipreg, closed loop. Every registration new (REGISTER, 401, REGISTER, 200) ...
start_sipreg
taskset -c 0 "$lg" "${common[@]}" --users "$users" --count "$users" --concurrency 256 \
  --label sipreg-challenged --json "$out/sipreg-challenged.json" >&2 || true
stop_server
# ... and refreshes with pre-emptive credentials (one exchange): 10,000 phones register once,
# then refresh over and over (sipreg has no switch to turn authentication off).
start_sipreg
taskset -c 0 "$lg" "${common[@]}" --users 10000 --count 10000000 --concurrency 256 \
  --label sipreg-refresh --json "$out/sipreg-refresh.json" >&2 || true
stop_server

# 3. Open-loop sweep, every registration new: latency against offered load.
for rate in ${RATES:-2000 5000 10000 15000 20000}; do
  start_sipreg
  taskset -c 0 "$lg" "${common[@]}" --users "$users" --count $((rate * secs)) --rate "$rate" \
    --label sipreg --json "$out/sweep-$rate.json" >&2 || true
  stop_server
done

# 4. SIPp against the same server with the register scenario (MD5 challenge), and the loadgen
# with MD5-only phones at the same rate and count.
sipp_rate="${SIPP_RATE:-1000}"
sipp_calls=$((sipp_rate * secs))
{
  echo SEQUENTIAL
  for i in $(seq 0 $((sipp_calls - 1))); do
    u=$(printf 'u%06d' "$i"); p=$(printf 'p%06d' "$i")
    echo "$u;[authentication username=$u password=$p]"
  done
} > "$out/sipp-users.csv"
start_sipreg
(cd "$out" && timeout --kill-after=5 $((secs * 3 + 30)) taskset -c 0 sipp "127.0.0.1:$port" \
  -sf "$root/tools/loadgen/sipp/register_rtd.xml" -inf "$out/sipp-users.csv" \
  -m "$sipp_calls" -r "$sipp_rate" -i 127.0.0.1 -p 25070 -nostdin -bg=0 \
  -trace_rtt -rtt_freq 1 -trace_stat -trace_err > "$out/sipp.out" 2>&1) || true
stop_server
start_sipreg
taskset -c 0 "$lg" "${common[@]}" --users "$users" --count "$sipp_calls" --rate "$sipp_rate" \
  --algorithms MD5 --label loadgen-md5 --json "$out/loadgen-at-sipp-rate.json" >&2 || true
stop_server

"$lg" plot --out "$out/latency.png" "$out"/sweep-*.json
echo "results in $out" >&2
