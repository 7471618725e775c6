"""Fault injection (bulwark.yaml(5) INJECT), observe mode with injection (docs/design.md 4), `--seed`, the
`injected` event (bulwark.yaml(5) EVENTS) and `bulwark report` over logs with injected faults (bulwark(1)).

Every fault here is made by the library itself: the servers are healthy and run in
threads of this test process (never preloaded) or as plain processes, so what a test
sees is what the injection did. Injected faults go through the rule's other policies,
so each one is shown twice where it makes sense: cured by a retry rule, and hurting the
program without one.

Reproducibility is checked only where it is a function of the seed alone: which calls
of one inject entry are hit, for a client whose sequence of calls of that entry does not
depend on timing (see EchoThroughFaults).
"""

import errno
import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import unittest

# Also runnable as `python3 -m unittest tests/integration/test_inject.py`, without run.py.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CURL, PYTHON, PY_CLIENT, TOOL, Server, ShimTest, bulwark_run, curl, describe,
                     events_of, hosts_file_name, http_handler, py, read_events, rule, run, shim_env)


# -- helpers ------------------------------------------------------------------------------

def echo_handler(c):
    """Echo everything until EOF; returns (sha256 of what was received, bytes)."""
    h, n = hashlib.sha256(), 0
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
        c.sendall(chunk)
    return h.hexdigest(), n


def report_missing():
    """Why `bulwark report` cannot be tested, or None when it can."""
    r = run([TOOL, "report"], stdin=subprocess.DEVNULL, timeout=10)
    if "not built yet" in r.stdout + r.stderr:
        return "`build/bulwark report` says it is not built yet: %s" % r.stderr.strip()
    return None


# A client that resolves and connects by name with the real python3 (curl would not
# call getaddrinfo for "localhost"). Prints the body, or the resolver error.
PY_RESOLVE = PY_CLIENT + """
import sys
name, port = sys.argv[1], int(sys.argv[2])
try:
    socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    s = socket.create_connection((name, port), timeout=10)
except socket.gaierror as e:
    print("gaierror", e.errno == socket.EAI_AGAIN, e)
    sys.exit(3)
data = http_get(s)
print(data.split(b"\\r\\n\\r\\n", 1)[-1].decode())
"""

# 300 messages of seeded, varied sizes, each sent with send() in a loop and read back in
# full before the next one: single-threaded and blocking (no socket timeout, so Python
# makes plain blocking send/recv calls). Prints a JSON line: the sha256 of all it sent
# and of all that came back, and the return value of every send() call.
ECHO_CLIENT = """
import hashlib, json, random, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(20261125)
sizes = [1, 2, 3, 17, 100, 512, 1000, 1460, 4096, 8192, 16384, 30000, 40000]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(None)
sent, back = hashlib.sha256(), hashlib.sha256()
sends, total, short = [], 0, 0
for i in range(n):
    size = rnd.choice(sizes) if i % 3 else rnd.randint(1, 40000)
    msg = memoryview(rnd.randbytes(size))
    sent.update(msg)
    total += size
    off = 0
    while off < size:
        k = s.send(msg[off:])
        sends.append(k)
        short += k < size - off
        off += k
    got = 0
    while got < size:
        chunk = s.recv(min(65536, size - got))
        if not chunk:
            print(json.dumps({"error": "early EOF at message %d" % i}))
            sys.exit(4)
        back.update(chunk)
        got += len(chunk)
s.shutdown(socket.SHUT_WR)
while s.recv(4096):
    pass
print(json.dumps({"sent": sent.hexdigest(), "back": back.hexdigest(), "bytes": total,
                  "sends": sends, "short": short}))
"""

# Connects n times in a row, blocking; prints one word per connect.
PY_CONNECTS = PY_CLIENT + """
import errno, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
words = {"ok": "ok", errno.ECONNREFUSED: "refused"}
print(" ".join(words[connect_once(port)] for _ in range(n)))
"""

# A plain accept loop, the way a small legacy server is written: any accept error ends it.
ACCEPT_SERVER = """
import errno, socket, sys
n = int(sys.argv[1])
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(16)
print(l.getsockname()[1], flush=True)
for i in range(n):
    try:
        c, _ = l.accept()
    except OSError as e:
        print("accept:", errno.errorcode.get(e.errno, e.errno), flush=True)
        sys.exit(1)
    c.sendall(b"hi")
    c.close()
    print("served", i + 1, flush=True)
"""

SQLITE_CLIENT = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    for i in range(20):
        c.execute("INSERT INTO t(v) VALUES (?)", ("row-%d" % i,))
    print("rows", c.execute("SELECT count(*) FROM t").fetchone()[0])
