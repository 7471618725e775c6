"""The faults of a connection and of datagrams (bulwark.yaml(5), INJECT): latency with
jitter, limit_data, stall, slow_close, loss, duplicate, reorder, and per: connection.

The servers run in this test process, never preloaded; the clients are python3 under the
library. Time is only ever a lower bound here (a fault made a call wait at least so
long); what a fault did is read from what the client and the server saw, and from the
injected events.
"""

import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (TOOL, Server, ShimTest, describe, events_of, py, read_events, rule, run,
                     shim_env)


def sender(size):
    """A handler that sends size bytes and its end of file, then reads until the client
    closes: what it read (the client's bytes), or the exception that ended it."""
    def handle(c):
        c.sendall(b"x" * size)
        c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = c.recv(65536)
            if not b:
                return got
            got += b
    return handle


def receiver(c):
    """Reads until the client closes; the bytes."""
    got = b""
    while True:
        b = c.recv(65536)
        if not b:
            return got
        got += b


# Reads until end of file in recv() calls of at most 300 bytes; prints the total, then
# waits for its stdin to close.
READ_ALL = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
n = 0
while True:
    b = s.recv(300)
    if not b:
        break
    n += len(b)
print(n, flush=True)
sys.stdin.read()
"""

# Sends 5000 bytes in send() calls of 400; prints what it could send and how it ended.
SEND_ALL = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
n = 0
try:
    while n < 5000:
        n += s.send(b"y" * 400)
    end = "done"
except OSError as e:
    end = type(e).__name__
print(n, end)
"""


class Faults(ShimTest):

    def policy(self, dest, entries, ops=("send", "recv"), seed=7):
        body = "inject:\n" + "".join("  - %s\n" % e for e in entries)
        return self.wd.policy(rule("faults", list(ops), [dest], body), extra="seed: %d\n" % seed)

    def client(self, code, *args, policy=None, timeout=30):
        return run(py(code, *args), shim=True, policy=policy, timeout=timeout)

    def injected(self, log, **fields):
        return events_of(read_events(log), "injected", **fields)

    # ---- limit_data ----

    def test_limit_data_on_recv_closes_after_that_many_bytes(self):
        def sender_held(c):
            c.sendall(b"x" * 10000)
            return c.recv(100)           # the client's end, while it runs
        srv = self.track(Server(sender_held))
        pol, log = self.policy(srv.dest, ["{ ops: [recv], limit_data: 1000 }"])
        p = self.spawn(py(READ_ALL, srv.port), shim_env(pol))
        self.assertEqual(p.readline(), "1000")           # exactly, then end of file
        # the connection was closed, not just cut short here: the server saw it end
        # while the client still ran
        self.assertEqual(srv.wait_results(1), [b""])
        p.finish()
        evs = self.injected(log, reason="limit_data")
        self.assertEqual(len(evs), 1, describe(read_events(log)))   # latched once

    def test_limit_data_on_send(self):
        srv = self.track(Server(receiver))
        pol, log = self.policy(srv.dest, ["{ ops: [send], limit_data: 1000 }"])
        r = self.client(SEND_ALL, srv.port, policy=pol)
        self.assertOk(r)
        n, end = r.stdout.split()
        self.assertEqual(int(n), 1000, r)          # a send cut to what the limit left
        self.assertEqual(end, "BrokenPipeError", r)
        self.assertEqual(srv.wait_results(1)[0], b"y" * 1000)

    # ---- stall ----

    def test_stall_honours_timeouts_signals_and_nonblocking(self):
        srv = self.track(Server(sender(100)))
        pol, log = self.policy(srv.dest, ["{ ops: [recv], stall: true, after: 1 }"])
        code = r"""
import select, signal, socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(None)
first = s.recv(10)
time.sleep(0.1)                       # the rest has arrived
out = [str(len(first)), str(bool(select.select([s], [], [], 5)[0]))]
# the program's SO_RCVTIMEO: the kernel's EAGAIN once it ran out
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 300000))
t = time.monotonic()
try:
    s.recv(10)
    out.append("data")
except BlockingIOError:
    out.append("EAGAIN")
out.append(str(time.monotonic() - t >= 0.29))
# a signal handler ends the wait with EINTR (python runs the handler, which raises)
class Alarm(Exception):
    pass
def alarm(*a):
    raise Alarm()
signal.signal(signal.SIGALRM, alarm)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 20, 0))
signal.setitimer(signal.ITIMER_REAL, 0.2)
try:
    s.recv(10)
    out.append("data")
except Alarm:
    out.append("EINTR")
# non-blocking: EAGAIN at once, though the bytes are there
s.setblocking(False)
try:
    s.recv(10)
    out.append("data")
except BlockingIOError:
    out.append("EAGAIN")
# python's own timeout (poll, then a non-blocking receive): it fires
s.settimeout(0.3)
try:
    s.recv(10)
    out.append("data")
except TimeoutError:
    out.append("timeout")
print(" ".join(out))
"""
        r = self.client(code, srv.port, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.split(), ["10", "True", "EAGAIN", "True", "EINTR", "EAGAIN",
                                            "timeout"], r)
        # python's timeout loop called recv many times: one stall, logged once
        self.assertEqual(len(self.injected(log, reason="stall")), 1,
                         describe(read_events(log)))
        bare = self.client(code, srv.port)
        self.assertEqual(bare.stdout.split()[2], "data", bare)

    def test_stall_under_a_timeout_rule_is_its_timeout(self):
        srv = self.track(Server(sender(100)))
        body = "timeout: { recv: 300ms }\ninject:\n  - { ops: [recv], stall: true }\n"
        pol, log = self.wd.policy(rule("faults", ["recv"], [srv.dest], body))
        code = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(None)
