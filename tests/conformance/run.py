#!/usr/bin/env python3
"""Differential conformance suite: where no policy acts, a program under libbulwark.so
sees exactly what the kernel gives it.

Every scenario of build/conformance/driver (`driver --list`) runs bare and under each
policy of tests/conformance/policies/ plus the built-in default; each output must be the
same as the bare one, line for line. Each policy must also be seen to match: its `exit`
events must count calls on the rule of every op the scenario exercises, or a policy that
matched nothing would pass for free. Rows flagged `strace` run once more under strace,
with the kernel's answers to every connect compared as well.

usage: run.py [-j N] [-v] [--repeat-bare N] [PATTERN...]

Prints one line per scenario and policy, a unified diff per mismatch, and closes with
`conformance: N passed, M failed` (", K known" when known differences were seen). A
mismatch of a scenario listed in KNOWN is reported as known and does not fail the run;
a listed scenario that now matches everywhere fails, so that the list stays honest.
"""

import argparse
import concurrent.futures
import difflib
import errno as errno_mod
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("BULWARK_BUILD") or os.path.join(ROOT, "build"))
LIB = os.path.join(BUILD, "libbulwark.so")
DRIVER = os.path.join(BUILD, "conformance", "driver")
POLICY_DIR = os.path.join(HERE, "policies")

# The policies every row runs under, besides bare. "default" is the built-in policy (no
# BULWARK_CONFIG); the others are files in policies/. Rows flagged nodefault / noretry
# skip "default" / "retry", where those policies act by design.
POLICIES = ("observe", "enforce", "inert", "default", "retry")

# No single run may take longer than this (the driver's own watchdog is shorter).
RUN_TIMEOUT = 20

# Differences observed today, each a defect being fixed elsewhere. A mismatch of a listed
# scenario is "known"; a listed scenario that matches everywhere fails the run, so remove
# it when its fix lands.
KNOWN = {
    # A limitation, documented in docs/design.md §4.6: the policy's timeouts are socket
    # options, so they travel with the socket. A copy received through SCM_RIGHTS is a new
    # descriptor the library has never seen, and reads them back through getsockopt.
    "unix_scm_rights": "limitation (design.md §4.6): a socket received with SCM_RIGHTS (the "
        "sender's copy was connected under the policy) reads the policy's timeouts through "
        "getsockopt (rcvtimeo 30/2 s, sndtimeo 30 s) where bare reads 0 (enforce, inert)",
}

# Variables that would leak the caller's own bulwark setup into a run.
SCRUB = ("LD_PRELOAD", "BULWARK_CONFIG", "BULWARK_LOG", "BULWARK_LEVEL", "BULWARK_MODE",
         "BULWARK_SEED", "BULWARK_DISABLE", "LD_DEBUG")


# ---- peers: servers in this process, never preloaded ----

