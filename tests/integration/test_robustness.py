"""Robustness (bulwark.yaml(5) BREAKER, RATE_LIMIT, INJECT, docs/design.md 4): the guarantees that hold under load rather than in
one call.

1. Integrity: 64 MiB echoed through injected partial transfers and EINTR on both
   directions comes back byte for byte (sha256 of what was sent and what came back), with
   the echo server plain or itself under the shim.
2. Stress: 8 threads connecting and transferring while the main thread forks 200 children
   that do the same, under breaker, rate limit and inject rules: no deadlock (bounded run;
   a hang is reported with the backtrace of every thread), no crash, no leaked descriptor.
3. Secure mode: a setuid program run by an unprivileged user with LD_PRELOAD and BULWARK_*
   set behaves exactly as without them: same output, no retry delay, no log file. The
   library's own check is reached as well, by a probe that dlopens it and calls its hook.
4. Bounded memory: a million connects to distinct destinations through dest-scoped
   breakers and rate limits keep the resident set flat (max_keys, LRU). The suite runs
   200k; BULWARK_ROBUST_FULL=1 runs the full million (under a minute with the shim).
5. Malformed policies: a table of broken files, each checked end to end through
   `bulwark check FILE` (exit 1, `FILE:LINE:COL: message`).

The echo server (progs/echo_server.c) is a process of its own, under the shim only where
a test says so; the clients are C programs in progs/ (built by `make` into build/itest).
"""

import json
import os
import pwd
import re
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

# Also runnable as `python3 -m unittest tests/integration/test_robustness.py`.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (BUILD, LIB, TOOL, ShimTest, base_env, describe, events_of, free_port,
                     kill_group, prog, read_events, rule, run, shim_env)

GDB = shutil.which("gdb")
SETPRIV = shutil.which("setpriv")
RUNUSER = shutil.which("runuser")
FINDMNT = shutil.which("findmnt")


# -- helpers ------------------------------------------------------------------------------

def group_pids(pgid):
    """The live processes of process group pgid, leader first."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d))
    return sorted(out, key=lambda p: (p != pgid, p))


def backtraces(pgid, limit=4):
    """`thread apply all bt` of the processes of a hung run (at most limit of them)."""
    if not GDB:
        return "(gdb is not installed: no backtrace)"
    parts = []
    for pid in group_pids(pgid)[:limit]:
        try:
            g = subprocess.run([GDB, "-batch", "-p", str(pid), "-ex", "thread apply all bt"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            text = g.stdout.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            text = "(gdb timed out)"
        lines = [l for l in text.splitlines() if l.startswith(("Thread ", "#"))]
        parts.append("--- pid %d\n%s" % (pid, "\n".join(lines) or text[-3000:]))
    return "\n".join(parts) or "(no process left in the group)"


class Bounded:
    """A finished run: argv, rc, stdout, stderr, elapsed."""

    def __init__(self, cmd, rc, out, err, elapsed):
        self.cmd, self.rc, self.stdout, self.stderr, self.elapsed = cmd, rc, out, err, elapsed

    def __repr__(self):
        return "cmd=%r rc=%r elapsed=%.2fs\n--- stdout\n%s\n--- stderr\n%s" % (
            " ".join(self.cmd), self.rc, self.elapsed, self.stdout[-3000:], self.stderr[-3000:])


def run_bounded(cmd, env, timeout):
    """Run cmd in a process group of its own. A run that outlives timeout is a hang: the
    test fails with the backtrace of every thread of the hung processes (gdb), then the
    group is killed."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        bt = backtraces(p.pid)
        kill_group(p)
        out, err = p.communicate()
        raise AssertionError("hang: %s did not finish within %ss\n--- backtraces\n%s\n"
                             "--- stdout\n%s\n--- stderr\n%s"
                             % (" ".join(cmd), timeout, bt,
                                out.decode("utf-8", "replace")[-2000:],
                                err.decode("utf-8", "replace")[-2000:]))
    return Bounded(cmd, p.returncode, out.decode("utf-8", "replace"),
                   err.decode("utf-8", "replace"), time.monotonic() - t0)


