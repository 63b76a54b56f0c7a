#!/usr/bin/env bash
# Bounded loopback measurements with sipreg-loadgen: its own ceiling against sipreg-udp-echo, the
# single-threaded sipreg with challenges (every registration new) and with pre-emptive
# credentials (refreshes), an open-loop sweep, and SIPp at a rate it reaches, on the same server.
#
#   tools/loadgen/measure.sh OUT_DIR [SECONDS]
#
# The load generator runs on core 0, the server on core 1 (taskset). Every run is bounded by a
# count and a duration; every process started here is stopped by its PID. Writes into OUT_DIR one
# JSON summary per run (LABEL.json), server-cpu.txt (the server's CPU seconds during each run: on
# a shared machine CPU time per registration is steadier than wall-clock rates), SIPp's
# per-call response times (register_rtd_*_rtt.csv, whole milliseconds) and latency.png.
# Environment: RATES (open-loop sweep, registrations/s), SIPP_RATE.
set -euo pipefail

out="${1:?usage: $0 OUT_DIR [SECONDS]}"
secs="${2:-5}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
rm -f "$out/server-cpu.txt"
cargo build --release --manifest-path "$root/Cargo.toml" -p sipreg -p sipreg-loadgen >&2
bin="$root/target/release"
lg="$bin/sipreg-loadgen"
users=200000
port="${PORT:-$((30000 + RANDOM % 20000))}"  # a random port: other people on the machine use the usual ones
server=""
stop_server() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=""
}
trap stop_server EXIT

"$lg" users --count "$users" --realm example.com --algorithms MD5,SHA-256 > "$out/users"
common=(--target "127.0.0.1:$port" --sources 127.0.0.2-127.0.0.41 --ports-per-source 4
        --domain example.com --duration "$secs")

# CPU seconds the server has used so far (user + system, from /proc).
server_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$server/stat"
}
# load LABEL OPTIONS...: one loadgen run on core 0; appends the server's CPU seconds over the run
# to server-cpu.txt.
load() {
  local label="$1"; shift
  local before
  before="$(server_cpu)"
  taskset -c 0 "$lg" "${common[@]}" --label "$label" --json "$out/$label.json" "$@" >&2 || true
  awk -v a="$before" -v b="$(server_cpu)" -v l="$label" 'BEGIN { printf "%s %.2f\n", l, b - a }' \
    >> "$out/server-cpu.txt"
}
start_sipreg() {
  taskset -c 1 "$bin/sipreg" serve --listen "udp:127.0.0.1:$port" --domain example.com \
    --users "$out/users" --auth-algorithms MD5,SHA-256 --workers 1 --data-dir "$out/data" \
    > "$out/sipreg.log" 2>&1 &
  server=$!
  sleep 1
}

# 1. The loadgen's ceiling: every datagram echoed by a bare recvmmsg/sendmmsg loop; then the
# floor per exchange, one transaction at a time.
taskset -c 1 "$bin/sipreg-udp-echo" --listen "127.0.0.1:$port" --duration $((secs * 4 + 10)) &
server=$!
sleep 0.5
load echo --echo --users "$users" --count 10000000 --concurrency 512
load echo-1 --echo --users 1000 --count 100000 --concurrency 1
stop_server

# 2. sipreg, closed loop. Every registration new (REGISTER, 401, REGISTER, 200) ...
start_sipreg
load sipreg-challenged --users "$users" --count "$users" --concurrency 128
stop_server
# ... and refreshes with pre-emptive credentials (one exchange): 10,000 phones register once,
# then refresh over and over (sipreg has no switch to turn authentication off).
start_sipreg
load sipreg-refresh --users 10000 --count 10000000 --concurrency 128
stop_server

# 3. Open-loop sweep, every registration new: latency against offered load.
for rate in ${RATES:-1000 2000 5000 10000}; do
  start_sipreg
  load "sweep-$rate" --users "$users" --count $((rate * secs)) --rate "$rate"
  stop_server
done

# 4. SIPp against the same server with the register scenario (MD5 challenge), and the loadgen
# with MD5-only phones at the same rate and count.
sipp_rate="${SIPP_RATE:-1000}"
sipp_calls=$((sipp_rate * secs))
awk -v n="$sipp_calls" 'BEGIN { print "SEQUENTIAL"; for (i = 0; i < n; i++)
  printf "u%06d;[authentication username=u%06d password=p%06d]\n", i, i, i }' > "$out/sipp-users.csv"
start_sipreg
before="$(server_cpu)"
(cd "$out" && timeout --kill-after=5 $((secs * 3 + 30)) taskset -c 0 sipp "127.0.0.1:$port" \
  -sf "$root/tools/loadgen/sipp/register_rtd.xml" -inf "$out/sipp-users.csv" \
  -m "$sipp_calls" -r "$sipp_rate" -i 127.0.0.1 -p 25070 -nostdin \
  -trace_rtt -rtt_freq 1 -trace_stat -trace_err > "$out/sipp.out" 2>&1) || true
awk -v a="$before" -v b="$(server_cpu)" 'BEGIN { printf "sipp %.2f\n", b - a }' >> "$out/server-cpu.txt"
stop_server
start_sipreg
load loadgen-md5 --users "$users" --count "$sipp_calls" --rate "$sipp_rate" --algorithms MD5
stop_server

# The sweep's summaries are labelled sweep-RATE; plot them as one line.
for f in "$out"/sweep-*.json; do
  sed 's/"label": "sweep-[0-9]*"/"label": "sipreg (1 thread)"/' "$f" > "$f.plot"
done
"$lg" plot --out "$out/latency.png" "$out"/sweep-*.json.plot
rm -f "$out"/sweep-*.json.plot
echo "results in $out" >&2
