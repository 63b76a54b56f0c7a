#!/usr/bin/env bash
# sipreg, Kamailio 5.6 and the kernel floor side by side, in one run (issues 5 and 6).
#
#   perf/compare.sh [--quick]
#
# Writes perf/results/DATE/ (DATE = today, UTC): summary.md, results.json, latency.png and the
# JSON summaries the numbers come from (loadgen/*.json). Logs, data directories and credentials
# files go to a scratch directory in /tmp, removed at the end (KEEP=1 keeps it).
#
# Steps (every load run bounded in count and time; every process started here is stopped by
# its pid; the load generator is pinned to core 0, the server under test to core 1):
#   1. the maximum sustainable open-loop rate with sipreg-loadgen of sipreg (1 worker),
#      Kamailio (1 UDP worker, perf/kamailio/run.sh) and sipreg-udp-echo: authenticated first
#      registrations (REGISTER, 401, REGISTER, 200), refreshes with pre-emptive credentials, no
#      auth; echo in exchanges/s. Search: double from a start rate while a trial passes, then
#      bisect to within 5%. A trial starts a fresh server, offers RATE x SECS registrations at
#      RATE/s (open loop), and passes with < 0.1% failures, no timeout, no retransmission,
#      < 0.1% missed open-loop slots and an achieved rate >= 95% of the offered one
#      (lib/report.py verdict). Then p50/p99 at 50% of each maximum.
#   2. a latency-vs-offered-load sweep of both servers (authenticated registrations), plotted
#      with sipreg-loadgen plot into latency.png;
#   3. perf/kamailio/sipp-rate.sh with SERVER=sipreg and SERVER=kamailio (CPU per registration);
#   4. callgrind instructions per authenticated registration, both servers (Kamailio:
#      perf/kamailio/callgrind.sh; sipreg: the same method, here);
#   5. resident memory per binding at 1M bindings (sipreg: RSS before/after 1M no-auth
#      registrations; Kamailio: perf/kamailio/memory.sh);
#   6. sipreg --workers 2 against --workers 1 (rate, and callgrind instructions per registration:
#      the hand-off cost);
#   7. refresh throughput at 1M bindings with persistence on and off (issue 6).
#
# sipreg runs with persistence off (a --config file with [persist] enabled = false) except in
# step 7, like Kamailio's memory-only usrloc (db_mode 0).
#
# Environment: SCHED (rt:10 default: SCHED_FIFO priority 10 for load and server, as
# sipp-rate.sh; or nice:N), PORT (base port, default 5200; uses PORT..PORT+60), OUT (results
# directory), KEEP (1 keeps the scratch directory), STEPS (default "1 2 3 4 5 6 7").
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
kam_dir="$here/kamailio"
report="$here/lib/report.py"

quick=0
case ${1:-} in
    --quick) quick=1 ;;
    "") ;;
    *) sed -n '2,4p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac

date_utc=$(date -u +%F)
out=${OUT:-$repo/perf/results/$date_utc}
((quick)) && out=${OUT:-$repo/perf/results/$date_utc-quick}
mkdir -p "$out/loadgen" "$out/raw"
out=$(cd "$out" && pwd)
rm -f "$out"/loadgen/*.json "$out"/raw/*
scratch=$(mktemp -d /tmp/sipreg-compare.XXXXXX)
steps=${STEPS:-1 2 3 4 5 6 7}
addr=127.0.0.1
port=${PORT:-5200}
sched_spec=${SCHED:-rt:10}
case $sched_spec in
    rt:*) prio=(chrt -f "${sched_spec#rt:}") ;;
    nice:*) prio=(nice -n "${sched_spec#nice:}") ;;
    *) echo "compare.sh: SCHED is not nice:N or rt:P" >&2; exit 2 ;;
esac

# Sizes. Full: ~25 minutes in all; quick: a smoke run of a few minutes.
if ((quick)); then
    secs=1 max_trials=3 sweep_fracs="0.25 0.5 1.0" cg_n=200 mem_n=50000 persist_n=50000
    sipp_env=(SECS=2 MAX_RUNS=2 USERS=2000 START=4000)
    min_achieved=0.9
else
    secs=3 max_trials=9 sweep_fracs="0.1 0.25 0.5 0.75 0.9 1.0" cg_n=2000 mem_n=1000000
    persist_n=1000000
    sipp_env=(SECS=5 MAX_RUNS=6 USERS=20000 START=8000)
    min_achieved=0.95
fi

bin=$repo/target/release
sipreg=$bin/sipreg
lg=$bin/sipreg-loadgen
echo_bin=$bin/sipreg-udp-echo

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }

# --- processes ------------------------------------------------------------------------------
server_pid='' server_kind='' kam_run=''
stop_server() {
    case $server_kind in
        kamailio) "$kam_dir/run.sh" stop "$kam_run" || true ;;
        sipreg | echo)
            if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
                kill -TERM "$server_pid" 2>/dev/null || true
                local i
                for ((i = 0; i < 300; i++)); do
                    kill -0 "$server_pid" 2>/dev/null || break
                    sleep 0.1
                done
                kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null
            fi
            wait "$server_pid" 2>/dev/null || true
            ;;
    esac
    server_pid='' server_kind='' kam_run=''
}
cleanup() {
    stop_server
    if [[ ${KEEP:-0} == 1 ]]; then log "scratch kept: $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_log FILE PATTERN SECONDS PID: until FILE has PATTERN (0), PID died or time ran out (1).
wait_log() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start_sipreg CPUS PORT EXTRA...: sipreg serve (MD5,SHA-256, credentials of the users file) on
# CPUS; ready when it logs that it listens.
start_sipreg() {
    local cpus=$1 p=$2
    shift 2
    local log_file=$scratch/sipreg-$p.log
    "${prio[@]}" taskset -c "$cpus" "$sipreg" serve --listen "udp:$addr:$p" --domain example.com \
        --users "$users_file" --auth-algorithms MD5,SHA-256 "$@" </dev/null >"$log_file" 2>&1 &
    server_pid=$! server_kind=sipreg
    if ! wait_log "$log_file" "listening on udp" 120 "$server_pid"; then
        log "sipreg did not start:"; cat "$log_file" >&2; stop_server; return 1
    fi
}
start_kamailio() { # MODE PORT
    kam_run=$scratch/kam-$2
    KAM_CPU=1 KAM_SCHED=$sched_spec "$kam_dir/run.sh" start "$kam_run" "$addr" "$2" "$1" >/dev/null
    server_pid=$(<"$kam_run/kamailio.pid") server_kind=kamailio
}
start_echo() { # PORT
    "${prio[@]}" taskset -c 1 "$echo_bin" --listen "$addr:$1" --duration 300 </dev/null \
        >"$scratch/echo.log" 2>&1 &
    server_pid=$! server_kind=echo
    local i
    for ((i = 0; i < 50; i++)); do
        ss -Hlun "sport = :$1" | grep -q "$addr:$1" && return 0
        sleep 0.1
    done
    log "echo did not start"; stop_server; return 1
}

# server_ticks: CPU clock ticks of the server (all processes of Kamailio, all threads of sipreg).
server_ticks() {
    local p total=0
    [[ -n $server_pid ]] || { echo 0; return; }
    for p in "$server_pid" $(pgrep -P "$server_pid" || true); do
        [[ -r /proc/$p/stat ]] || continue
        total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}
hz=$(getconf CLK_TCK)

# loadgen JSON LABEL ARGS...: one bounded loadgen run on core 0 against PORT (variable p);
# the server's CPU over the run is added to the JSON as server_cpu_s.
loadgen() {
    local json=$1 label=$2
    shift 2
    local t0 t1 rc=0
    t0=$(server_ticks)
    timeout --kill-after=5 "$((secs * 4 + 60))" "${prio[@]}" taskset -c 0 "$lg" \
        --target "$addr:$p" --sources 127.0.0.2-127.0.0.41 --ports-per-source 4 \
        --domain example.com --algorithms MD5 --label "$label" --json "$json" "$@" \
        >/dev/null 2>>"$scratch/loadgen.log" || rc=$?
    t1=$(server_ticks)
    if [[ -s $json ]]; then
        python3 "$report" add-cpu "$json" "$(awk -v d="$((t1 - t0))" -v hz="$hz" 'BEGIN { print d / hz }')"
    fi
    return "$rc"
}

# --- step 1: maximum sustainable rates ------------------------------------------------------
persist_off=$scratch/persist-off.toml
printf '[persist]\nenabled = false\n' >"$persist_off"

# target_start TARGET: the server of a target, fresh.
target_start() {
    case $1 in
        sipreg-auth | sipreg-refresh) start_sipreg 1 "$p" --workers 1 --config "$persist_off" ;;
        sipreg-noauth) start_sipreg 1 "$p" --workers 1 --config "$persist_off" --no-auth ;;
        sipreg2-auth) start_sipreg 0,1 "$p" --workers 2 --config "$persist_off" ;;
        sipreg2-noauth) start_sipreg 0,1 "$p" --workers 2 --config "$persist_off" --no-auth ;;
        kamailio-auth | kamailio-refresh) start_kamailio auth "$p" ;;
        kamailio-noauth) start_kamailio noauth "$p" ;;
        echo) start_echo "$p" ;;
        *) echo "unknown target $1" >&2; return 2 ;;
    esac
}
# target_load TARGET RATE JSON LABEL: the load of one trial.
target_load() {
    local t=$1 rate=$2 json=$3 label=$4 count=$(($2 * secs))
    local -a a=(--rate "$rate" --count "$count" --duration "$((secs + 1))")
    case $t in
        *-auth) a+=(--users "$count") ;;
        *-noauth) a+=(--users "$count" --no-auth) ;;
        # Refreshes: a few phones register (challenged) and then refresh with pre-emptive
        # credentials; each phone is reused every >= 200 ms, so first registrations are at most
        # 1/(5 x SECS) of the trial.
        *-refresh) a+=(--users "$((rate / 5 > 2000 ? rate / 5 : 2000))") ;;
        echo) a+=(--users "$count" --echo) ;;
    esac
    loadgen "$json" "$label" "${a[@]}"
}
# trial TARGET RATE: one fresh server, one load; prints the verdict line; 0 when it passes.
trial() {
    local t=$1 rate=$2 json=$scratch/trial-$1-$2.json rc=0
    rm -f "$json"
    target_start "$t"
    target_load "$t" "$rate" "$json" "$t" || true
    stop_server
    python3 "$report" verdict "$json" "$rate" "$min_achieved" "$t" | tee -a "$out/raw/trials.txt" || rc=$?
    sleep 1
    return "$rc"
}
# search TARGET START: the highest passing rate; its JSON is copied to loadgen/TARGET-max.json,
# and a trial at half of it to loadgen/TARGET-half.json.
search() {
    local t=$1 rate=$2 lo=0 hi=0 n=0
    p=$port
    log "search $t from $rate/s"
    while ((n < max_trials)); do
        n=$((n + 1))
        if trial "$t" "$rate"; then
            lo=$rate
            cp "$scratch/trial-$t-$rate.json" "$out/loadgen/$t-max.json"
        else
            hi=$rate
        fi
        if ((hi == 0)); then
            rate=$((rate * 2))
        elif ((lo == 0)); then
            rate=$((hi / 2))
            ((rate >= 250)) || break
        else
            (((hi - lo) * 20 <= lo)) && break
            rate=$(((lo + hi) / 2))
        fi
    done
    echo "$t $lo $hi" >>"$out/raw/max.txt"
    log "$t: max $lo/s (first failure ${hi})"
    if ((lo > 0)); then
        local half=$((lo / 2))
        target_start "$t"
        target_load "$t" "$half" "$out/loadgen/$t-half.json" "$t" || true
        stop_server
        python3 "$report" verdict "$out/loadgen/$t-half.json" "$half" "$min_achieved" "$t at 50%" \
            | tee -a "$out/raw/trials.txt" || true
    fi
}
maxof() { awk -v t="$1" '$1 == t { v = $2 } END { print v + 0 }' "$out/raw/max.txt" 2>/dev/null || echo 0; }

# --- preparation ----------------------------------------------------------------------------
log "building (release)"
# What the run needs, installed on a fresh Debian 12 machine (root).
missing=()
command -v kamailio >/dev/null || missing+=(kamailio)
command -v sipp >/dev/null || missing+=(sip-tester)
command -v valgrind >/dev/null || missing+=(valgrind)
if ((${#missing[@]})); then
    apt-get update >&2 && apt-get install -y "${missing[@]}" >&2
fi
cargo build --release --manifest-path "$repo/Cargo.toml" >&2
# Credentials: enough users for the largest authenticated trial (rate x secs).
users_n=$((quick ? 200000 : 400000))
users_file=$scratch/users
"$lg" users --count "$users_n" --realm example.com --algorithms MD5,SHA-256 >"$users_file"
chmod 600 "$users_file"
# callgrind: only the users it registers, so start-up (loading credentials) stays small.
cg_users=$scratch/cg-users
"$lg" users --count "$cg_n" --realm example.com --algorithms MD5,SHA-256 >"$cg_users"
chmod 600 "$cg_users"
{
    echo "date_utc=$(date -u +%FT%TZ)"
    echo "commit=$(git -C "$repo" rev-parse HEAD)"
    echo "dirty=$(git -C "$repo" status --porcelain -- src tools Cargo.toml Cargo.lock | wc -l)"
    echo "quick=$quick"
    echo "secs=$secs"
    echo "sched=$sched_spec"
    echo "cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "cores=$(nproc)"
    echo "mem_gib=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "os=$(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release)"
    echo "rustc=$(rustc --version)"
    echo "kamailio=$(kamailio -v 2>/dev/null | awk 'NR == 1 { print $3 }')"
    echo "sipp=$(sipp -v 2>/dev/null | grep -o 'v[0-9.]*' | head -1)"
    echo "valgrind=$(valgrind --version)"
    echo "rmem_max=$(cat /proc/sys/net/core/rmem_max)"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/raw/machine.txt"
t_start=$(date +%s)
has_step() { [[ " $steps " == *" $1 "* ]]; }

# --- 1. maxima ------------------------------------------------------------------------------
if has_step 1; then
    for spec in echo:32000 sipreg-auth:8000 kamailio-auth:8000 sipreg-refresh:16000 \
        kamailio-refresh:16000 sipreg-noauth:16000 kamailio-noauth:16000; do
        search "${spec%%:*}" "${spec#*:}"
    done
fi

# --- 2. latency sweep (authenticated registrations) -----------------------------------------
if has_step 2; then
    p=$port
    for t in sipreg-auth kamailio-auth; do
        m=$(maxof "$t")
        ((m > 0)) || m=$((quick ? 4000 : 20000))
        for f in $sweep_fracs; do
            rate=$(awk -v m="$m" -v f="$f" 'BEGIN { printf "%d", m * f }')
            label="sipreg (1 worker)"
            [[ $t == kamailio-auth ]] && label="Kamailio (1 UDP worker)"
            log "sweep $t $rate/s"
            target_start "$t"
            target_load "$t" "$rate" "$out/loadgen/sweep-$t-$rate.json" "$label" || true
            stop_server
            python3 "$report" verdict "$out/loadgen/sweep-$t-$rate.json" "$rate" "$min_achieved" \
                "sweep $t" | tee -a "$out/raw/trials.txt" || true
        done
    done
    "$lg" plot --out "$out/latency.png" "$out"/loadgen/sweep-*.json
fi

# --- 3. SIPp ----------------------------------------------------------------------------------
if has_step 3; then
    for s in sipreg kamailio; do
        log "sipp-rate.sh SERVER=$s"
        env "${sipp_env[@]}" SERVER=$s SCHED="$sched_spec" PORT=$((port + 20)) \
            OUT="$scratch/sipp-$s" SIPREG="$sipreg" SIPREG_USERS="$users_file" \
            SIPREG_ARGS="--config $persist_off" SIPREG_NOAUTH_ARGS=--no-auth \
            "$kam_dir/sipp-rate.sh" both >&2 || log "sipp-rate.sh $s failed"
        cp "$scratch/sipp-$s/trials.txt" "$out/raw/sipp-$s-trials.txt" 2>/dev/null || true
        cp "$scratch/sipp-$s/summary.txt" "$out/raw/sipp-$s-summary.txt" 2>/dev/null || true
    done
fi

# --- 4 and 6b. callgrind ------------------------------------------------------------------------
# cg_sipreg NAME WORKERS N: sipreg under callgrind (all threads in one profile), N authenticated
# first registrations from the loadgen at 200/s (asserted: N registrations, no retransmission,
# no failure), 3 s idle, SIGTERM. With N = 0 it idles for the time a run of CG_N takes, so the
# baseline holds the same idle polling. Writes the total Ir to raw/cg-NAME.txt.
cg_sipreg() {
    local name=$1 workers=$2 n=$3 dir=$scratch/cg-$1 cpus=1
    ((workers > 1)) && cpus=0,1
    mkdir -p "$dir"
    p=$((port + 40))
    local log_file=$dir/sipreg.log
    taskset -c "$cpus" valgrind --tool=callgrind --dump-instr=no \
        --callgrind-out-file="$dir/callgrind.out" "$sipreg" serve --listen "udp:$addr:$p" \
        --domain example.com --users "$cg_users" --auth-algorithms MD5,SHA-256 \
        --workers "$workers" --config "$persist_off" </dev/null >"$log_file" 2>&1 &
    server_pid=$! server_kind=sipreg
    wait_log "$log_file" "listening on udp" 300 "$server_pid" || { cat "$log_file" >&2; return 1; }
    if ((n > 0)); then
        loadgen "$dir/load.json" "cg-$name" --rate 200 --count "$n" --users "$n" \
            --duration $((n / 200 + 10)) || true
        python3 "$report" assert-all "$dir/load.json" "$n" || return 1
        cp "$dir/load.json" "$out/loadgen/callgrind-$name.json"
    else
        sleep $((cg_n / 200))
    fi
    sleep 3
    stop_server
    awk '$1 == "totals:" || $1 == "summary:" { print $2; exit }' "$dir/callgrind.out" >"$out/raw/cg-$name.txt"
    log "callgrind $name: $(cat "$out/raw/cg-$name.txt") Ir"
}
if has_step 4 || has_step 6; then
    cg_sipreg base1 1 0
    cg_sipreg auth1 1 "$cg_n"
fi
if has_step 4; then
    log "perf/kamailio/callgrind.sh $cg_n"
    PORT=$((port + 45)) OUT="$scratch/cg-kamailio" "$kam_dir/callgrind.sh" "$cg_n" >&2 ||
        log "callgrind.sh failed"
    cp "$scratch/cg-kamailio/summary.txt" "$out/raw/cg-kamailio-summary.txt" 2>/dev/null || true
fi
if has_step 6; then
    cg_sipreg base2 2 0
    cg_sipreg auth2 2 "$cg_n"
fi

# --- 6a. two workers at their maximum -----------------------------------------------------
if has_step 6; then
    search sipreg2-auth 16000
    search sipreg2-noauth 32000
fi

# --- 5 and 7. one million bindings: memory, and refreshes with persistence on and off --------
# fill PERSIST: a sipreg with --no-auth (persistence off: the config file; on: a fresh data
# directory), RSS before, PERSIST_N distinct users registered once, RSS after; then a refresh
# search on it: a trial re-registers RATE x SECS of those users (each an update of an existing
# binding, journaled when persistence is on), the server kept running across trials.
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$server_pid/status"; }
persist_run() {
    local mode=$1
    p=$((port + 50))
    if [[ $mode == on ]]; then
        rm -rf "$scratch/data"
        start_sipreg 1 "$p" --workers 1 --no-auth --data-dir "$scratch/data"
    else
        start_sipreg 1 "$p" --workers 1 --no-auth --config "$persist_off"
    fi
    local rss0 rss1 fill_rate=$((quick ? 20000 : 40000))
    rss0=$(rss_kb)
    log "persist $mode: registering $persist_n users at $fill_rate/s"
    local secs_saved=$secs
    secs=$((persist_n / fill_rate + 5))
    loadgen "$out/loadgen/fill-persist-$mode.json" "fill persist $mode" --no-auth \
        --users "$persist_n" --count "$persist_n" --rate "$fill_rate" \
        --duration "$((persist_n / fill_rate + 30))" || true
    secs=$secs_saved
    sleep 2
    rss1=$(rss_kb)
    echo "$mode $rss0 $rss1 $persist_n" >>"$out/raw/sipreg-memory.txt"
    log "persist $mode: RSS $rss0 kB -> $rss1 kB"
    local rate=$((quick ? 16000 : 32000)) lo=0 hi=0 n=0 json
    while ((n < max_trials)); do
        n=$((n + 1))
        json=$scratch/refresh1m-$mode-$rate.json
        loadgen "$json" "refresh 1M persist $mode" --no-auth --users "$persist_n" \
            --rate "$rate" --count "$((rate * secs))" --duration "$((secs + 1))" || true
        if python3 "$report" verdict "$json" "$rate" "$min_achieved" "refresh-1M persist $mode" |
            tee -a "$out/raw/trials.txt"; then
            lo=$rate
            cp "$json" "$out/loadgen/refresh1m-persist-$mode-max.json"
        else
            hi=$rate
        fi
        sleep 2 # let a failed trial's backlog drain
        if ((hi == 0)); then
            rate=$((rate * 2))
        elif ((lo == 0)); then
            rate=$((hi / 2))
            ((rate >= 250)) || break
        else
            (((hi - lo) * 20 <= lo)) && break
            rate=$(((lo + hi) / 2))
        fi
    done
    echo "refresh1m-persist-$mode $lo $hi" >>"$out/raw/max.txt"
    log "persist $mode: max refresh rate at $persist_n bindings $lo/s"
    stop_server
}
if has_step 5 || has_step 7; then
    persist_run off
fi
if has_step 7; then
    persist_run on
fi
if has_step 5; then
    log "perf/kamailio/memory.sh $mem_n"
    KAM_SCHED=$sched_spec SIPP_SCHED=$sched_spec RATE=$((quick ? 20000 : 40000)) \
        PORT=$((port + 55)) OUT="$scratch/mem-kamailio" "$kam_dir/memory.sh" "$mem_n" noauth >&2 ||
        log "memory.sh failed"
    cp "$scratch/mem-kamailio/summary.txt" "$out/raw/mem-kamailio-summary.txt" 2>/dev/null || true
fi

echo "elapsed_s=$(($(date +%s) - t_start))" >>"$out/raw/machine.txt"
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/raw/machine.txt"
python3 "$report" summary "$out" "$quick" "$*"
log "results in $out ($(($(date +%s) - t_start)) s)"
