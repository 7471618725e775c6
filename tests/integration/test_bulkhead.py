"""Bulkheads and adaptive throttling with real programs (bulwark.yaml(5) CONCURRENCY,
THROTTLE).

- 20 python3 clients under one `bulwark run` with `concurrency: { max: 3 }` shared by
  the group, against a server that holds every connection for a while: the server never
  sees more than 3 at once (without the section it sees many more: checked first), and
  every client gets its answer.
- A holder SIGKILLed while its connection holds the only slot: the group counts the slot
  back, and the next connect of another process of the group goes ahead.
- One slot, given back by each way a descriptor goes: close, the last of a dup's copies,
  dup2 and dup3 over it, close_range, fclose (a leak shows as a connect refused after).
- Adaptive throttling against a destination that fails 70% of the time: over 4000
  calls the share rejected is within 2 points of the formula max(0, (requests - k *
  accepts) / (requests + 1)), capped at max_reject, replayed from the calls' own
  outcomes (no throttle section: nothing is rejected).
"""
import os
import signal
import socket
import threading
import time

from harness import (PYTHON, ShimTest, bulwark_run, describe, events_of, read_events, rule,
                     shim_env)
from test_group import results, tree

# One connect, a request, the answer read to its end; the result ("ok" or the errno)
# goes to a file of the process's own.
SLOW_CLIENT = """
import os, socket, sys
port, outdir = int(sys.argv[1]), sys.argv[2]
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(b"hi")
    data = b""
    while True:
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
    s.close()
    res = "ok" if data == b"done" else "short"
except OSError as e:
    res = str(e.errno)
tmp = os.path.join(outdir, "%d.tmp" % os.getpid())
with open(tmp, "w") as f:
    f.write(res)
os.rename(tmp, os.path.join(outdir, "%d.out" % os.getpid()))
"""


class CountingServer:
    """A TCP server that holds each connection hold_s seconds, then answers "done" and
    closes it, counting the connections it has open at once. The count goes down before
    the answer is sent, so a client that closes after the answer (giving its slot back)
    is never counted together with the next one."""

    def __init__(self, hold_s, until_close=False):
        self.hold_s = hold_s
        self.until_close = until_close
        self.now = self.most = self.total = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.l = socket.socket()
        self.l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.l.bind(("127.0.0.1", 0))
        self.l.listen(128)
        self.l.settimeout(0.1)
        self.port = self.l.getsockname()[1]
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.l.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.now += 1
                self.total += 1
                self.most = max(self.most, self.now)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            if self.until_close:          # held until the client goes
                c.settimeout(self.hold_s)
                while c.recv(100):
                    pass
                return
            c.settimeout(5)
            c.recv(100)               # unread data would make the close a reset
            self.stop_ev.wait(self.hold_s)
        except OSError:
            pass
        finally:
            with self.lock:
                self.now -= 1
            try:
                c.sendall(b"done")
            except OSError:
                pass
            c.close()

    def stop(self):
        self.stop_ev.set()
        self.t.join(2)
        self.l.close()


