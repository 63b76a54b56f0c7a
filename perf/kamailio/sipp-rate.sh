#!/usr/bin/env bash
# Maximum sustainable registration rate of a registrar under SIPp, with and without digest
# authentication: the highest SIPp call rate (one call = one registration: REGISTER, 401,
# REGISTER with credentials, 200; or REGISTER, 200 without auth) at which a run of SECS seconds
# has < 0.1% failed calls, no retransmission and reaches the rate asked (the median of SIPp's
# per-second call rates at least 98% of it: lib.sh steady_rate). Each run also reports
# the CPU the server and SIPp used (share of a core, microseconds per registration): on a
# 2-core machine one SIPp saturates its core before a fast server does, so the CPU per
# registration is the number that compares servers when the rate is SIPp's limit.
#
#   perf/kamailio/sipp-rate.sh [auth|noauth|both]        (default both)
#
# Search: start at START calls/s and double while a run passes, then bisect between the last
# pass and the first failure until they are within 5% (at most MAX_RUNS runs per mode; each run
# is bounded by SECS + 30 s). The server is started once per mode and stopped at the end.
# SIPp is pinned to core SIPP_CPU (0), the server to SERVER_CPU (1), both scheduled by SCHED:
# rt:10 by default (SCHED_FIFO priority 10, needs root: each gets its core whenever it has
# work, so other work on a shared machine, e.g. compilers, does not make it drop packets; the
# kernel's RT throttling leaves others 5%, and only for the bounded runs), or nice:N.
#
# Environment:
#   SERVER      kamailio (default) | sipreg | cmd
#     kamailio  perf/kamailio/run.sh with kamailio.cfg (KAM_* variables as in run.sh)
#     sipreg    SIPREG (default target/release/sipreg) serve --listen udp:ADDR:PORT
#               --domain example.com --users FILE --auth-algorithms MD5,SHA-256 SIPREG_ARGS;
#               FILE is SIPREG_USERS or one generated for the USERS users (lib.sh).
#               In noauth mode SIPREG_NOAUTH_ARGS is appended (whatever option makes sipreg
#               save without authentication); unset, the noauth mode is skipped for sipreg.
#     cmd       SERVER_CMD, run with bash -c with ADDR, PORT, MODE (auth|noauth) and USERS_CSV
#               in its environment; it must stay in the foreground (its pid is the one stopped)
#   ADDR, PORT  where the server listens (127.0.0.1, 5090); SIPp binds PORT+1, +2, +11, +13
#   USERS       distinct users cycled through (100000)
#   SECS        length of one run at one rate (10)
#   START       first rate tried (4000); MAX_RUNS (10)
#   OUT         directory for logs and the summary (a new one in /tmp)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR
. "$here/lib.sh"

modes=${1:-both}
[[ $modes == both ]] && modes="noauth auth"
server=${SERVER:-kamailio}
addr=${ADDR:-127.0.0.1}
port=${PORT:-5090}
users=${USERS:-100000}
secs=${SECS:-10}
start_rate=${START:-4000}
max_runs=${MAX_RUNS:-10}
out=${OUT:-$(mktemp -d /tmp/sipp-rate.XXXXXX)}
sched_spec=${SCHED:-rt:10}
export SIPP_SCHED=$sched_spec
case $sched_spec in
    rt:*) prio=(chrt -f "${sched_spec#rt:}") ;;
    nice:*) prio=(nice -n "${sched_spec#nice:}") ;;
    *) echo "sipp-rate.sh: SCHED is not nice:N or rt:P" >&2; exit 2 ;;
esac
mkdir -p "$out"
case $addr in 127.*) ;; *) echo "sipp-rate.sh: loopback addresses only" >&2; exit 2 ;; esac

server_pid=
server_start() { # MODE
    local mode=$1
    case $server in
        kamailio)
            KAM_CPU=${SERVER_CPU:-1} KAM_SCHED=$sched_spec \
                "$here/run.sh" start "$out/kamailio-$mode" "$addr" "$port" "$mode" >/dev/null
            server_pid=$(<"$out/kamailio-$mode/kamailio.pid")
            ;;
        sipreg)
            local bin=${SIPREG:-$repo/target/release/sipreg} file=${SIPREG_USERS:-}
            if [[ -z $file ]]; then
                file=$out/sipreg-users
                [[ -s $file ]] || make_sipreg_users "$file" "$users"
            fi
            local -a extra=()
            # shellcheck disable=SC2206 # word splitting intended
            extra=(${SIPREG_ARGS:-})
            # shellcheck disable=SC2206
            [[ $mode == noauth ]] && extra+=(${SIPREG_NOAUTH_ARGS:-})
            "${prio[@]}" taskset -c "${SERVER_CPU:-1}" "$bin" serve --listen "udp:$addr:$port" \
                --domain example.com --users "$file" --auth-algorithms MD5,SHA-256 \
                --workers 1 --data-dir "$out/data-$mode" "${extra[@]}" </dev/null >"$out/sipreg-$mode.log" 2>&1 &
            server_pid=$!
            ;;
        cmd)
            ADDR=$addr PORT=$port MODE=$mode USERS_CSV=$out/users.csv \
                "${prio[@]}" taskset -c "${SERVER_CPU:-1}" bash -c "exec $SERVER_CMD" \
                </dev/null >"$out/server-$mode.log" 2>&1 &
            server_pid=$!
            ;;
        *) echo "sipp-rate.sh: SERVER must be kamailio, sipreg or cmd" >&2; exit 2 ;;
    esac
    local i
    for ((i = 0; i < 100; i++)); do
        ss -Hlun "sport = :$port" | grep -q "$addr:$port" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "sipp-rate.sh: the server did not start; see $out" >&2
    server_stop "$mode"
    exit 1
}