except sqlite3.Error as e:
    print("error", type(e).__name__, getattr(e, "sqlite_errorname", "-"), str(e))
    sys.exit(3)
"""


class InjectTest(ShimTest):

    def assertInjected(self, evs, n, **sel):
        """Exactly n injected events matching sel, each marked "injected":true."""
        inj = events_of(evs, "injected", **sel)
        self.assertEqual(len(inj), n, "want %d injected events %r in:\n%s"
                         % (n, sel, describe(evs)))
        for e in inj:
            self.assertIs(e.get("injected"), True, describe(inj))
            self.assertEqual(e.get("lvl"), "info", describe(inj))
        return inj

    def exit_stats(self, evs, rule_name):
        ex = events_of(evs, "exit")
        self.assertTrue(ex, "no exit event:\n" + describe(evs))
        return ex[-1]["stats"][rule_name]


# -- 1. connect ---------------------------------------------------------------------------

@unittest.skipUnless(CURL, "curl is not installed")
class InjectConnect(InjectTest):
    """Two injected ECONNREFUSED on a healthy server: a retry rule hides them, curl
    without one fails with exit 7 (couldn't connect)."""

    def policy(self, retry):
        srv = self.track(Server(http_handler))
        pol, log = self.wd.policy(rule("web", ["connect"], [srv.dest],
                                       "    retry: %s\n"
                                       "    inject: [{ ops: [connect], errno: ECONNREFUSED,"
                                       " count: 2 }]\n" % retry))
        return srv, pol, log

    def test_retry_recovers_from_two_injected_refusals(self):
        srv, pol, log = self.policy("{ attempts: 4, backoff: { base: 10ms, max: 50ms } }")
        r = run(curl("http://%s/" % srv.dest, 15), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout, "ok", repr(r))
        evs = self.events(log)
        ctx = describe(evs)
        for e in self.assertInjected(evs, 2, rule="web"):
            self.assertEqual((e.get("op"), e.get("dest"), e.get("err")),
                             ("connect", srv.dest, "ECONNREFUSED"), ctx)
        fails = events_of(evs, "fail", rule="web")
        self.assertEqual([(e.get("attempt"), e.get("err"), e.get("injected")) for e in fails],
                         [(1, "ECONNREFUSED", True), (2, "ECONNREFUSED", True)], ctx)
        self.assertEqual(len(events_of(evs, "retry", rule="web")), 2, ctx)
        rec = events_of(evs, "recovered", rule="web", op="connect", dest=srv.dest)
        self.assertEqual(len(rec), 1, ctx)
        self.assertEqual(rec[0].get("attempts"), 3, ctx)
        self.assertFalse(events_of(evs, "gave_up"), ctx)
        self.assertEqual(self.exit_stats(evs, "web")["injected"], 2, ctx)
        # The two refusals never reached the server: it saw one connection.
        self.assertEqual(srv.connections, 1, ctx)

    def test_without_retry_curl_fails(self):
        srv, pol, log = self.policy("off")
        r = run(curl("http://%s/" % srv.dest, 15), shim=True, policy=pol)
        self.assertEqual(r.rc, 7, "curl: couldn't connect\n%r" % r)
        evs = self.events(log)
        ctx = describe(evs)
        self.assertInjected(evs, 1, rule="web", err="ECONNREFUSED")
        fails = events_of(evs, "fail", rule="web")
        self.assertEqual(len(fails), 1, ctx)
        self.assertIs(fails[0].get("injected"), True, ctx)
        self.assertFalse(events_of(evs, "retry") + events_of(evs, "recovered"), ctx)
        self.assertEqual(srv.connections, 0, ctx)


# -- 2. resolve ---------------------------------------------------------------------------

class InjectResolve(InjectTest):
    """An injected EAI_AGAIN is retried by a resolve rule like a real one."""

    RETRY = "{ attempts: 3, backoff: { base: 10ms, max: 50ms } }"

    def dns_policy(self, name, retry):
        return self.wd.policy(rule("dns", ["resolve"], host=[name], body=(
            "    retry: %s\n    inject: [{ errno: EAI_AGAIN, count: 1 }]\n" % retry)))

    def test_python_getaddrinfo_recovers(self):
        srv = self.track(Server(http_handler))
        pol, log = self.dns_policy("localhost", self.RETRY)
        r = run([PYTHON, "-c", PY_RESOLVE, "localhost", str(srv.port)], shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ok", repr(r))
        evs = self.events(log)
        ctx = describe(evs)
        inj = self.assertInjected(evs, 1, rule="dns", op="resolve")
        self.assertEqual((inj[0].get("err"), inj[0].get("host"), inj[0].get("call")),
                         ("EAI_AGAIN", "localhost", "getaddrinfo"), ctx)
        fails = events_of(evs, "fail", rule="dns")
        self.assertEqual(len(fails), 1, ctx)
        self.assertEqual((fails[0].get("err"), fails[0].get("injected")), ("EAI_AGAIN", True),
                         ctx)
        rec = events_of(evs, "recovered", rule="dns", host="localhost")
        self.assertEqual([e.get("attempts") for e in rec], [2], ctx)

    def test_python_without_retry_gets_eai_again(self):
        srv = self.track(Server(http_handler))
        pol, log = self.dns_policy("localhost", "off")
        r = run([PYTHON, "-c", PY_RESOLVE, "localhost", str(srv.port)], shim=True, policy=pol)
        self.assertEqual(r.rc, 3, repr(r))
        self.assertTrue(r.stdout.startswith("gaierror True"), "want EAI_AGAIN\n%r" % r)
        self.assertInjected(self.events(log), 1, rule="dns", err="EAI_AGAIN")

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_curl_hosts_file_name_recovers(self):
        found = hosts_file_name()
        if not found:
            self.skipTest("/etc/hosts has no loopback name other than localhost")
        name, addr = found
        srv = self.track(Server(http_handler, host=addr))
        pol, log = self.dns_policy(name, self.RETRY)
        r = run(curl("http://%s:%d/" % (name, srv.port), 15), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout, "ok", repr(r))
        evs = self.events(log)
        ctx = describe(evs)
        self.assertInjected(evs, 1, rule="dns", host=name, err="EAI_AGAIN")
        rec = events_of(evs, "recovered", rule="dns", host=name)
        self.assertEqual([e.get("attempts") for e in rec], [2], ctx)

        pol, log = self.dns_policy(name, "off")
        r = run(curl("http://%s:%d/" % (name, srv.port), 15), shim=True, policy=pol)
        self.assertEqual(r.rc, 6, "curl: couldn't resolve host\n%r" % r)


# -- 3. send and recv: partial transfers, EINTR, reproducibility ---------------------------

class EchoThroughFaults(InjectTest):
    """300 messages echoed through injected partial sends and receives and EINTR (retried
    because the rule lists it: a real EINTR never is) arrive intact; the same seed hits
    the same calls.

    What is compared between runs, and why it is deterministic: the client is one
    blocking thread whose i-th send() asks for the rest of its current message. A blocking
    send on a TCP socket with room queues everything it is given, so the only thing that
    makes a send() return less is an injected `partial`, whose length is drawn from the
    same seeded hash. The sequence of send() calls, and therefore which of them the send
    entries hit (the entry's k-th call depends only on seed, rule, entry and k), follows
    from the seed alone: we compare the injected events of op send and the list of send()
    return values. recv is not compared: how many recv() calls a message takes depends on
    how the echo arrives (in one piece or several, which depends on the server thread's
    timing), so the k-th recv call falls at a different place from run to run.
    """

    N = 300

    def policy(self, seed, name):
        srv = self.track(Server(echo_handler))
        pol, log = self.wd.policy(
            rule("echo", ["send", "recv"], [srv.dest],
                 "    retry: { attempts: 10, on: [EINTR], backoff: { base: 1ms, max: 2ms } }\n"
                 "    inject:\n"
                 "      - { ops: [send], partial: true, probability: 30% }\n"
                 "      - { ops: [send], errno: EINTR, probability: 10% }\n"
                 "      - { ops: [recv], partial: true, probability: 30% }\n"
                 "      - { ops: [recv], errno: EINTR, probability: 10% }\n"),
            extra="seed: %d\n" % seed, name=name + ".yaml", log=name + ".log")
        return srv, pol, log

    def one_run(self, seed, name):
        srv, pol, log = self.policy(seed, name)
        r = run([PYTHON, "-c", ECHO_CLIENT, str(srv.port), str(self.N)], shim=True, policy=pol,
                timeout=60)
        self.assertOk(r)
        out = json.loads(r.stdout)
        evs = self.events(log)
        ctx = "%r\n%s" % (r, describe(evs[:60]))
        # Intact, in order, nothing lost or duplicated: what the server read, what the
        # client sent and what came back are the same bytes.
        (srv_sha, srv_n), = srv.wait_results(1)
        self.assertEqual(out["sent"], out["back"], ctx)
        self.assertEqual((srv_sha, srv_n), (out["sent"], out["bytes"]), ctx)
        self.assertFalse(events_of(evs, "gave_up"), ctx)
        start = events_of(evs, "start")[0]
        self.assertEqual(start.get("seed"), seed, ctx)
        return out, evs

    @staticmethod
    def send_faults(evs):
        return [(e.get("reason"), e.get("err")) for e in events_of(evs, "injected", op="send")]

    def test_partial_and_eintr_echo_intact_and_reproducible(self):
        out1, evs1 = self.one_run(1234, "a")
        ctx = describe(evs1[:80])
        # Every kind of fault really happened.
        for op in ("send", "recv"):
            kinds = {(e.get("reason"), e.get("err")) for e in events_of(evs1, "injected", op=op)}
            self.assertIn(("partial", None), kinds, "%s: %r\n%s" % (op, kinds, ctx))
            self.assertIn((None, "EINTR"), kinds, "%s: %r\n%s" % (op, kinds, ctx))
            self.assertTrue(events_of(evs1, "retry", op=op, err="EINTR"), ctx)
            self.assertTrue(events_of(evs1, "recovered", op=op), ctx)
        # A blocking send() returns less than asked only when an injected partial cut
        # it (a partial on a 1-byte send cannot cut): each short send costs one more call.
        n_partial = sum(1 for f in self.send_faults(evs1) if f[0] == "partial")
        self.assertGreater(out1["short"], 0, ctx)
        self.assertLessEqual(out1["short"], n_partial, ctx)
        self.assertEqual(len(out1["sends"]), self.N + out1["short"], ctx)

        # The same seed: the same send() calls hit, with the same cuts.
        out2, evs2 = self.one_run(1234, "b")
        self.assertEqual(self.send_faults(evs2), self.send_faults(evs1))
        self.assertEqual(out2["sends"], out1["sends"])
        self.assertEqual(out2["sent"], out1["sent"])

        # Another seed: another sequence.
        out3, evs3 = self.one_run(98765, "c")
        self.assertNotEqual(self.send_faults(evs3), self.send_faults(evs1))
        self.assertNotEqual(out3["sends"], out1["sends"])


VECTOR_CLIENT = """
import json, os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
out = []
for call in ("writev", "sendmsg"):
    data = call.encode() * 250
    n = os.writev(s.fileno(), [data]) if call == "writev" else s.sendmsg([data])
    out.append([call, n, len(data)])
    if n < len(data):
        s.sendall(data[n:])
s.shutdown(socket.SHUT_WR)
while s.recv(4096):
    pass
print(json.dumps(out))
"""


class PartialOnVectorCalls(InjectTest):
    """`partial` is for the send op (bulwark.yaml(5) "What applies to which op", INJECT), which covers writev and sendmsg on a
    stream socket: an `injected` event with reason partial must mean a transfer that was
    in fact cut short, or the log (and `bulwark report`) counts faults that never
    happened."""

    def test_injected_partial_shortens_writev_and_sendmsg(self):
        srv = self.track(Server(echo_handler))
        pol, log = self.wd.policy(rule("v", ["send"], [srv.dest],
                                       "    inject: [{ ops: [send], partial: true }]\n"))
        r = run([PYTHON, "-c", VECTOR_CLIENT, str(srv.port)], shim=True, policy=pol)
        self.assertOk(r)
        out = json.loads(r.stdout)
        (sha, n), = srv.wait_results(1)
        self.assertEqual(n, sum(x[2] for x in out), "every byte arrives: %r" % out)
        evs = self.events(log)
        # every send-op call is cut (the sendall of each remainder too): writev and
        # sendmsg among them
        inj = {(e.get("call"), e.get("reason"))
               for e in events_of(evs, "injected", rule="v")}
        self.assertLessEqual({("writev", "partial"), ("sendmsg", "partial")}, inj,
                             describe(evs))
        for call, sent, asked in out:
            self.assertLess(sent, asked, "%s: an injected partial that moved every byte "
                            "(%d of %d)\n%s" % (call, sent, asked, describe(evs)))


# -- 4. reset and eof ---------------------------------------------------------------------

RESET_CLIENT = """
import errno, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello")
try:
    print("recv", s.recv(100))
except OSError as e:
    print("error", type(e).__name__, errno.errorcode.get(e.errno))
"""

EOF_CLIENT = PY_CLIENT + """
import sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
first = s.recv(100)
second = s.recv(100)
s.sendall(b"bye")
rest = recv_all(s, 100)
print(repr(first), repr(second), repr(rest))
"""


def reset_victim(c):
    """Reads the client's hello, then waits for what comes next: returns what the
    second recv() did."""
    first = c.recv(100)
    try:
        second = c.recv(100)
    except OSError as e:
        return first, type(e).__name__, e.errno
    return first, "data", second


def eof_peer(c):
    c.sendall(b"hello")
    got = b""
    while not got.endswith(b"bye"):
        chunk = c.recv(100)
        if not chunk:
            break
        got += chunk
    c.sendall(b"tail")
    return got


class ResetAndEof(InjectTest):

    def test_reset_gives_econnreset_and_the_peer_sees_a_reset(self):
        srv = self.track(Server(reset_victim))
        pol, log = self.wd.policy(rule("r", ["recv"], [srv.dest],
                                       "    inject: [{ ops: [recv], reset: true, count: 1 }]\n"))
        r = run([PYTHON, "-c", RESET_CLIENT, str(srv.port)], shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "error ConnectionResetError ECONNRESET", repr(r))
        # A real RST reached the (plain) peer: on Linux its pending recv() fails with
        # ECONNRESET (ConnectionResetError), it does not see an orderly EOF (b"").
        (first, what, detail), = srv.wait_results(1)
        self.assertEqual(first, b"hello")
        self.assertEqual((what, detail), ("ConnectionResetError", errno.ECONNRESET),
                         "the server should see the connection reset")
        evs = self.events(log)
        ctx = describe(evs)
        inj = self.assertInjected(evs, 1, rule="r", op="recv")
        self.assertEqual((inj[0].get("reason"), inj[0].get("dest")), ("reset", srv.dest), ctx)
        fails = events_of(evs, "fail", rule="r", injected=True)
        self.assertEqual([e.get("err") for e in fails], ["ECONNRESET"], ctx)

    def test_fail_event_of_injected_reset_names_dest(self):
        """bulwark.yaml(5) EVENTS: events carry `dest` where it means something; the fail event of an
        injected reset is about the same connection as its injected event."""
        srv = self.track(Server(reset_victim))
        pol, log = self.wd.policy(rule("r", ["recv"], [srv.dest],
                                       "    inject: [{ ops: [recv], reset: true, count: 1 }]\n"))
        r = run([PYTHON, "-c", RESET_CLIENT, str(srv.port)], shim=True, policy=pol)
        self.assertOk(r)
        evs = self.events(log)
        fails = events_of(evs, "fail", rule="r", injected=True)
        self.assertEqual(len(fails), 1, describe(evs))
        self.assertEqual(fails[0].get("dest"), srv.dest,
                         "fail event of the injected reset:\n" + describe(evs))

    def test_eof_once(self):
        srv = self.track(Server(eof_peer))
        pol, log = self.wd.policy(rule("e", ["recv"], [srv.dest],
                                       "    inject: [{ ops: [recv], eof: true, count: 1 }]\n"))
        r = run([PYTHON, "-c", EOF_CLIENT, str(srv.port)], shim=True, policy=pol)
        self.assertOk(r)
        # The first recv() sees an end of file that is not there; nothing is lost: the
        # next one gets the bytes the server sent.
        self.assertEqual(r.stdout.strip(), "b'' b'hello' b'tail'", repr(r))
        self.assertEqual(srv.wait_results(1), [b"bye"])
        evs = self.events(log)
        inj = self.assertInjected(evs, 1, rule="e", op="recv")
        self.assertEqual((inj[0].get("reason"), inj[0].get("dest")), ("eof", srv.dest),
                         describe(evs))


# -- 5. sqlite ----------------------------------------------------------------------------

class InjectSqlite(InjectTest):
    """SQLITE_BUSY injected at the storage layer (a lock that reports busy): a retry rule
    hides it; without one python3 gets "database is locked", as from a real lock."""

    def policy(self, retry):
        return self.wd.policy(rule("db", ["sqlite"], None,
                                   "    retry: %s\n"
                                   "    inject: [{ errno: SQLITE_BUSY, count: 2 }]\n" % retry))

    def check_db(self, path, rows):
        c = sqlite3.connect(path)
        try:
            self.assertEqual(c.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            if rows is not None:
                self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone()[0], rows)
        finally:
            c.close()

    def test_retry_recovers_from_injected_busy(self):
        db = self.wd.file("a.db")
        pol, log = self.policy("{ attempts: 5, backoff: { base: 5ms, max: 20ms } }")
        r = run([PYTHON, "-c", SQLITE_CLIENT, db], shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "rows 20", repr(r))
        evs = self.events(log)
        ctx = describe(evs)
        for e in self.assertInjected(evs, 2, rule="db", op="sqlite"):
            self.assertEqual((e.get("err"), e.get("db")), ("SQLITE_BUSY", db), ctx)
        self.assertEqual([e.get("injected") for e in events_of(evs, "fail", rule="db")],
                         [True, True], ctx)
        rec = events_of(evs, "recovered", rule="db")
        self.assertEqual([e.get("attempts") for e in rec], [3], ctx)
        self.assertFalse(events_of(evs, "gave_up"), ctx)
        self.check_db(db, 20)

    def test_without_retry_database_is_locked(self):
        db = self.wd.file("b.db")
        pol, log = self.policy("off")
        r = run([PYTHON, "-c", SQLITE_CLIENT, db], shim=True, policy=pol)
        self.assertEqual(r.rc, 3, repr(r))
        self.assertEqual(r.stdout.strip(),
                         "error OperationalError SQLITE_BUSY database is locked", repr(r))
        self.assertNotIn("malformed", r.stdout + r.stderr)
        self.assertInjected(self.events(log), 1, rule="db", err="SQLITE_BUSY")
        # The refused CREATE TABLE never ran, and the file is sound.
        self.check_db(db, None)
        c = sqlite3.connect(db)
        self.addCleanup(c.close)
        self.assertEqual(c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0], 0)


# -- 6. accept ----------------------------------------------------------------------------

class InjectAccept(InjectTest):
    """EMFILE injected on accept: the default accept retry list has EMFILE, so a server
    under a retry rule keeps serving; without one, its accept loop dies."""

    def serve(self, retry, n=5):
        pol, log = self.wd.policy(rule("acc", ["accept"], None,
                                       "    retry: %s\n"
                                       "    inject: [{ ops: [accept], errno: EMFILE, count: 3 }]\n"
                                       % retry))
        env = shim_env(pol)
        p = self.spawn([PYTHON, "-c", ACCEPT_SERVER, str(n)], env)
        return p, int(p.readline()), log

    def test_server_keeps_serving(self):
        p, port, log = self.serve("{ attempts: 5, backoff: { base: 10ms, max: 20ms } }")
        for i in range(5):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                self.assertEqual(c.recv(10), b"hi")
            self.assertEqual(p.readline(), "served %d" % (i + 1))
        self.assertEqual(p.finish(10), 0)
        evs = self.events(log)
        ctx = describe(evs)
        for e in self.assertInjected(evs, 3, rule="acc", op="accept"):
            self.assertEqual(e.get("err"), "EMFILE", ctx)
        self.assertEqual([(e.get("err"), e.get("injected"))
                          for e in events_of(evs, "fail", rule="acc")], [("EMFILE", True)] * 3,
                         ctx)
        rec = events_of(evs, "recovered", rule="acc", op="accept")
        self.assertEqual([e.get("attempts") for e in rec], [4], ctx)

    def test_without_retry_the_server_dies(self):
        p, port, log = self.serve("off")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError:
            pass
        self.assertEqual(p.readline(), "accept: EMFILE")
        self.assertEqual(p.finish(10), 1)
        self.assertInjected(self.events(log), 1, rule="acc", err="EMFILE")


# -- 7. observe ---------------------------------------------------------------------------

@unittest.skipUnless(CURL, "curl is not installed")
class ObserveInject(InjectTest):
    """docs/design.md 4: in observe mode an inject rule that would refuse every connect changes
    nothing: curl reaches the live server. The three ways to ask for observe mode."""

    RULE = ("    retry: { attempts: 3, backoff: { base: 10ms, max: 50ms } }\n"
            "    inject: [{ ops: [connect], errno: ECONNREFUSED }]\n")

    def runs(self):
        """(how, Result, events) for --observe, BULWARK_MODE=observe and mode: observe."""
        srv = self.track(Server(http_handler))
        url = "http://%s/" % srv.dest
        out = []
        pol, log = self.wd.policy(rule("web", ["connect"], [srv.dest], self.RULE),
                                  name="p1.yaml", log="1.log")
        out.append(("bulwark run --observe", bulwark_run(["--observe", "-c", pol],
                                                         curl(url, 15)), log))
        pol, log = self.wd.policy(rule("web", ["connect"], [srv.dest], self.RULE),
                                  name="p2.yaml", log="2.log")
        out.append(("BULWARK_MODE=observe", run(curl(url, 15), shim=True, policy=pol,
                                                env={"BULWARK_MODE": "observe"}), log))
        pol, log = self.wd.policy(rule("web", ["connect"], [srv.dest], self.RULE),
                                  name="p3.yaml", log="3.log", extra="mode: observe\n")
        out.append(("mode: observe", run(curl(url, 15), shim=True, policy=pol), log))
        return srv, [(how, r, self.events(log)) for how, r, log in out]

    def test_observe_leaves_curl_untouched(self):
        srv, runs = self.runs()
        for how, r, evs in runs:
            with self.subTest(how=how):
                self.assertOk(r, how)
                self.assertEqual(r.stdout, "ok", repr(r))
                self.assertEqual(events_of(evs, "start")[0].get("mode"), "observe", how)
                changed = [e for e in evs if e.get("event") not in ("start", "exit")
                           and e.get("observe") is not True]
                self.assertEqual(changed, [], "%s: events without observe:true:\n%s"
                                 % (how, describe(evs)))
                self.assertFalse(events_of(evs, "recovered") + events_of(evs, "gave_up"),
                                 describe(evs))
                st = self.exit_stats(evs, "web")
                self.assertEqual((st["injected"], st["failures"], st["retries"]), (0, 0, 0),
                                 describe(evs))
        self.assertEqual(srv.connections, 3)

    def test_observe_logs_the_would_be_injection(self):
        """Every decision is logged with "observe":true (docs/design.md 4), the injection too."""
        srv, runs = self.runs()
        for how, r, evs in runs:
            with self.subTest(how=how):
                self.assertOk(r, how)
                inj = events_of(evs, "injected", rule="web", op="connect")
                self.assertEqual(len(inj), 1, "%s: want one would-be injection:\n%s"
                                 % (how, describe(evs)))
                self.assertEqual((inj[0].get("observe"), inj[0].get("injected"),
                                  inj[0].get("err"), inj[0].get("dest")),
                                 (True, True, "ECONNREFUSED", srv.dest), describe(evs))

    def test_observe_logs_would_be_injection_on_resolve(self):
        srv = self.track(Server(http_handler))
        pol, log = self.wd.policy(rule("dns", ["resolve"], host=["localhost"], body=(
            "    retry: { attempts: 3, backoff: { base: 10ms, max: 50ms } }\n"
            "    inject: [{ errno: EAI_AGAIN }]\n")))
        r = bulwark_run(["--observe", "-c", pol],
                        [PYTHON, "-c", PY_RESOLVE, "localhost", str(srv.port)])
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ok", repr(r))
        evs = self.events(log)
        inj = events_of(evs, "injected", rule="dns")
        self.assertGreaterEqual(len(inj), 1, describe(evs))
        for e in inj:
            self.assertEqual((e.get("observe"), e.get("err")), (True, "EAI_AGAIN"),
                             describe(evs))
        self.assertFalse(events_of(evs, "fail") + events_of(evs, "retry"), describe(evs))


@unittest.skipUnless(CURL, "curl is not installed")
class InjectNonblockingObserveRule(InjectTest):
    """A rule with `nonblocking: observe` and an inject entry on connect: curl's
    non-blocking connect must either get the injected fault (a non-blocking connect that
    fails at once is ordinary) or the policy must be refused. Silently never injecting
    is neither."""

    def test_inject_applies_or_is_refused(self):
        srv = self.track(Server(http_handler))
        pol, log = self.wd.policy(rule("web", ["connect"], [srv.dest],
                                       "    nonblocking: observe\n"
                                       "    inject: [{ ops: [connect], errno: ECONNREFUSED }]\n"))
        chk = run([TOOL, "check", pol], timeout=10)
        if chk.rc != 0:
            return      # refused at validation: a sound answer
        r = run(curl("http://%s/" % srv.dest, 15), shim=True, policy=pol)
        evs = self.events(log)
        self.assertEqual(r.rc, 7, "curl should meet the injected refusal\n%r\n%s"
                         % (r, describe(evs)))
        self.assertInjected(evs, 1, rule="web", err="ECONNREFUSED")


# -- 8. bulwark run --seed ----------------------------------------------------------------

class RunSeed(InjectTest):
    """`bulwark run --seed N` sets the seed (start event "seed":N) and with it which
    connects are injected; BULWARK_SEED under plain LD_PRELOAD is the same seed."""

    N = 40

    def test_seed_makes_injection_reproducible(self):
        srv = self.track(Server(lambda c: None))
        pol, log = self.wd.policy(rule("web", ["connect"], [srv.dest],
                                       "    retry: off\n"
                                       "    inject: [{ ops: [connect], errno: ECONNREFUSED,"
                                       " probability: 50% }]\n"))

        def once(seed, plain=False):
            if os.path.exists(log):
                os.unlink(log)
            cmd = [PYTHON, "-c", PY_CONNECTS, str(srv.port), str(self.N)]
            if plain:
                r = run(cmd, shim=True, policy=pol, env={"BULWARK_SEED": seed})
            else:
                r = bulwark_run(["--seed", str(seed), "-c", pol], cmd)
            self.assertOk(r)
            evs = self.events(log)
            ctx = "%r\n%s" % (r, describe(evs))
            starts = events_of(evs, "start")
            self.assertEqual([e.get("seed") for e in starts], [seed] * len(starts), ctx)
            seq = r.stdout.split()
            self.assertEqual(len(seq), self.N, ctx)
            self.assertEqual(seq.count("refused"),
                             len(events_of(evs, "injected", rule="web")), ctx)
            return seq

        a = once(42)
        self.assertIn("refused", a)
        self.assertIn("ok", a)
        self.assertEqual(once(42), a, "the same seed, the same connects refused")
        self.assertEqual(once(42, plain=True), a, "BULWARK_SEED=42 is --seed 42")
        self.assertNotEqual(once(43), a, "another seed, other connects")


# -- 9. bulwark report over several processes ----------------------------------------------

class ReportInjected(InjectTest):
    """Three processes with injected faults write to one log; `bulwark report` in all
    three formats counts the injections per rule and destination."""

    def setUp(self):
        super().setUp()
        why = report_missing()
        if why:
            self.skipTest(why)

    def make_log(self):
        web = self.track(Server(http_handler))
        api = self.track(Server(http_handler))
        rules = (rule("web", ["connect"], [web.dest],
                      "    retry: { attempts: 4, backoff: { base: 10ms, max: 50ms } }\n"
                      "    inject: [{ ops: [connect], errno: ECONNREFUSED, count: 2 }]\n")
                 + rule("api", ["connect"], [api.dest],
                        "    retry: off\n"
                        "    inject: [{ ops: [connect], errno: ECONNREFUSED, count: 1 }]\n"))
        pol, log = self.wd.policy(rules, level="info")
        # 1: python3 to web (2 injected, recovered); 2: python3 to web again (2, recovered);
        # 3: python3 to api (1 injected, fails).
        for port, want in ((web.port, 0), (web.port, 0), (api.port, 1)):
            r = run(py("import socket,sys\ntry:\n socket.create_connection(('127.0.0.1', %d))"
                       "\nexcept ConnectionRefusedError:\n sys.exit(1)\n" % port),
                    shim=True, policy=pol)
            self.assertEqual(r.rc, want, repr(r))
        evs = read_events(log)
        self.assertEqual(len({e["pid"] for e in events_of(evs, "start")}), 3, describe(evs))
        self.assertEqual(len(events_of(evs, "injected")), 5, describe(evs))
        return web, api, log

    def report(self, fmt, log):
        r = run([TOOL, "report", "--format", fmt, log], timeout=20)
        self.assertOk(r, "bulwark report --format " + fmt)
        return r.stdout

    def test_json(self):
        web, api, log = self.make_log()
        doc = json.loads(self.report("json", log))
        self.assertEqual(doc.get("processes"), 3, json.dumps(doc, indent=1))
        by = {(d["rule"], d["dest"]): d for d in doc["destinations"]}
        self.assertIn(("web", web.dest), by, json.dumps(doc, indent=1))
        self.assertIn(("api", api.dest), by, json.dumps(doc, indent=1))
        w, a = by[("web", web.dest)], by[("api", api.dest)]
        self.assertEqual((w["injected"], w["failures"], w["recovered"]), (4, 4, 2), w)
        self.assertEqual(w["errors"], {"ECONNREFUSED": 4}, w)
        self.assertEqual((a["injected"], a["failures"], a["recovered"]), (1, 1, 0), a)
        rules = {x["rule"]: x for x in doc["rules"]}
        self.assertEqual((rules["web"]["injected"], rules["api"]["injected"]), (4, 1), rules)
        self.assertEqual(rules["web"]["processes"], 3, rules)

    def test_prometheus(self):
        web, api, log = self.make_log()
        text = self.report("prometheus", log)
        samples = {}
        for line in text.splitlines():
            m = re.match(r'^bulwark_injected_total\{rule="([^"]*)",dest="([^"]*)"\} (\S+)$', line)
            if m:
                samples[(m.group(1), m.group(2))] = float(m.group(3))
        self.assertEqual(samples.get(("web", web.dest)), 4, text)
        self.assertEqual(samples.get(("api", api.dest)), 1, text)
        self.assertIn("# TYPE bulwark_injected_total counter", text)
        m = re.search(r'^bulwark_rule_injected_total\{rule="web"\} (\S+)$', text, re.M)
        self.assertTrue(m and float(m.group(1)) == 4, text)

    def test_table(self):
        web, api, log = self.make_log()
        text = self.report("table", log)
        self.assertIn("3 processes", text, text)
        # The INJECT column of the rule/destination rows.
        found = {}
        head = None
        for line in text.splitlines():
            cols = line.split()
            if "INJECT" in cols and cols[:2] == ["RULE", "DEST"]:
                head = cols
                continue
            if not cols:
                head = None
                continue
            if head and len(cols) == len(head):
                found[(cols[0], cols[1])] = cols[head.index("INJECT")]
        self.assertEqual(found.get(("web", web.dest)), "4", text)
        self.assertEqual(found.get(("api", api.dest)), "1", text)


if __name__ == "__main__":
    unittest.main()