try:
    s.recv(10)
    print("data")
except OSError as e:
    print(e.errno == __import__("errno").ETIMEDOUT)
"""
        r = self.client(code, srv.port, policy=pol)
        self.assertEqual(r.stdout.split(), ["True"], r)
        self.assertTrue(events_of(read_events(log), "timeout"), describe(read_events(log)))

    # ---- slow_close ----

    def test_slow_close_delays_the_end_of_file(self):
        def hello(c):
            c.sendall(b"hello")
            return "closed"
        srv = self.track(Server(hello))
        pol, log = self.policy(srv.dest, ["{ ops: [recv], slow_close: 500ms }"])
        code = r"""
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(None)
data = b""
while len(data) < 5:
    data += s.recv(10)
time.sleep(0.1)                       # the server has closed
s.setblocking(False)
try:
    s.recv(10)
    early = "eof"
except BlockingIOError:
    early = "EAGAIN"
s.setblocking(True)
t = time.monotonic()
last = s.recv(10)
print(data.decode(), early, repr(last), time.monotonic() - t >= 0.3)
"""
        r = self.client(code, srv.port, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.split(), ["hello", "EAGAIN", "b''", "True"], r)
        bare = self.client(code, srv.port)
        self.assertEqual(bare.stdout.split()[1], "eof", bare)

    # ---- latency ----

    def test_latency_with_jitter_is_a_seeded_distribution(self):
        def echo(c):
            while True:
                b = c.recv(100)
                if not b:
                    return "done"
                c.sendall(b)
        srv = self.track(Server(echo))
        pol, log = self.policy(srv.dest, [
            "{ ops: [recv], latency: 40ms, jitter: 20ms, distribution: uniform }"])
        code = r"""
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t = time.monotonic()
for i in range(12):
    s.sendall(b"p")
    s.recv(1)
print(time.monotonic() - t)
"""
        delays = []
        for i in range(2):
            if os.path.exists(log):
                os.unlink(log)
            r = self.client(code, srv.port, policy=pol)
            self.assertOk(r)
            d = [e["delay_ms"] for e in self.injected(log)]
            self.assertEqual(len(d), 12, describe(read_events(log)))
            self.assertTrue(all(20 <= x <= 60 for x in d), d)
            self.assertGreater(len(set(d)), 6, d)            # a distribution, not one delay
            self.assertGreaterEqual(float(r.stdout) * 1000, sum(d) * 0.99, (r, d))
            delays.append(d)
        self.assertEqual(delays[0], delays[1])             # the same seed, the same delays

    # ---- per: connection ----

    def test_per_connection_chooses_whole_connections(self):
        srv = self.track(Server(sender(40)))
        pol, log = self.policy(srv.dest, [
            "{ ops: [recv], limit_data: 10, per: connection, probability: 40% }"], seed=11)
        # twelve connections at once (distinct descriptors), each read in 4-byte receives
        code = r"""
import socket, sys
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(12)]
out = []
for s in socks:
    n = 0
    while True:
        b = s.recv(4)
        if not b:
            break
        n += len(b)
    out.append(str(n))
print(" ".join(out))
"""
        seen = []
        for i in range(2):
            r = self.client(code, srv.port, policy=pol)
            self.assertOk(r)
            got = [int(x) for x in r.stdout.split()]
            self.assertEqual(set(got), {10, 40}, r)       # whole connections cut, or none
            seen.append(got)
        self.assertEqual(seen[0], seen[1])                  # chosen by the seed

    def test_per_connection_latency_every_call_of_a_chosen_connection(self):
        srv = self.track(Server(sender(40)))
        pol, log = self.policy(srv.dest, [
            "{ ops: [recv], latency: 1ms, per: connection, probability: 50% }"], seed=5)
        code = r"""
import socket, sys
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(10)]
print(" ".join(str(s.fileno()) for s in socks))
for s in socks:
    while s.recv(8):
        pass
