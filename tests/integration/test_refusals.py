"""A failure made by bulwark is the real failure, output for output.

When a policy refuses a call (an open breaker, a limiter with `on_limit: fail`) or injects
a fault (errno, delay, partial, eof, reset), the program must see what the real function
gives for that failure: the return value, errno (h_errno, the EAI code, the SQLite result
code and message), and every output parameter written, or left alone, exactly as the real
function does. A result pointer left unwritten while success is reported crashes the
program; a pointer written where the real call leaves it alone is as wrong.

Small C programs (progs/resolve_probe.c, progs/io_probe.c, progs/sqlite/sqlite_probe.c)
make each call with every output set to a sentinel and print what came back. Where the
real failure can be produced (a reset, an EOF, a refused connect, a held SQLite lock, and
for the resolver a DNS server that answers SERVFAIL or NXDOMAIN), the program runs once
bare against it and once under a policy that makes the same failure, and the printed lines
must be identical. Where it cannot (an aborted accept), the expectation is the kernel's
rule that a failed call writes nothing.

Each socket hook found wrong here was mended; the comment above its test says what it
once did.
"""

import os
import re
import shutil
import sqlite3
import sys
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (HERE, PYTHON, ShimTest, SqliteShimTest, describe, events_of, prog, py,
                     read_events, rule, run)

SQLITE_PROBE_SRC = os.path.join(HERE, "progs", "sqlite", "sqlite_probe.c")
RESOLVER_CALLS = ("getaddrinfo", "gethostbyname", "gethostbyname2", "gethostbyname_r")

# What glibc gives for a temporary failure (a DNS server that answers SERVFAIL) and for a
# name that does not exist (NXDOMAIN). ResolverReference checks these against glibc itself.
GLIBC_AGAIN = {
    "getaddrinfo": "getaddrinfo rc=EAI_AGAIN errno=EAGAIN res=untouched",
    "gethostbyname": "gethostbyname ret=NULL h_errno=TRY_AGAIN errno=EAGAIN",
    "gethostbyname2": "gethostbyname2 ret=NULL h_errno=TRY_AGAIN errno=EAGAIN",
    "gethostbyname_r": "gethostbyname_r rc=EAGAIN errno=EAGAIN result=NULL h_errnop=TRY_AGAIN",
}
GLIBC_NONAME = {
    "getaddrinfo": "getaddrinfo rc=EAI_NONAME errno=0 res=untouched",
    "gethostbyname": "gethostbyname ret=NULL h_errno=HOST_NOT_FOUND errno=0",
    "gethostbyname2": "gethostbyname2 ret=NULL h_errno=HOST_NOT_FOUND errno=0",
    "gethostbyname_r": "gethostbyname_r rc=0 errno=0 result=NULL h_errnop=HOST_NOT_FOUND",
}

# A DNS server for ResolverReference: SERVFAIL, or NXDOMAIN for names whose first label
# is "nx". It stops after 10 s without a query.
FAKE_DNS = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
s.settimeout(10)
print("ready", flush=True)
try:
    while True:
        q, peer = s.recvfrom(4096)
        rcode = 3 if q[12:15] == b"\\x02nx" else 2
        flags = 0x8000 | (q[2] & 0x79) << 8 | 0x80 | rcode
        s.sendto(q[:2] + bytes([flags >> 8, flags & 0xff]) + q[4:6] + bytes(6) + q[12:], peer)
except socket.timeout:
    pass
"""

# Inside a private mount and network namespace: loopback up, name lookups through
# /etc/hosts and DNS only, DNS at the fake server; "setup done" once all that worked, then
# the probe for both kinds of failure.
IN_NAMESPACE = """
set -e
%(py)s -c 'import fcntl, socket, struct
s = socket.socket()
req = struct.pack("16sH", b"lo", 0)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, req))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))'
mount --bind %(resolv)s /etc/resolv.conf
mount --bind %(nsswitch)s /etc/nsswitch.conf
%(py)s %(dns)s > %(ready)s &
i=0
while [ ! -s %(ready)s ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -s %(ready)s ]
echo "setup done"
%(probe)s again.example.test %(calls)s
%(probe)s nx.example.test %(calls)s
kill $! 2>/dev/null || true
"""


def lines_of(r):
    """A probe's output lines, without the closing "done" (whose absence fails)."""
    out = r.stdout.strip().splitlines()
    if not out or out[-1] != "done":
        raise AssertionError("the probe did not finish:\n%r" % r)
    return out[:-1]


