#!/usr/bin/env python3
"""CPython's own regression tests, without the library and under it: same outcome per test.

usage: python3 tests/cpython/run.py [-j N] [--policies enforce,observe] [--rounds N]
                                    [MODULE_PATTERN...]

Each module below runs with regrtest (`python3 -m test`, through regr.py, which records
every test's outcome) bare and under libbulwark.so with each policy of this directory:

  enforce.yaml  every op, every destination, enforced, but nothing that can ever act;
  observe.yaml  mode: observe, with retries, breakers, limits, timeouts and faults that
                would act on nearly every call if they were enforced.

Every test's outcome (ok, fail, error, skip, expected failure, unexpected success, or
missing) under a policy must equal its outcome bare. A test whose outcomes differ is run
again by itself, bare and under the policy, up to --rounds times: if the two ever agree
it is reported as flaky (these suites have timing-sensitive tests, and the machine may be
loaded), otherwise it is a mismatch. KNOWN below lists the differences the library is
known to cause, each with its reason: a known mismatch does not fail the run, and a
KNOWN test that no longer differs does, so that the list stays true. Each policy's
event log must show that its rules saw the tests' calls (non-zero `calls` in the exit
events), and the enforced policy must never have acted (no retry, rejection, limit,
injection, failover or timeout event), else the comparison proved nothing.

Only loopback is used: no regrtest resource is enabled, except `network` for
test_socketserver, whose every socket is on localhost but which asks for that
resource as a whole.

The closing line counts (module, policy) comparisons:
    cpython: N passed, M failed[, K skipped]
A module CPython's `test` package lacks (Debian ships it apart, as
libpython3.X-testsuite) is skipped with a message; so is the whole step when the package
is absent. Logs, per-test records and event logs are kept in $BULWARK_BUILD/cpython/.
"""

import argparse
import collections
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("BULWARK_BUILD") or os.path.join(ROOT, "build"))
LIB = os.path.join(BUILD, "libbulwark.so")
OUT = os.path.join(BUILD, "cpython")
REGR = os.path.join(HERE, "regr.py")
# The real interpreter, not a pyenv wrapper script: what the tests run is python itself.
PYTHON = os.path.realpath(sys.executable)

POLICIES = collections.OrderedDict([
    ("enforce", os.path.join(HERE, "enforce.yaml")),
    ("observe", os.path.join(HERE, "observe.yaml")),
])


class Module:
    """One regrtest module. shards: -m patterns that split it into parts run in parallel
    (each pattern is matched against every part of a test id, so a pattern of capital
    letters picks classes); their union must be the whole module. est: seconds bare on a
    quiet machine, to start the long ones first."""

    def __init__(self, name, est, shards=(None,), ignore=(), resources=()):
        self.name, self.est, self.shards = name, est, shards
        self.ignore, self.resources = ignore, resources


MODULES = [
    # ThreadedVSOCKSocketStreamTest needs a VSOCK peer: on a VM guest whose host does not
    # answer, its connect() blocks for ever, with or without the library.
    Module("test_socket", 75, shards=("[A-QS-Z]*", "R*"),
           ignore=("ThreadedVSOCKSocketStreamTest",)),
    Module("test_asyncio.test_events", 50, shards=("P*", "[A-OQ-Z]*")),
    Module("test_selectors", 19),
    Module("test_asyncio.test_sock_lowlevel", 14),
    Module("test_ftplib", 14),
    Module("test_poplib", 11),
    Module("test_asyncio.test_base_events", 8),
    Module("test_httplib", 6),
    Module("test_socketserver", 6, resources=("network",)),
    Module("test_urllib2_localnet", 4),
    Module("test_sqlite3", 3),
    Module("test_smtplib", 2),
    Module("test_asyncio.test_streams", 2),
]

# Tests whose outcome under a policy differs from bare, with why: a defect being fixed.
# Empty: every difference once listed here was mended (issue 10: a refused connect left
# its socket to fail the next with ECONNABORTED; a byte limit cut received datagrams, and
# observe mode cut sends).
KNOWN = {}

# KNOWN entries whose difference depends on timing (it shows in some runs only): not
# seeing it in a run is no sign that it is fixed.
INTERMITTENT = set()

# Events that mean a policy acted. Under enforce.yaml none may appear.
ACTING = ("retry", "recovered", "gave_up", "timeout", "breaker", "rejected", "throttled",
          "limited", "failover", "injected")