server_stop() { # MODE
    case $server in
        kamailio) "$here/run.sh" stop "$out/kamailio-$1" ;;
        *)
            if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
                kill -TERM "$server_pid"
                wait "$server_pid" 2>/dev/null || true
            fi
            ;;
    esac
    server_pid=
}
current_mode=
trap '[[ -n $current_mode ]] && server_stop "$current_mode"' EXIT

make_csv "$out/users.csv" "$users"
hz=$(getconf CLK_TCK)

# trial MODE RATE: one bounded run; prints a line and returns 0 when it passes.
trial() {
    local mode=$1 rate=$2 calls=$(($2 * secs)) dir="$out/$1-$2" rc=0
    local cpu0 cpu1
    cpu0=$(cpu_ticks "$server_pid")
    local TIMEFORMAT='%U %S %R' times
    # bash's time: SIPp's user and system CPU seconds and the wall time of the run.
    times=$({ time run_sipp "$dir" "$addr" "$port" "$here/register-$mode.xml" "$out/users.csv" \
        "$calls" "$rate" "$((secs + 20))" 2>&1; } 2>&1) || rc=$?
    cpu1=$(cpu_ticks "$server_pid")
    local ok failed retrans achieved verdict=pass
    ok=$(stat "$dir" 'SuccessfulCall(C)')
    failed=$(stat "$dir" 'FailedCall(C)')
    retrans=$(stat "$dir" 'Retransmissions(C)')
    achieved=$(steady_rate "$dir")
    [[ $ok =~ ^[0-9]+$ && $failed =~ ^[0-9]+$ && $retrans =~ ^[0-9]+$ ]] || verdict=fail
    if [[ $verdict == pass ]]; then
        awk -v ok="$ok" -v f="$failed" -v r="$retrans" -v a="$achieved" -v t="$rate" \
            -v c="$calls" 'BEGIN { exit !(f * 1000 < c && r == 0 && ok + f >= c && a >= 0.98 * t) }' ||
            verdict=fail
    fi
    # CPU of the server (all its processes) and of SIPp: share of a core over the run's wall
    # time, and microseconds per registration sent.
    local cpu
    cpu=$(awk -v d="$((cpu1 - cpu0))" -v hz="$hz" -v c="$calls" -v t="${times##* }" '
        BEGIN { printf "server %.0f%% %.1f us/reg", 100 * d / hz / t, 1e6 * d / hz / c }')
    cpu+=$(awk -v u="$times" -v c="$calls" 'BEGIN { split(u, x, " ");
        printf ", sipp %.0f%% %.1f us/reg", 100 * (x[1] + x[2]) / x[3], 1e6 * (x[1] + x[2]) / c }')
    printf '%-6s rate %6d/s: %s  (sipp status %d, %s ok, %s failed, %s retrans, achieved %s/s; cpu: %s)\n' \
        "$mode" "$rate" "$verdict" "$rc" "$ok" "$failed" "$retrans" "$achieved" "$cpu" |
        tee -a "$out/trials.txt"
    sleep 2 # let queues drain before the next run
    [[ $verdict == pass ]]
}

for mode in $modes; do
    if [[ $server == sipreg && $mode == noauth && -z ${SIPREG_NOAUTH_ARGS:-} ]]; then
        echo "noauth: skipped for sipreg (set SIPREG_NOAUTH_ARGS)" | tee -a "$out/summary.txt"
        continue
    fi
    current_mode=$mode
    server_start "$mode"
    lo=0 hi=0 rate=$start_rate runs=0
    # Warm-up (not counted): fills the location table with the users once.
    run_sipp "$out/$mode-warmup" "$addr" "$port" "$here/register-$mode.xml" "$out/users.csv" \
        "$users" "$start_rate" "$((users / start_rate + 30))" || true
    while ((runs < max_runs)); do
        runs=$((runs + 1))
        if trial "$mode" "$rate"; then lo=$rate; else hi=$rate; fi
        if ((hi == 0)); then
            rate=$((rate * 2))
        elif ((lo == 0)); then
            rate=$((hi / 2))
            ((rate >= 100)) || break
        else
            (((hi - lo) * 20 <= lo)) && break
            rate=$(((lo + hi) / 2))
        fi
    done
    server_stop "$mode"
    current_mode=
    if ((hi == 0)); then
        limit="no failure up to $lo; raise MAX_RUNS"
    else
        limit="first failure at $hi"
    fi
    echo "$server $mode: max sustainable rate $lo registrations/s ($limit; $secs s runs)" |
        tee -a "$out/summary.txt"
done
echo "logs: $out"