class Peers:
    """The servers scenarios talk to, each in threads of the runner:

    echo     TCP echo on 127.0.0.1
    rst      TCP: accepts, then resets the connection (SO_LINGER 0)
    dead     a TCP port bound but not listening: connects are refused
    full     a TCP listener with a full backlog: connects stay in SYN_SENT
    uecho    UDP echo
    ustream, useq, udgram: unix stream, seqpacket and datagram echo servers
    """

    def __init__(self, root):
        self.root = root
        self._stop = threading.Event()
        self._socks = []
        self._threads = []
        self.echo = self._tcp_listener(64)
        self.rst = self._tcp_listener(64)
        self.dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.dead.bind(("127.0.0.1", 0))
        self._socks.append(self.dead)
        self.full, self._fill = self._full_listener()
        self.uecho = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.uecho.bind(("127.0.0.1", 0))
        self._socks.append(self.uecho)
        self.ustream_path = os.path.join(root, "ustream.sock")
        self.useq_path = os.path.join(root, "useq.sock")
        self.udgram_path = os.path.join(root, "udgram.sock")
        self.ustream = self._unix_listener(self.ustream_path, socket.SOCK_STREAM)
        self.useq = self._unix_listener(self.useq_path, socket.SOCK_SEQPACKET)
        self.udgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.udgram.bind(self.udgram_path)
        self._socks.append(self.udgram)
        self._spawn(self._accept_loop, self.echo, self._echo_stream)
        self._spawn(self._accept_loop, self.rst, self._reset)
        self._spawn(self._accept_loop, self.ustream, self._echo_stream)
        self._spawn(self._accept_loop, self.useq, self._echo_records)
        self._spawn(self._dgram_echo, self.uecho)
        self._spawn(self._dgram_echo, self.udgram)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _tcp_listener(self, backlog):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(backlog)
        self._socks.append(s)
        return s

    def _unix_listener(self, path, kind):
        s = socket.socket(socket.AF_UNIX, kind)
        s.bind(path)
        s.listen(64)
        self._socks.append(s)
        return s

    def _full_listener(self):
        """Backlog 0 and its one slot taken: further SYNs are dropped, never refused."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        self._socks.append(s)
        fill = []
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(s.getsockname())
            except BlockingIOError:
                pass
            fill.append(c)
        time.sleep(0.1)
        return s, fill

    def _accept_loop(self, listener, serve):
        listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            conn.settimeout(None)
            self._spawn(serve, conn)

    def _echo_stream(self, conn):
        conn.settimeout(30)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def _echo_records(self, conn):
        conn.settimeout(30)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.send(data)
        except OSError:
            pass
        finally:
            conn.close()

    def _reset(self, conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    def _dgram_echo(self, s):
        s.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data, addr = s.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr:
                try:
                    s.sendto(data, addr)
                except OSError:
                    pass

    def ports(self):
        """Port number -> the name strace output is normalised to."""
        return {self.echo.getsockname()[1]: "ECHO", self.rst.getsockname()[1]: "RST",
                self.dead.getsockname()[1]: "DEAD", self.full.getsockname()[1]: "FULL",
                self.uecho.getsockname()[1]: "UECHO", 1: "FALLBACK"}

    def env(self):
        return {
            "CF_ECHO": str(self.echo.getsockname()[1]),
            "CF_RST": str(self.rst.getsockname()[1]),
            "CF_DEAD": str(self.dead.getsockname()[1]),
            "CF_FULL": str(self.full.getsockname()[1]),
            "CF_UECHO": str(self.uecho.getsockname()[1]),
            "CF_USTREAM": self.ustream_path,
            "CF_USEQ": self.useq_path,
            "CF_UDGRAM": self.udgram_path,
        }

    def stop(self):
        self._stop.set()
        for s in self._socks + self._fill:
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(0.5)


# ---- strace: the kernel's answers to connect ----

SYSCALL = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(?:\s+(E\w+))?")
UNFINISHED = re.compile(r"^(\d+)\s+(.*) <unfinished \.\.\.>$")
RESUMED = re.compile(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$")


def strace_calls(path):
    """(pid, name, args, result) for each complete system call in an strace -f log."""
    partial = {}
    calls = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = UNFINISHED.match(line)
            if m:
                partial[m.group(1)] = m.group(2)
                continue
            m = RESUMED.match(line)
            if m and m.group(1) in partial:
                line = "%s %s%s" % (m.group(1), partial.pop(m.group(1)), m.group(2))
            m = SYSCALL.match(line)
            if not m:
                continue
            pid, name, args, ret, err = m.groups()
            result = err if ret == "-1" and err else ret
            calls.append((pid, name, args, result))
    return calls


def strace_summary(path, ports, tmp, peers_root):
    """What the kernel answered to every connect of the run, folded so that the library's
    way of carrying out a connect (non-blocking, then poll and a second connect, or SO_ERROR)
    reads as the one attempt it is: "connect DEST -> RESULT". A failed attempt at the fallback (a policy
    action the program cannot see) is left out; a reset of a live connection is not."""
    labels = dict((p, n) for p, n in ports.items())
    others = {}

    def dest_of(args):
        m = re.search(r"sin6?_port=htons\((\d+)\)", args)
        if m:
            port = int(m.group(1))
            if port not in labels:
                others.setdefault(port, "P%d" % (len(others) + 1))
                return others[port]
            return labels[port]
        m = re.search(r'sun_path=(@?)"([^"]*)"', args)
        if m:
            p = m.group(2).replace(tmp, "$TMP").replace(peers_root, "$PEERS")
            if m.group(1):
                p = "@" + re.sub(r"\d+", "N", p)
            return "unix:" + p
        if "AF_UNSPEC" in args:
            return "AF_UNSPEC"
        return "?"

    out = []
    pending, completed, live = {}, {}, {}
    for pid, name, args, result in strace_calls(path):
        fdm = re.match(r"(\d+),", args)
        if not fdm:
            continue
        key = (pid, fdm.group(1))
        if name == "getsockopt":
            if "SO_ERROR" not in args or key not in pending:
                continue
            m = re.search(r"SO_ERROR, \[(\w+)\]", args)
            val = m.group(1) if m else "?"
            if val.isdigit():
                val = errno_mod.errorcode.get(int(val), val) if int(val) else "0"
            dest = pending.pop(key)
            if dest == "FALLBACK" and val != "0":
                continue
            out.append("kernel: connect %s -> %s" % (dest, val))
            if val == "0":
                completed[key] = dest
                live[key] = dest
            else:
                live.pop(key, None)
            continue
        if name != "connect":
            continue
        dest = dest_of(args)
        if dest == "AF_UNSPEC":
            if key in live:
                out.append("kernel: reset of a live connection to %s" % live.pop(key))
            completed.pop(key, None)
            continue
        if result == "EINPROGRESS" and key not in pending:
            pending[key] = dest
            continue
        if key in pending and pending[key] == dest:
            # a second connect() on a socket whose attempt is under way: EALREADY while
            # it is, then its outcome (the library collects a finished attempt this way,
            # so that the socket is left as the kernel leaves it for the program)
            if result in ("EALREADY", "EINPROGRESS"):
                continue
            del pending[key]
            if dest == "FALLBACK" and result not in ("0", "EISCONN"):
                continue
            out.append("kernel: connect %s -> %s" % (dest, "0" if result == "EISCONN"
                                                      else result))
            if result in ("0", "EISCONN"):
                live[key] = dest
            else:
                live.pop(key, None)
            continue
        if result == "0" and completed.get(key) == dest:
            # the library's own connect() after a completed non-blocking attempt, which
            # the kernel needs to call the socket connected
            del completed[key]
            continue
        completed.pop(key, None)
        if dest == "FALLBACK" and result != "0":
            continue
        out.append("kernel: connect %s -> %s" % (dest, result))
        if result == "0":
            live[key] = dest
        elif result != "EISCONN":
            live.pop(key, None)
    for key, dest in pending.items():
        out.append("kernel: connect %s -> EINPROGRESS, never finished" % dest)
    return out


# ---- runs ----

class Row:
    def __init__(self, line):
        parts = line.split()
        self.name = parts[0]
        self.ops = "" if parts[1] == "-" else parts[1]
        self.flags = set(f for f in parts[2].split(",") if f and f != "-")
        self.slow = parts[3] != "0"

    def policies(self):
        return [p for p in POLICIES
                if not (p == "default" and "nodefault" in self.flags)
                and not (p == "retry" and "noretry" in self.flags)]


OP_NAMES = {"c": "connect", "a": "accept", "s": "send", "r": "recv"}

# Rows whose connects all go to AF_UNIX sockets, which the built-in default policy leaves
# alone (docs/bulwark.yaml.5, BUILT-IN DEFAULT POLICY): under it, the start event is the
# proof that the library loaded.
UNIX_ONLY = {"connect_unix_stream", "accept_unix", "unix_abstract"}


def base_env():
    return {k: v for k, v in os.environ.items() if k not in SCRUB}


def proof(row, policy, log):
    """None when the log shows the policy loaded and covering the row's ops, else why
    not. Counts come from the `exit` events of every process of the run."""
    if not os.path.exists(log):
        return "no log written: the library did not load"
    starts, calls = 0, {}
    with open(log, errors="replace") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                return "a log line is not JSON: %r" % line[:200]
            kind = ev.get("event")
            if kind == "config_error":
                return "config_error: %s" % ev.get("msg")
            if kind == "start":
                starts += 1
            if kind == "exit":
                for rule, st in (ev.get("stats") or {}).items():
                    calls[rule] = calls.get(rule, 0) + int(st.get("calls", 0))
    if not starts:
        return "no start event: the library did not load"
    if policy == "default":
        # the built-in default covers network peers only: these rows connect over AF_UNIX
        need = ["default-connect"] if "c" in row.ops and row.name not in UNIX_ONLY else []
    else:
        need = ["cf-" + OP_NAMES[o] for o in row.ops]
    missing = [r for r in need if calls.get(r, 0) == 0]
    if missing:
        return "no calls counted on %s (counts: %s)" % (", ".join(missing), calls or "none")
    return None


def run_one(row, policy, traced, peers, tmp_root):
    """Run one scenario; returns (output lines, proof problem or None, seconds)."""
    tmp = tempfile.mkdtemp(prefix="r", dir=tmp_root)
    log = os.path.join(tmp, "bulwark.log")
    env = base_env()
    env.update(peers.env())
    env["CF_TMP"] = tmp
    cmd = [DRIVER, row.name]
    preload = {}
    if policy != "bare":
        preload["LD_PRELOAD"] = LIB
        env["BULWARK_LOG"] = "file:" + log
        env["BULWARK_LEVEL"] = "info"
        if policy != "default":
            env["BULWARK_CONFIG"] = os.path.join(POLICY_DIR, policy + ".yaml")
    trace = os.path.join(tmp, "strace.txt")
    if traced:
        # strace itself is never preloaded: the variable goes to the program only
        cmd = ["strace", "-f", "-qq", "-o", trace, "-e", "trace=connect,getsockopt"] + \
              ["-E%s=%s" % kv for kv in preload.items()] + cmd
    else:
        env.update(preload)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=tmp, start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=RUN_TIMEOUT)
        killed = False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        stdout, stderr = p.communicate()
        killed = True
    else:
        # whatever the scenario left behind (a stuck watchdog child) goes too
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    took = time.monotonic() - t0
    lines = stdout.decode(errors="replace").splitlines()
    lines += ["stderr: " + l for l in stderr.decode(errors="replace").splitlines()]
    if killed:
        lines.append("runner: killed after %d s" % RUN_TIMEOUT)
    elif p.returncode < 0:
        lines.append("exit: signal %s" % signal.Signals(-p.returncode).name)
    elif p.returncode:
        lines.append("exit: status %d" % p.returncode)
    if traced:
        if os.path.exists(trace):
            lines += strace_summary(trace, peers.ports(), tmp, peers.root)
        else:
            lines.append("strace: no output")
    why = proof(row, policy, log) if policy != "bare" else None
    shutil.rmtree(tmp, ignore_errors=True)
    return lines, why, took


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-j", "--jobs", type=int, default=6, help="runs at once (default 6)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every run's time")
    ap.add_argument("--print", action="store_true", help="print every run's output")
    ap.add_argument("--repeat-bare", type=int, default=0, metavar="N",
                    help="only run each scenario bare N times and report the unstable ones")
    ap.add_argument("patterns", nargs="*", help="only the scenarios whose name has one")
    args = ap.parse_args(argv)

    for path, what in ((DRIVER, "the driver (make conformance)"), (LIB, "the library (make)")):
        if not os.path.exists(path):
            print("conformance: %s is missing: %s" % (what, path))
            print("conformance: 0 passed, 1 failed")
            return 1
    if not shutil.which("strace"):
        print("conformance: strace is missing (apt-get install strace)")
        print("conformance: 0 passed, 1 failed")
        return 1
    listing = subprocess.run([DRIVER, "--list"], stdout=subprocess.PIPE, check=True)
    rows = [Row(l) for l in listing.stdout.decode().splitlines() if l.strip()]
    if args.patterns:
        rows = [r for r in rows if any(p in r.name for p in args.patterns)]
    stale = sorted(set(KNOWN) - set(r.name for r in rows)) if not args.patterns else []

    # Port 1 is the policies' fallback: it must refuse, so a failover stays invisible.
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 1)) != errno_mod.ECONNREFUSED:
            print("conformance: 127.0.0.1:1 does not refuse connections; the policies' "
                  "fallback needs it to")
            print("conformance: 0 passed, 1 failed")
            return 1

    tmp_root = tempfile.mkdtemp(prefix="bw-conf-", dir="/tmp")
    peers = Peers(tmp_root)
    t_start = time.monotonic()
    try:
        if args.repeat_bare:
            jobs = [(r, "bare", False) for r in rows for _ in range(args.repeat_bare)]
        else:
            jobs = []
            for r in rows:
                for pol in ["bare"] + r.policies():
                    jobs.append((r, pol, False))
                    if "strace" in r.flags:
                        jobs.append((r, pol, True))
        # the slow ones first, so that they do not all end up at the tail of the run
        slow = set(r.name for r in rows if r.slow)
        jobs.sort(key=lambda j: (j[0].name not in slow, j[2] is False))
        results = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            futs = {ex.submit(run_one, r, pol, tr, peers, tmp_root): (r.name, pol, tr, i)
                    for i, (r, pol, tr) in enumerate(jobs)}
            for f in concurrent.futures.as_completed(futs):
                results[futs[f]] = f.result()
    finally:
        peers.stop()
        shutil.rmtree(tmp_root, ignore_errors=True)
    took = time.monotonic() - t_start

    if args.repeat_bare:
        unstable = 0
        for r in rows:
            outs = [v[0] for k, v in results.items() if k[0] == r.name]
            if any(o != outs[0] for o in outs):
                unstable += 1
                print("UNSTABLE %s" % r.name)
                for o in outs[1:]:
                    if o != outs[0]:
                        sys.stdout.writelines(difflib.unified_diff(
                            [l + "\n" for l in outs[0]], [l + "\n" for l in o], "run 1", "run k"))
                        break
        print("conformance: %d passed, %d failed" % (len(rows) - unstable, unstable))
        return 1 if unstable else 0

    def get(name, pol, tr):
        for k, v in results.items():
            if k[:3] == (name, pol, tr):
                return v
        return None

    if args.print:
        for r in rows:
            for (name, pol, tr, _), (lines, why, secs) in sorted(results.items(), key=lambda kv: kv[0][3]):
                if name == r.name:
                    print("==== %s %s%s (%.2fs)%s" % (name, pol, " strace" if tr else "", secs,
                                                   "  proof: " + why if why else ""))
                    print("\n".join(lines))
    passed = failed = known = 0
    diffs = []
    width = max(len(r.name) for r in rows) if rows else 10
    for r in rows:
        row_mismatch = False
        for tr in ([False, True] if "strace" in r.flags else [False]):
            ref = get(r.name, "bare", tr)[0]
            for pol in r.policies():
                lines, why, secs = get(r.name, pol, tr)
                tag = pol + (" strace" if tr else "")
                extra = " (%.1fs)" % secs if args.verbose else ""
                if lines != ref:
                    row_mismatch = True
                    if r.name in KNOWN:
                        known += 1
                        status = "known"
                        extra += "  " + KNOWN[r.name]
                    else:
                        failed += 1
                        status = "FAIL"
                    diffs.append((status, r.name, tag, ref, lines))
                elif why:
                    failed += 1
                    status = "FAIL"
                    extra += "  the policy matched nothing: " + why
                else:
                    passed += 1
                    status = "ok"
                print("%-5s %-*s %s%s" % (status, width, r.name, tag, extra))
        if r.name in KNOWN and not row_mismatch:
            failed += 1
            print("FAIL  %-*s fixed, remove from KNOWN" % (width, r.name))
    for name in stale:
        failed += 1
        print("FAIL  KNOWN names a scenario that does not exist: %s" % name)
    for status, name, tag, ref, lines in diffs:
        print("\n--- %s: %s under %s (%s)" % (status, name, tag, KNOWN.get(name, "unexpected")))
        sys.stdout.writelines(difflib.unified_diff([l + "\n" for l in ref],
                                                   [l + "\n" for l in lines], "bare", tag))
    print("conformance: %d runs in %.1f s" % (len(results), took))
    line = "conformance: %d passed, %d failed" % (passed, failed)
    if known:
        line += ", %d known" % known
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