JOB_TIMEOUT = 180       # one regrtest process; the longest takes 45 s on a quiet machine
ORDER = ("error", "fail", "xpass", "xfail", "ok", "skip")   # worst first, for subtests

# Variables that would leak the caller's own setup into the runs (as in the integration
# harness), and proxies, which some tests honour.
SCRUB = ("LD_PRELOAD", "BULWARK_CONFIG", "BULWARK_LOG", "BULWARK_LEVEL", "BULWARK_MODE",
         "BULWARK_SEED", "BULWARK_DISABLE", "LD_DEBUG", "http_proxy", "https_proxy",
         "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
         "ftp_proxy", "FTP_PROXY")


def log(msg=""):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---- running regrtest -----------------------------------------------------------------

class Job:
    def __init__(self, mode, module, shard, label, patterns=None):
        self.mode, self.module, self.shard, self.label = mode, module, shard, label
        self.patterns = patterns        # exact ids for a re-run; None: the shard
        base = os.path.join(OUT, mode, label)
        self.results, self.output, self.events = base + ".jsonl", base + ".log", base + ".events"
        self.proc = self.started = self.took = self.rc = None
        self.timed_out = False
        self.tmp = None

    def argv(self):
        args = [PYTHON, REGR, self.results, self.module.name]
        if self.patterns is not None:
            for p in self.patterns:
                args += ["-m", p]
        else:
            # -m before -i: regrtest lets the last matching pattern decide.
            if self.shard:
                args += ["-m", self.shard]
            for p in self.module.ignore:
                args += ["-i", p]
        if self.module.resources:
            args += ["-u", ",".join(self.module.resources)]
        return args

    def start(self):
        for p in (self.results, self.output, self.events):
            if os.path.exists(p):
                os.unlink(p)
        self.tmp = tempfile.mkdtemp(prefix="bw-cpython-")
        env = {k: v for k, v in os.environ.items() if k not in SCRUB}
        env["TMPDIR"] = self.tmp
        if self.mode != "bare":
            env["LD_PRELOAD"] = LIB
            env["BULWARK_CONFIG"] = POLICIES[self.mode]
            env["BULWARK_LOG"] = "file:" + self.events
        self.started = time.monotonic()
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(self.argv(), cwd=self.tmp, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def poll(self):
        # Peek without reaping: while regrtest is a zombie its pid, which names its process
        # group, cannot be reused, so killing the group reaches only what it started.
        done = os.waitid(os.P_PID, self.proc.pid,
                         os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        if not done and time.monotonic() - self.started < JOB_TIMEOUT:
            return False
        # A hang goes whole; after a normal end, children the tests left behind go too.
        self.timed_out = not done
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.rc = self.proc.wait()
        self.took = time.monotonic() - self.started
        shutil.rmtree(self.tmp, ignore_errors=True)
        return True

    def problem(self):
        """Why this run is not a complete regrtest run, or None."""
        if self.timed_out:
            return "timed out after %d s" % JOB_TIMEOUT
        if self.rc is not None and self.rc < 0:
            return "killed by signal %d" % -self.rc
        # regrtest: 0 passed, 2 some failed, 4 no test ran (a skipped module), 3 and 5
        # environment changed or interrupted; anything else is a crash of regrtest itself.
        if self.rc not in (0, 2, 3, 4, 5):
            return "exit status %d" % self.rc
        return None


def run_jobs(jobs, width):
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < width:
            j = pending.pop(0)
            j.start()
            running.append(j)
        time.sleep(0.1)
        for j in list(running):
            if j.poll():
                running.remove(j)


def read_results(path):
    """{test id: (outcome, detail)}, the worst outcome of a test's records."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue        # a line cut short by a crash
            old = out.get(r["id"])
            if old is None or ORDER.index(r["outcome"]) < ORDER.index(old[0]):
                out[r["id"]] = (r["outcome"], r.get("detail", ""))
    return out


def read_events(path):
    """({rule: calls it saw}, {event kind: count}, observe events, exit events)."""
    calls, kinds, observed, exits = collections.Counter(), collections.Counter(), 0, 0
    if not os.path.exists(path):
        return calls, kinds, observed, exits
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kinds[ev.get("event")] += 1
            if ev.get("observe"):
                observed += 1
            if ev.get("event") == "exit":
                exits += 1
                for rule, st in (ev.get("stats") or {}).items():
                    calls[rule] += st.get("calls", 0)
    return calls, kinds, observed, exits


def policy_rules(path):
    """The rule names of a policy file (each is `  - name: X` in ours)."""
    with open(path, encoding="utf-8") as f:
        return re.findall(r"^\s*- name:\s*([\w.-]+)", f.read(), re.M)


# ---- comparing ------------------------------------------------------------------------

def norm_skip(reason):
    # Skip reasons may carry addresses, ports, descriptors, times.
    return re.sub(r"0x[0-9a-f]+|\d+", "#", reason)


def same(a, b):
    """Two (outcome, detail) pairs: the same outcome (and for skips, the same reason)."""
    if a is None or b is None:
        return a is b
    if a[0] != b[0]:
        return False
    return a[0] != "skip" or norm_skip(a[1]) == norm_skip(b[1])


def show(r):
    if r is None:
        return "missing"
    return r[0] + (" (%s)" % r[1] if r[1] else "")


def known_reason(policy, tid):
    return KNOWN.get(policy + ":" + tid) or KNOWN.get(tid)


def is_intermittent(policy, tid):
    return (policy + ":" + tid) in INTERMITTENT or tid in INTERMITTENT


def rerun_pattern(tid):
    """The -m pattern that runs test id tid alone, or None for a whole module."""
    m = re.match(r"^\w+ \(([\w.]+)\)$", tid)     # a fixture: setUpClass (test.x.Class)
    if m:
        target = m.group(1)
        return target + ".*" if target.count(".") >= 2 else None
    return tid


def module_of(tid, modules):
    m = re.match(r"^\w+ \(([\w.]+)\)$", tid)
    name = m.group(1) if m else tid
    best = None
    for mod in modules:
        full = "test." + mod.name
        if name == full or name.startswith(full + "."):
            if best is None or len(mod.name) > len(best.name):
                best = mod
    return best


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-j", type=int, default=int(os.environ.get("CPYTHON_JOBS", "4")),
                    help="regrtest processes at once (default 4)")
    ap.add_argument("--policies", default=",".join(POLICIES),
                    help="comma-separated, of: " + ", ".join(POLICIES))
    ap.add_argument("--rounds", type=int, default=3,
                    help="re-runs of a differing test before it counts (default 3)")
    ap.add_argument("patterns", nargs="*", help="run only modules whose name contains one")
    args = ap.parse_args(argv)
    policies = [p for p in args.policies.split(",") if p]
    for p in policies:
        if p not in POLICIES:
            ap.error("unknown policy %r" % p)
    t0 = time.monotonic()

    ver = "%d.%d" % sys.version_info[:2]
    how = "on Debian: apt-get install libpython%s-testsuite" % ver
    try:
        have = importlib.util.find_spec("test.libregrtest.main") is not None
    except ImportError:
        have = False
    if not have:
        log("cpython: skipped: %s has no `test` package (CPython's regression tests); %s"
            % (PYTHON, how))
        print("cpython: 0 passed, 0 failed, %d skipped" % (len(MODULES) * len(policies)))
        return 0
    if not os.path.exists(LIB):
        log("cpython: %s is missing: run make first" % LIB)
        print("cpython: 0 passed, 1 failed")
        return 1

    modules, missing = [], []
    for mod in MODULES:
        if args.patterns and not any(p in mod.name for p in args.patterns):
            continue
        try:
            found = importlib.util.find_spec("test." + mod.name) is not None
        except ImportError:
            found = False
        (modules if found else missing).append(mod)
    skipped = len(missing) * len(policies)
    if missing:
        log("cpython: skipped %s: not in the `test` package of %s; a CPython built from "
            "source or by pyenv has them all, Debian's libpython%s-testsuite most"
            % (", ".join(m.name for m in missing), PYTHON, ver))
    if not modules:
        print("cpython: 0 passed, 0 failed, %d skipped" % skipped)
        return 0
    log("cpython: %s, %d modules, bare and under %s, %d at once"
        % (PYTHON, len(modules), ", ".join(policies), args.j))

    # Long modules first; a module's runs side by side, so they meet the same load.
    jobs = []
    for mod in sorted(modules, key=lambda m: -m.est / len(m.shards)):
        for i, shard in enumerate(mod.shards):
            label = mod.name + ("" if len(mod.shards) == 1 else ".%d" % (i + 1))
            for mode in ["bare"] + policies:
                jobs.append(Job(mode, mod, shard, label))
    for mode in ["bare"] + policies:
        os.makedirs(os.path.join(OUT, mode), exist_ok=True)
    run_jobs(jobs, args.j)
    main_wall = time.monotonic() - t0

    # Outcomes per mode and module; run problems; what each policy's rules saw.
    res = {mode: {} for mode in ["bare"] + policies}
    per_module = {mode: collections.defaultdict(dict) for mode in res}
    problems = collections.defaultdict(list)        # (mode, module name) -> [text]
    seen = collections.defaultdict(lambda: [collections.Counter(), collections.Counter(), 0, 0])
    for j in jobs:
        r = read_results(j.results)
        res[j.mode].update(r)
        per_module[j.mode][j.module.name].update(r)
        p = j.problem()
        if p:
            problems[(j.mode, j.module.name)].append("%s: %s (log: %s)" % (j.label, p, j.output))
        if j.mode != "bare":
            calls, kinds, observed, exits = read_events(j.events)
            s = seen[(j.mode, j.module.name)]
            s[0].update(calls)
            s[1].update(kinds)
            s[2] += observed
            s[3] += exits

    # Differences, then re-runs of each differing test (and of each KNOWN one that did
    # not differ, to tell a fixed one from one that only happened to agree this time).
    history = {}        # (policy, id) -> {"bare": [results], policy: [results]}
    for pol in policies:
        ids = set(res["bare"]) | set(res[pol])
        ids |= {k.split(":", 1)[-1] for k in KNOWN if k.split(":", 1)[-1] in res["bare"]}
        for tid in ids:
            if module_of(tid, modules) is None:
                continue
            b, s = res["bare"].get(tid), res[pol].get(tid)
            if not same(b, s) or known_reason(pol, tid):
                history[(pol, tid)] = {"bare": [b], pol: [s]}

    def settled(key):
        h = history[key]
        pol = key[0]
        bare, shim = h["bare"], h[pol]
        agree = any(same(x, y) for x in bare for y in shim)
        differ = any(not same(x, y) for x in bare for y in shim)
        if known_reason(*key):
            # A known difference seen once is enough; one that shows only now and then
            # proves nothing by agreeing again.
            return differ or is_intermittent(*key)
        return agree            # a difference that ever goes away is flakiness

    # Each differing test alone, in a process of its own: a difference that depends on
    # what ran before it in the same process (state the library keeps per process, such
    # as a bucket's first fill) then shows whichever test meets it first in the module.
    MAX_RERUN = 40      # beyond this many differing tests, something is plainly broken
    todo = [k for k in history if not settled(k)]
    if len(todo) > MAX_RERUN:
        log("cpython: %d tests differ: too many to re-run, each counts" % len(todo))
        todo = []
    for rnd in range(args.rounds):
        todo = [k for k in todo if not settled(k)]
        if not todo:
            break
        rjobs, bare_of = [], {}
        for n, (pol, tid) in enumerate(sorted(todo)):
            mod = module_of(tid, modules)
            pat = rerun_pattern(tid)
            pats = None if pat is None else [pat]   # None: a module fixture, all of it
            if tid not in bare_of:
                bare_of[tid] = Job("bare", mod, None, "rerun%d-%d" % (rnd + 1, n), pats)
                rjobs.append(bare_of[tid])
            j = Job(pol, mod, None, "rerun%d-%d" % (rnd + 1, n), pats)
            j.tid = tid
            rjobs.append(j)
        log("cpython: re-run %d: %d differing tests, %d regrtest runs"
            % (rnd + 1, len(todo), len(rjobs)))
        run_jobs(rjobs, args.j)
        for j in rjobs:
            if j.mode != "bare":
                h = history[(j.mode, j.tid)]
                h["bare"].append(read_results(bare_of[j.tid].results).get(j.tid))
                h[j.mode].append(read_results(j.results).get(j.tid))

    # Verdicts.
    mismatches, flaky, known, fixed, unseen = [], [], [], [], []
    for key, h in sorted(history.items()):
        pol, tid = key
        reason = known_reason(pol, tid)
        differ_always = not any(same(x, y) for x in h["bare"] for y in h[pol])
        differ_ever = any(not same(x, y) for x in h["bare"] for y in h[pol])
        if reason and differ_ever:
            known.append((key, h, reason))
        elif reason and is_intermittent(pol, tid):
            unseen.append((key, h, reason))
        elif reason:
            fixed.append((key, h, reason))
        elif differ_always:
            mismatches.append((key, h))
        else:
            flaky.append((key, h))

    # Per-module figures and verdicts.
    cols = ("ok", "fail", "error", "skip", "xfail", "xpass")
    log("")
    log("%-32s %-8s %6s %5s %5s %5s %5s %6s %5s %9s %6s %6s"
        % ("module", "run", "tests", "ok", "fail", "error", "skip", "xfail", "xpass", "mismatch",
           "known", "flaky"))
    passed = failed = 0
    failures = []
    for mod in modules:
        for mode in ["bare"] + policies:
            r = per_module[mode][mod.name]
            c = collections.Counter(o for o, _ in r.values())
            counts = ["", "", ""]
            if mode != "bare":
                counts = [str(sum(1 for k in keys if k[0] == mode and
                                  module_of(k[1], modules) is mod))
                          for keys in ([x[0] for x in mismatches], [x[0] for x in known],
                                       [x[0] for x in flaky])]
            log("%-32s %-8s %6d %5d %5d %5d %5d %6d %5d %9s %6s %6s"
                % (mod.name if mode == "bare" else "", mode, len(r),
                   *[c[x] for x in cols], *counts))
        for pol in policies:
            why = []
            for mode in ("bare", pol):
                why += problems.get((mode, mod.name), [])
            why += ["%s: %s differs" % (pol, k[1]) for (k, _) in mismatches
                    if k[0] == pol and module_of(k[1], modules) is mod]
            why += ["%s: %s is in KNOWN but no longer differs: remove it" % (pol, k[1])
                    for (k, _, _) in fixed if k[0] == pol and module_of(k[1], modules) is mod]
            calls, kinds, observed, exits = seen[(pol, mod.name)]
            if kinds.get("config_error"):
                why.append("%s: the policy did not load (config_error)" % pol)
            if not per_module["bare"][mod.name]:
                why.append("no test ran bare")
            if sum(calls.values()) == 0:
                why.append("%s: the rules saw no call (%d exit events): the comparison "
                           "would prove nothing" % (pol, exits))
            if pol == "enforce":
                acted = {k: v for k, v in kinds.items() if k in ACTING}
                if acted:
                    why.append("%s: the policy acted: %s" % (pol, ", ".join(
                        "%d %s" % (v, k) for k, v in sorted(acted.items()))))
            if why:
                failed += 1
                failures += ["%s under %s: %s" % (mod.name, pol, w) for w in why]
            else:
                passed += 1
    log("")
    for pol in policies:
        tot, rules = collections.Counter(), collections.Counter()
        obs = 0
        for mod in modules:
            calls, kinds, observed, _ = seen[(pol, mod.name)]
            rules.update(calls)
            tot.update(kinds)
            obs += observed
        log("cpython: %s: calls per rule: %s; events: %s" % (
            pol, ", ".join("%s %d" % kv for kv in sorted(rules.items())) or "none",
            ", ".join("%s %d" % kv for kv in sorted(tot.items()))))
        # Every rule must have met calls somewhere, or the policy leaves an op uncovered
        # (only known when every module ran: test_sqlite3 alone has the sqlite calls).
        for rule in policy_rules(POLICIES[pol]):
            if len(modules) == len(MODULES) and not rules.get(rule):
                failed += 1
                failures.append("%s: rule %s saw no call in any module" % (pol, rule))
        if pol == "observe" and modules and obs == 0:
            failed += 1
            failures.append("observe: no event with \"observe\":true: the policy decided "
                            "nothing, so the comparison would prove nothing")

    def story(h, pol):
        return "bare %s; %s %s" % (" / ".join(show(x) for x in h["bare"]), pol,
                                   " / ".join(show(x) for x in h[pol]))

    for (pol, tid), h in mismatches:
        log("MISMATCH %s %s: %s" % (pol, tid, story(h, pol)))
    for (pol, tid), h, reason in known:
        log("known    %s %s: %s [%s]" % (pol, tid, reason, story(h, pol)))
    for (pol, tid), h, reason in fixed:
        log("FIXED    %s %s: remove from KNOWN [%s]" % (pol, tid, story(h, pol)))
    for (pol, tid), h, reason in unseen:
        log("unseen   %s %s: known to differ only now and then, agreed this time: %s [%s]"
            % (pol, tid, reason, story(h, pol)))
    for (pol, tid), h in flaky:
        log("flaky    %s %s: %s" % (pol, tid, story(h, pol)))
    for f in failures:
        log("FAIL     " + f)
    ntests = sum(len(per_module["bare"][m.name]) for m in modules)
    log("cpython: %d tests per run compared, %d mismatches, %d known, %d flaky; "
        "main runs %.0f s, all %.0f s" % (ntests, len(mismatches), len(known), len(flaky),
                                          main_wall, time.monotonic() - t0))
    line = "cpython: %d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    log("cpython: counted below: (module, policy) pairs, each compared test by test")
    print(line)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
