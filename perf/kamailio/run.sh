#!/usr/bin/env bash
# Start or stop Kamailio 5.6 with perf/kamailio/kamailio.cfg as a pure registrar, pinned to one
# core, in the foreground of a background job whose pid is written to a file.
#
#   perf/kamailio/run.sh start DIR ADDR PORT [auth|noauth]   # prints the main pid
#   perf/kamailio/run.sh stop DIR
#
# DIR is a scratch directory (created): pid file, stderr log, ctl socket (for kamcmd: run
# `kamcmd -s unix:DIR/ctl ul.dump`). ADDR must be a loopback address.
# Environment:
#   KAM_CPU    core to pin every Kamailio process to (default 1)
#   KAM_SHM    shared memory in MB (default 1024; memory.sh raises it for 1M bindings)
#   KAM_PKG    private memory per process in MB (default 16)
#   KAM_ALLOC  allocator for shm and pkg (default tlsf: the default allocator is 3-4x slower
#              on this workload)
#   KAM_WRAP   a command to run Kamailio under, e.g. "valgrind --tool=callgrind ..." (word-split)
#   KAM_EXTRA  extra kamailio options, word-split (e.g. "-A HASH_SIZE=20")
#   KAM_SCHED  scheduling: nice:N (nice value N, default nice:0) or rt:P (SCHED_FIFO priority
#              P: the pinned core is Kamailio's whenever it has work; the kernel's RT
#              throttling still leaves 5% to others). sipp-rate.sh passes its SCHED.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cfg="$here/kamailio.cfg"

usage() {
    sed -n '2,8p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

sched_prefix() { # nice:N | rt:P -> the command prefix
    case $1 in
        rt:*) echo "chrt -f ${1#rt:}" ;;
        nice:*) echo "nice -n ${1#nice:}" ;;
        *) echo "run.sh: scheduling '$1' is not nice:N or rt:P" >&2; exit 2 ;;
    esac
}

port_bound() { # ADDR PORT: whether something listens on UDP ADDR:PORT
    ss -Hlun "sport = :$2" 2>/dev/null | grep -q "$1:$2"
}

start() {
    local dir=$1 addr=$2 port=$3 mode=${4:-auth}
    case $addr in 127.*) ;; *) echo "run.sh: $addr is not a loopback address" >&2; exit 2 ;; esac
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if port_bound "$addr" "$port"; then
        echo "run.sh: udp $addr:$port is already in use" >&2
        exit 1
    fi
    local -a defs=(-A WITH_CTL -A "CTL_SOCK=\"unix:$dir/ctl\"")
    case $mode in
        auth) defs+=(-A WITH_AUTH) ;;
        noauth) ;;
        *) usage ;;
    esac
    local alloc=${KAM_ALLOC:-tlsf}
    local -a wrap=() extra=()
    # shellcheck disable=SC2206 # word splitting of the wrapper and extras is intended
    wrap=(${KAM_WRAP:-})
    # shellcheck disable=SC2206
    extra=(${KAM_EXTRA:-})
    rm -f "$dir/ctl" "$dir/kamailio.pid"
    # -DD: the main process stays in the foreground (it forks the worker, timers and ctl);
    # -E: errors to stderr (the config logs errors only). -Y: runtime dir of our own.
    local -a sched
    read -ra sched < <(sched_prefix "${KAM_SCHED:-nice:0}")
    "${sched[@]}" taskset -c "${KAM_CPU:-1}" "${wrap[@]}" kamailio -f "$cfg" -DD -E \
        -l "udp:$addr:$port" -n 1 \
        -x "$alloc" -X "$alloc" -m "${KAM_SHM:-1024}" -M "${KAM_PKG:-16}" \
        -Y "$dir" -w "$dir" "${defs[@]}" "${extra[@]}" \
        </dev/null >"$dir/kamailio.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/kamailio.pid"
    # Ready when the UDP socket is bound and the ctl socket exists (valgrind needs longer).
    local i
    for ((i = 0; i < 600; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: kamailio exited; log:" >&2
            cat "$dir/kamailio.log" >&2
            exit 1
        fi
        if port_bound "$addr" "$port" && [[ -S $dir/ctl ]]; then
            echo "$pid"
            return 0
        fi
        sleep 0.1
    done
    echo "run.sh: kamailio not ready after 60 s" >&2
    stop "$dir"
    exit 1
}

stop() {
    local dir=$1 pid i
    [[ -f $dir/kamailio.pid ]] || return 0
    pid=$(<"$dir/kamailio.pid")
    if kill -0 "$pid" 2>/dev/null; then
        # SIGTERM to the main process: it stops its children and exits.
        kill -TERM "$pid"
        for ((i = 0; i < 300; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: kamailio $pid still running after 30 s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir/kamailio.pid"
}

case ${1:-} in
    start) [[ $# -ge 4 ]] || usage; shift; start "$@" ;;
    stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
    *) usage ;;
esac