class EchoServer:
    """build/itest/echo_server as a process of its own (under the shim when env says so).
    With conns, it exits after that many connections, printing one line per connection:
    "conn I bytes N sha256 HEX"."""

    def __init__(self, env, conns=0):
        self.p = subprocess.Popen([prog("echo_server")] + ([str(conns)] if conns else []),
                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        r, _, _ = select.select([self.p.stdout], [], [], 10)
        line = self.p.stdout.readline().decode().strip() if r else ""
        if not line.isdigit():
            self.stop()
            raise AssertionError("echo_server did not start: %r %s"
                                 % (line, self.p.stderr.read().decode()))
        self.port = int(line)
        self.dest = "127.0.0.1:%d" % self.port

    def results(self, timeout=20):
        """What the server printed after its last connection, and its exit status."""
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            bt = backtraces(self.p.pid)
            self.stop()
            raise AssertionError("echo_server did not finish:\n" + bt)
        lines = out.decode().splitlines()
        conns = []
        for l in lines:
            m = re.match(r"^conn (\d+) bytes (\d+) sha256 ([0-9a-f]{64})(.*)$", l)
            if m:
                conns.append((int(m.group(2)), m.group(3), m.group(4).strip()))
        return self.p.returncode, conns, err.decode()

    def stop(self):
        kill_group(self.p)
        self.p.wait(10)
        for f in (self.p.stdout, self.p.stderr):
            f.close()


class RobustTest(ShimTest):

    def echo_server(self, env, conns=0):
        s = EchoServer(env, conns)
        self.addCleanup(s.stop)
        return s

    def events(self, log):
        evs = read_events(log)
        self.assertTrue(events_of(evs, "start"), "the library did not start:\n"
                        + describe(evs[:20]))
        return evs


# -- 1. integrity -------------------------------------------------------------------------

class Integrity(RobustTest):
    """64 MiB through the shim with ~30% partial transfers and ~5% EINTR on every send and
    recv call, with send/write/writev/sendmsg and recv/read/readv/recvmsg in turn: what
    comes back is what was sent (docs/design.md 4: retries and injections never duplicate or drop
    application bytes)."""

    MIB = 64
    LIMIT = 60

    FAULTS = ("    inject:\n"
              "      - { ops: [send], partial: true, probability: 30% }\n"
              "      - { ops: [send], errno: EINTR, probability: 5% }\n"
              "      - { ops: [recv], partial: true, probability: 30% }\n"
              "      - { ops: [recv], errno: EINTR, probability: 5% }\n")

    def blast(self, server, pol):
        r = run_bounded([prog("echo_blast"), str(server.port), str(self.MIB), "20261125"],
                        shim_env(pol), timeout=self.LIMIT)
        try:
            out = json.loads(r.stdout)
        except ValueError:
            self.fail("echo_blast printed no result\n%r" % r)
        self.assertLess(r.elapsed, self.LIMIT, repr(r))
        total = self.MIB << 20
        self.assertIsNone(out.get("error"), repr(r))
        self.assertEqual((out["bytes_sent"], out["bytes_back"]), (total, total), repr(r))
        self.assertEqual(out["first_mismatch"], -1, "corrupted echo\n%r" % r)
        self.assertEqual(out["back"], out["sent"], repr(r))
        self.assertEqual(r.rc, 0, repr(r))
        rc, conns, err = server.results()
        self.assertEqual(rc, 0, err)
        self.assertEqual(conns, [(total, out["sent"], "")],
                         "what the server received is not what the client sent\n" + err)
        return r, out

    def assertFaults(self, evs, prog_name):
        """Both kinds of fault really happened on both directions in prog_name."""
        mine = [e for e in evs if e.get("prog") == prog_name]
        for op in ("send", "recv"):
            kinds = {(e.get("reason"), e.get("err"))
                     for e in events_of(mine, "injected", op=op)}
            self.assertIn(("partial", None), kinds, "%s %s: %r" % (prog_name, op, kinds))
            self.assertIn((None, "EINTR"), kinds, "%s %s: %r" % (prog_name, op, kinds))

    def test_plain_server_retried_eintr(self):
        """Plain echo server; the client under a rule that also retries the injected
        EINTR (listed in `on`: a real one never is): the program never sees it, only the
        short transfers."""
        srv = self.echo_server(base_env(), conns=1)
        pol, log = self.wd.policy(
            rule("echo", ["send", "recv"], [srv.dest],
                 "    retry: { attempts: 10, on: [EINTR], backoff: { base: 1ms, max: 2ms } }\n"
                 + self.FAULTS), level="info", extra="seed: 7\n")
        r, out = self.blast(srv, pol)
        evs = self.events(log)
        self.assertFaults(evs, "echo_blast")
        self.assertGreater(out["short_sends"], 0, repr(r))
        self.assertEqual((out["eintr_send"], out["eintr_recv"]), (0, 0),
                         "a retried EINTR reached the program\n%r" % r)
        self.assertTrue(events_of(evs, "recovered", op="send"), describe(evs[:40]))
        self.assertTrue(events_of(evs, "recovered", op="recv"), describe(evs[:40]))
        self.assertFalse(events_of(evs, "gave_up"), describe(events_of(evs, "gave_up")))

    def test_both_ends_under_the_shim_see_eintr(self):
        """Client and echo server both under the shim, with no retry: the injected EINTR
        and partial transfers reach both programs, which cope as programs must."""
        pol, log = self.wd.policy(rule("echo", ["send", "recv"], ["127.0.0.1:*"], self.FAULTS),
                                  level="info", extra="seed: 8\n")
        srv = self.echo_server(shim_env(pol), conns=1)
        r, out = self.blast(srv, pol)
        evs = self.events(log)
        self.assertFaults(evs, "echo_blast")
        self.assertFaults(evs, "echo_server")
        self.assertGreater(out["eintr_send"], 0, repr(r))
        self.assertGreater(out["eintr_recv"], 0, repr(r))
        self.assertGreater(out["short_sends"], 0, repr(r))


# -- 2. threads, fork, breakers, limits and faults at once ---------------------------------

class Stress(RobustTest):
    """progs/stress.c: 8 threads x 200 rounds (echo a message, then a refused connect) while
    the main thread forks 200 children doing 3 rounds each, under breaker, rate limit and
    inject rules on both destinations (docs/design.md 4: never crashes or hangs; thread-safe; a
    forked child works on its own)."""

    LIMIT = 60

    def test_threads_and_fork_under_every_policy(self):
        srv = self.echo_server(base_env())
        dead = free_port()
        pol, log = self.wd.policy(
            rule("echo", ["connect", "send", "recv"], [srv.dest],
                 "retry: { attempts: 5, backoff: { base: 1ms, max: 5ms } }\n"
                 "breaker: { trip: { consecutive: 20 }, open_for: 100ms }\n"
                 "rate_limit: { rate: 5000/s, burst: 500 }\n"
                 "inject:\n"
                 "  - { ops: [send], partial: true, probability: 30% }\n"
                 "  - { ops: [recv], partial: true, probability: 30% }\n"
                 "  - { ops: [send, recv], errno: EINTR, probability: 5% }\n"
                 "  - { ops: [connect], delay: 1ms, probability: 10% }") +
            rule("dead", ["connect"], ["127.0.0.1:%d" % dead],
                 "retry: { attempts: 2, backoff: { base: 1ms, max: 2ms } }\n"
                 "breaker: { trip: { consecutive: 3 }, open_for: 20ms }\n"
                 "rate_limit: { rate: 2000/s, burst: 50, on_limit: fail }\n"
                 "inject: [{ ops: [connect], errno: ECONNREFUSED, probability: 20% }]"),
            level="info")
        r = run_bounded([prog("stress"), str(srv.port), str(dead), "8", "200", "200", "3"],
                        shim_env(pol), timeout=self.LIMIT)
        self.assertGreaterEqual(r.rc, 0, "killed by signal %d\n%r" % (-r.rc, r))
        try:
            out = json.loads(r.stdout)
        except ValueError:
            self.fail("stress printed no result\n%r" % r)
        self.assertEqual(out["fork_errors"], 0, repr(r))
        self.assertEqual(out["children_signaled"], 0, "a child was killed by a signal\n%r" % r)
        self.assertEqual(out["children_ok"], 200, "children failed\n%r" % r)
        self.assertEqual(out["thread_failures"], 0, repr(r))
        self.assertEqual(out["rounds"], 1600, repr(r))
        self.assertEqual(out["fds_after"], out["fds_before"], "descriptor leak\n%r" % r)
        self.assertEqual(r.rc, 0, repr(r))
        # Every line of the log is one whole JSON object (one write(2) per event, from
        # 201 processes and 9 threads at once), and the rules were really at work.
        evs = self.events(log)
        ctx = "%d events" % len(evs)
        self.assertGreaterEqual(len({e["pid"] for e in evs}), 2, ctx)
        for name in ("injected", "throttled", "rejected"):
            self.assertTrue(events_of(evs, name), "no %s event (%s)" % (name, ctx))
        self.assertTrue(events_of(evs, "breaker", rule="dead", to="open"), ctx)
        self.assertTrue(events_of(evs, "injected", rule="echo", reason="partial"), ctx)
        self.assertTrue(events_of(evs, "injected", rule="echo", err="EINTR"), ctx)


# -- 3. secure-execution mode --------------------------------------------------------------

def suid_capable_dir(candidates):
    """The first directory of candidates whose filesystem honours set-user-ID bits, or
    None with the reasons."""
    why = []
    for d in candidates:
        os.makedirs(d, exist_ok=True)
        opts = ""
        if FINDMNT:
            f = subprocess.run([FINDMNT, "-no", "OPTIONS", "-T", d], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=10)
            opts = f.stdout.decode().strip()
        if "nosuid" in opts.split(","):
            why.append("%s is on a nosuid filesystem (%s)" % (d, opts))
            continue
        return d, why
    return None, why


def readable_by_all(path):
    """Every directory on the way is searchable by others and the file readable."""
    p = os.path.abspath(path)
    if not os.stat(p).st_mode & stat.S_IROTH:
        return False
    d = os.path.dirname(p)
    while d != "/":
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return False
        d = os.path.dirname(d)
    return True


class SecureMode(RobustTest):
    """bulwark(1), docs/design.md 4: in secure-execution mode (setuid) the library reads no environment and
    changes nothing. A setuid-root copy of progs/secure_probe.c is run by `nobody` with
    LD_PRELOAD, BULWARK_CONFIG (a connect retry rule: 4 attempts, 300 ms apart) and
    BULWARK_LOG (a file): its output must be the same as without them, with no retry delay
    and no log file.

    The loader itself drops an LD_PRELOAD path with a slash for a setuid program, so the
    probe also dlopens the library and calls its exported connect directly: that reaches
    the library's own secure-mode check. Two non-setuid control runs, with the same
    variables, show the same setup does retry and log when the program is not setuid."""

    DELAY = 0.9   # what the retry rule adds: 3 waits of 300 ms

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root to install a setuid-root program")
        try:
            self.nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no unprivileged user 'nobody'")
        if self.nobody.pw_uid == 0:
            self.skipTest("'nobody' is uid 0 here")
        if not (SETPRIV or RUNUSER):
            self.skipTest("neither setpriv nor runuser is installed")
        # /tmp first; a directory under build/ when /tmp is mounted nosuid
        d, why = suid_capable_dir([self.wd.path, BUILD])
        if d is None:
            self.skipTest("; ".join(why))
        if d == self.wd.path:
            self.dir = d
        else:
            self.dir = tempfile.mkdtemp(prefix="itest-suid-", dir=d)
            self.addCleanup(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o755)
        self.logs = os.path.join(self.dir, "logs")
        os.mkdir(self.logs)
        os.chmod(self.logs, 0o1777)
        probe = prog("secure_probe")
        self.suid = os.path.join(self.dir, "probe_suid")
        self.plain = os.path.join(self.dir, "probe_plain")
        for dst, mode in ((self.suid, 0o4755), (self.plain, 0o755)):
            shutil.copyfile(probe, dst)
            os.chown(dst, 0, 0)
            os.chmod(dst, mode)
        self.lib = LIB
        if not readable_by_all(LIB):
            self.lib = os.path.join(self.dir, "libbulwark.so")
            shutil.copyfile(LIB, self.lib)
            os.chmod(self.lib, 0o755)
        self.port = free_port()
        self.policy = os.path.join(self.dir, "policy.yaml")
        with open(self.policy, "w") as f:
            f.write("version: 1\n"
                    "log: { level: debug }\n"
                    "rules:\n"
                    "  - name: c\n"
                    "    match: { ops: [connect] }\n"
                    "    retry: { attempts: 4, backoff: { base: 300ms, max: 300ms, "
                    "jitter: none } }\n")
        os.chmod(self.policy, 0o644)

    def as_nobody(self, argv, env_vars):
        """Run argv as nobody, with env_vars set only for argv itself (not for setpriv)."""
        pre = ([SETPRIV, "--reuid=%d" % self.nobody.pw_uid, "--regid=%d" % self.nobody.pw_gid,
                "--clear-groups", "--"] if SETPRIV else [RUNUSER, "-u", "nobody", "--"])
        cmd = pre + ["env"] + ["%s=%s" % kv for kv in env_vars] + argv
        return run_bounded(cmd, base_env(), timeout=30)

    def vars(self, name, preload=True):
        v = [("BULWARK_CONFIG", self.policy),
             ("BULWARK_LOG", "file:" + os.path.join(self.logs, name + ".log"))]
        return ([("LD_PRELOAD", self.lib)] if preload else []) + v

    def log_of(self, name):
        return os.path.join(self.logs, name + ".log")

    def lines(self, r):
        return r.stdout.splitlines()

    def in_environ(self, r):
        """How many BULWARK_* variables the probe found with getenv (it says on stderr)."""
        m = re.search(r"^environ BULWARK_\*: (\d+)$", r.stderr, re.M)
        self.assertTrue(m, repr(r))
        return int(m.group(1))

    def test_setuid_program_is_left_alone(self):
        port = str(self.port)
        # Controls: the same variables on the non-setuid copy do retry and log.
        c1 = self.as_nobody([self.plain, port], self.vars("control-preload"))
        self.assertIn("secure 0", self.lines(c1), repr(c1))
        self.assertIn("preloaded yes", self.lines(c1), repr(c1))
        self.assertGreaterEqual(c1.elapsed, self.DELAY - 0.05, repr(c1))
        evs = read_events(self.log_of("control-preload"))
        self.assertTrue(events_of(evs, "start") and events_of(evs, "retry"), describe(evs))
        c2 = self.as_nobody([self.plain, port, self.lib],
                            self.vars("control-dlopen", preload=False))
        self.assertIn("dlopen ok", self.lines(c2), repr(c2))
        self.assertGreaterEqual(c2.elapsed, self.DELAY - 0.05, repr(c2))
        evs = read_events(self.log_of("control-dlopen"))
        self.assertTrue(events_of(evs, "start") and events_of(evs, "retry"), describe(evs))

        base = self.as_nobody([self.suid, port], [])
        self.assertEqual(base.rc, 0, repr(base))
        if "secure 1" not in self.lines(base):
            self.skipTest("the set-user-ID bit had no effect here (no_new_privs?): %r" % base)
        self.assertIn("euid 0 ruid %d" % self.nobody.pw_uid, base.stderr, repr(base))
        self.assertIn("connect rc=-1 errno=ECONNREFUSED", self.lines(base), repr(base))

        for how, argv, preload in (("preload", [self.suid, port], True),
                                   ("dlopen", [self.suid, port, self.lib], False),
                                   ("dlopen+preload", [self.suid, port, self.lib], True)):
            with self.subTest(how=how):
                plain = self.as_nobody(argv, []) if argv != [self.suid, port] else base
                r = self.as_nobody(argv, self.vars(how, preload))
                self.assertEqual(r.rc, plain.rc, repr(r))
                self.assertEqual(r.stdout, plain.stdout,
                                 "output differs with the variables set\n%r\n%r" % (r, plain))
                # the variables did reach the program (the loader drops LD_PRELOAD only)
                self.assertEqual(self.in_environ(r), self.in_environ(plain) + 2,
                                 "%r\n%r" % (r, plain))
                self.assertIn("bulwark env hidden", self.lines(r), repr(r))
                self.assertLess(r.elapsed, self.DELAY / 2,
                                "a retry delay in secure mode\n%r" % r)
                # without the variables the library's built-in default policy (6 connect
                # attempts) would apply if it ignored secure mode: no delay there either
                self.assertLess(plain.elapsed, self.DELAY / 2, repr(plain))
                self.assertFalse(os.path.exists(self.log_of(how)),
                                 "a log file was written in secure mode: %s"
                                 % read_events(self.log_of(how))[:5])
        self.assertEqual(sorted(os.listdir(self.logs)),
                         ["control-dlopen.log", "control-preload.log"])


# -- 4. bounded memory ----------------------------------------------------------------------

def unused_ports(n):
    """n distinct ports nothing listens on, on any address (a listener on 0.0.0.0 would
    accept connects to 127.1.x.y)."""
    out = set()
    while len(out) < n:
        with socket.socket() as s:
            s.bind(("0.0.0.0", 0))
            out.add(s.getsockname()[1])
    return sorted(out)


class BoundedMemory(RobustTest):
    """docs/design.md 4: per-destination state is bounded (LRU, max_keys, 4096 by default). Connect
    i goes to 127.1.(i % 65536):port[i // 65536], each to a destination never seen before,
    through a rule whose breakers open at the first failure (every other port) and one
    whose breakers never open, both with dest-scoped rate limits. After 100k connects both
    tables are full; from there the resident set must not grow."""

    FULL = os.environ.get("BULWARK_ROBUST_FULL") == "1"
    N = 1000000 if FULL else 200000
    BASE_N = N if FULL else 100000      # the run without the shim
    LIMIT = 240 if FULL else 60
    GROWTH_KIB = 1024          # allowed growth from the 100k figure to the last one
    OVERHEAD_KIB = 16 * 1024   # allowed difference from the run without the shim

    def rss(self, r):
        figures = {}
        for l in r.stdout.splitlines():
            m = re.match(r"^rss (\d+) (\d+)$", l)
            if m:
                figures[int(m.group(1))] = int(m.group(2))
        hwm = re.search(r"^hwm (\d+)$", r.stdout, re.M)
        res = re.search(r"^results refused=(\d+) other=(\d+) ok=(\d+)", r.stdout, re.M)
        canary = re.search(r"^canary (\S+)$", r.stdout, re.M)
        self.assertTrue(figures and hwm and res and canary, repr(r))
        self.assertEqual(int(res.group(1)), self.n_of(r), "not every connect was refused\n%r"
                         % r)
        return figures, int(hwm.group(1)), canary.group(1)

    def n_of(self, r):
        return int(r.cmd[1])

    def test_rss_stays_flat(self):
        ports = unused_ports((self.N + 65535) // 65536)
        canary = socket.socket()
        self.addCleanup(canary.close)
        canary.bind(("127.0.0.1", 0))
        canary.listen(8)
        cport = canary.getsockname()[1]
        pol, log = self.wd.policy(
            rule("canary", ["connect"], ["127.0.0.1:%d" % cport],
                 "inject: [{ errno: ECONNREFUSED }]") +
            rule("opens", ["connect"], ["127.1.0.0/16:%d" % p for p in ports[1::2]],
                 "breaker: { scope: dest, trip: { consecutive: 1 }, open_for: 10s }\n"
                 "rate_limit: { scope: dest, rate: 100000/s }") +
            rule("never-opens", ["connect"], ["127.1.0.0/16"],
                 "breaker: { scope: dest, trip: { consecutive: 1000 }, open_for: 1s }\n"
                 "rate_limit: { scope: dest, rate: 100000/s }"),
            level="error")
        argv = [prog("manyconn"), str(self.N), str(cport)] + [str(p) for p in ports]
        r = run_bounded(argv, shim_env(pol), timeout=self.LIMIT)
        self.assertEqual(r.rc, 0, repr(r))
        shim, shim_hwm, shim_canary = self.rss(r)
        self.assertEqual(shim_canary, "ECONNREFUSED",
                         "the library was not at work to the end\n%r" % r)
        # the baseline: the same connects without the shim (up to 100k in the suite)
        b = run_bounded([argv[0], str(self.BASE_N)] + argv[2:], base_env(), timeout=self.LIMIT)
        self.assertEqual(b.rc, 0, repr(b))
        base, base_hwm, base_canary = self.rss(b)
        self.assertEqual(base_canary, "ok", repr(b))
        figures = "shim: %s hwm %d KiB (%.1fs); no shim: %s hwm %d KiB (%.1fs)" % (
            sorted(shim.items()), shim_hwm, r.elapsed, sorted(base.items()), base_hwm,
            b.elapsed)
        sys.stderr.write("\n  RSS KiB by connects, %s\n" % figures)
        last = shim[self.N]
        self.assertLessEqual(last - shim[100000], self.GROWTH_KIB,
                             "the resident set grows with distinct destinations\n" + figures)
        self.assertLessEqual(shim_hwm - shim[100000], self.GROWTH_KIB, figures)
        self.assertLessEqual(shim[100000] - base[100000], self.OVERHEAD_KIB, figures)
        self.assertEqual(os.path.getsize(log) if os.path.exists(log) else 0, 0,
                         "error events:\n" + describe(read_events(log)[:10]))


# -- 5. malformed policies -----------------------------------------------------------------

H = "version: 1\nrules:\n  - name: r\n"
C = H + "    match: { ops: [connect] }\n"
S = H + "    match: { ops: [send] }\n"

# (what, policy text, message). `^` in the text marks where the diagnostic must point
# (LINE:COL) and is removed before the file is written. The message is matched as a
# substring of the diagnostic after "FILE:LINE:COL: ".
BAD = [
    # syntax
    ("tab indentation", "version: 1\nrules:\n^\t- name: a\n",
     "syntax error: found character that cannot start any token"),
    ("unclosed flow mapping", H + "    retry: { attempts: 3\n^",
     "syntax error: did not find expected ',' or '}'"),
    ("bad indentation", "version: 1\nrules:\n  - name: a\n   ^match: {}\n",
     "syntax error: did not find expected '-' indicator"),
    ("undefined alias", H + "    retry: ^*nowhere\n", "syntax error: found undefined alias"),
    ("two documents", "version: 1\n---\n^version: 1\n", "a policy is a single YAML document"),
    ("empty file", "^", "empty policy; expected a mapping that starts with version: 1"),
    ("YAML merge key", "version: 1\nrules:\n  - name: a\n    retry: &r { attempts: 2 }\n"
     "  - name: b\n    retry:\n      ^<<: *r\n", "YAML merge keys (<<) are not supported"),
    # top level
    ("top level is a list", "^- a\n- b\n", "the policy: expected a mapping, got a list"),
    ("unknown top-level key", "version: 1\n^rulez: []\n",
     "unknown key 'rulez'; expected one of version, mode, on_config_error, seed, log, "
     "defaults, rules, state"),
    ("missing version", "^rules: []\n", "missing required key 'version'"),
    ("unsupported version", "version: ^2\n", "version: unsupported version 2; expected 1"),
    ("duplicate top-level key", "version: 1\nmode: enforce\n^mode: observe\n",
     "duplicate key 'mode' (first at line 2)"),
    ("bad mode", "version: 1\nmode: ^dry-run\n",
     "mode: expected one of enforce, observe, got 'dry-run'"),
    ("negative seed", "version: 1\nseed: ^-1\n", "seed: expected an integer from 0 to"),
    ("bad log sink", "version: 1\nlog: { sink: ^kafka }\n",
     "log.sink: expected stderr, syslog or file:PATH, got 'kafka'"),
    ("bad log level", "version: 1\nlog: { level: ^verbose }\n",
     "log.level: expected one of error, warn, info, debug, got 'verbose'"),
    ("summary not a boolean", "version: 1\nlog: { summary: ^yes }\n",
     "log.summary: expected true or false, got 'yes'"),
    ("relative state dir", "version: 1\nstate: { dir: ^run/bw }\n",
     "state.dir: expected auto or an absolute path"),
    ("unknown defaults key", "version: 1\ndefaults:\n  retry: { attempts: 2 }\n  ^bogus: 1\n",
     "defaults: unknown key 'bogus'"),
    # rules: names, keys, types
    ("rule without a name", "version: 1\nrules:\n  - ^match: { ops: [connect] }\n",
     "rules[0]: missing required key 'name'"),
    ("duplicate rule name", "version: 1\nrules:\n  - name: db\n  - name: ^db\n",
     "rules[1].name: duplicate rule name 'db'"),
    ("unknown rule key", H + "    ^retri: { attempts: 2 }\n", "rules[0]: unknown key 'retri'"),
    ("unknown retry key", C + "    retry: { ^attemps: 2 }\n",
     "rules[0].retry: unknown key 'attemps'; expected one of attempts, on, backoff, "
     "deadline, budget"),
    ("duplicate key, block style", C + "    retry:\n      attempts: 2\n      ^attempts: 3\n",
     "rules[0].retry: duplicate key 'attempts' (first at line 6)"),
    ("duplicate key, flow style", C + "    retry: { attempts: 2, ^attempts: 3 }\n",
     "rules[0].retry: duplicate key 'attempts' (first at line 5)"),
    ("duplicate section", C + "    retry: quick\n    ^retry: off\n",
     "rules[0]: duplicate key 'retry' (first at line 5)"),
    ("unknown op", H + "    match: { ops: [^connnect] }\n",
     "rules[0].match.ops[0]: expected one of connect, accept, send, recv, resolve, sqlite, pg, "
     "mysql, redis, got 'connnect'"),
    ("empty ops", H + "    match: { ops: ^[] }\n", "rules[0].match.ops: expected at least one op"),
    ("match is a list", H + "    match: ^[connect]\n", "rules[0].match: expected a mapping"),
    ("attempts is a word", C + "    retry: { attempts: ^many }\n",
     "rules[0].retry.attempts: expected an integer from 1 to 100, got 'many'"),
    ("attempts is a list", C + "    retry: { attempts: ^[3] }\n",
     "rules[0].retry.attempts: expected an integer from 1 to 100, got a list"),
    ("unknown retry preset", C + "    retry: ^fast\n",
     "rules[0].retry: expected one of quick, conservative, aggressive, off, got 'fast'"),
    ("partial is a word", S + "    inject: [{ partial: ^sometimes }]\n",
     "rules[0].inject[0].partial: expected true or false, got 'sometimes'"),
    ("unknown inject key", C + "    inject: [{ errno: ECONNREFUSED, ^chance: 5% }]\n",
     "rules[0].inject[0]: unknown key 'chance'"),
    # ranges
    ("attempts 0", C + "    retry: { attempts: ^0 }\n",
     "rules[0].retry.attempts: expected an integer from 1 to 100, got 0"),
    ("attempts 101", C + "    retry: { attempts: ^101 }\n",
     "rules[0].retry.attempts: expected an integer from 1 to 100, got 101"),
    ("ratio over 100%", C + "    breaker: { trip: { rate: ^150% } }\n",
     "rules[0].breaker.trip.rate: expected a ratio from 0 to 1 or 0% to 100%"),
    ("probability over 1", C + "    inject: [{ errno: ECONNREFUSED, probability: ^2.5 }]\n",
     "rules[0].inject[0].probability: expected a ratio from 0 to 1"),
    ("max_keys 0", C + "    max_keys: ^0\n", "rules[0].max_keys: expected an integer from 1"),
    ("half_open_probes 0", C + "    breaker: { half_open_probes: ^0 }\n",
     "rules[0].breaker.half_open_probes: expected an integer from 1"),
    ("inject count 0", C + "    inject: [{ errno: ECONNREFUSED, count: ^0 }]\n",
     "rules[0].inject[0].count: expected an integer from 1"),
    ("open_for_max below open_for", C + "    breaker: { open_for: 10s, ^open_for_max: 5s }\n",
     "rules[0].breaker.open_for_max: 5s is less than breaker.open_for (10s)"),
    # units
    ("bare duration", C + "    retry: { backoff: { base: ^100 } }\n",
     "rules[0].retry.backoff.base: duration needs a unit, e.g. 250ms"),
    ("bare inject delay", C + "    inject: [{ delay: ^200 }]\n",
     "rules[0].inject[0].delay: duration needs a unit, e.g. 250ms"),
    ("unknown duration unit", C + "    timeout: { connect: ^5sec }\n",
     "rules[0].timeout.connect: unknown duration unit 'sec'"),
    ("zero duration", C + "    timeout: { connect: ^0s }\n",
     "rules[0].timeout.connect: expected a duration greater than 0"),
    ("negative duration", C + "    retry: { deadline: ^-5s }\n",
     "rules[0].retry.deadline: a duration cannot be negative"),
    ("sub-microsecond duration", C + "    timeout: { connect: ^0.5us }\n",
     "rules[0].timeout.connect: '0.5us' is not a whole number of microseconds"),
    ("rate without unit", C + "    rate_limit: { rate: ^50 }\n",
     "rules[0].rate_limit.rate: rate needs a unit, e.g. 50/s"),
    ("unknown rate unit", C + "    rate_limit: { rate: ^50/day }\n",
     "rules[0].rate_limit.rate: unknown rate unit '/day'"),
    ("zero rate", C + "    rate_limit: { rate: ^0/s }\n",
     "rules[0].rate_limit.rate: a rate must be greater than 0"),
    ("bad jitter", C + "    retry: { backoff: { jitter: ^random } }\n",
     "rules[0].retry.backoff.jitter: expected one of none, full, equal, decorrelated"),
    ("bad port", H + "    match: { ops: [connect], dest: [^\"127.0.0.1:99999\"] }\n",
     "rules[0].match.dest[0]: invalid port '99999'"),
    ("bad prefix length", H + "    match: { ops: [connect], dest: [^\"10.0.0.0/33\"] }\n",
     "rules[0].match.dest[0]: invalid prefix length '/33'"),
    ("unknown errno name", C + "    inject: [{ errno: ^ECONREFUSED }]\n",
     "rules[0].inject[0].errno: unknown error name 'ECONREFUSED'"),
    ("missing rate", C + "    ^rate_limit: { burst: 5 }\n",
     "rules[0].rate_limit: missing required key 'rate'"),
    # sections and values that cannot apply to the rule's ops
    ("byte rate on connect", C + "    rate_limit: { rate: ^1MiB/s }\n",
     "a byte rate applies only to send and recv"),
    ("on_limit fail on send", S + "    rate_limit: { rate: 5/s, on_limit: ^fail }\n",
     "rules[0].rate_limit.on_limit: fail is refused for send"),
    ("recv timeout on a connect rule", C + "    timeout: { ^recv: 5s }\n",
     "rules[0].timeout.recv: does not apply: rule 'r' matches only [connect]"),
    ("breaker on accept", H + "    match: { ops: [accept] }\n    ^breaker: { trip: "
     "{ consecutive: 3 } }\n", "rules[0].breaker: does not apply"),
    ("fallback on send", S + "    ^fallback: [\"127.0.0.1:5433\"]\n",
     "rules[0].fallback: does not apply: rule 'r' matches only [send]; fallback needs connect"),
    ("fallback with a glob", C + "    fallback: [^\"*:5433\"]\n",
     "rules[0].fallback[0]: a fallback must be one endpoint"),
    ("eof on send", S + "    inject: [{ ^eof: true }]\n",
     "rules[0].inject[0].eof: does not apply: rule 'r' matches only [send]"),
    ("partial on connect", C + "    inject: [{ ^partial: true }]\n",
     "rules[0].inject[0].partial: does not apply: rule 'r' matches only [connect]"),
    ("EAI_AGAIN on connect", C + "    inject: [{ ^errno: EAI_AGAIN }]\n",
     "rules[0].inject[0].errno: does not apply: rule 'r' matches only [connect]"),
    ("errno on sqlite", H + "    match: { ops: [sqlite] }\n    inject: [{ ^errno: EINTR }]\n",
     "rules[0].inject[0].errno: does not apply: rule 'r' matches only [sqlite]"),
    ("inject ops outside the rule's", C + "    inject: [{ ops: ^[recv], eof: true }]\n",
     "rules[0].inject[0].ops: inject ops must be among the rule's ops"),
    ("nothing to inject", C + "    inject: [^{ probability: 50% }]\n",
     "rules[0].inject[0]: nothing to inject"),
    ("EPIPE in retry.on for send", S + "    retry: { on: [^EPIPE] }\n",
     "rules[0].retry.on[0]: EPIPE cannot be retried on send or recv"),
    ("SQLITE_BUSY as a connect breaker errno", C + "    breaker: { errno: ^SQLITE_BUSY }\n",
     "rules[0].breaker.errno: SQLITE_BUSY does not apply"),
    ("nonblocking on a send rule", S + "    ^nonblocking: observe\n",
     "rules[0].nonblocking: does not apply"),
    ("host on a connect rule", H + "    ^match: { ops: [connect], host: [\"*.internal\"] }\n",
     "rules[0].match: can never match: host applies only to resolve"),
]


def place(text):
    """(file text, line, col) from a table entry's text with its `^` marker."""
    i = text.index("^")
    before = text[:i]
    line = before.count("\n") + 1
    col = i - (before.rfind("\n") + 1) + 1
    return before + text[i + 1:], line, col


class MalformedPolicies(ShimTest):
    """Each broken policy through `build/bulwark check FILE`: exit 1, nothing on stdout,
    and a diagnostic `FILE:LINE:COL: message` that points at the mistake (bulwark.yaml(5):
    strict; naming the key and what was expected)."""

    def test_table(self):
        self.assertGreaterEqual(len(BAD), 30)
        self.assertEqual(len({w for w, _, _ in BAD}), len(BAD), "duplicate case names")
        for n, (what, marked, message) in enumerate(BAD):
            with self.subTest(what=what):
                text, line, col = place(marked)
                path = self.wd.write("bad%02d.yaml" % n, text)
                r = run([TOOL, "check", path], timeout=10)
                ctx = "%s\n--- file\n%s--- got\n%r" % (what, text, r)
                self.assertEqual(r.rc, 1, ctx)
                self.assertEqual(r.stdout, "", ctx)
                want = "%s:%d:%d: " % (path, line, col)
                diag = [l for l in r.stderr.splitlines() if l.startswith(path + ":")]
                self.assertTrue(diag, ctx)
                self.assertTrue(diag[0].startswith(want), "want %r...\n%s" % (want, ctx))
                self.assertIn(message, diag[0][len(want):], ctx)

    def test_run_refuses_the_same_files(self):
        """`bulwark run` validates first: exit 2, the same diagnostic, nothing run."""
        marker = self.wd.file("ran")
        for n, (what, marked, message) in enumerate(BAD[::9]):
            with self.subTest(what=what):
                text, line, col = place(marked)
                path = self.wd.write("run%02d.yaml" % n, text)
                r = run([TOOL, "run", "-c", path, "--", "touch", marker], timeout=10)
                self.assertEqual(r.rc, 2, repr(r))
                self.assertIn("%s:%d:%d: " % (path, line, col), r.stderr, repr(r))
                self.assertIn(message, r.stderr, repr(r))
                self.assertFalse(os.path.exists(marker), "the command ran\n%r" % r)


if __name__ == "__main__":
    unittest.main()
