#!/usr/bin/env python3
"""Sanitizer runs: our own C programs, built with ASan+UBSan or TSan, exercise the library
built the same way. Preloading a sanitizer runtime into foreign programs (curl, python)
is unreliable (curl hangs in setlocale under a preloaded libasan even without bulwark),
so the programs here link the runtime themselves and the library uses theirs.

usage: run.py BUILD_DIR asan|tsan   -- prints "sanitize: failed NAME" per failure, then
"sanitize: N passed, N failed"
"""
import os
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import LateServer, free_port  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
KIND = sys.argv[2]
LIB = os.path.join(BUILD, "libbulwark.so")
SAN = os.path.join(BUILD, "san")
REPORT_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer")
TIMEOUT = 120


def runtime():
    """The sanitizer runtime must come first in the initial library list, before the
    preloaded library that uses it."""
    name = "libasan.so" if KIND == "asan" else "libtsan.so"
    cc = os.environ.get("CC", "cc")
    path = subprocess.run([cc, "-print-file-name=" + name], capture_output=True,
                          text=True).stdout.strip()
    return path + ":" + LIB


def env_for(policy, log):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BULWARK_") and k != "LD_PRELOAD"}
    env.update(LD_PRELOAD=runtime(), BULWARK_CONFIG=policy, BULWARK_LOG="file:" + log,
               ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
               TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1")
    return env


def policy_file(rules, mode="enforce", top=""):
    return ("version: 1\nseed: 11\nmode: %s\nlog: { level: debug }\n%srules:\n%s"
            % (mode, top, rules))


def run(name, argv, policy_text, tmp, results, reloads=None, top=""):
    """Run argv under the policy. reloads: [(rules, mode)] the policy file is saved
    anew as (by rename), in turn, every 200 ms while argv runs: the library reloads while
    the program's threads call through the engines, old and new."""
    policy = os.path.join(tmp, name + ".yaml")
    log = os.path.join(tmp, name + ".log")
    with open(policy, "w") as f:
        f.write(policy_file(policy_text, top=top))
    stop = threading.Event()

    def rewrite():
        i = 0
        while not stop.wait(0.2):
            rules, mode = reloads[i % len(reloads)]
            i += 1
            with open(policy + ".new", "w") as f:
                f.write(policy_file(rules, mode))
            os.rename(policy + ".new", policy)

    writer = threading.Thread(target=rewrite, daemon=True) if reloads else None
    if writer:
        writer.start()
    # TSan needs a fixed address layout on kernels with high mmap randomization
    prefix = ["setarch", "-R"] if KIND == "tsan" else []
    try:
        p = subprocess.run(prefix + argv, env=env_for(policy, log), capture_output=True,
                           text=True, timeout=TIMEOUT)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = "timed out after %ds\n%s" % (TIMEOUT, e.stderr or ""), -1
    if writer:
        stop.set()
        writer.join()
        with open(log, errors="replace") as f:
            if '"event":"reload"' not in f.read():
                out, rc = out + "\nno reload happened while it ran", -1
    bad = [m for m in REPORT_MARKS if m in out]
    ok = rc == 0 and not bad
    results.append((name, ok))
    print("%-28s %s" % (name, "ok" if ok else "FAILED (rc=%s)" % rc))
    if not ok:
        print(out[-6000:])


def main():
    results = []
    with tempfile.TemporaryDirectory(prefix="bw-san-") as tmp:
        retry = ("    retry: { attempts: 40, backoff: { base: 20ms, max: 50ms }, "
                 "deadline: 10s }\n")
        for mode in ("block", "nonblock"):
            port = free_port()
            srv = LateServer(port, 0.6, kind="echo")
            try:
                run("sockopt_client-" + mode,
                    [os.path.join(SAN, "sockopt_client"), str(port), str(free_port()), mode],
                    "  - name: c\n    match: { ops: [connect, send, recv] }\n" + retry,
                    tmp, results)
            finally:
                srv.stop()
        run("errno_check", [os.path.join(SAN, "errno_check"), str(free_port())],
            "  - name: all\n    match: { ops: [connect, accept, send, recv, resolve] }\n"
            "    retry: { attempts: 2, backoff: { base: 5ms, max: 5ms } }\n", tmp, results)
        io_rules = ("  - name: io\n    match: { ops: [connect, send, recv], dest: [\"127.0.0.1:*\"] }\n"
                    "    breaker: { trip: { consecutive: 50 } }\n"
                    "    rate_limit: { rate: 1000MiB/s }\n"
                    "    timeout: { recv: 30s }\n"
                    "    retry: { attempts: 5, backoff: { base: 1ms, max: 2ms } }\n"
                    "    inject: [ { ops: [send, recv], partial: true, probability: 20% },\n"
                    "              { ops: [send, recv], errno: EINTR, probability: 5% } ]\n")
        run("pingpong+inject", [os.path.join(SAN, "pingpong"), "3000"], io_rules, tmp, results)
        # the faults kept per connection (shim/net/connfault.c): its table, its locks, a
        # latency drawn per call on a connection chosen once, a slow close at the end
        conn_rules = ("  - name: conn\n    match: { ops: [connect, send, recv], "
                      "dest: [\"127.0.0.1:*\"] }\n"
                      "    inject: [ { ops: [send, recv], latency: 1us, jitter: 1us, "
                      "per: connection },\n"
                      "              { ops: [recv], slow_close: 1ms } ]\n")
        run("pingpong+connfaults", [os.path.join(SAN, "pingpong"), "3000"], conn_rules, tmp,
            results)
        lim = ("  - name: lim\n    match: { ops: [connect] }\n"
               "    rate_limit: { scope: rule, rate: %s, burst: %d }\n"
               "    breaker: { trip: { consecutive: %d } }\n")
        run("limiter16", [os.path.join(SAN, "limiter16"), "16", "200"],
            lim % ("100000/s", 1000, 1000), tmp, results)
        # reloads while 16 threads connect: rates, bursts and trips that change, a rule
        # that comes and goes, the mode flipping
        extra = "  - name: extra\n    match: { ops: [resolve] }\n"
        run("limiter16+reload", [os.path.join(SAN, "limiter16"), "16", "300"],
            lim % ("3000/s", 100, 1000), tmp, results,
            reloads=[(lim % ("2000/s", 50, 1000), "enforce"),
                     (extra + lim % ("4000/s", 200, 900), "observe"),
                     (lim % ("3000/s", 100, 1000), "enforce")])
        # 16 threads through a bulkhead of 4 (slots taken, waited for, given back by
        # close), adaptive throttling and a slow-call breaker; private, then shared
        bulk = ("  - name: bulk\n    match: { ops: [connect] }\n"
                "    concurrency: { max: 4, max_wait: 5s }\n"
                "    throttle: { k: 2, window: 1m, max_reject: 50% }\n"
                "    breaker: { trip: { slow: { over: 1s, rate: 100% }, min_calls: 1000 } }\n")
        run("limiter16+bulkhead", [os.path.join(SAN, "limiter16"), "16", "200"], bulk, tmp,
            results)
        state = os.path.join(tmp, "state")
        run("limiter16+bulkhead+group", [os.path.join(SAN, "limiter16"), "16", "200"], bulk,
            tmp, results, top="state: { share: group, dir: %s }\n" % state)
        # and while the paced byte path runs (its pinned cells, the clock it reads)
        run("pingpong+reload", [os.path.join(SAN, "pingpong"), "60000"], io_rules, tmp,
            results, reloads=[(io_rules.replace("1000MiB/s", "500MiB/s"), "enforce"),
                              (io_rules.replace("consecutive: 50", "consecutive: 40"),
                               "observe"),
                              (io_rules, "enforce")])
    failed = sum(1 for _, ok in results if not ok)
    # one line per failure, so that tests/run-all.sh counts a program once over both passes
    for name, ok in results:
        if not ok:
            print("sanitize: failed " + name)
    print("sanitize: %d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
