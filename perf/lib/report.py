#!/usr/bin/env python3
"""Helpers of perf/compare.sh: trial verdicts and the summary (results.json, summary.md).

    report.py add-cpu JSON SECONDS            add the server's CPU seconds to a loadgen summary
    report.py verdict JSON RATE MIN_ACHIEVED NAME   print a line; exit 0 when the trial passes
    report.py assert-all JSON N               exit 1 unless N registrations, none failed or retried
    report.py summary OUT_DIR QUICK ARGS      write OUT_DIR/results.json and OUT_DIR/summary.md
"""
import json
import os
import re
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def add_cpu(path, secs):
    s = load(path)
    if s is None:
        return 0
    s["server_cpu_s"] = round(float(secs), 3)
    regs = s["counts"]["registrations"]
    s["server_cpu_us_per_registration"] = round(float(secs) * 1e6 / regs, 2) if regs else None
    with open(path, "w") as f:
        json.dump(s, f, indent=2)
        f.write("\n")
    return 0


def check(s, rate, min_achieved):
    """(passed, reason) of a loadgen summary for an open-loop trial at RATE."""
    if s is None:
        return False, "no summary"
    c = s["counts"]
    offered = s["config"].get("count") or 0
    why = []
    if c["failed"] * 1000 >= max(offered, 1):
        why.append("failures")
    if c["timeouts"]:
        why.append("timeouts")
    if c["retransmissions"]:
        why.append("retransmissions")
    if c["missed"] * 1000 >= max(offered, 1):
        why.append("missed slots")
    if c["registrations"] + c["failed"] < offered:
        why.append("incomplete")
    if s["rates"]["achieved_per_s"] < min_achieved * rate:
        why.append("rate not reached")
    return not why, ", ".join(why)


def line(s):
    c = s["counts"]
    r = s["latency_us"]["registration"]
    cpu = s.get("server_cpu_us_per_registration")
    return (
        f"achieved {s['rates']['achieved_per_s']:.0f}/s, {c['registrations']} ok "
        f"({c['refreshes']} refreshes), {c['failed']} failed, {c['timeouts']} timeouts, "
        f"{c['retransmissions']} retrans, {c['missed']} missed; p50 {r['p50']} us, "
        f"p99 {r['p99']} us; server cpu {cpu if cpu is not None else '?'} us/reg, "
        f"loadgen {s['cpu_us_per_exchange']} us/exchange"
    )


def verdict(path, rate, min_achieved, name):
    s = load(path)
    ok, why = check(s, float(rate), float(min_achieved))
    detail = line(s) if s else "no summary"
    print(f"{name:<24} {int(rate):>7}/s: {'pass' if ok else 'FAIL'}"
          f"{'' if ok else ' (' + why + ')'}  {detail}", flush=True)
    return 0 if ok else 1


def assert_all(path, n):
    s = load(path)
    n = int(n)
    if s is None:
        print(f"assert-all: {path}: no summary", file=sys.stderr)
        return 1
    c = s["counts"]
    if c["registrations"] != n or c["failed"] or c["timeouts"] or c["retransmissions"]:
        print(f"assert-all: {path}: {c['registrations']} of {n} registrations, "
              f"{c['failed']} failed, {c['timeouts']} timeouts, "
              f"{c['retransmissions']} retransmissions", file=sys.stderr)
        return 1
    return 0


# --- summary ------------------------------------------------------------------------------

def kv(path):
    d = {}
    try:
        with open(path) as f:
            for ln in f:
                if "=" in ln:
                    k, v = ln.rstrip("\n").split("=", 1)
                    d[k] = v
    except OSError:
        pass
    return d


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    return f"{x:,.{digits}f}"


def ratio(a, b, digits=2):
    if not a or not b:
        return "n/a"
    return f"{a / b:.{digits}f}x"