"""
        r = self.client(code, srv.port, policy=pol)
        self.assertOk(r)
        fds = [int(x) for x in r.stdout.split()]
        by_fd = {}
        for e in self.injected(log):
            by_fd[e["fd"]] = by_fd.get(e["fd"], 0) + 1
        # 40 bytes in receives of 8: 5 with data and the end of file, on every connection
        self.assertTrue(set(by_fd) <= set(fds), (by_fd, fds))
        self.assertTrue(0 < len(by_fd) < len(fds), by_fd)
        self.assertEqual(set(by_fd.values()), {6}, by_fd)


class Datagrams(ShimTest):
    """UDP on 127.0.0.1: a datagram is lost, sent twice or after the next one, whole."""

    N = 30

    def setUp(self):
        super().setUp()
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(self.sink.close)
        self.sink.bind(("127.0.0.1", 0))
        self.port = self.sink.getsockname()[1]
        self.dest = "127.0.0.1:%d" % self.port

    def received(self):
        """Every datagram waiting on the sink (loopback delivers before sendto returns)."""
        self.sink.setblocking(False)
        got = []
        while True:
            try:
                got.append(self.sink.recv(70000))
            except BlockingIOError:
                return got

    # datagram i is "i:" and i * 100 bytes, so that a cut one would show
    SEND = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", int(sys.argv[1])))
bad = []
for i in range(int(sys.argv[2])):
    d = b"%d:" % i + b"d" * (i * 100)
    n = s.send(d) if i % 2 else s.sendto(d, ("127.0.0.1", int(sys.argv[1])))
    if n != len(d):
        bad.append(i)
print("short", bad)
"""

    def run_with(self, entry, seed=4):
        pol, log = self.wd.policy(rule("udp", ["send", "recv"], [self.dest],
                                       "inject:\n  - %s\n" % entry), extra="seed: %d\n" % seed)
        if os.path.exists(log):
            os.unlink(log)
        r = run(py(self.SEND, self.port, self.N), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "short []", r)   # each send said it all went
        got = self.received()
        for d in got:
            i = int(d.split(b":")[0])
            self.assertEqual(len(d), len(b"%d:" % i) + i * 100, d[:20])   # never split
        hit = [e["n"] - 1 for e in events_of(read_events(log), "injected")]
        return [int(d.split(b":")[0]) for d in got], hit

    def test_loss(self):
        got, hit = self.run_with("{ ops: [send], loss: true, probability: 30% }")
        self.assertTrue(0 < len(hit) < self.N, hit)
        self.assertEqual(got, [i for i in range(self.N) if i not in hit])
        again, hit2 = self.run_with("{ ops: [send], loss: true, probability: 30% }")
        self.assertEqual((again, hit2), (got, hit))          # seeded

    def test_loss_replayed(self):
        """bulwark report --replay of a run with lost datagrams loses the same ones."""
        got, hit = self.run_with("{ ops: [send], loss: true, probability: 30% }")
        log = self.wd.file("events.log")
        rep = run([TOOL, "report", "--replay", log])
        self.assertEqual(rep.rc, 0, rep)
        self.assertIn("loss: true", rep.stdout)
        pol = self.wd.write("replay.yaml", rep.stdout)
        os.unlink(log)
        r = run(py(self.SEND, self.port, self.N), shim=True, policy=pol)
        self.assertOk(r)
        again = [int(d.split(b":")[0]) for d in self.received()]
        self.assertEqual(again, got, rep.stdout)

    def test_duplicate(self):
        got, hit = self.run_with("{ ops: [send], duplicate: true, probability: 30% }")
        self.assertTrue(0 < len(hit) < self.N, hit)
        want = []
        for i in range(self.N):
            want += [i, i] if i in hit else [i]
        self.assertEqual(got, want)

    def test_reorder(self):
        got, hit = self.run_with("{ ops: [send], reorder: true, probability: 30% }", seed=6)
        self.assertTrue(0 < len(hit) < self.N - 1, hit)
        # a datagram held back goes out after the next one; one held while another is
        # held goes as it is
        want, held = [], None
        for i in range(self.N):
            if i in hit and held is None:
                held = i
                continue
            want.append(i)
            if held is not None and held != i:
                want.append(held)
                held = None
        self.assertEqual(got, want, hit)
        self.assertNotEqual(got, sorted(got))

    def test_loss_on_receive(self):
        code = r"""
import socket, sys
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a.bind(("127.0.0.1", int(sys.argv[1])))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20):
    b.sendto(b"%d" % i, ("127.0.0.1", int(sys.argv[1])))
a.setblocking(False)
got = []
while True:
    try:
        got.append(a.recv(100).decode())
    except BlockingIOError:
        break
print(" ".join(got))
"""
        self.sink.close()                    # the port is the client's now
        pol, log = self.wd.policy(rule("udp", ["recv"], [self.dest],
                                       "inject:\n  - { loss: true, probability: 25% }\n"),
                                  extra="seed: 8\n")
        r = run(py(code, self.port), shim=True, policy=pol)
        self.assertOk(r)
        got = [int(x) for x in r.stdout.split()]
        lost = sorted(set(range(20)) - set(got))
        self.assertTrue(lost, r)
        self.assertEqual(got, sorted(got), r)               # in order, none twice
        self.assertEqual(len(events_of(read_events(log), "injected")), len(lost),
                         describe(read_events(log)))


if __name__ == "__main__":
    unittest.main()