class Bulkhead(ShimTest):

    def run_tree(self, body, n=20):
        srv = self.track(CountingServer(0.3))
        pol, log = self.wd.policy(
            rule("slow", ["connect"], ["127.0.0.1:%d" % srv.port], "retry: off\n" + body),
            extra="state: { share: group, dir: %s }\n" % self.wd.file("state"))
        outdir = self.wd.file("out%d" % len(body))
        os.mkdir(outdir)
        r = bulwark_run(["-c", pol], tree(n, SLOW_CLIENT, srv.port, outdir), timeout=90)
        self.assertOk(r)
        got = results(outdir)
        self.assertEqual(len(got), n, got)
        return srv, got, read_events(log)

    def test_twenty_processes_never_exceed_max(self):
        # without the section the server sees the clients all at once: what the test
        # would see if the bulkhead did nothing
        srv, got, _ = self.run_tree("")
        self.assertGreater(srv.most, 3, "the load does not overlap: the test shows nothing")
        srv, got, evs = self.run_tree("concurrency: { max: 3, max_wait: 60s }\n")
        self.assertEqual(sorted(v[0] for v in got.values()), ["ok"] * 20, got)
        self.assertEqual(srv.total, 20)
        self.assertLessEqual(srv.most, 3, describe(evs))
        self.assertEqual(srv.most, 3, "the bulkhead was never full")
        full = events_of(evs, "bulkhead_full", rule="slow")
        self.assertTrue(full, describe(evs))
        self.assertTrue(all(e["reason"] == "waited" for e in full), describe(full))
        exits = events_of(evs, "exit")
        self.assertEqual(sum(e["stats"]["slow"]["bulkhead_full"] for e in exits
                             if "slow" in e.get("stats", {})), len(full), describe(exits))

    def test_killed_holder_gives_its_slot_back(self):
        srv = self.track(CountingServer(60, until_close=True))
        pol, log = self.wd.policy(
            rule("slow", ["connect"], ["127.0.0.1:%d" % srv.port],
                 "retry: off\nconcurrency: { max: 1, max_wait: 1s }\n"),
            extra="state: { share: group, dir: %s }\n" % self.wd.file("state"))
        env = shim_env(pol)
        # Each line on stdin: one connect, kept open; prints "ok" or the errno.
        code = ("import socket, sys\nheld = []\nfor line in sys.stdin:\n"
                "    try:\n"
                "        held.append(socket.create_connection(('127.0.0.1', %d)))\n"
                "        print('ok', flush=True)\n"
                "    except OSError as e:\n"
                "        print(e.errno, flush=True)\n" % srv.port)
        holder = self.spawn([PYTHON, "-c", code], env)
        other = self.spawn([PYTHON, "-c", code], env)
        holder.send("\n")
        self.assertEqual(holder.readline(), "ok")
        other.send("\n")
        self.assertEqual(other.readline(timeout=20), "111", "the bulkhead let a 2nd in")
        os.kill(holder.p.pid, signal.SIGKILL)
        holder.p.wait(10)
        end = time.monotonic() + 10
        while srv.now and time.monotonic() < end:      # the server saw it go
            time.sleep(0.01)
        self.assertEqual(srv.now, 0)
        other.send("\n")
        self.assertEqual(other.readline(timeout=20), "ok", describe(read_events(log)))
        self.assertLessEqual(srv.most, 1)
        evs = read_events(log)
        refused = events_of(evs, "bulkhead_full", rule="slow", reason="refused")
        self.assertEqual(len(refused), 1, describe(evs))
        self.assertEqual(refused[0]["err"], "ECONNREFUSED")


# N connects in turn, 7 of every 10 to a unix path with nothing behind it (ENOENT: the
# destination failing), the rest to a live unix server; prints one letter per call: o ok,
# f failed (ENOENT), r rejected (ECONNREFUSED, the throttle's refusal).
THROTTLE_CLIENT = """
import errno, socket, sys
live, dead, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(dead if (i * 7) % 10 < 7 else live)
        out.append("o")
    except OSError as e:
        out.append({errno.ENOENT: "f", errno.ECONNREFUSED: "r"}.get(e.errno, "?"))
    s.close()
print("".join(out))
"""


def replay(letters, k, cap):
    """The rejections the formula expects, call by call, from the outcomes seen: a call's
    probability uses the counts before it; every call is a request, an "o" an accept."""
    req = acc = 0
    want = 0.0
    for ch in letters:
        want += min(cap, max(0.0, (req - k * acc) / (req + 1)))
        req += 1
        acc += ch == "o"
    return want


