"""Breakers, rate limits, recv/send and connect timeouts, failover and the accept, send
and recv hooks (bulwark.yaml(5) "What applies to which op", RETRY, TIMEOUT, BREAKER, RATE_LIMIT, FALLBACK, EVENTS), with real programs: python3, curl, dd and small C
servers.

Each test shows, where it makes sense, the behaviour without the shim and then with it,
and reads the story from a file sink at level debug. System calls are counted with
strace where the claim is "this never reached the kernel" or "no system call was
added". Every run is bounded by a subprocess timeout; servers listen on free ports of
127.0.0.1 and are stopped at the end of their test.
"""

import hashlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

# Also runnable as `python3 -m unittest tests/integration/test_policies.py`, without run.py.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CURL, LIB, PY_CLIENT, TOOL, Server, ShimTest, base_env, curl, describe,
                     events_of, free_port, kill_group, prog, py, read_events, rule, run, shim_env)

STRACE = shutil.which("strace")
DD = shutil.which("dd")


# -- helpers that harness.py does not have ------------------------------------------------

def hangs(cmd, seconds, env=None):
    """True when cmd is still running after `seconds` (it is then killed), else the
    (rc, stdout, stderr) it ended with."""
    p = subprocess.Popen(cmd, env=env or base_env(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        kill_group(p)
        p.communicate()
        return True
    return (p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def strace_argv(out, trace_args, policy=None):
    """strace writing to `out`; with policy, the traced program (not strace) gets the
    library and the policy through -E."""
    argv = [STRACE, "-f", "-o", out] + list(trace_args)
    if policy is not None:
        argv += ["-E", "LD_PRELOAD=" + LIB, "-E", "BULWARK_CONFIG=" + policy]
    return argv


def slurp(path, tail=3000):
    with open(path) as f:
        return f.read()[-tail:]


def connect_syscalls(path, port, marker=None):
    """connect(2) calls to 127.0.0.1:port in an strace log (AF_UNSPEC resets and other
    ports are not counted). With marker (a syscall name), a pair: the calls before the
    last line of that syscall, and after it. The last: the library makes one getppid()
    of its own as it loads (its start event names the parent), before any connect."""
    want = "sin_port=htons(%d)" % port
    with open(path) as f:
        lines = f.readlines()
    cut = None
    if marker:
        for i, line in enumerate(lines):
            if re.match(r"^\d+\s+%s\(" % marker, line):
                cut = i
    seen = cut is not None
    before = after = 0
    for i, line in enumerate(lines):
        if "connect(" in line and want in line and "AF_UNSPEC" not in line:
            if seen and i > cut:
                after += 1
            else:
                before += 1
    if marker is None:
        return before
    if not seen:
        raise AssertionError("no %s() marker in %s:\n%s" % (marker, path, slurp(path)))
    return before, after


def strace_counts(path):
    """{syscall: calls} from `strace -c` output."""
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and re.match(r"^\d+\.\d+$", parts[0]) and parts[-1] != "total":
                counts[parts[-1]] = int(parts[3])
    return counts


def hash_handler(c):
    """A Server handler: reads everything until EOF, then answers "SHA256HEX LENGTH"."""
    h, n = hashlib.sha256(), 0
    while True:
        chunk = c.recv(1 << 16)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    c.sendall(("%s %d\n" % (h.hexdigest(), n)).encode())


# -- 1. breaker -------------------------------------------------------------------------

BREAKER_CLIENT = PY_CLIENT + """
import errno, os, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
def one():
    r = connect_once(port)
    return r if r == "ok" else errno.errorcode.get(r, str(r))
t = time.monotonic()
print(" ".join(one() for _ in range(n)), "%.3f" % (time.monotonic() - t), flush=True)
if sys.argv[3] == "probe":
    os.getppid()                  # a marker in the strace log between the two phases
    sys.stdin.readline()          # the test has started the server
    time.sleep(float(sys.argv[4]))
    print(one(), flush=True)
"""


@unittest.skipUnless(STRACE, "strace is not installed")
class Breaker(ShimTest):
    """bulwark.yaml(5) BREAKER: after `consecutive` failed attempts the breaker opens and refuses calls
    without a system call; after open_for one probe goes through (half_open) and its
    success closes the breaker."""

    def test_breaker_opens_rejects_then_closes(self):
        port = free_port()
        dest = "127.0.0.1:%d" % port
        pol, log = self.wd.policy(rule("brk", ["connect"], [dest],
                                       "    retry: off\n"
                                       "    breaker: { trip: { consecutive: 3 }, open_for: 1s }\n"))

        # Without the shim: every one of the 10 connects reaches the kernel.
        st0 = self.wd.file("plain.strace")
        r = run(strace_argv(st0, ["-e", "trace=connect"]) + py(BREAKER_CLIENT, port, 10, "-"),
                timeout=20)
        self.assertOk(r)
        self.assertEqual(r.stdout.split()[:10], ["ECONNREFUSED"] * 10, repr(r))
        self.assertEqual(connect_syscalls(st0, port), 10, "strace without the shim:\n"
                         + slurp(st0))

        # With it: 3 reach the kernel, 7 are rejected; then a probe after open_for.
        st1 = self.wd.file("shim.strace")
        p = self.spawn(strace_argv(st1, ["-e", "trace=connect,getppid"], policy=pol)
                       + py(BREAKER_CLIENT, port, 10, "probe", 1.3), base_env())
        first = p.readline(15).split()
        self.assertEqual(first[:10], ["ECONNREFUSED"] * 10,
                         "every connect fails with ECONNREFUSED, real or rejected\n"
                         + p.transcript())
        srv = self.server(delay_s=0, port=port)
        srv.wait_listening()
        p.send("go\n")
        probe = p.readline(15)
        rc = p.finish(15)
        self.assertEqual(rc, 0, p.transcript())
        self.assertEqual(probe, "ok", "the half-open probe should connect\n" + p.transcript())

        # Phase 1: exactly the 3 attempts that tripped the breaker reached the kernel.
        # Phase 2: the probe did (the library may confirm a completed non-blocking
        # attempt with a second connect on the same socket).
        n1, n2 = connect_syscalls(st1, port, marker="getppid")
        self.assertEqual(n1, 3, "want 3 connect(2) calls to the port before the breaker "
                         "opened, got %d:\n%s" % (n1, slurp(st1)))
        self.assertGreaterEqual(n2, 1, "the half-open probe must reach the kernel:\n"
                                + slurp(st1))

        evs = self.events(log)
        ctx = describe(evs)
        trans = [(e.get("from"), e.get("to")) for e in events_of(evs, "breaker", rule="brk")]
        self.assertEqual(trans, [("closed", "open"), ("open", "half_open"),
                                 ("half_open", "closed")], ctx)
        rej = events_of(evs, "rejected", rule="brk")
        self.assertEqual(len(rej), 7, ctx)
        for e in rej:
            self.assertEqual(e.get("err"), "ECONNREFUSED", ctx)
            self.assertEqual(e.get("dest"), dest, ctx)
            self.assertEqual(e.get("op"), "connect", ctx)
        # Order: the breaker opened before the first rejection, and was closed by the
        # probe after the last one.
        idx = {id(e): i for i, e in enumerate(evs)}
        b = events_of(evs, "breaker", rule="brk")
        self.assertLess(idx[id(b[0])], idx[id(rej[0])], ctx)
        self.assertGreater(idx[id(b[1])], idx[id(rej[-1])], ctx)
        self.assertEqual(srv.connections, 1, ctx)


# -- 2. rate limit on connect -------------------------------------------------------------

CONNECT_LOOP = """
import errno, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
ok = refused = 0
other = []
t = time.monotonic()
for _ in range(n):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        ok += 1
    except ConnectionRefusedError:
        refused += 1
    except OSError as e:
        other.append(errno.errorcode.get(e.errno, str(e.errno)))
    s.close()
print(ok, refused, "%.3f" % (time.monotonic() - t), ",".join(other) or "-")
"""


class ConnectRateLimit(ShimTest):
    """bulwark.yaml(5) RATE_LIMIT on connect: `wait` spaces calls out at `rate`; `fail` refuses them with
    `errno` when the wait would be longer than max_wait."""

    def loop(self, port, n, policy=None):
        r = run(py(CONNECT_LOOP, port, n), shim=policy is not None, policy=policy, timeout=20)
        self.assertOk(r)
        ok, refused, secs, other = r.stdout.split()
        return int(ok), int(refused), float(secs), other, r

    def test_wait_spaces_connects(self):
        srv = self.server(delay_s=0, kind="echo")
        srv.wait_listening()
        dest = "127.0.0.1:%d" % srv.port
        pol, log = self.wd.policy(rule("rl", ["connect"], [dest],
                                       "    rate_limit: { rate: 20/s, burst: 1, on_limit: wait,"
                                       " max_wait: 5s }\n"))
        ok, refused, secs, other, r = self.loop(srv.port, 41)
        self.assertEqual((ok, refused), (41, 0), repr(r))
        self.assertLess(secs, 1.0, "41 plain connects should be quick\n%r" % r)

        ok, refused, secs, other, r = self.loop(srv.port, 41, pol)
        self.assertEqual((ok, refused, other), (41, 0, "-"), repr(r))
        self.assertGreaterEqual(secs, 1.6, "41 connects at 20/s, burst 1, take ~2 s\n%r" % r)
        self.assertLessEqual(secs, 3.5, repr(r))
        evs = self.events(log)
        thr = events_of(evs, "throttled", rule="rl")
        self.assertGreaterEqual(len(thr), 30, describe(evs))
        for e in thr:
            self.assertIsInstance(e.get("delay_ms"), (int, float), describe(evs))
            self.assertGreater(e["delay_ms"], 0, describe(evs))
            self.assertLessEqual(e["delay_ms"], 5000, describe(evs))
            self.assertEqual(e.get("op"), "connect", describe(evs))
        self.assertFalse(events_of(evs, "limited"), describe(evs))

    def test_fail_refuses_connects(self):
        srv = self.server(delay_s=0, kind="echo")
        srv.wait_listening()
        dest = "127.0.0.1:%d" % srv.port
        pol, log = self.wd.policy(rule("rlf", ["connect"], [dest],
                                       "    rate_limit: { rate: 20/s, burst: 1, on_limit: fail,"
                                       " max_wait: 10ms, errno: ECONNREFUSED }\n"))
        ok, refused, secs, other, r = self.loop(srv.port, 41)
        self.assertEqual((ok, refused), (41, 0), repr(r))

        ok, refused, secs, other, r = self.loop(srv.port, 41, pol)
        self.assertEqual(ok + refused, 41, repr(r))
        self.assertEqual(other, "-", repr(r))
        self.assertGreaterEqual(refused, 30, repr(r))
        self.assertGreaterEqual(ok, 1, "the first connect has its token\n%r" % r)
        self.assertLess(secs, 2.0, "fail must not wait\n%r" % r)
        evs = self.events(log)
        lim = events_of(evs, "limited", rule="rlf")
        self.assertEqual(len(lim), refused, describe(evs))
        for e in lim:
            self.assertEqual(e.get("err"), "ECONNREFUSED", describe(evs))
            self.assertEqual(e.get("dest"), dest, describe(evs))


# -- 3. byte limit on send ----------------------------------------------------------------

BYTE_WRITER = """
import hashlib, os, random, socket, sys, time
port, total = int(sys.argv[1]), int(sys.argv[2])
data = random.Random(7).randbytes(total)
s = socket.create_connection(("127.0.0.1", port))
fd, off, calls = s.fileno(), 0, 0
mv = memoryview(data)
t, c = time.monotonic(), time.process_time()
while off < total:
    off += os.write(fd, mv[off:off + 262144])
    calls += 1
secs, cpu = time.monotonic() - t, time.process_time() - c
s.shutdown(socket.SHUT_WR)
ack = b""
while not ack.endswith(b"\\n"):
    chunk = s.recv(200)
    if not chunk:
        break
    ack += chunk
print(hashlib.sha256(data).hexdigest(), total, "%.3f" % secs, calls, "%.3f" % cpu)
print(ack.decode().strip())
"""


class ByteRateLimit(ShimTest):
    """bulwark.yaml(5) RATE_LIMIT: a byte rate on send, through write(2) on a socket; the bytes arrive
    intact and in order."""

    def test_write_is_paced_by_bytes(self):
        hs = self.track(Server(hash_handler, conn_timeout=15))
        dest = "127.0.0.1:%d" % hs.port
        total = 3 * 1024 * 1024
        pol, log = self.wd.policy(rule("bytes", ["send"], [dest],
                                       "    rate_limit: { rate: 1MiB/s, burst: 65536 }\n"))

        def check(r):
            self.assertOk(r)
            lines = r.stdout.strip().splitlines()
            self.assertEqual(len(lines), 2, repr(r))
            sha, n, secs, calls, cpu = lines[0].split()
            self.assertEqual(lines[1], "%s %s" % (sha, n),
                             "the server must receive exactly what was written\n%r" % r)
            self.assertEqual(int(n), total)
            return float(secs), int(calls), float(cpu)

        plain, _, _ = check(run(py(BYTE_WRITER, hs.port, total), timeout=20))
        self.assertLess(plain, 1.5, "3 MiB over loopback without the shim")

        r = run(py(BYTE_WRITER, hs.port, total), shim=True, policy=pol, timeout=20)
        secs, calls, cpu = check(r)
        self.assertGreaterEqual(secs, 2.2, "3 MiB at 1MiB/s with a 64 KiB burst: ~2.9 s\n%r" % r)
        self.assertLessEqual(secs, 5.0, repr(r))
        # The limiter waits for the bytes it lets through; it must not hand out the few
        # bytes that trickled in since the last call, which makes the program spin on
        # tiny partial writes (and tiny TCP segments).
        self.assertLessEqual(calls, 5000, "%d write(2) calls for 3 MiB (%.0f bytes each on "
                             "average): the program spins on tiny partial writes\n%r"
                             % (calls, total / calls, r))
        self.assertLess(cpu, 0.5 * secs, "the writer burned %.2f s of CPU in %.2f s: a "
                        "busy loop, not a wait\n%r" % (cpu, secs, r))
        evs = self.events(log)
        thr = events_of(evs, "throttled", rule="bytes")
        self.assertTrue(thr, describe(evs[:50]))
        for e in thr:
            self.assertIsInstance(e.get("delay_ms"), (int, float), describe(thr[:20]))
            self.assertEqual(e.get("op"), "send", describe(thr[:20]))
        self.assertFalse(events_of(evs, "limited"), describe(evs[:50]))


# -- 4. recv timeout ----------------------------------------------------------------------

RECV_CLIENT = """
import errno, socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2] != "none":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, int(sys.argv[2])))
out = []
for _ in range(int(sys.argv[3])):
    t = time.monotonic()
    try:
        s.recv(10)
        r = "data"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    out.append("%s %.3f" % (r, time.monotonic() - t))
tv = struct.unpack("ll", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16))
print(";".join(out), "|", tv[0], tv[1])
"""


class RecvTimeout(ShimTest):
    """bulwark.yaml(5) TIMEOUT: timeout.recv on a blocking socket: no byte for that long -> ETIMEDOUT.
    A program's own SO_RCVTIMEO keeps its meaning."""

    def setUp(self):
        super().setUp()
        self.silent = self.track(Server(None))
        self.dest = "127.0.0.1:%d" % self.silent.port
        self.pol, self.log = self.wd.policy(rule("rt", ["connect", "recv"], [self.dest],
                                                 "    timeout: { recv: 500ms }\n"))

    def parse(self, r):
        self.assertOk(r)
        calls, tv = r.stdout.strip().split("|")
        res = [(c.split()[0], float(c.split()[1])) for c in calls.strip().split(";")]
        return res, tuple(int(x) for x in tv.split())

    def test_recv_times_out(self):
        h = hangs(py(RECV_CLIENT, self.silent.port, "none", 1), 3)
        self.assertIs(h, True, "without the shim recv should block for good, got %r" % (h,))

        r = run(py(RECV_CLIENT, self.silent.port, "none", 1), shim=True, policy=self.pol,
                timeout=10)
        res, tv = self.parse(r)
        self.assertEqual(res[0][0], "ETIMEDOUT", repr(r))
        self.assertGreaterEqual(res[0][1], 0.4, repr(r))
        self.assertLessEqual(res[0][1], 2.0, repr(r))
        self.assertEqual(tv, (0, 0), "getsockopt(SO_RCVTIMEO) must show the program's "
                         "own (unset) value\n%r" % r)
        evs = self.events(self.log)
        to = events_of(evs, "timeout", rule="rt")
        self.assertEqual(len(to), 1, describe(evs))
        self.assertEqual(to[0].get("op"), "recv", describe(evs))
        self.assertEqual(to[0].get("dest"), self.dest, describe(evs))

    def test_program_rcvtimeo_is_kept(self):
        """The program's 300 ms SO_RCVTIMEO is shorter than the policy's 500 ms: each recv
        gives EAGAIN after ~0.3 s, as without the shim, and getsockopt reports 300 ms."""
        plain = run(py(RECV_CLIENT, self.silent.port, 300000, 2), timeout=10)
        pres, ptv = self.parse(plain)
        self.assertEqual([x[0] for x in pres], ["EAGAIN", "EAGAIN"], repr(plain))
        self.assertEqual(ptv, (0, 300000), repr(plain))

        r = run(py(RECV_CLIENT, self.silent.port, 300000, 2), shim=True, policy=self.pol,
                timeout=10)
        res, tv = self.parse(r)
        self.assertEqual([x[0] for x in res], ["EAGAIN", "EAGAIN"], repr(r))
        for name, secs in res:
            self.assertGreaterEqual(secs, 0.2, repr(r))
            self.assertLess(secs, 0.49, "the program's own 300 ms should end it\n%r" % r)
        self.assertEqual(tv, (0, 300000), repr(r))
        evs = self.events(self.log)
        self.assertFalse(events_of(evs, "timeout"), describe(evs))


SEND_CLIENT = """
import errno, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
chunk = b"x" * 65536
sent, last = 0, time.monotonic()
try:
    while True:
        sent += s.send(chunk)
        last = time.monotonic()
except OSError as e:
    r = errno.errorcode.get(e.errno, str(e.errno))
print(r, sent, "%.3f" % (time.monotonic() - last))
"""


class SendTimeout(ShimTest):
    """bulwark.yaml(5) TIMEOUT: timeout.send on a blocking socket: no progress for that long ->
    ETIMEDOUT. The peer accepts and never reads, so the buffers fill up."""

    def test_send_times_out(self):
        silent = self.track(Server(None))
        dest = "127.0.0.1:%d" % silent.port
        pol, log = self.wd.policy(rule("st", ["connect", "send"], [dest],
                                       "    timeout: { send: 500ms }\n"))
        h = hangs(py(SEND_CLIENT, silent.port), 3)
        self.assertIs(h, True, "without the shim send should block for good, got %r" % (h,))

        r = run(py(SEND_CLIENT, silent.port), shim=True, policy=pol, timeout=15)
        self.assertOk(r)
        res, sent, stalled = r.stdout.split()
        self.assertEqual(res, "ETIMEDOUT", repr(r))
        self.assertGreater(int(sent), 0, repr(r))
        self.assertGreaterEqual(float(stalled), 0.4, repr(r))
        self.assertLessEqual(float(stalled), 2.0, repr(r))
        evs = self.events(log)
        to = events_of(evs, "timeout", rule="st")
        self.assertEqual(len(to), 1, describe(evs))
        self.assertEqual(to[0].get("op"), "send", describe(evs))
        self.assertEqual(to[0].get("dest"), dest, describe(evs))


# -- 5. connect timeout -------------------------------------------------------------------

CONNECT_ONCE = """
import errno, socket, sys, time
s = socket.socket()
t = time.monotonic()
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    r = "connected"
except OSError as e:
    r = errno.errorcode.get(e.errno, str(e.errno))
print(r, "%.3f" % (time.monotonic() - t))
"""


class ConnectTimeoutOnce(ShimTest):
    """bulwark.yaml(5) TIMEOUT: timeout.connect with retry off, against a listener whose accept queue
    is full (further SYNs are dropped)."""

    def test_connect_times_out_once(self):
        hole = self.blackhole()
        dest = "127.0.0.1:%d" % hole.port
        pol, log = self.wd.policy(rule("ct", ["connect"], [dest],
                                       "    retry: off\n    timeout: { connect: 500ms }\n"))
        h = hangs(py(CONNECT_ONCE, hole.port), 2.5)
        self.assertIs(h, True, "without the shim the connect should hang, got %r" % (h,))

        r = run(py(CONNECT_ONCE, hole.port), shim=True, policy=pol, timeout=10)
        self.assertOk(r)
        res, secs = r.stdout.split()
        self.assertEqual(res, "ETIMEDOUT", repr(r))
        self.assertGreaterEqual(float(secs), 0.3, repr(r))
        self.assertLessEqual(float(secs), 2.0, repr(r))
        evs = self.events(log)
        to = events_of(evs, "timeout", rule="ct")
        self.assertEqual(len(to), 1, describe(evs))
        self.assertEqual(to[0].get("dest"), dest, describe(evs))
        self.assertFalse(events_of(evs, "retry"), describe(evs))


# -- 6. failover --------------------------------------------------------------------------

PEER_CLIENT = PY_CLIENT + """
import sys
s = socket.socket()
if sys.argv[2] != "none":
    s.settimeout(float(sys.argv[2]))
s.connect(("127.0.0.1", int(sys.argv[1])))
peer = s.getpeername()
data = http_get(s)
print(peer[0], peer[1], data.endswith(b"ok"))
"""


class Failover(ShimTest):
    """bulwark.yaml(5) FALLBACK: a destination that gives up is replaced by its fallback, on the same
    socket; getpeername tells the truth."""

    def setUp(self):
        super().setUp()
        self.live = self.server(delay_s=0)
        self.live.wait_listening()
        self.dead = free_port()
        self.pol, self.log = self.wd.policy(rule(
            "fo", ["connect"], ["127.0.0.1:%d" % self.dead],
            "    retry: { attempts: 2, backoff: { base: 10ms, max: 10ms } }\n"
            "    fallback: [\"127.0.0.1:%d\"]\n" % self.live.port))

    def check_failover(self):
        evs = self.events(self.log)
        fo = events_of(evs, "failover", rule="fo")
        self.assertEqual(len(fo), 1, describe(evs))
        self.assertEqual(fo[0].get("dest"), "127.0.0.1:%d" % self.live.port, describe(evs))
        self.assertEqual(fo[0].get("from"), "127.0.0.1:%d" % self.dead, describe(evs))
        # the primary gave up, but the call went on and succeeded: no error
        gave = events_of(evs, "gave_up", rule="fo")
        self.assertEqual([(e.get("dest"), e.get("lvl")) for e in gave],
                         [("127.0.0.1:%d" % self.dead, "warn")], describe(evs))
        self.assertFalse([e for e in evs if e.get("lvl") == "error"], describe(evs))
        return evs

    def test_every_destination_gives_up(self):
        """Primary and fallback dead: the primary's give-up is a warning (a fallback
        followed), the fallback's, which ends the call, an error."""
        other = free_port()
        pol, log = self.wd.policy(rule(
            "fo", ["connect"], ["127.0.0.1:%d" % self.dead],
            "    retry: { attempts: 2, backoff: { base: 10ms, max: 10ms } }\n"
            "    fallback: [\"127.0.0.1:%d\"]\n" % other), name="both.yaml", log="both.log")
        r = run(py(PY_CLIENT + "import sys\nprint(connect_once(int(sys.argv[1])))\n",
                   self.dead), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "111", r)   # ECONNREFUSED
        evs = self.events(log)
        gave = events_of(evs, "gave_up", rule="fo")
        self.assertEqual([(e.get("dest"), e.get("lvl")) for e in gave],
                         [("127.0.0.1:%d" % self.dead, "warn"),
                          ("127.0.0.1:%d" % other, "error")], describe(evs))

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_curl_fails_over(self):
        url = "http://127.0.0.1:%d/" % self.dead
        plain = run(curl(url, 5), timeout=10)
        self.assertEqual(plain.rc, 7, repr(plain))

        r = run(curl(url, 10, "-o", "-", "-w", "\n%{http_code}"),
                shim=True, policy=self.pol, timeout=15)
        self.assertOk(r)
        self.assertEqual(r.stdout.split(), ["ok", "200"], repr(r))
        self.check_failover()
        self.assertEqual(self.live.connections, 1)

    def test_getpeername_shows_fallback(self):
        for mode in ("none", "5"):
            with self.subTest(timeout=mode):
                if os.path.exists(self.log):
                    os.unlink(self.log)
                plain = run(py(PEER_CLIENT, self.dead, mode), timeout=10)
                self.assertFailed(plain)
                self.assertIn("ConnectionRefusedError", plain.stderr)
                r = run(py(PEER_CLIENT, self.dead, mode), shim=True, policy=self.pol,
                        timeout=15)
                self.assertOk(r)
                self.assertEqual(r.stdout.split(),
                                 ["127.0.0.1", str(self.live.port), "True"], repr(r))
                self.check_failover()


# -- 7. accept ----------------------------------------------------------------------------

HTTP_SERVER = """
import http.server, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 512      # the hammer must not overflow the accept queue
    daemon_threads = True
srv = S(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
threading.Thread(target=srv.serve_forever, daemon=True).start()
sys.stdin.readline()
srv.shutdown()
srv.server_close()
"""


def hammer(port, n, workers=40):
    """n GETs from a thread pool in this (unpreloaded) process; returns (statuses,
    seconds)."""
    def get(_):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "bad"
        except OSError as e:
            return type(e).__name__
    t = time.monotonic()
    with ThreadPoolExecutor(workers) as ex:
        out = list(ex.map(get, range(n)))
    return out, time.monotonic() - t


class Accept(ShimTest):
    """bulwark.yaml(5) "What applies to which op": accept takes retry and a call rate limit (wait only)."""

    def serve(self, env):
        p = self.spawn(py(HTTP_SERVER), env)
        port = int(p.readline(10))
        return p, port

    def test_accept_rate_limit(self):
        p, port = self.serve(base_env())
        codes, plain_secs = hammer(port, 200)
        self.assertEqual(p.finish(10), 0, p.transcript())
        self.assertEqual(codes.count("200"), 200, sorted(set(codes)))
        self.assertLess(plain_secs, 2.5, "200 requests without the shim")

        pol, log = self.wd.policy(rule("acc", ["accept"], None,
                                       "    rate_limit: { rate: 50/s, burst: 10 }\n"))
        p, port = self.serve(shim_env(pol))
        codes, secs = hammer(port, 200)
        self.assertEqual(p.finish(10), 0, p.transcript())
        self.assertEqual(codes.count("200"), 200, "every request answered: %r" % (
            {c: codes.count(c) for c in set(codes)},))
        self.assertGreaterEqual(secs, 3.0, "200 accepts at 50/s after a burst of 10 take "
                                "~3.8 s, took %.2f s" % secs)
        self.assertLess(secs, 9.0)
        evs = self.events(log)
        thr = events_of(evs, "throttled", rule="acc")
        self.assertGreaterEqual(len(thr), 100, describe(evs[:40]))
        for e in thr:
            self.assertTrue(str(e.get("prog", "")).startswith("python3"), describe(thr[:5]))
            self.assertEqual(e.get("op"), "accept", describe(thr[:5]))
            self.assertIsInstance(e.get("delay_ms"), (int, float), describe(thr[:5]))
        self.assertFalse(events_of(evs, "limited"), describe(evs[:40]))

    def test_accept_retries_emfile(self):
        """accept fails with EMFILE while RLIMIT_NOFILE leaves no descriptor free; a helper
        thread lifts the limit after 300 ms. Default accept retry list includes EMFILE."""
        server = prog("emfile_server")
        p = self.spawn([server, "300"], base_env())
        port = int(p.readline(10))
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        self.assertEqual(p.finish(10), 1, p.transcript())
        self.assertTrue("".join(p.out).startswith("%d\naccept: EMFILE" % port), p.transcript())

        pol, log = self.wd.policy(rule("acc", ["accept"], None,
                                       "    retry: { attempts: 50, backoff: { base: 20ms,"
                                       " max: 50ms }, deadline: 5s }\n"))
        p = self.spawn([server, "300"], shim_env(pol))
        port = int(p.readline(10))
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(c.close)
        line = p.readline(10)
        self.assertEqual(p.finish(10), 0, p.transcript())
        self.assertTrue(line.startswith("accepted"), p.transcript())
        self.assertGreaterEqual(float(line.split()[1]), 250, p.transcript())
        c.settimeout(5)
        self.assertEqual(c.recv(10), b"hi")
        evs = self.events(log)
        rec = events_of(evs, "recovered", rule="acc", op="accept")
        self.assertEqual(len(rec), 1, describe(evs))
        self.assertGreater(rec[0].get("attempts", 0), 1, describe(evs))
        fails = events_of(evs, "fail", rule="acc")
        self.assertTrue(fails, describe(evs))
        self.assertTrue(all(e.get("err") == "EMFILE" for e in fails), describe(evs))
        self.assertTrue(events_of(evs, "retry", rule="acc", err="EMFILE"), describe(evs))


# -- 8. validation ------------------------------------------------------------------------

class Validation(ShimTest):
    """bulwark.yaml(5) "What applies to which op", RETRY, RATE_LIMIT: sections and values that cannot apply are refused by
    `bulwark check` with an error that says why."""

    def check(self, rules):
        pol, _ = self.wd.policy(rules, name="p%d.yaml" % random.randrange(1 << 30))
        r = run([TOOL, "check", pol], timeout=10)
        return pol, r

    def assertRefused(self, rules, *words):
        pol, r = self.check(rules)
        self.assertEqual(r.rc, 1, repr(r))
        msg = r.stdout + r.stderr
        self.assertRegex(msg, re.escape(pol) + r":\d+:\d+: ", repr(r))
        for w in words:
            self.assertIn(w.lower(), msg.lower(), repr(r))
        return msg

    def test_send_retry_refuses_connection_gone_errnos(self):
        msg = self.assertRefused(rule("s", ["send"], None,
                                      "    retry: { on: [ECONNRESET] }\n"), "ECONNRESET")
        # The message must say why, not just that the value is wrong.
        self.assertRegex(msg.lower(), r"lose|duplicat|gone|connection",
                         "the error should explain why: %r" % msg)

    def test_send_recv_retry_safe_errnos_accepted(self):
        pol, r = self.check(rule("s", ["send", "recv"], None,
                                 "    retry: { attempts: 3, on: [EINTR, ENOBUFS, EAGAIN] }\n"))
        self.assertEqual(r.rc, 0, repr(r))

    def test_other_refusals(self):
        cases = [
            ("recv EPIPE", rule("r", ["recv"], None, "    retry: { on: [EPIPE] }\n"),
             ["EPIPE"]),
            ("fail on accept", rule("a", ["accept"], None,
                                    "    rate_limit: { rate: 10/s, on_limit: fail }\n"),
             ["fail"]),
            ("fail on send", rule("s", ["send"], None,
                                  "    rate_limit: { rate: 1MiB/s, on_limit: fail }\n"),
             ["fail"]),
            ("fallback on send", rule("s", ["send", "recv"], None,
                                      "    fallback: [\"127.0.0.1:1\"]\n"), ["fallback"]),
            ("breaker on accept", rule("a", ["accept"], None,
                                       "    breaker: { trip: { consecutive: 3 } }\n"),
             ["breaker"]),
            ("byte rate on connect", rule("c", ["connect"], None,
                                          "    rate_limit: { rate: 1MiB/s }\n"), ["rate"]),
        ]
        for name, rules, words in cases:
            with self.subTest(name):
                self.assertRefused(rules, *words)


# -- 9. non-socket fast path --------------------------------------------------------------

@unittest.skipUnless(STRACE and DD, "strace and dd are needed")
class NonSocketFastPath(ShimTest):
    """A rule on [send, recv] applies to sockets only: read and write on files and
    devices are no `recv` or `send` op (bulwark.yaml(5) MATCH), so no rule matches them and they go
    straight to libc, with no event and no added system call (docs/design.md 4)."""

    DD = [DD, "if=/dev/zero", "of=/dev/null", "bs=1"]
    BODY = ("    retry: { attempts: 3 }\n    timeout: { send: 5s, recv: 5s }\n"
            "    rate_limit: { rate: 100KiB/s, burst: 1024 }\n")
    # System calls a library would use to find out what a descriptor is.
    PROBES = ("getsockopt", "getpeername", "getsockname", "fcntl", "fcntl64", "ioctl",
              "fstat", "newfstatat", "statx")

    def policy(self, level="debug", name="policy.yaml", log="events.log"):
        return self.wd.policy(rule("io", ["send", "recv"], None, self.BODY), level=level,
                              name=name, log=log)

    def test_dd_same_output_no_events_no_per_call_syscalls(self):
        pol, log = self.policy()
        dd = self.DD + ["count=20000"]
        plain = run(dd, timeout=15)
        self.assertOk(plain)
        r = run(dd, shim=True, policy=pol, timeout=15)
        self.assertOk(r)
        self.assertEqual(r.stdout, plain.stdout)
        self.assertEqual(r.stderr.splitlines()[:2], plain.stderr.splitlines()[:2], repr(r))
        self.assertEqual(r.stderr.splitlines()[:2], ["20000+0 records in",
                                                     "20000+0 records out"])
        self.assertNoCallEvents(read_events(log))

        # Every system call, counted (level error: the library writes no event). Its own
        # start-up is a fixed cost; an addition per read or write would show as
        # thousands.
        quiet, _ = self.policy(level="error", name="quiet.yaml", log="quiet.log")
        c0, c1 = self.wd.file("plain.c"), self.wd.file("shim.c")
        self.assertOk(run(strace_argv(c0, ["-c"]) + dd, timeout=30))
        self.assertOk(run(strace_argv(c1, ["-c"], policy=quiet) + dd, timeout=30))
        a, b = strace_counts(c0), strace_counts(c1)
        ctx = "without: %r\nwith: %r" % (a, b)
        self.assertGreaterEqual(a.get("read", 0), 20000, ctx)
        for sc in ("socket", "connect", "setsockopt", "poll", "ppoll", "select", "pselect6"):
            self.assertEqual(b.get(sc, 0), a.get(sc, 0), "%s added\n%s" % (sc, ctx))
        for sc in set(a) | set(b):
            self.assertLessEqual(b.get(sc, 0) - a.get(sc, 0), 100, "%s\n%s" % (sc, ctx))

        # dd's own reads and writes, on /dev/zero and /dev/null: exactly as many.
        p0, p1 = self.wd.file("plain.p"), self.wd.file("shim.p")
        paths = ["-c", "-e", "trace=read,write", "-P", "/dev/zero", "-P", "/dev/null"]
        self.assertOk(run(strace_argv(p0, paths) + dd, timeout=30))
        self.assertOk(run(strace_argv(p1, paths, policy=quiet) + dd, timeout=30))
        a, b = strace_counts(p0), strace_counts(p1)
        self.assertEqual(b.get("read"), a.get("read"), "without: %r\nwith: %r" % (a, b))
        self.assertEqual(b.get("write"), a.get("write"), "without: %r\nwith: %r" % (a, b))

    def test_dd_descriptors_are_never_probed(self):
        """Not even once per descriptor: once dd has opened /dev/zero and /dev/null onto
        its descriptors 0 and 1, no getsockopt, getpeername, fcntl, fstat... on them
        beyond what dd itself makes. (What the library does at start-up, before dd runs,
        e.g. classifying the inherited descriptors, is a fixed cost and not counted.)"""
        quiet, _ = self.policy(level="error")
        dd = self.DD + ["count=2000"]
        t0, t1 = self.wd.file("plain.tr"), self.wd.file("shim.tr")
        self.assertOk(run(strace_argv(t0, []) + dd, timeout=30))
        self.assertOk(run(strace_argv(t1, [], policy=quiet) + dd, timeout=30))
        pat = re.compile(r"^\d+\s+(%s)\(([01])[,)]" % "|".join(self.PROBES))

        def probes(path):
            out = {}
            started = False
            with open(path) as f:
                for line in f:
                    if '"/dev/zero"' in line and "open" in line:
                        started = True
                    m = pat.match(line)
                    if m and started:
                        out.setdefault("%s(%s)" % m.groups(), []).append(line.strip())
            return out
        a, b = probes(t0), probes(t1)
        for path in (t0, t1):
            with open(path) as f:
                self.assertIn('"/dev/zero"', f.read(), "dd did not open /dev/zero?")
        added = {k: v for k, v in b.items() if len(v) > len(a.get(k, []))}
        self.assertEqual(added, {}, "system calls on dd's descriptors added by the "
                         "library (without: %r)" % {k: len(v) for k, v in a.items()})


# -- 10. bytes intact ---------------------------------------------------------------------

ECHO_CLIENT = """
import hashlib, os, random, socket, sys, threading, time
port, total = int(sys.argv[1]), int(sys.argv[2])
data = random.Random(11).randbytes(total)
s = socket.create_connection(("127.0.0.1", port))
fd = s.fileno()
def writer():
    off, rnd, i = 0, random.Random(3), 0
    while off < total:
        chunk = data[off:off + rnd.randint(1, 70000)]
        if i % 2:
            s.sendall(chunk)                        # send(2)
        else:
            done = 0
            while done < len(chunk):                # write(2)
                done += os.write(fd, chunk[done:])
        off += len(chunk)
        i += 1
    s.shutdown(socket.SHUT_WR)
t0 = time.monotonic()
w = threading.Thread(target=writer)
w.start()
got = bytearray()
buf = bytearray(65536)
i = 0
while True:
    if i % 3 == 0:
        chunk = s.recv(50000)                       # recv(2)
    elif i % 3 == 1:
        n = s.recv_into(buf)                        # recv(2) into a buffer
        chunk = bytes(buf[:n])
    else:
        chunk = os.read(fd, 30000)                  # read(2)
    i += 1
    if not chunk:
        break
    got += chunk
w.join()
print(len(got), bytes(got) == data, hashlib.sha256(got).hexdigest()[:16],
      "%.3f" % (time.monotonic() - t0))
"""


class BytesIntact(ShimTest):
    """docs/design.md 4: policies on send and recv never drop, duplicate or reorder bytes."""

    def test_echo_one_mib(self):
        srv = self.server(delay_s=0, kind="echo")
        srv.wait_listening()
        dest = "127.0.0.1:%d" % srv.port
        total = 1024 * 1024
        pol, log = self.wd.policy(rule(
            "echo", ["send", "recv"], [dest],
            "    rate_limit: { rate: 8MiB/s, burst: 65536 }\n"
            "    breaker: { trip: { consecutive: 3 }, open_for: 1s }\n"))
        plain = run(py(ECHO_CLIENT, srv.port, total), timeout=20)
        self.assertOk(plain)
        self.assertEqual(plain.stdout.split()[:2], [str(total), "True"], repr(plain))

        r = run(py(ECHO_CLIENT, srv.port, total), shim=True, policy=pol, timeout=20)
        self.assertOk(r)
        self.assertEqual(r.stdout.split()[:3], plain.stdout.split()[:3], repr(r))
        evs = self.events(log)
        self.assertTrue(events_of(evs, "throttled", rule="echo"),
                        "2 MiB through an 8MiB/s limit with a 64 KiB burst must wait\n"
                        + describe(evs[:40]))
        for bad in ("fail", "rejected", "breaker", "limited", "gave_up", "timeout"):
            self.assertFalse(events_of(evs, bad), describe(evs[:40]))


if __name__ == "__main__":
    unittest.main()
