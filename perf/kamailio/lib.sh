# shellcheck shell=bash
# Shared helpers of the perf/kamailio scripts (sourced, not run).

# make_csv FILE N: a SIPp injection file of N users u000000.. with passwords p000000..
# (field0 = user, field1 = the [authentication] keyword), read in order.
make_csv() {
    awk -v n="$2" 'BEGIN {
        print "SEQUENTIAL"
        for (i = 0; i < n; i++)
            printf "u%06d;[authentication username=u%06d password=p%06d]\n", i, i, i
    }' >"$1"
}

# make_sipreg_users FILE N: a sipreg credentials file for the same N users in realm
# example.com, MD5 and SHA-256 lines (the format of src/auth/file.rs: user realm algorithm
# HA1-hex). Equivalent to `sipreg user add uNNNNNN --realm example.com --password pNNNNNN` per
# user, but in seconds rather than minutes for 100,000 users.
make_sipreg_users() {
    python3 - "$1" "$2" <<'PY'
import hashlib, os, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        u, p = f"u{i:06d}", f"p{i:06d}"
        a1 = f"{u}:example.com:{p}".encode()
        f.write(f"{u} example.com SHA-256 {hashlib.sha256(a1).hexdigest()}\n")
        f.write(f"{u} example.com MD5 {hashlib.md5(a1).hexdigest()}\n")
os.chmod(path, 0o600)
PY
}

# run_sipp OUTDIR ADDR PORT SCENARIO CSV CALLS RATE SECONDS: SIPp pinned to core SIPP_CPU
# (default 0) with scheduling SIPP_SCHED (nice:N or rt:P as in run.sh; default nice:0) sends
# CALLS calls at RATE per second to ADDR:PORT, bounded by SECONDS (SIPp's -timeout, and a
# hard kill 10 s later). Statistics in OUTDIR/stat.csv, errors in OUTDIR/errors.log, the final
# screen in OUTDIR/screen.txt. Returns SIPp's status.
run_sipp() {
    local out=$1 addr=$2 port=$3 scenario=$4 csv=$5 calls=$6 rate=$7 secs=$8
    local sport=${SIPP_PORT:-$((port + 1))}
    local -a sched
    local spec=${SIPP_SCHED:-nice:0}
    case $spec in
        rt:*) sched=(chrt -f "${spec#rt:}") ;;
        nice:*) sched=(nice -n "${spec#nice:}") ;;
        *) echo "run_sipp: SIPP_SCHED is not nice:N or rt:P" >&2; return 2 ;;
    esac
    mkdir -p "$out"
    rm -f "$out"/stat.csv "$out"/errors.log
    # -cp/-mp: SIPp's control and media sockets, kept next to our ports so that parallel runs
    # of other people do not collide on SIPp's defaults (8888, 6000).
    timeout --kill-after=5 "$((secs + 10))" \
        "${sched[@]}" taskset -c "${SIPP_CPU:-0}" sipp "$addr:$port" -sf "$scenario" -inf "$csv" \
        -m "$calls" -r "$rate" -rp 1000 -timeout "${secs}s" \
        -i "$addr" -p "$sport" -cp "$((sport + 1))" -mp "$((sport + 10))" \
        -buff_size 8388608 -max_retrans 5 -nostdin \
        -trace_stat -stf "$out/stat.csv" -fd 1 -trace_err -error_file "$out/errors.log" \
        >"$out/screen.txt" 2>&1
}

# stat OUTDIR COLUMN: the last value of COLUMN (e.g. 'SuccessfulCall(C)') in OUTDIR/stat.csv.
stat() {
    awk -F';' -v col="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        { v = $c }
        END { if (c) print v; else print "?" }' "$1/stat.csv"
}

# cpu_ticks PID: user+system clock ticks of PID and all its children (direct ones).
cpu_ticks() {
    local p total=0 f
    for p in "$1" $(pgrep -P "$1" || true); do
        [[ -r /proc/$p/stat ]] || continue
        f=$(sed 's/^.*) //' "/proc/$p/stat")
        # fields after "comm": state is $1, utime is $12, stime is $13
        total=$((total + $(awk '{print $12 + $13}' <<<"$f")))
    done
    echo "$total"
}

# steady_rate OUTDIR: SIPp's call rate in its steady state: the median of the per-second
# CallRate(P) rows of OUTDIR/stat.csv (written every second, -fd 1) that created calls, less
# the last such row (a partial second). The cumulative CallRate(C) counts start-up and the tail
# too and reads about 3% low on a 10 s run.
steady_rate() {
    awk -F';' '
        NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "CallRate(P)") r = i; if ($i == "OutgoingCall(P)") o = i } next }
        $o > 0 { v[n++] = $r }
        END {
            n--  # drop the last (partial) second
            if (n < 1) { print 0; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            print v[int(n / 2)]
        }' "$1/stat.csv"
}