class Throttle(ShimTest):

    def run_client(self, body, n):
        self.runs = getattr(self, "runs", 0) + 1
        live = self.wd.file("live%d.sock" % self.runs)
        dead = self.wd.file("dead%d.sock" % self.runs)
        l = socket.socket(socket.AF_UNIX)
        l.bind(live)
        l.listen(4096)
        stop = threading.Event()

        def drain():
            l.settimeout(0.1)
            while not stop.is_set():
                try:
                    c, _ = l.accept()
                    c.close()
                except socket.timeout:
                    continue
                except OSError:
                    return
        t = threading.Thread(target=drain, daemon=True)
        t.start()
        try:
            pol, log = self.wd.policy(
                rule("svc", ["connect"], ["unix:" + self.wd.path + "/*.sock"],
                     "retry: off\n" + body), level="info", extra="seed: 42\n")
            code = THROTTLE_CLIENT
            r = bulwark_run(["-c", pol], [PYTHON, "-c", code, live, dead, str(n)], timeout=120)
        finally:
            stop.set()
            t.join(2)
            l.close()
        self.assertOk(r)
        return r.stdout.strip(), read_events(log)

    def test_rejection_rate_follows_the_formula(self):
        n = 4000
        letters, evs = self.run_client("", n)
        self.assertEqual(letters.count("r"), 0, "nothing rejects without a throttle")
        k, cap = 1.5, 0.6
        letters, evs = self.run_client(
            "throttle: { scope: rule, k: %s, window: 10m, max_reject: %d%% }\n"
            % (k, cap * 100), n)
        self.assertEqual(len(letters), n)
        self.assertNotIn("?", letters)
        rejected = letters.count("r")
        made = letters.count("o") + letters.count("f")
        # the destination failed 70% of the calls made
        self.assertAlmostEqual(letters.count("f") / made, 0.7, delta=0.05)
        want = replay(letters, k, cap)
        self.assertGreater(want, 0.3 * n, "the formula expects few rejections: no test")
        self.assertLess(abs(rejected - want) / n, 0.02,
                        "rejected %d, the formula expects %.0f" % (rejected, want))
        shed = events_of(evs, "shed", rule="svc")
        self.assertEqual(len(shed), rejected, describe(shed[:5]))
        exits = [e for e in events_of(evs, "exit") if "svc" in e.get("stats", {})]
        self.assertEqual(sum(e["stats"]["svc"]["shed"] for e in exits), rejected)


# One slot (max 1, 100 ms wait): each way a descriptor can go must give the slot back,
# or the next connect is refused. Prints one word a step: "held" when the connect that
# must be refused was (the slot still taken), "ok" when the one after the release went
# through.
CLOSER = """
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
libc.fclose.argtypes = [ctypes.c_void_p]
port = int(sys.argv[1])
def conn():
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        return s.detach()
    except OSError as e:
        s.close()
        return -e.errno
def step(name, release):
    fd = conn()
    assert fd >= 0, (name, fd)
    extra = conn()                    # the bulkhead is full
    out = ["held" if extra == -111 else "LEAKED(%d)" % extra]
    if extra >= 0:
        os.close(extra)
    release(fd)
    again = conn()
    out.append("ok" if again >= 0 else "STUCK(%d)" % again)
    if again >= 0:
        os.close(again)
    print(name, *out, flush=True)
def dup_then_close(fd):
    copy = os.dup(fd)
    os.close(fd)
    assert conn() == -111             # the copy still holds the connection's slot
    os.close(copy)
later = []                            # descriptors closed only at the end
def dup2_over(fd):
    other = os.open("/dev/null", os.O_RDONLY)
    os.dup2(other, fd)                # the connection's only descriptor is replaced
    os.close(other)
    later.append(fd)                  # still open (on /dev/null) while the next connects
def dup3_over(fd):
    other = os.open("/dev/null", os.O_RDONLY)
    os.dup2(other, fd, inheritable=False)
    os.close(other)
    later.append(fd)
def close_range(fd):
    assert libc.close_range(fd, fd, 0) == 0
def fclose(fd):
    f = libc.fdopen(fd, b"r+")
    assert f
    libc.fclose(f)
step("close", os.close)
step("dup", dup_then_close)
step("dup2", dup2_over)
step("dup3", dup3_over)
step("close_range", close_range)
step("fclose", fclose)
for fd in later:
    os.close(fd)
"""


class SlotsComeBack(ShimTest):

    def test_every_way_a_descriptor_goes_gives_its_slot_back(self):
        srv = self.track(CountingServer(30, until_close=True))
        pol, log = self.wd.policy(
            rule("one", ["connect"], ["127.0.0.1:%d" % srv.port],
                 "retry: off\nconcurrency: { max: 1, max_wait: 100ms }\n"))
        r = bulwark_run(["-c", pol], [PYTHON, "-c", CLOSER, str(srv.port)], timeout=60)
        self.assertOk(r)
        self.assertEqual(r.stdout.split("\n"), [
            "close held ok", "dup held ok", "dup2 held ok", "dup3 held ok",
            "close_range held ok", "fclose held ok", ""], r)