def summary(out, quick, args):
    m = kv(os.path.join(out, "raw", "machine.txt"))
    lgdir = os.path.join(out, "loadgen")
    res = {"machine": m, "quick": quick == "1"}

    maxima = {}
    for ln in read(os.path.join(out, "raw", "max.txt")).splitlines():
        t, lo, hi = ln.split()
        maxima[t] = {"max_per_s": int(lo), "first_failure_per_s": int(hi) or None}

    def at(t, kind):
        return load(os.path.join(lgdir, f"{t}-{kind}.json"))

    rows = {}
    for t in ["sipreg-auth", "kamailio-auth", "sipreg-refresh", "kamailio-refresh",
              "sipreg-noauth", "kamailio-noauth", "echo", "sipreg2-auth", "sipreg2-noauth",
              "refresh1m-persist-off", "refresh1m-persist-on"]:
        mx = maxima.get(t, {}).get("max_per_s")
        smax = at(t, "max")
        half = at(t, "half")
        rows[t] = {
            "max_per_s": mx,
            "first_failure_per_s": maxima.get(t, {}).get("first_failure_per_s"),
            "achieved_at_max_per_s": smax["rates"]["achieved_per_s"] if smax else None,
            "exchanges_at_max_per_s": smax["rates"]["exchanges_per_s"] if smax else None,
            "server_cpu_us_per_reg_at_max": smax.get("server_cpu_us_per_registration") if smax else None,
            "loadgen_cpu_us_per_exchange_at_max": smax.get("cpu_us_per_exchange") if smax else None,
            "refresh_share_at_max": (smax["counts"]["refreshes"] / smax["counts"]["registrations"]
                                     if smax and smax["counts"]["registrations"] else None),
            "p50_us_at_half": half["latency_us"]["registration"]["p50"] if half else None,
            "p99_us_at_half": half["latency_us"]["registration"]["p99"] if half else None,
            # Less the load generator's turnaround after a challenge (loadgen runs since the
            # sixth session; absent in older summaries).
            "p99_server_us_at_half": (half["latency_us"].get("registration_server", {}).get("p99")
                                      if half else None),
            "p99_exchange_us_at_half": half["latency_us"]["exchange"]["p99"] if half else None,
            "half_passed": check(half, mx / 2, 0.9)[0] if half and mx else None,
        }
    # The persistence runs have no separate half-rate trial.
    res["loadgen"] = rows

    # SIPp (sipp-rate.sh): max rate and CPU per registration at the highest passing rate.
    sipp = {}
    for s in ["sipreg", "kamailio"]:
        for mode in ["noauth", "auth"]:
            best = None
            for ln in read(os.path.join(out, "raw", f"sipp-{s}-trials.txt")).splitlines():
                mm = re.match(r"(\w+)\s+rate\s+(\d+)/s: (pass|fail).*cpu: server (\d+)% ([\d.]+) us/reg, "
                              r"sipp (\d+)% ([\d.]+) us/reg", ln)
                if mm and mm.group(1) == mode and mm.group(3) == "pass":
                    r = int(mm.group(2))
                    if best is None or r > best["max_per_s"]:
                        best = {"max_per_s": r, "server_cpu_pct": int(mm.group(4)),
                                "server_cpu_us_per_reg": float(mm.group(5)),
                                "sipp_cpu_pct": int(mm.group(6))}
            sipp[f"{s}-{mode}"] = best
    res["sipp"] = sipp

    # callgrind
    def cg(name):
        v = read(os.path.join(out, "raw", f"cg-{name}.txt")).strip()
        return int(v) if v.isdigit() else None
    kam_cg = read(os.path.join(out, "raw", "cg-kamailio-summary.txt"))
    n_cg = None
    mm = re.search(r"N = (\d+) per run", kam_cg)
    if mm:
        n_cg = int(mm.group(1))
    n_sip = None
    j = load(os.path.join(lgdir, "callgrind-auth1.json"))
    if j:
        n_sip = j["counts"]["registrations"]

    def kam_val(label):
        mm = re.search(re.escape(label) + r"[^\n]*?(\d+)\s*$", kam_cg, re.M)
        return int(mm.group(1)) if mm else None
    callgrind = {
        "n": n_sip,
        "sipreg_w1_per_reg": ((cg("auth1") - cg("base1")) / n_sip
                              if cg("auth1") and cg("base1") and n_sip else None),
        "sipreg_w2_per_reg": ((cg("auth2") - cg("base2")) / n_sip
                              if cg("auth2") and cg("base2") and n_sip else None),
        "kamailio_n": n_cg,
        "kamailio_per_reg": kam_val("registration with auth (REGISTER->401 + REGISTER->200):"),
        "kamailio_challenge": kam_val("REGISTER -> 401 (challenge):"),
        "kamailio_noauth": kam_val("REGISTER -> 200 without auth:"),
        "raw": {k: cg(k) for k in ["base1", "auth1", "base2", "auth2"]},
    }
    res["callgrind"] = callgrind

    # memory
    mem = {}
    for ln in read(os.path.join(out, "raw", "sipreg-memory.txt")).splitlines():
        mode, r0, r1, n = ln.split()
        mem[f"sipreg-persist-{mode}"] = {"rss0_kb": int(r0), "rss1_kb": int(r1), "n": int(n),
                                         "rss_bytes_per_binding": (int(r1) - int(r0)) * 1024 / int(n)}
        fill = load(os.path.join(lgdir, f"fill-persist-{mode}.json"))
        if fill:
            mem[f"sipreg-persist-{mode}"]["registered"] = fill["counts"]["registrations"]
    km = read(os.path.join(out, "raw", "mem-kamailio-summary.txt"))
    mm = re.search(r"per binding \((\d+) bindings\): shm used (\d+) B, shm real_used (\d+) B, "
                   r"PSS (\d+) B, RSS (\d+) B", km)
    if mm:
        mem["kamailio"] = {"n": int(mm.group(1)), "shm_used": int(mm.group(2)),
                           "shm_real_used": int(mm.group(3)), "pss": int(mm.group(4)),
                           "rss": int(mm.group(5))}
    res["memory"] = mem

    # --- summary.md ---
    L = []
    w = L.append
    g = lambda t, k: rows.get(t, {}).get(k)
    w(f"# sipreg vs Kamailio 5.6 vs the kernel floor: {m.get('date_utc', '?')[:10]}"
      + (" (quick smoke run)" if quick == "1" else ""))
    w("")
    w("One run of `perf/compare.sh" + (" --quick" if quick == "1" else "") + "` (elapsed "
      f"{int(m.get('elapsed_s', 0)) // 60} min {int(m.get('elapsed_s', 0)) % 60} s). Everything below "
      "is from that run; `results.json` holds the same numbers, `loadgen/*.json` the load "
      "generator's summaries they come from, `raw/` the trial lines.")
    w("")
    w("## Machine and build")
    w("")
    w(f"- date {m.get('date_utc')}, commit `{m.get('commit')}`"
      + (f" ({m.get('dirty')} uncommitted changes under src/ tools/)" if m.get('dirty', '0') != '0' else ""))
    w(f"- {m.get('cpu')}, {m.get('cores')} cores (shared with other sessions), {m.get('mem_gib')} GiB, "
      f"{m.get('os')}, kernel {m.get('kernel')}, {m.get('rustc')}, release profile")
    w(f"- Kamailio {m.get('kamailio')}, SIPp {m.get('sipp')}, {m.get('valgrind')}, "
      f"net.core.rmem_max {m.get('rmem_max')}")
    w(f"- load average at start {m.get('loadavg_start')}, at end {m.get('loadavg_end')}")
    w(f"- scheduling `{m.get('sched')}` for load and server (SCHED_FIFO when rt:P); load generator "
      "on core 0, server on core 1 (`taskset`), except `--workers 2` (cores 0,1, shared with the load)")
    w("")
    w("```sh")
    w("cargo build --release")
    w("perf/compare.sh" + (" --quick" if quick == "1" else ""))
    w("```")
    w("")
    w("What it runs (`PORT` 5200 and up, `S` = the trial length, `R` = the rate, `N` = R x S; "
      "`chrt -f 10` in front of every server and load command):")
    w("")
    w("```sh")
    w("sipreg-loadgen users --count 400000 --realm example.com --algorithms MD5,SHA-256 > users")
    w("printf '[persist]\\nenabled = false\\n' > persist-off.toml")
    w("# servers, core 1")
    w("taskset -c 1 sipreg serve --listen udp:127.0.0.1:PORT --domain example.com --users users \\")
    w("    --auth-algorithms MD5,SHA-256 --workers 1 --config persist-off.toml [--no-auth]")
    w("KAM_CPU=1 KAM_SCHED=rt:10 perf/kamailio/run.sh start DIR 127.0.0.1 PORT auth|noauth")
    w("taskset -c 1 sipreg-udp-echo --listen 127.0.0.1:PORT --duration 300")
    w("# load, core 0: first registrations (auth), refreshes, no auth, echo")
    w("taskset -c 0 sipreg-loadgen --target 127.0.0.1:PORT --sources 127.0.0.2-127.0.0.41 \\")
    w("    --ports-per-source 4 --domain example.com --algorithms MD5 --rate R --count N \\")
    w("    --duration S+1 --users N | --users max(2000,R/5) | --users N --no-auth | --users N --echo")
    w("# SIPp")
    w("SERVER=sipreg|kamailio SECS=5 MAX_RUNS=6 USERS=20000 START=8000 SIPREG_ARGS='--config persist-off.toml' \\")
    w("    SIPREG_NOAUTH_ARGS=--no-auth perf/kamailio/sipp-rate.sh both")
    w("# callgrind")
    w("perf/kamailio/callgrind.sh 2000")
    w("taskset -c 1 valgrind --tool=callgrind --dump-instr=no sipreg serve ... --workers 1|2 \\")
    w("    --config persist-off.toml   # + loadgen --rate 200 --count 2000 --users 2000; SIGTERM")
    w("# 1M bindings")
    w("sipreg serve ... --workers 1 --no-auth --config persist-off.toml | --data-dir DIR")
    w("sipreg-loadgen ... --no-auth --users 1000000 --count 1000000 --rate 40000   # fill, RSS before/after")
    w("sipreg-loadgen ... --no-auth --users 1000000 --rate R --count N             # refresh search")
    w("KAM_SCHED=rt:10 SIPP_SCHED=rt:10 RATE=40000 perf/kamailio/memory.sh 1000000 noauth")
    w("```")
    w("")
    w("## 1. Maximum sustainable rate, sipreg-loadgen, open loop")
    w("")
    w(f"A trial: a fresh server, RATE x {m.get('secs')} s registrations offered at RATE/s from "
      "160 sockets (127.0.0.2-41, 4 ports each), MD5 digest on the phones (Kamailio offers only "
      "MD5; sipreg offers MD5 and SHA-256). Pass: < 0.1% failures, no timeout, no retransmission "
      "(T1 = 500 ms), < 0.1% missed open-loop slots, achieved >= "
      f"{'90' if quick == '1' else '95'}% of offered. Search: double from a start rate, then "
      "bisect to within 5%. sipreg: `--workers 1`, persistence off (like Kamailio's db_mode 0). "
      "Latency: registration (first transmission to the final 200, both as the kernel saw them) in a "
      "trial at 50% of the maximum; *server share* is the same less the load generator's own "
      "turnaround between the 401 and its retry (the two exchanges summed), *exchange* one "
      "request to its answer.")
    w("")
    w("| load | sipreg (1 worker) | Kamailio (1 UDP worker) | sipreg / Kamailio | sipreg / echo | "
      "sipreg p50 / p99 at 50% | Kamailio p50 / p99 at 50% | p99 server share / exchange at 50%, "
      "sipreg; Kamailio | server CPU per registration at max, sipreg / Kamailio |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    echo_max = g("echo", "max_per_s")
    for kind, name, exch in [("auth", "first registration with digest (REGISTER/401/REGISTER/200), reg/s", 2),
                             ("refresh", "refresh with pre-emptive credentials, reg/s", 1),
                             ("noauth", "no auth (REGISTER/200), reg/s", 1)]:
        s, k = f"sipreg-{kind}", f"kamailio-{kind}"
        sm, km_ = g(s, "max_per_s"), g(k, "max_per_s")
        w(f"| {name} | **{fmt(sm)}** | **{fmt(km_)}** | **{ratio(sm, km_)}** | "
          f"{ratio(sm * exch if sm else None, echo_max)} ({exch} exch./reg) | "
          f"{fmt(g(s, 'p50_us_at_half'))} / {fmt(g(s, 'p99_us_at_half'))} µs | "
          f"{fmt(g(k, 'p50_us_at_half'))} / {fmt(g(k, 'p99_us_at_half'))} µs | "
          f"{fmt(g(s, 'p99_server_us_at_half'))} / {fmt(g(s, 'p99_exchange_us_at_half'))} µs; "
          f"{fmt(g(k, 'p99_server_us_at_half'))} / {fmt(g(k, 'p99_exchange_us_at_half'))} µs | "
          f"{fmt(g(s, 'server_cpu_us_per_reg_at_max'), 1)} / {fmt(g(k, 'server_cpu_us_per_reg_at_max'), 1)} µs |")
    w(f"| echo (sipreg-udp-echo, the kernel floor), exchanges/s | | | | **{fmt(echo_max)}** | "
      f"{fmt(g('echo', 'p50_us_at_half'))} / {fmt(g('echo', 'p99_us_at_half'))} µs | | "
      f"{fmt(g('echo', 'p99_exchange_us_at_half'))} µs exchange | |")
    # Server CPU per registration at the same rate: the highest rate both searches passed.
    trial_cpu = {}
    for ln in read(os.path.join(out, "raw", "trials.txt")).splitlines():
        mm = re.match(r"([a-z0-9-]+) +(\d+)/s: pass .*server cpu ([\d.]+) us/reg", ln)
        if mm:
            trial_cpu[(mm.group(1), int(mm.group(2)))] = float(mm.group(3))
    same = {}
    w("")
    w("Server CPU per registration at the same rate (the highest rate both searches passed; "
      "CPU per registration falls as the rate rises, as batches grow, so equal rates compare "
      "the code and the maxima compare the saturated servers):")
    w("")
    w("| load | rate | sipreg | Kamailio | Kamailio / sipreg |")
    w("|---|---:|---:|---:|---:|")
    for kind in ["auth", "refresh", "noauth"]:
        common = sorted(r for (t, r) in trial_cpu if t == f"sipreg-{kind}"
                        and (f"kamailio-{kind}", r) in trial_cpu)
        if common:
            r = common[-1]
            a, b = trial_cpu[(f"sipreg-{kind}", r)], trial_cpu[(f"kamailio-{kind}", r)]
            same[kind] = {"rate": r, "sipreg_us": a, "kamailio_us": b}
            w(f"| {kind} | {fmt(r)}/s | {a:.1f} µs | {b:.1f} µs | {b / a:.2f}x |")
    res["cpu_same_rate"] = same
    w("")
    w("First failing rate of each search (the maximum lies between): " + ", ".join(
        f"{t} {fmt(g(t, 'first_failure_per_s'))}" for t in
        ["sipreg-auth", "kamailio-auth", "sipreg-refresh", "kamailio-refresh", "sipreg-noauth",
         "kamailio-noauth", "echo"]) + ".")
    rs = g("sipreg-refresh", "refresh_share_at_max")
    rk = g("kamailio-refresh", "refresh_share_at_max")
    w("")
    w(f"Refresh trials: each phone registers once with a challenge and then refreshes; at the "
      f"maximum {fmt(rs * 100 if rs else None, 1)}% (sipreg) and {fmt(rk * 100 if rk else None, 1)}% "
      "(Kamailio) of the registrations were refreshes, the rest first registrations.")
    lgc = [(t, g(t, "loadgen_cpu_us_per_exchange_at_max")) for t in
           ["echo", "sipreg-auth", "kamailio-auth", "sipreg-noauth", "kamailio-noauth"]]
    w("")
    w("Load generator CPU per exchange at each maximum (core 0): " + ", ".join(
        f"{t} {fmt(v, 1)} µs" for t, v in lgc) + ". Where that times the exchange rate nears one "
      "core, the maximum is the load generator's as much as the server's.")
    w("")
    w("## 2. Latency against offered load")
    w("")
    w("![latency](latency.png)")
    w("")
    w("Authenticated first registrations; one fresh server per point; `loadgen/sweep-*.json`.")
    w("")
    w("| server | offered/s | achieved/s | p50 µs | p99 µs | p99.9 µs | retrans | verdict |")
    w("|---|---:|---:|---:|---:|---:|---:|---|")
    sweeps = []
    for fn in sorted(os.listdir(lgdir)):
        mm = re.match(r"sweep-(.*)-(\d+)\.json$", fn)
        if mm:
            s = load(os.path.join(lgdir, fn))
            if s:
                sweeps.append((mm.group(1), int(mm.group(2)), s))
    for t, rate, s in sorted(sweeps, key=lambda x: (x[0] != "sipreg-auth", x[1])):
        r = s["latency_us"]["registration"]
        ok, why = check(s, rate, 0.95 if quick != "1" else 0.9)
        w(f"| {s['label']} | {fmt(rate)} | {fmt(s['rates']['achieved_per_s'])} | {fmt(r['p50'])} | "
          f"{fmt(r['p99'])} | {fmt(r['p99_9'])} | {s['counts']['retransmissions']} | "
          f"{'pass' if ok else 'fail: ' + why} |")
    res["sweep"] = [{"target": t, "rate": r, "p50": s["latency_us"]["registration"]["p50"],
                     "p99": s["latency_us"]["registration"]["p99"]} for t, r, s in sweeps]
    w("")
    w("## 3. The same comparison under SIPp (`perf/kamailio/sipp-rate.sh`)")
    w("")
    w("`SERVER=sipreg` (persistence off, `--no-auth` for noauth) and `SERVER=kamailio`, the "
      "script's own search and pass rule (no retransmission, < 0.1% failed, 98% of the rate); "
      f"{'SECS=2 MAX_RUNS=2 USERS=2000 START=4000' if quick == '1' else 'SECS=5 MAX_RUNS=6 USERS=20000 START=8000'}. "
      "SIPp saturates its core before either server does, so the rate is SIPp's ceiling and the "
      "server CPU per registration (all its processes, user + system, over the run) is the number "
      "that compares the servers.")
    w("")
    w("| mode | sipreg max/s | sipreg CPU | sipreg µs/reg | Kamailio max/s | Kamailio CPU | "
      "Kamailio µs/reg | Kamailio/sipreg CPU per reg |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode in ["auth", "noauth"]:
        a, b = sipp.get(f"sipreg-{mode}"), sipp.get(f"kamailio-{mode}")
        w(f"| {mode} | {fmt(a and a['max_per_s'])} | {fmt(a and a['server_cpu_pct'])}% "
          f"(SIPp {fmt(a and a['sipp_cpu_pct'])}%) | {fmt(a and a['server_cpu_us_per_reg'], 1)} | "
          f"{fmt(b and b['max_per_s'])} | {fmt(b and b['server_cpu_pct'])}% (SIPp "
          f"{fmt(b and b['sipp_cpu_pct'])}%) | {fmt(b and b['server_cpu_us_per_reg'], 1)} | "
          f"{ratio(b and b['server_cpu_us_per_reg'], a and a['server_cpu_us_per_reg'])} |")
    w("")
    w("## 4. User-space instructions per authenticated registration (callgrind)")
    w("")
    w("Each server started under `valgrind --tool=callgrind`, N first registrations with digest "
      "(REGISTER, 401, REGISTER, 200; every one a new user and binding) at 200/s, asserted "
      "without failure or retransmission, 3 s idle, stopped; minus a baseline start with none. "
      "Kamailio: `perf/kamailio/callgrind.sh N` (SIPp, its UDP worker process). sipreg: "
      "`sipreg serve --workers 1` (all threads; persistence off), load from sipreg-loadgen "
      "(MD5); its baseline idles as long as the load run lasts, so idle polling cancels.")
    w("")
    w("| | sipreg | Kamailio | Kamailio / sipreg |")
    w("|---|---:|---:|---:|")
    w(f"| registration with auth (N = {fmt(callgrind['n'])} / {fmt(callgrind['kamailio_n'])}) | "
      f"**{fmt(callgrind['sipreg_w1_per_reg'])}** | **{fmt(callgrind['kamailio_per_reg'])}** | "
      f"**{ratio(callgrind['kamailio_per_reg'], callgrind['sipreg_w1_per_reg'])}** |")
    w(f"| Kamailio's other rows: REGISTER->401 {fmt(callgrind['kamailio_challenge'])}, "
      f"REGISTER->200 without auth {fmt(callgrind['kamailio_noauth'])} | | | |")
    w("")
    w("Raw totals (Ir): " + ", ".join(f"{k} {fmt(v)}" for k, v in callgrind["raw"].items()) + ".")
    w("")
    w("## 5. Memory per binding at 1M bindings")
    w("")
    so = mem.get("sipreg-persist-off")
    son = mem.get("sipreg-persist-on")
    k = mem.get("kamailio")
    w("sipreg: VmRSS of the process before and after registering distinct users u000000.. "
      "once each with `--no-auth` (for speed; authentication stores nothing per binding), one "
      "contact each, Expires 3600. Kamailio: `perf/kamailio/memory.sh N noauth` (SIPp; PSS and "
      "RSS summed over its processes, and its shared-memory allocator's counters).")
    w("")
    w("| | bindings | RSS per binding | other |")
    w("|---|---:|---:|---|")
    if so:
        w(f"| sipreg, persistence off | {fmt(so.get('registered', so['n']))} | "
          f"**{fmt(so['rss_bytes_per_binding'])} B** | RSS {fmt(so['rss0_kb'])} -> {fmt(so['rss1_kb'])} kB |")
    if son:
        w(f"| sipreg, persistence on | {fmt(son.get('registered', son['n']))} | "
          f"{fmt(son['rss_bytes_per_binding'])} B | includes the journal's buffers |")
    if k:
        w(f"| Kamailio | {fmt(k['n'])} | **{fmt(k['rss'])} B** (PSS {fmt(k['pss'])} B) | shm used "
          f"{fmt(k['shm_used'])} B, with allocator overhead {fmt(k['shm_real_used'])} B |")
    if so and k:
        w("")
        w(f"Kamailio / sipreg, RSS per binding: **{ratio(k['rss'], so['rss_bytes_per_binding'])}**.")
    w("")
    w("## 6. Two workers")
    w("")
    s1, s2 = g("sipreg-auth", "max_per_s"), g("sipreg2-auth", "max_per_s")
    n1, n2 = g("sipreg-noauth", "max_per_s"), g("sipreg2-noauth", "max_per_s")
    w("`--workers 2` on cores 0 and 1 **with the load generator on core 0 as well**: on this "
      "2-core machine the load competes with one worker, so this is not what two workers on two "
      "free cores do; `--workers 1` has core 1 to itself.")
    w("")
    w("| | --workers 1 | --workers 2 | ratio |")
    w("|---|---:|---:|---:|")
    w(f"| max first registrations with auth/s | {fmt(s1)} | {fmt(s2)} | {ratio(s2, s1)} |")
    w(f"| max no-auth registrations/s | {fmt(n1)} | {fmt(n2)} | {ratio(n2, n1)} |")
    c1, c2 = callgrind["sipreg_w1_per_reg"], callgrind["sipreg_w2_per_reg"]
    w(f"| callgrind instructions per authenticated registration | {fmt(c1)} | {fmt(c2)} | "
      f"{ratio(c2, c1)} |")
    w("")
    if c1 and c2:
        w(f"Hand-off cost: **{fmt(c2 - c1)} instructions per authenticated registration** "
                 f"({(c2 - c1) / c1 * 100:+.1f}%) with 2 workers against 1, same N, where about half "
                 "of the REGISTERs land on the worker that does not own the AOR (SO_REUSEPORT picks the "
                 "worker by source, the AOR hash the owner) and are posted to the owner's queue. The "
                 "difference also holds the second worker's poll wake-ups; callgrind serialises the "
                 "threads, so cache effects of the cross-core hand-off are not in it.")
    w("")
    w("## 7. Persistence on vs off at 1M bindings (issue 6)")
    w("")
    po, pn = g("refresh1m-persist-off", "max_per_s"), g("refresh1m-persist-on", "max_per_s")
    w("One sipreg (`--workers 1 --no-auth`) per mode, filled with 1M bindings (distinct users, one "
      "contact each), then a search for the highest sustainable re-registration rate on that "
      "server (kept running): each trial re-registers the first RATE x SECS of the users (a new "
      "Call-ID, so every one changes its binding and, with persistence on, is journaled). No auth "
      "keeps the rest of the work small, so persistence's share is the largest it can be. On: a "
      "fresh `--data-dir` (the writer thread on the same core as the worker).")
    w("")
    w("| | persistence off | persistence on | on / off | target |")
    w("|---|---:|---:|---:|---:|")
    w(f"| max re-registrations/s at 1M bindings | {fmt(po)} | {fmt(pn)} | "
      f"**{ratio(pn, po, 3) if po and pn else 'n/a'}** ({fmt(pn / po * 100 if po and pn else None, 1)}%) | >= 90% |")
    w(f"| server CPU per registration at max | {fmt(g('refresh1m-persist-off', 'server_cpu_us_per_reg_at_max'), 1)} µs | "
      f"{fmt(g('refresh1m-persist-on', 'server_cpu_us_per_reg_at_max'), 1)} µs | | |")
    w("")
    w(f"First failures: off {fmt(g('refresh1m-persist-off', 'first_failure_per_s'))}, on "
      f"{fmt(g('refresh1m-persist-on', 'first_failure_per_s'))}.")
    w("")
    w("## Trials")
    w("")
    w("Every trial of this run (`raw/trials.txt`):")
    w("")
    w("```")
    L.extend(read(os.path.join(out, "raw", "trials.txt")).rstrip().splitlines())
    w("```")
    notes = read(os.path.join(out, "notes.md"))
    if notes:
        w("")
        L.extend(notes.rstrip().splitlines())
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")

    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, rest = argv[1], argv[2:]
    if cmd == "add-cpu":
        return add_cpu(*rest)
    if cmd == "verdict":
        return verdict(*rest)
    if cmd == "assert-all":
        return assert_all(*rest)
    if cmd == "summary":
        return summary(*rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