def fields(line):
    """A probe line's call and key=value fields (a quoted value may hold spaces)."""
    out = {"call": line.split(" ", 1)[0]}
    out.update(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    return out


class ResolverReference(ShimTest):
    """The expectations above are glibc's own: the probe, bare, against a DNS server that
    answers SERVFAIL and one that answers NXDOMAIN. Needs root for a private network and
    mount namespace (unshare); skipped elsewhere."""

    def test_expectations_are_glibcs(self):
        unshare = shutil.which("unshare")
        if not unshare or os.geteuid() != 0:
            self.skipTest("needs root and unshare(1) for a private resolv.conf")
        resolv = self.wd.write("resolv.conf", "nameserver 127.0.0.1\noptions attempts:1\n")
        nsswitch = self.wd.write("nsswitch.conf", "hosts: files dns\n")
        dns = self.wd.write("fakedns.py", FAKE_DNS)
        script = IN_NAMESPACE % {
            "py": PYTHON, "resolv": resolv, "nsswitch": nsswitch, "dns": dns,
            "ready": self.wd.file("ready"), "probe": prog("resolve_probe"),
            "calls": " ".join(RESOLVER_CALLS)}
        r = run([unshare, "-mn", "sh", "-c", script])
        out = r.stdout.strip().splitlines()
        if not out or out[0] != "setup done":
            self.skipTest("no private namespace here: %s" % r.stderr.strip()[:200])
        self.assertEqual(r.rc, 0, repr(r))
        self.assertEqual(out[1:], [GLIBC_AGAIN[c] for c in RESOLVER_CALLS] + ["done"]
                         + [GLIBC_NONAME[c] for c in RESOLVER_CALLS] + ["done"], repr(r))


class ResolveRefusals(ShimTest):
    """getaddrinfo and the gethostbyname family, refused or failed by a resolve rule on
    localhost (which /etc/hosts answers, so no DNS server is involved)."""

    def probe(self, policy_rule, *calls):
        pol, log = self.wd.policy(policy_rule)
        if os.path.exists(log):
            os.unlink(log)     # each run's own events
        r = run([prog("resolve_probe"), "localhost"] + list(calls), shim=True, policy=pol)
        self.assertEqual(r.rc, 0, "the program died: %r" % r)
        return lines_of(r), read_events(log), r

    def test_limiter_fail(self):
        """One lookup an hour: the second one is refused as a temporary failure."""
        pol = rule("r", ["resolve"], host=["localhost"], body="""
            rate_limit: { rate: 1/h, burst: 1, on_limit: fail, scope: rule }
            """)
        for call in RESOLVER_CALLS:
            with self.subTest(call=call):
                out, events, r = self.probe(pol, call, call)
                ctx = "%r\n%s" % (r, describe(events))
                self.assertEqual(len(out), 2, ctx)
                self.assertNotIn("NULL", out[0], "the first lookup is allowed\n" + ctx)
                self.assertEqual(out[1], GLIBC_AGAIN[call], ctx)
                limited = events_of(events, "limited", op="resolve", call=call)
                self.assertEqual(len(limited), 1, ctx)
                self.assertEqual(limited[0].get("err"), "EAI_AGAIN", ctx)

    def test_open_breaker_and_injected_failure(self):
        """Two injected EAI_AGAIN open the breaker, the third lookup is refused by it:
        all three are a temporary failure, as glibc reports one."""
        pol = rule("r", ["resolve"], body="""
            breaker: { trip: { consecutive: 2 }, open_for: 1h }
            inject: [ { errno: EAI_AGAIN, count: 2 } ]
            """)
        for call in RESOLVER_CALLS:
            with self.subTest(call=call):
                out, events, r = self.probe(pol, call, call, call)
                ctx = "%r\n%s" % (r, describe(events))
                self.assertEqual(out, [GLIBC_AGAIN[call]] * 3, ctx)
                self.assertEqual(len(events_of(events, "rejected", call=call)), 1, ctx)

    def test_breaker_opens_inside_a_retry(self):
        """The breaker opens between two attempts of one lookup: the call ends with the
        refusal, reported as the same temporary failure."""
        pol = rule("r", ["resolve"], body="""
            retry: { attempts: 3, backoff: { base: 1ms, max: 2ms } }
            breaker: { trip: { consecutive: 2 }, open_for: 1h }
            inject: [ { errno: EAI_AGAIN, count: 2 } ]
            """)
        for call in RESOLVER_CALLS:
            with self.subTest(call=call):
                out, events, r = self.probe(pol, call)
                ctx = "%r\n%s" % (r, describe(events))
                self.assertEqual(out, [GLIBC_AGAIN[call]], ctx)
                gave = events_of(events, "gave_up", call=call)
                self.assertEqual([g.get("reason") for g in gave], ["breaker"], ctx)

    def test_injected_noname(self):
        """An injected EAI_NONAME is the answer glibc gives for a name that does not
        exist."""
        pol = rule("r", ["resolve"], body="inject: [ { errno: EAI_NONAME } ]")
        for call in RESOLVER_CALLS:
            with self.subTest(call=call):
                out, events, r = self.probe(pol, call)
                self.assertEqual(out, [GLIBC_NONAME[call]], "%r\n%s" % (r, describe(events)))

    def test_configured_refusal_code(self):
        """A breaker configured to refuse with EAI_FAIL: getaddrinfo returns it, and the
        gethostbyname family reports the matching NO_RECOVERY with no result."""
        pol = rule("r", ["resolve"], body="""
            breaker: { trip: { consecutive: 1 }, open_for: 1h, errno: EAI_FAIL }
            inject: [ { errno: EAI_AGAIN, count: 1 } ]
            """)
        want = {
            "getaddrinfo": "getaddrinfo rc=EAI_FAIL errno=EDOM(untouched) res=untouched",
            "gethostbyname": "gethostbyname ret=NULL h_errno=NO_RECOVERY errno=ECONNREFUSED",
            "gethostbyname2": "gethostbyname2 ret=NULL h_errno=NO_RECOVERY errno=ECONNREFUSED",
            "gethostbyname_r": "gethostbyname_r rc=ECONNREFUSED errno=ECONNREFUSED "
                               "result=NULL h_errnop=NO_RECOVERY",
        }
        for call in RESOLVER_CALLS:
            with self.subTest(call=call):
                out, events, r = self.probe(pol, call, call)
                self.assertEqual(out, [GLIBC_AGAIN[call], want[call]],
                                 "%r\n%s" % (r, describe(events)))

    def test_injected_delay_changes_nothing(self):
        """A delay, then the real lookup: every output as without the shim."""
        pol = rule("r", ["resolve"], body="inject: [ { delay: 1ms } ]")
        for call in RESOLVER_CALLS:
            with self.subTest(call=call):
                bare = run([prog("resolve_probe"), "localhost", call])
                out, events, r = self.probe(pol, call)
                self.assertEqual(out, lines_of(bare), "%r\n%s" % (r, describe(events)))
                self.assertTrue(events_of(events, "injected"), describe(events))

    def test_python_sees_a_temporary_failure(self):
        """Python's socket.getaddrinfo under the limiter: the second lookup raises
        socket.gaierror EAI_AGAIN, "Temporary failure in name resolution"."""
        code = textwrap.dedent("""
            import socket
            for i in range(2):
                try:
                    socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
                    print("ok")
                except socket.gaierror as e:
                    print(e.errno == socket.EAI_AGAIN, e.strerror)
            """)
        pol, log = self.wd.policy(rule("r", ["resolve"], body="""
            rate_limit: { rate: 1/h, burst: 1, on_limit: fail }
            """))
        r = run(py(code), shim=True, policy=pol)
        self.assertEqual((r.rc, r.stdout.splitlines()),
                         (0, ["ok", "True Temporary failure in name resolution"]), repr(r))


class SqliteRefusals(SqliteShimTest):
    """SQLite statements refused by a breaker or a limiter, or failed by an injected fault,
    against the same statements meeting a real lock: another connection (this test
    process, which is never preloaded) holds the write lock."""

    def sqlite_probe(self):
        return self.sqlite_prog(SQLITE_PROBE_SRC)

    def notes(self, db):
        c = sqlite3.connect(db, timeout=10)
        try:
            self.assertEqual(c.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            return sorted(r[0] for r in c.execute("SELECT note FROM ledger"))
        finally:
            c.close()

    def run_probe(self, db, n=3, busy_ms=None, policy=None, held=False):
        """(lines to compare, elapsed ms per step, Result). held: this process holds the
        write lock meanwhile."""
        argv = [self.sqlite_probe(), db, str(n)] + ([str(busy_ms)] if busy_ms else [])
        holder = None
        if held:
            holder = sqlite3.connect(db, timeout=10, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
        try:
            r = run(argv, shim=policy is not None, policy=policy)
        finally:
            if holder:
                holder.execute("ROLLBACK")
                holder.close()
        self.assertEqual(r.rc, 0, "the program died: %r" % r)
        out, elapsed = [], {}
        for line in lines_of(r):
            if line.startswith("elapsed "):
                _, i, ms = line.split()
                elapsed[int(i)] = float(ms)
            else:
                out.append(line)
        return out, elapsed, r

    def references(self, wal=False):
        """The probe bare on a free database, and bare against a held lock."""
        free, _, _ = self.run_probe(self.make_db("free.db", wal))
        held, _, _ = self.run_probe(self.make_db("held.db", wal), held=True)
        self.assertIn("step rc=SQLITE_BUSY ext=SQLITE_BUSY msg=database is locked "
                      "autocommit=1", held)
        return free, held

    def sq_policy(self, extra, db_glob="*/app.db", **kw):
        return self.wd.policy(rule("db", ["sqlite"], db=[db_glob], body=extra), **kw)

    def test_limiter_fail_is_a_held_lock(self):
        """One statement an hour: the first INSERT runs; the two after it and the exec
        meet "database is locked" exactly as against a held lock, with every statement
        prepared for real (prepare has no effect: the limit applies to the step). No
        INSERT is lost while reported done, none runs while reported refused. The same in
        WAL mode, where a writer's lock is in the shared-memory index."""
        for wal in (False, True):
            with self.subTest(wal=wal):
                free, held = self.references(wal)
                db = self.make_db(wal=wal)
                pol, log = self.sq_policy("rate_limit: { rate: 1/h, burst: 1, on_limit: fail }",
                                          log="events-%s.log" % wal)
                out, _, r = self.run_probe(db, policy=pol)
                events = read_events(log)
                ctx = "%r\n%s" % (r, describe(events))
                # block i: prepare, step, reset, finalize
                self.assertEqual(out, free[:4] + held[4:], ctx)
                self.assertEqual(self.notes(db), ["p-0"], ctx)
                limited = events_of(events, "limited", rule="db")
                self.assertEqual([e.get("call") for e in limited], ["sqlite3_step"] * 3, ctx)

    def test_wal_reader_is_never_refused_into_a_protocol_error(self):
        """In WAL mode a reader never waits for a writer, so a refusal, which stands for a
        held lock, leaves a SELECT to run; it never ends in SQLITE_PROTOCOL ("locking
        protocol"), which SQLite gives when a reader's own slots stay busy."""
        db = self.make_db(wal=True)
        code = textwrap.dedent("""
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            for sql in ("INSERT INTO ledger(note) VALUES ('w-0')",
                        "INSERT INTO ledger(note) VALUES ('w-1')", "SELECT count(*) FROM ledger"):
                try:
                    print(c.execute(sql).fetchall())
                except sqlite3.Error as e:
                    print(type(e).__name__, e)
            """)
        pol, log = self.sq_policy("rate_limit: { rate: 1/h, burst: 1, on_limit: fail }")
        r = run(py(code, db), shim=True, policy=pol)
        self.assertEqual((r.rc, r.stdout.splitlines()),
                         (0, ["[]", "OperationalError database is locked", "[(1,)]"]),
                         "%r\n%s" % (r, describe(read_events(log))))

    def test_open_breaker_is_a_held_lock(self):
        """An injected busy lock opens the breaker; every later statement is refused: the
        whole run is the same as against a held lock, and nothing is written."""
        _, held = self.references()
        db = self.make_db()
        pol, log = self.sq_policy("""
            breaker: { trip: { consecutive: 1 }, open_for: 1h }
            inject: [ { errno: SQLITE_BUSY, count: 1 } ]
            """)
        out, _, r = self.run_probe(db, policy=pol)
        events = read_events(log)
        ctx = "%r\n%s" % (r, describe(events))
        self.assertEqual(out, held, ctx)
        self.assertEqual(self.notes(db), [], ctx)
        self.assertEqual(len(events_of(events, "rejected", rule="db")), 3, ctx)

    def test_refusal_does_not_wait_out_the_busy_timeout(self):
        """The program's busy handler is called as for a real conflict, but the refused
        lock is never going to be released by another connection: its waits pass at once
        instead of taking the whole busy timeout (5 s here) for each statement."""
        _, held = self.references()
        db = self.make_db()
        pol, log = self.sq_policy("rate_limit: { rate: 1/h, burst: 1, on_limit: fail }")
        out, elapsed, r = self.run_probe(db, busy_ms=5000, policy=pol)
        ctx = "%r\n%s" % (r, describe(read_events(log)))
        self.assertEqual(out[4:], held[4:], ctx)
        for i in (1, 2):
            self.assertLess(elapsed[i], 2500, ctx)

    def test_configured_refusal_code(self):
        """A limiter that refuses with SQLITE_IOERR: the refused lock fails with it, so
        SQLite reports the I/O error of a failed lock (SQLITE_IOERR_LOCK)."""
        db = self.make_db()
        pol, log = self.sq_policy(
            "rate_limit: { rate: 1/h, burst: 1, on_limit: fail, errno: SQLITE_IOERR }")
        out, _, r = self.run_probe(db, n=2, policy=pol)
        ctx = "%r\n%s" % (r, describe(read_events(log)))
        self.assertEqual(out[5:7], ["step rc=SQLITE_IOERR ext=SQLITE_IOERR_LOCK msg=disk I/O error "
                                    "autocommit=1", "reset rc=SQLITE_IOERR msg=disk I/O error"],
                         ctx)
        self.assertEqual(self.notes(db), ["p-0"], ctx)

    def test_injected_busy_lock(self):
        """An injected SQLITE_BUSY is a held lock for the statement it meets, in rollback
        and in WAL mode; the statements after it run."""
        for wal in (False, True):
            with self.subTest(wal=wal):
                free, held = self.references(wal)
                db = self.make_db(wal=wal)
                pol, log = self.sq_policy("inject: [ { errno: SQLITE_BUSY, count: 1 } ]",
                                          log="events-%s.log" % wal)
                out, _, r = self.run_probe(db, policy=pol)
                ctx = "%r\n%s" % (r, describe(read_events(log)))
                self.assertEqual(out, held[:4] + free[4:], ctx)
                self.assertEqual(self.notes(db), ["exec", "p-1", "p-2"], ctx)

    def test_injected_io_error(self):
        """An injected SQLITE_IOERR: the step fails with an I/O error SQLite itself met
        (extended code, message and reset agree), the statement is not run, and the next
        ones run normally."""
        free, _ = self.references()
        db = self.make_db()
        pol, log = self.sq_policy("inject: [ { errno: SQLITE_IOERR, count: 1 } ]")
        out, _, r = self.run_probe(db, policy=pol)
        ctx = "%r\n%s" % (r, describe(read_events(log)))
        self.assertEqual(out[0], free[0], ctx)
        self.assertRegex(out[1], r"^step rc=SQLITE_IOERR ext=SQLITE_IOERR_(READ|WRITE|SHORT_READ)"
                                 r" msg=disk I/O error autocommit=1$", ctx)
        self.assertEqual(out[2], "reset rc=SQLITE_IOERR msg=disk I/O error", ctx)
        self.assertEqual(out[4:], free[4:], ctx)
        self.assertEqual(self.notes(db), ["exec", "p-1", "p-2"], ctx)

    def test_injected_delay_changes_nothing(self):
        free, _ = self.references()
        db = self.make_db()
        pol, log = self.sq_policy("inject: [ { delay: 1ms } ]")
        out, _, r = self.run_probe(db, policy=pol)
        self.assertEqual(out, free, "%r\n%s" % (r, describe(read_events(log))))
        self.assertEqual(self.notes(db), ["exec", "p-0", "p-1", "p-2"])

    PY_THREE = textwrap.dedent("""
        import sqlite3, sys
        c = sqlite3.connect(sys.argv[1], isolation_level=sys.argv[2] or None)
        out = []
        for i in range(3):
            try:
                c.execute("INSERT INTO ledger(note) VALUES (?)", ("py-%d" % i,))
                out.append("ok")
            except sqlite3.OperationalError as e:
                out.append("OperationalError: %s" % e)
        try:
            c.commit()
            out.append("commit ok")
        except sqlite3.OperationalError as e:
            out.append("commit OperationalError: %s" % e)
        print("\\n".join(out))
        """)

    def interpreters(self):
        """Debian's python3 and the one running the tests (pyenv's here), each once."""
        seen = []
        for p in (PYTHON, "/usr/bin/python3"):
            if os.path.exists(p) and os.path.realpath(p) not in seen:
                seen.append(os.path.realpath(p))
        return seen

    def test_python_three_inserts(self):
        """python3's sqlite3, three INSERTs under `on_limit: fail` with its default
        settings (5 s busy timeout): OperationalError "database is locked" for each
        refused one, never a crash, and exactly the INSERTs reported done are there."""
        for interp in self.interpreters():
            for isolation in ("", "DEFERRED"):
                with self.subTest(python=interp, isolation=isolation or "autocommit"):
                    db = self.make_db()
                    pol, log = self.sq_policy(
                        "rate_limit: { rate: 1/h, burst: 1, on_limit: fail }")
                    if os.path.exists(log):
                        os.unlink(log)
                    argv = [interp, "-c", self.PY_THREE, db, isolation]
                    r = run(argv, shim=True, policy=pol)
                    events = read_events(log)
                    ctx = "%r\n%s" % (r, describe(events))
                    self.assertEqual(r.rc, 0, ctx)
                    out = r.stdout.splitlines()
                    self.assertEqual(len(out), 4, ctx)
                    locked = "OperationalError: database is locked"
                    for line in out[:3]:
                        self.assertIn(line, ("ok", locked), ctx)
                    self.assertIn(locked, out[:3], "nothing was refused\n" + ctx)
                    self.assertTrue(events_of(events, "limited", rule="db"), ctx)
                    done = ["py-%d" % i for i in range(3) if out[i] == "ok"]
                    if out[3] != "commit ok":
                        self.assertEqual(out[3], "commit " + locked, ctx)
                        done = [] if isolation else done
                    self.assertEqual(self.notes(db), done, ctx)


# ---- sockets ------------------------------------------------------------------------

RECV_CALLS = ("recv", "recvfrom", "recvmsg", "recvmmsg", "read", "readv")
SEND_CALLS = ("send", "sendto", "sendmsg", "sendmmsg", "write", "writev")


class SocketFaults(ShimTest):
    """connect, accept and the send and receive families under a rule on 127.0.0.1:
    each refusal and injected fault against the real failure of the same kind."""

    def io_rule(self, extra, ops=("connect", "accept", "send", "recv")):
        return self.wd.policy(rule("io", list(ops), ["127.0.0.1/32"], extra))

    def bare(self, call, peer, then=False):
        r = run([prog("io_probe"), call, peer] + (["then"] if then else []))
        self.assertEqual(r.rc, 0, repr(r))
        return lines_of(r)

    def shimmed(self, pol, log, call, peer="data", then=False):
        if os.path.exists(log):
            os.unlink(log)
        r = run([prog("io_probe"), call, peer] + (["then"] if then else []), shim=True,
                policy=pol)
        ctx = "%r\n%s" % (r, describe(read_events(log)))
        self.assertEqual(r.rc, 0, ctx)
        return lines_of(r), ctx

    def same_as_real(self, calls, extra, real_peer, lines=1, then=False):
        """For each call: the first `lines` lines under the fault equal the bare run that
        met the real failure (peer `real_peer`)."""
        pol, log = self.io_rule(extra)
        for call in calls:
            with self.subTest(call=call):
                want = self.bare(call, real_peer, then)[:lines]
                got, ctx = self.shimmed(pol, log, call, then=then)
                self.assertEqual(got[:lines], want, ctx)

    # -- receive ---------------------------------------------------------------------

    def test_recv_injected_errno(self):
        self.same_as_real(RECV_CALLS, "inject: [ { ops: [recv], errno: ECONNRESET, count: 1 } ]",
                          "rst")

    def test_recv_injected_reset(self):
        self.same_as_real(RECV_CALLS, "inject: [ { ops: [recv], reset: true, count: 1 } ]",
                          "rst")

    # An injected reset leaves the socket as a real one does: the next receive reads
    # EOF (0). (connect(AF_UNSPEC) alone left the pending error set and the shutdown
    # flags clear, and the next receive failed with ECONNRESET again.)
    def test_recv_after_injected_reset(self):
        self.same_as_real(RECV_CALLS, "inject: [ { ops: [recv], reset: true, count: 1 } ]",
                          "rst", lines=2, then=True)

    def test_recv_injected_eof_plain(self):
        self.same_as_real(("recv", "read", "readv"),
                          "inject: [ { ops: [recv], eof: true, count: 1 } ]", "eof")

    # An injected eof writes the outputs of a real one, a zero-byte read: recvfrom's
    # *fromlen = 0; recvmsg's msg_namelen, msg_flags and msg_controllen = 0; recvmmsg
    # returns vlen with every msg_len 0. (It once wrote none of them, and recvmmsg
    # returned 0, which the kernel never does.)
    def test_recv_injected_eof_outputs(self):
        self.same_as_real(("recvfrom", "recvmsg", "recvmmsg"),
                          "inject: [ { ops: [recv], eof: true, count: 1 } ]", "eof")

    def test_recv_injected_partial(self):
        """A short read: fewer bytes, a prefix of the data, every other output as the
        kernel writes it for a read of that size."""
        pol, log = self.io_rule("inject: [ { ops: [recv], partial: true, count: 1 } ]")
        for call in RECV_CALLS:
            with self.subTest(call=call):
                want = fields(self.bare(call, "data")[0])
                got, ctx = self.shimmed(pol, log, call)
                got = fields(got[0])
                rc = int(got["rc"])
                self.assertTrue(1 <= rc <= 11, ctx)
                if call != "recvmmsg":     # a list of messages is never cut
                    data = got["buf"][1:-1]
                    self.assertEqual((len(data), "hello world".startswith(data)), (rc, True), ctx)
                    got["rc"] = got["buf"] = want["rc"] = want["buf"] = "-"
                self.assertEqual(got, want, ctx)

    def test_recv_injected_delay(self):
        self.same_as_real(RECV_CALLS, "inject: [ { ops: [recv], delay: 1ms } ]", "data")

    # -- send ------------------------------------------------------------------------

    def test_send_injected_errno(self):
        self.same_as_real(SEND_CALLS, "inject: [ { ops: [send], errno: ECONNRESET, count: 1 } ]",
                          "rst")

    # An injected EPIPE comes with SIGPIPE, as the kernel's does (unless MSG_NOSIGNAL):
    # a program that relies on its SIGPIPE handler or on the default action behaves the
    # same.
    def test_send_injected_epipe(self):
        self.same_as_real(SEND_CALLS, "inject: [ { ops: [send], errno: EPIPE, count: 1 } ]",
                          "rst-epipe")

    def test_send_injected_reset(self):
        self.same_as_real(SEND_CALLS, "inject: [ { ops: [send], reset: true, count: 1 } ]",
                          "rst")

    # After an injected reset, as after a real one, the next send fails with EPIPE and
    # SIGPIPE (it once failed with ECONNRESET again, no signal).
    def test_send_after_injected_reset(self):
        self.same_as_real(SEND_CALLS, "inject: [ { ops: [send], reset: true, count: 1 } ]",
                          "rst", lines=2, then=True)

    def test_send_injected_partial(self):
        pol, log = self.io_rule("inject: [ { ops: [send], partial: true, count: 1 } ]")
        for call in SEND_CALLS:
            with self.subTest(call=call):
                got, ctx = self.shimmed(pol, log, call)
                if call == "sendmmsg":     # a list of messages is never cut
                    self.assertEqual(got, self.bare(call, "data"), ctx)
                    continue
                f = fields(got[0])
                self.assertTrue(1 <= int(f["rc"]) <= 11, ctx)
                self.assertEqual((f["errno"], f["sigpipe"]), ("0", "0"), ctx)

    def test_send_injected_delay(self):
        self.same_as_real(SEND_CALLS, "inject: [ { ops: [send], delay: 1ms } ]", "data")

    # -- accept ----------------------------------------------------------------------

    def test_accept_injected_errno(self):
        """A failed accept writes neither the address nor its length; the next one is
        the kernel's."""
        pol, log = self.io_rule("inject: [ { ops: [accept], errno: ECONNABORTED, count: 1 } ]")
        for call in ("accept", "accept4"):
            with self.subTest(call=call):
                got, ctx = self.shimmed(pol, log, call, then=True)
                self.assertEqual(got, ["%s rc=-1 errno=ECONNABORTED addr=untouched addrlen=127"
                                       % call, self.bare(call, "data")[0]], ctx)
                got, ctx = self.shimmed(pol, log, call, "small")
                self.assertEqual(got, ["%s rc=-1 errno=ECONNABORTED family=-1 "
                                       "written_beyond_len=0 addrlen=4" % call], ctx)

    def test_accept_injected_delay(self):
        """Then the real accept: the address, cut to a short buffer, and its full length,
        as the kernel writes them."""
        pol, log = self.io_rule("inject: [ { ops: [accept], delay: 1ms } ]")
        for call in ("accept", "accept4"):
            for peer in ("data", "small"):
                with self.subTest(call=call, peer=peer):
                    got, ctx = self.shimmed(pol, log, call, peer, then=True)
                    self.assertEqual(got, self.bare(call, peer, then=True), ctx)

    # -- connect ---------------------------------------------------------------------

    def connect_same(self, extra, peer):
        pol, log = self.io_rule(extra, ops=("connect",))
        want = self.bare("connect", peer, then=True)
        got, ctx = self.shimmed(pol, log, "connect", peer, then=True)
        self.assertEqual(got, want, ctx)
        return read_events(log)

    def test_connect_open_breaker(self):
        """Refused by the open breaker as by the kernel: ECONNREFUSED, no error left
        pending, still blocking, and the socket connects later."""
        events = self.connect_same("breaker: { trip: { consecutive: 1 }, open_for: 1h }",
                                   "tripped")
        self.assertEqual(len(events_of(events, "rejected", op="connect")), 1, describe(events))

    def test_connect_limiter_fail(self):
        events = self.connect_same(
            "rate_limit: { rate: 1/h, burst: 1, on_limit: fail }", "tripped")
        self.assertEqual(len(events_of(events, "limited", op="connect")), 1, describe(events))

    def test_connect_injected_errno(self):
        self.connect_same("inject: [ { ops: [connect], errno: ECONNREFUSED, count: 1 } ]",
                          "refused")

    # A delay, then the real connect is refused: the socket is left ready for another
    # connect, as the kernel leaves it (it once failed the next with ECONNABORTED).
    def test_connect_injected_delay(self):
        self.connect_same("inject: [ { ops: [connect], delay: 1ms } ]", "refused")


if __name__ == "__main__":
    unittest.main()
