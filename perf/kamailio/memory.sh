#!/usr/bin/env bash
# Memory per binding in Kamailio at COUNT (default 1,000,000) bindings.
#
#   perf/kamailio/memory.sh [COUNT] [auth|noauth]      (default 1000000 noauth)
#
# Start Kamailio (run.sh, 4 GB of shared memory, usrloc hash of 2^16 slots), measure, let SIPp
# register COUNT distinct users (u000000.., one contact each, Expires 3600) at RATE per second
# (default 20000; bounded by COUNT/RATE + 120 s), measure again, stop. Measured, before and
# after, over every Kamailio process (main, UDP worker, timers, ctl):
#   - shared memory in use by Kamailio's allocator: `kamcmd core.shmmem` used (the bytes asked
#     for) and real_used (plus the allocator's per-fragment overhead, which in Debian's build
#     includes debug fields: file, function, line of each allocation);
#   - PSS (proportional set size, /proc/PID/smaps_rollup) summed over the processes: the
#     physical memory they hold, shared pages counted once;
#   - RSS summed over the processes (shared pages counted once per process that touched them,
#     so an over-count; for reference).
# Each difference divided by the number of contacts usrloc reports (usrloc:location_contacts)
# is the cost of one binding. Without auth by default: authentication stores nothing per
# binding, and the no-auth run is twice as fast.
# Environment: PORT (5140), RATE (20000), KAM_SHM (4096), OUT (a new /tmp directory);
# KAM_SCHED and SIPP_SCHED (run.sh, lib.sh; rt:10 keeps a shared machine from making SIPp fail).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$here/lib.sh"

count=${1:-1000000}
mode=${2:-noauth}
addr=127.0.0.1
port=${PORT:-5140}
rate=${RATE:-20000}
out=${OUT:-$(mktemp -d /tmp/kamailio-memory.XXXXXX)}
kam="$out/kamailio"
mkdir -p "$out"
trap '"$here/run.sh" stop "$kam"' EXIT

make_csv "$out/users.csv" "$count"
KAM_SHM=${KAM_SHM:-4096} "$here/run.sh" start "$kam" "$addr" "$port" "$mode" >/dev/null
main=$(<"$kam/kamailio.pid")
ctl=(kamcmd -s "unix:$kam/ctl")

# snapshot: "shm_used shm_real_used pss_kB rss_kB contacts"
snapshot() {
    local shm pss=0 rss=0 p v contacts
    shm=$("${ctl[@]}" core.shmmem | awk '$1 == "used:" { u = $2 } $1 == "real_used:" { r = $2 } END { print u, r }')
    for p in "$main" $(pgrep -P "$main"); do
        v=$(awk '$1 == "Pss:" { pss = $2 } $1 == "Rss:" { rss = $2 } END { print pss, rss }' \
            "/proc/$p/smaps_rollup")
        pss=$((pss + ${v% *}))
        rss=$((rss + ${v#* }))
    done
    contacts=$("${ctl[@]}" stats.get_statistics usrloc: | awk '$1 == "usrloc:location_contacts" { print $3 }')
    echo "$shm $pss $rss $contacts"
}

read -r used0 shm0 pss0 rss0 c0 < <(snapshot)
echo "before: shm used $used0 B, real_used $shm0 B, PSS $pss0 kB, RSS $rss0 kB, $c0 contacts" | tee "$out/summary.txt"
rc=0
run_sipp "$out/sipp" "$addr" "$port" "$here/register-$mode.xml" "$out/users.csv" "$count" \
    "$rate" "$((count / rate + 120))" || rc=$?
echo "SIPp: status $rc, $(stat "$out/sipp" 'SuccessfulCall(C)') ok, $(stat "$out/sipp" 'FailedCall(C)') failed," \
    "$(stat "$out/sipp" 'Retransmissions(C)') retransmissions, $(stat "$out/sipp" 'CallRate(C)')/s" |
    tee -a "$out/summary.txt"
sleep 2
read -r used1 shm1 pss1 rss1 c1 < <(snapshot)
echo "after:  shm used $used1 B, real_used $shm1 B, PSS $pss1 kB, RSS $rss1 kB, $c1 contacts" | tee -a "$out/summary.txt"
contacts=$((c1 - c0))
awk -v n="$contacts" -v u="$((used1 - used0))" -v s="$((shm1 - shm0))" -v p="$((pss1 - pss0))" \
    -v r="$((rss1 - rss0))" 'BEGIN {
    printf "per binding (%d bindings): shm used %.0f B, shm real_used %.0f B, PSS %.0f B, RSS %.0f B\n",
        n, u / n, s / n, p * 1024 / n, r * 1024 / n
}' | tee -a "$out/summary.txt"
echo "logs: $out"
