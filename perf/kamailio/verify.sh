#!/usr/bin/env bash
# Proof that perf/kamailio/kamailio.cfg is a working registrar: start Kamailio with auth on
# loopback, register USERS (default 10,000) distinct users through the digest challenge with
# SIPp, require zero failures and zero unexpected messages, then check on the server side
# (kamcmd) that every user has exactly one binding, that three sampled bindings carry the
# contact and expiry sent, and that a wrong password is challenged again and saves nothing.
#
#   perf/kamailio/verify.sh [PORT]          (default port 5070 on 127.0.0.1)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$here/lib.sh"

addr=127.0.0.1
port=${1:-5070}
users=${USERS:-10000}
work=$(mktemp -d /tmp/kamailio-verify.XXXXXX)
kam="$work/kamailio"
trap '"$here/run.sh" stop "$kam"' EXIT

"$here/run.sh" start "$kam" "$addr" "$port" auth >/dev/null
ctl=(kamcmd -s "unix:$kam/ctl")

make_csv "$work/users.csv" "$users"
rc=0
run_sipp "$work/sipp" "$addr" "$port" "$here/register-auth.xml" "$work/users.csv" \
    "$users" 2000 60 || rc=$?
ok=$(stat "$work/sipp" 'SuccessfulCall(C)')
failed=$(stat "$work/sipp" 'FailedCall(C)')
retrans=$(stat "$work/sipp" 'Retransmissions(C)')
echo "SIPp: status $rc, $ok successful, $failed failed, $retrans retransmissions"

stats=$("${ctl[@]}" stats.get_statistics all)
get() { awk -v k="$1" '$1 == k { print $3 }' <<<"$stats"; }
echo "Kamailio: $(get usrloc:location_users) AORs, $(get usrloc:location_contacts) contacts," \
    "$(get sl:401_replies) 401s, $(get sl:200_replies) 200s"

fail=0
[[ $rc -eq 0 && $ok -eq $users && $failed -eq 0 ]] || { echo "FAIL: SIPp"; fail=1; }
[[ $(get usrloc:location_users) -eq $users && $(get usrloc:location_contacts) -eq $users ]] ||
    { echo "FAIL: binding count"; fail=1; }
for i in 0 $((users / 2)) $((users - 1)); do
    u=$(printf 'u%06d' "$i")
    dump=$("${ctl[@]}" ul.lookup location "$u")
    if grep -q "Address: sip:$u@$addr:$((port + 1))" <<<"$dump" &&
        [[ $(awk '$1 == "Expires:" { print $2 }' <<<"$dump") -gt 3500 ]]; then
        echo "binding of $u: $(awk '$1 == "Address:" || $1 == "Expires:"' <<<"$dump" | xargs)"
    else
        echo "FAIL: binding of $u:"
        echo "$dump"
        fail=1
    fi
done

# A wrong password (u999999 is not among the users above) is challenged again; nothing saved.
printf 'SEQUENTIAL\nu999999;[authentication username=u999999 password=wrong]\n' >"$work/wrong.csv"
rc=0
run_sipp "$work/wrong" "$addr" "$port" "$here/wrong-password.xml" "$work/wrong.csv" 1 1 10 ||
    rc=$?
if [[ $rc -eq 0 ]] && "${ctl[@]}" ul.lookup location u999999 2>&1 | grep -q 'AOR not found'; then
    echo "wrong password: challenged again, no binding"
else
    echo "FAIL: wrong password (SIPp status $rc)"
    fail=1
fi

[[ $fail -eq 0 ]] && echo "OK: $users users registered with digest auth through Kamailio"
exit "$fail"
