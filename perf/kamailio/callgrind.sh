#!/usr/bin/env bash
# Instructions per registration in Kamailio's UDP worker, counted by valgrind's callgrind.
#
#   perf/kamailio/callgrind.sh [N]        (default N = 2000 registrations per run)
#
# Method. Kamailio forks (main, one UDP worker, timers, ctl), so it runs under
# `valgrind --tool=callgrind --trace-children=yes`, one profile per process. Each measurement
# is its own Kamailio start: start, wait until ready, let SIPp send a fixed count of calls at a
# low rate (valgrind is ~50x slower; no retransmission may happen, or the count would include
# them, so each run asserts 0 retransmissions and 0 failures), idle IDLE seconds, stop. The UDP
# worker is found with `kamcmd core.psx` ("udp receiver"); its profile's total Ir is its
# instruction count, start-up (module child_init) and idle polling included. The idle baseline
# is the same start, wait and stop with no call sent; (worker Ir - baseline Ir) / N is the
# count per call. Runs:
#   base-auth     auth config, nothing sent
#   auth          auth config, N x register-auth.xml (REGISTER, 401, REGISTER with MD5
#                 credentials qop=auth, 200): one full authenticated registration
#   challenge     auth config, N x challenge-only.xml (REGISTER without credentials, 401)
#   base-noauth   no-auth config, nothing sent
#   noauth        no-auth config, N x register-noauth.xml (REGISTER, 200)
#   refresh       auth config, register-auth.xml for the same N users twice: the second pass
#                 re-registers users that have a binding (a new Call-ID each: the contact is
#                 updated in place); (refresh - auth) / N is one registration of a known phone
# Derived: the authenticated REGISTER alone (credentials checked, binding saved, 200) =
# auth - challenge. In the other runs every call registers a new user (u000000.. in order), so
# each saves a new binding, like the first registration of a phone.
# Environment: PORT (5120), IDLE (3 s), OUT (a new /tmp directory), CPU (1; valgrind pinned).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$here/lib.sh"

n=${1:-2000}
addr=127.0.0.1
port=${PORT:-5120}
idle=${IDLE:-3}
out=${OUT:-$(mktemp -d /tmp/kamailio-callgrind.XXXXXX)}
mkdir -p "$out"
make_csv "$out/users.csv" "$n"
current=
trap '[[ -n $current ]] && "$here/run.sh" stop "$current"' EXIT

# measure NAME MODE SCENARIO|- : one Kamailio start under callgrind; writes the worker's Ir
# and, as a check, the Ir of all its processes to OUT/NAME/result.
measure() {
    local name=$1 mode=$2 scenario=$3 dir="$out/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    current=$dir
    KAM_CPU=${CPU:-1} KAM_SHM=256 KAM_PKG=16 \
        KAM_WRAP="valgrind --tool=callgrind --trace-children=yes --dump-instr=no
            --callgrind-out-file=$dir/callgrind.out.%p" \
        "$here/run.sh" start "$dir" "$addr" "$port" "$mode" >/dev/null
    local worker
    worker=$(kamcmd -s "unix:$dir/ctl" core.psx |
        awk '$1 == "PID:" { pid = $2 } /udp receiver/ { print pid; exit }')
    local passes=1
    if [[ $scenario == *x2 ]]; then
        passes=2
        scenario=${scenario%x2}
    fi
    local pass
    for ((pass = 0; pass < passes; pass++)); do
        [[ $scenario != - ]] || break
        local rc=0
        # 200 calls/s: valgrind'd Kamailio answers well within SIPp's 500 ms retransmit timer.
        run_sipp "$dir/sipp" "$addr" "$port" "$here/$scenario" "$out/users.csv" "$n" 200 \
            "$((n / 200 + 60))" || rc=$?
        local ok retrans
        ok=$(stat "$dir/sipp" 'SuccessfulCall(C)')
        retrans=$(stat "$dir/sipp" 'Retransmissions(C)')
        if [[ $rc -ne 0 || $ok -ne $n || $retrans -ne 0 ]]; then
            echo "callgrind.sh: $name: SIPp status $rc, $ok of $n ok, $retrans retransmissions" >&2
            exit 1
        fi
    done
    sleep "$idle"
    "$here/run.sh" stop "$dir"
    current=
    local all
    # One total per profile (a profile has a summary: and a totals: line with the same value).
    all=$(awk '($1 == "totals:" || $1 == "summary:") && !seen[FILENAME]++ { s += $2 } END { print s }' \
        "$dir"/callgrind.out.*)
    local w
    w=$(awk '$1 == "totals:" || $1 == "summary:" { print $2; exit }' "$dir/callgrind.out.$worker")
    echo "$w $all" >"$dir/result"
}

declare -A ir all
for run in base-auth:auth:- auth:auth:register-auth.xml challenge:auth:challenge-only.xml \
    base-noauth:noauth:- noauth:noauth:register-noauth.xml refresh:auth:register-auth.xmlx2; do
    IFS=: read -r name mode scenario <<<"$run"
    measure "$name" "$mode" "$scenario"
    read -r "ir[$name]" "all[$name]" <"$out/$name/result"
    printf '%-12s worker Ir %14d   all processes Ir %14d\n' "$name" "${ir[$name]}" "${all[$name]}" |
        tee -a "$out/summary.txt"
done

per() { awk -v a="$1" -v b="$2" -v n="$n" 'BEGIN { printf "%.0f", (a - b) / n }'; }
{
    echo "N = $n per run; instructions per call in the UDP worker (minus the idle baseline):"
    echo "  registration with auth (REGISTER->401 + REGISTER->200): $(per "${ir[auth]}" "${ir[base-auth]}")"
    echo "  REGISTER -> 401 (challenge):                            $(per "${ir[challenge]}" "${ir[base-auth]}")"
    echo "  authenticated REGISTER -> 200 (auth - challenge):       $(per "${ir[auth]}" "${ir[challenge]}")"
    echo "  REGISTER -> 200 without auth:                           $(per "${ir[noauth]}" "${ir[base-noauth]}")"
    echo "  registration with auth of a user already bound:         $(per "${ir[refresh]}" "${ir[auth]}")"
    echo "  (all processes, registration with auth:                 $(per "${all[auth]}" "${all[base-auth]}");"
    echo "   this includes the timer processes ticking for the run's longer wall time)"
} | tee -a "$out/summary.txt"
echo "profiles: $out (callgrind_annotate $out/auth/callgrind.out.PID)"
