"""SQLite (bulwark.yaml(5) MATCH `sqlite`, RETRY, BREAKER, RATE_LIMIT, INJECT, EVENTS), with real programs: python3's
sqlite3 module, the sqlite3 command-line shell and a small C program linked against the
system libsqlite3.

Each contention test first runs the writers without the shim, to show that they really
get "database is locked", then under a sqlite rule, where none may. After each run the
table is counted: every row that a program saw committed is there exactly once
(`count(*)` against `count(DISTINCT note)` on unique payloads), so a retry that re-ran a
statement which had already had an effect would show as a duplicate.

What is never retried is tested with the two cases that retrying cannot resolve: a
deferred transaction that holds a read lock and must upgrade it (rollback journal), and
SQLITE_BUSY_SNAPSHOT in WAL mode. Both must come back at once, with a gave_up event
that says why.

The C writer (progs/sqlite/sqlite_client.c) needs libsqlite3: the Makefile builds
progs/ with -lpthread only, so this file compiles it itself (`cc ... -lsqlite3`,
libsqlite3-dev) into a temporary directory, once for the whole file.
"""

import datetime
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

# Also runnable as `python3 -m unittest tests/integration/test_sqlite.py`, without run.py.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CURL, HERE, LIB, RUN_TIMEOUT, Result, SqliteShimTest, base_env, describe,
                     events_of, free_port, kill_group, py, read_events, rule, run, shim_env)

SQLITE3 = shutil.which("sqlite3")
CLIENT_SRC = os.path.join(HERE, "progs", "sqlite", "sqlite_client.c")

# Names that must never show up in an event log (bulwark.yaml(5) EVENTS: never SQL text or parameters).
TABLE = "ledger"
MARK = "s3cret"

# The retry of the brief: about 1.2 s of waiting over 50 attempts, far more than four
# writers holding the lock for a few milliseconds each can need.
RETRY = "{ attempts: 100, backoff: { base: 2ms, max: 50ms, jitter: full }, deadline: 20s }"

# The SQLite functions that may appear as `call` (bulwark.yaml(5) MATCH).
SQLITE_CALLS = {"sqlite3_open", "sqlite3_open_v2", "sqlite3_prepare_v2", "sqlite3_prepare_v3",
                "sqlite3_step", "sqlite3_exec"}

WRITERS = 4

# N transactions of BEGIN IMMEDIATE; INSERT; a little work; COMMIT. timeout=0: no busy
# handler, so a conflict is an error at once. Errors are reported, the transaction rolled
# back, and the writer goes on: it never retries by itself.
PY_WRITER = """
import sqlite3, sys, time
db, wid, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c = sqlite3.connect(db, timeout=0, isolation_level=None)
while time.time() < start:
    time.sleep(0.001)
errors = 0
for i in range(n):
    try:
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO ledger(note) VALUES (?)", ("s3cret-%s-%d" % (wid, i),))
        time.sleep(0.002)
        c.execute("COMMIT")
    except sqlite3.OperationalError as e:
        errors += 1
        print("%d: %s %s" % (i, e.sqlite_errorname, e), file=sys.stderr)
        if c.in_transaction:
            c.execute("ROLLBACK")
print("errors", errors)
"""

# One sqlite3 shell per INSERT, 30 in a row; prints how many failed.
CLI_LOOP = """
db=$1 w=$2 n=$3 e=0 i=1
while [ $i -le $n ]; do
    sqlite3 "$db" "INSERT INTO ledger(note) VALUES('s3cret-$w-$i');" || e=$((e + 1))
    i=$((i + 1))
done
echo errors $e
"""

# The victim of the two unresolvable cases: a transaction that has read (BEGIN, SELECT),
# waits for "go" on stdin, then writes. Python's default timeout (5 s) is kept, so a busy
# handler is installed: SQLite itself does not call it here. Prints one JSON line.
PY_VICTIM = """
import json, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN")
n = c.execute("SELECT count(*) FROM ledger").fetchone()[0]
print("ready", n, flush=True)
sys.stdin.readline()
t0 = time.monotonic()
out = {"rows_seen": n}
try:
    c.execute("INSERT INTO ledger(note) VALUES ('s3cret-victim')")
    out["result"] = "inserted"
except sqlite3.Error as e:
    out.update(result=type(e).__name__, name=getattr(e, "sqlite_errorname", None), msg=str(e))
out["elapsed"] = time.monotonic() - t0
c.execute("ROLLBACK")
print(json.dumps(out), flush=True)
"""

# Statements against a database whose lock the test holds, then (after "go" on stdin)
# one more once it is free, then work on a second database. Every outcome is printed.
PY_BREAKER = """
import json, sqlite3, sys
db, other, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def attempt(c, i):
    try:
        c.execute("INSERT INTO ledger(note) VALUES (?)", ("s3cret-%d" % i,))
        return "ok"
    except sqlite3.OperationalError as e:
        return "OperationalError %s: %s" % (e.sqlite_errorname, e)
    except sqlite3.Error as e:
        return "%s: %s" % (type(e).__name__, e)
c = sqlite3.connect(db, timeout=0, isolation_level=None)
print(json.dumps([attempt(c, i) for i in range(n)]), flush=True)
sys.stdin.readline()
print(json.dumps(attempt(c, n)), flush=True)
o = sqlite3.connect(other, timeout=0, isolation_level=None)
o.execute("CREATE TABLE t(x)")
o.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
print(json.dumps(o.execute("SELECT count(*), sum(x) FROM t").fetchone()), flush=True)
"""

# 41 autocommit INSERTs (the table exists already); prints the time they took.
PY_PACED = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
t0 = time.monotonic()
for i in range(int(sys.argv[2])):
    c.execute("INSERT INTO ledger(note) VALUES (?)", ("s3cret-%d" % i,))
print("%.3f" % (time.monotonic() - t0))
"""

# An autocommit INSERT with the program's own busy timeout (seconds in argv[2]); prints
# the wall-clock time it started at, then the outcome and how long it took.
PY_OWN_TIMEOUT = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=float(sys.argv[2]), isolation_level=None)
print("%.6f" % time.time(), flush=True)
t0 = time.monotonic()
try:
    c.execute("INSERT INTO ledger(note) VALUES ('s3cret-own')")
    print("inserted", "%.3f" % (time.monotonic() - t0))
except sqlite3.OperationalError as e:
    print(e.sqlite_errorname, "%.3f" % (time.monotonic() - t0))
"""

# A program that uses SQLite on a database no rule covers, against a held lock.
PY_UNCOVERED = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
t0 = time.monotonic()
try:
    c.execute("INSERT INTO ledger(note) VALUES ('s3cret-x')")
    print("inserted")
except sqlite3.OperationalError as e:
    print(e.sqlite_errorname, e)
print("fast" if time.monotonic() - t0 < 0.5 else "slow")
print(c.execute("SELECT count(*) FROM ledger").fetchone()[0])
"""


def sqlite_rule(db_glob, name="db", retry=RETRY, extra=""):
    """A sqlite rule for databases matching db_glob; extra: more YAML lines of the rule,
    indented by four spaces."""
    return rule(name, ["sqlite"], db=[db_glob],
                body=("    retry: %s\n" % retry if retry else "") + extra)


def start_time(delay=1.0):
    """A wall-clock start time for writers launched now: all of them have opened their
    database by then (python3 under the shim starts in well under a second)."""
    return "%.3f" % (time.time() + delay)


def run_parallel(cmds, shim=False, policy=None, env=None, timeout=RUN_TIMEOUT):
    """Run every command at once and wait for all of them; a list of Results. Any run
    outliving timeout fails the test, after all of them were killed."""
    e = base_env(**(env or {}))
    if shim:
        e["LD_PRELOAD"] = LIB
    if policy is not None:
        e["BULWARK_CONFIG"] = policy
    t0 = time.monotonic()
    procs = [subprocess.Popen(c, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True) for c in cmds]
    outs = [None] * len(procs)

    def collect(i):
        try:
            outs[i] = procs[i].communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(procs[i])                # the loops' sqlite3 shells too
            outs[i] = procs[i].communicate()
            outs[i] = (outs[i][0], outs[i][1] + b"\n(killed: timed out after %ds)" % timeout)

    threads = [threading.Thread(target=collect, args=(i,)) for i in range(len(procs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = [Result(c, p.returncode, o.decode("utf-8", "replace"), er.decode("utf-8", "replace"),
                      time.monotonic() - t0) for c, p, (o, er) in zip(cmds, procs, outs)]
    for r in results:
        if "(killed: timed out" in r.stderr:
            raise AssertionError("timed out: %r" % r)
    return results


def error_count(r):
    """The "errors N" line a writer prints at the end."""
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "errors":
            return int(parts[1])
    raise AssertionError("no 'errors N' line from the writer:\n%r" % r)


def transcript(results):
    return "\n".join(repr(r) for r in results)


class SqliteTest(SqliteShimTest):
    """The C writer, and checks over rows and event logs."""

    def client(self):
        """The C writer, compiled once per class with -lsqlite3."""
        return self.sqlite_prog(CLIENT_SRC)

    def rows(self, db):
        """(count(*), count(DISTINCT note), set of notes) of the table."""
        c = sqlite3.connect(db, timeout=10)
        try:
            n, distinct = c.execute("SELECT count(*), count(DISTINCT note) FROM ledger").fetchone()
            notes = {r[0] for r in c.execute("SELECT note FROM ledger")}
            self.assertEqual(c.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        finally:
            c.close()
        return n, distinct, notes

    def assertRowsOnce(self, db, expected, ctx=""):
        """Exactly the expected payloads, each once."""
        n, distinct, notes = self.rows(db)
        self.assertEqual(n, distinct, "duplicated rows (count %d, distinct %d)\n%s"
                         % (n, distinct, ctx))
        missing = sorted(expected - notes)[:10]
        extra = sorted(notes - expected)[:10]
        self.assertEqual((n, missing, extra), (len(expected), [], []),
                         "rows: %d, expected %d\n%s" % (n, len(expected), ctx))

    def assertNoSqlText(self, log):
        """bulwark.yaml(5) EVENTS: no SQL text or parameter in any event."""
        self.assertTrue(os.path.exists(log), "no event log at %s" % log)
        with open(log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        for needle in (TABLE, MARK, "INSERT INTO", "insert into"):
            self.assertNotIn(needle, text, "the event log contains SQL text (%r):\n%s"
                             % (needle, text[:3000]))

    def assertSqliteRecovered(self, events, db, rule="db"):
        """The shim met SQLITE_BUSY and recovered from it, and gave nothing up."""
        ctx = describe(events[-60:])
        rec = events_of(events, "recovered", rule=rule)
        self.assertTrue(rec, "no recovered event: the shim did not retry anything\n" + ctx)
        self.assertTrue(events_of(events, "retry", rule=rule), ctx)
        for e in rec + events_of(events, "retry") + events_of(events, "fail"):
            self.assertEqual(e.get("op"), "sqlite", ctx)
            self.assertEqual(e.get("db"), db, ctx)
            self.assertIn(e.get("call"), SQLITE_CALLS, ctx)
        for e in events_of(events, "retry") + events_of(events, "fail"):
            self.assertIn(e.get("err"), ("SQLITE_BUSY", "SQLITE_LOCKED"), ctx)
        self.assertFalse(events_of(events, "gave_up"), ctx)

    def writers(self, make_cmd, shim, policy=None):
        """Run WRITERS writers at once; (results, total errors). make_cmd(wid, start)."""
        start = start_time()
        rs = run_parallel([make_cmd("w%d" % w, start) for w in range(1, WRITERS + 1)],
                          shim=shim, policy=policy)
        for r in rs:
            self.assertOk(r, "a writer did not complete")
        return rs, sum(error_count(r) for r in rs)


class Contention(SqliteTest):
    """Several writers on one database, no busy handler: errors alone, none with a retry
    rule, and every row exactly once."""

    N = 50

    def py_cmd(self, db):
        return lambda wid, start: py(PY_WRITER, db, wid, self.N, start)

    def expected(self, n=None, suffixes=("",)):
        n = self.N if n is None else n
        return {"%s-w%d-%d%s" % (MARK, w, i, s) for w in range(1, WRITERS + 1)
                for i in range(n) for s in suffixes}

    def bare(self, make_cmd, conflict):
        """The writers without the shim, on a new database: they must meet lock conflicts
        (`conflict` shows in their output), or the test would prove nothing. (errors,
        count(*), count(DISTINCT note), transcript)."""
        db = self.make_db()
        rs, errors = self.writers(make_cmd(db), shim=False)
        ctx = transcript(rs)
        self.assertGreater(errors, 0, "no lock conflict without the shim: the test proves "
                           "nothing\n" + ctx)
        self.assertIn(conflict, ctx)
        count, distinct, _ = self.rows(db)
        return errors, count, distinct, ctx

    def shimmed(self, make_cmd, expected, failed="lock errors under the shim:\n"):
        """The writers under a sqlite rule, on a new database: no error, exactly the
        expected rows, each once, recovered conflicts and no SQL text in the events.
        (transcript, events)."""
        db = self.make_db()
        pol, log = self.wd.policy(sqlite_rule("*/app.db"))
        rs, errors = self.writers(make_cmd(db), shim=True, policy=pol)
        ctx = transcript(rs)
        self.assertEqual(errors, 0, failed + ctx)
        self.assertRowsOnce(db, expected, ctx)
        events = read_events(log)
        self.assertSqliteRecovered(events, db)
        self.assertNoSqlText(log)
        return ctx, events

    def test_python_begin_immediate_writers(self):
        errors, count, distinct, ctx = self.bare(self.py_cmd, "database is locked")
        self.assertEqual((count, distinct), (WRITERS * self.N - errors,) * 2, ctx)
        self.shimmed(self.py_cmd, self.expected())

    @unittest.skipUnless(SQLITE3, "the sqlite3 shell is not installed")
    def test_sqlite3_cli_loops(self):
        n = 30
        cmd = lambda db: (lambda wid, start: ["sh", "-c", CLI_LOOP, "sh", db, wid, str(n)])
        errors, count, distinct, ctx = self.bare(cmd, "database is locked")
        self.assertEqual((count, distinct), (WRITERS * n - errors,) * 2, ctx)
        expected = {"%s-w%d-%d" % (MARK, w, i) for w in range(1, WRITERS + 1)
                    for i in range(1, n + 1)}
        ctx, events = self.shimmed(cmd, expected)
        self.assertNotIn("database is locked", ctx)
        self.assertTrue(any(e.get("prog") == "sqlite3" for e in events_of(events, "recovered")),
                        describe(events[-40:]))

    def test_c_exec_multi_statement(self):
        """sqlite3_exec of two INSERTs in one string. A whole exec re-run after its first
        statement committed would insert that row twice."""
        n = 30
        client = self.client()
        cmd = lambda db: (lambda wid, start: [client, "exec", db, MARK + "-" + wid, str(n), start])
        _, count, distinct, ctx = self.bare(cmd, "rc=5")
        self.assertEqual(count, distinct, ctx)
        self.shimmed(cmd, self.expected(n, ("-a", "-b")), "sqlite3_exec failed under the shim:\n")

    def test_c_prepare_step_transactions(self):
        """prepare_v2 + step: BEGIN IMMEDIATE; INSERT; COMMIT with statements prepared
        once and reset after each step."""
        n = 30
        client = self.client()
        cmd = lambda db: (lambda wid, start: [client, "step", db, MARK + "-" + wid, str(n), start])
        errors, count, distinct, ctx = self.bare(cmd, "rc=5")
        self.assertEqual((count, distinct), (WRITERS * n - errors,) * 2, ctx)
        self.shimmed(cmd, self.expected(n))


class OwnBusyHandler(SqliteTest):

    def test_busy_timeout_waits_first(self):
        """The program's busy_timeout (python3's timeout=0.5) is kept: SQLite waits with it
        first, and bulwark's retries only begin once SQLite gave up. A lock held for
        1.2 s: alone, the INSERT fails after 0.5 s; under the shim it succeeds once the
        lock is free, and its first failed attempt took the program's 0.5 s."""
        def hold(db):
            holder = sqlite3.connect(db, timeout=5, isolation_level=None,
                                     check_same_thread=False)
            holder.execute("BEGIN IMMEDIATE")
            holder.execute("INSERT INTO ledger(note) VALUES ('s3cret-holder')")
            t = threading.Timer(1.2, lambda: (holder.execute("COMMIT"), holder.close()))
            t.start()
            return t

        db = self.make_db()
        t = hold(db)
        plain = run(py(PY_OWN_TIMEOUT, db, 0.5))
        t.join()
        self.assertOk(plain)
        name, took = plain.stdout.split()[1:3]
        self.assertEqual(name, "SQLITE_BUSY", repr(plain))
        self.assertGreaterEqual(float(took), 0.45, repr(plain))
        self.assertLess(float(took), 1.1, repr(plain))

        db = self.make_db()
        pol, log = self.wd.policy(sqlite_rule(
            "*/app.db", retry="{ attempts: 20, backoff: { base: 10ms, max: 100ms, "
                              "jitter: full }, deadline: 10s }"))
        t = hold(db)
        r = run(py(PY_OWN_TIMEOUT, db, 0.5), shim=True, policy=pol)
        t.join()
        events = read_events(log)
        ctx = "%r\n%s" % (r, describe(events))
        self.assertOk(r)
        began, outcome, took = r.stdout.split()
        self.assertEqual(outcome, "inserted", ctx)
        self.assertGreater(float(took), 0.9, ctx)
        fails = events_of(events, "fail", rule="db", attempt=1)
        self.assertTrue(fails, ctx)
        first = datetime.datetime.strptime(fails[0]["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        self.assertGreaterEqual(first - float(began), 0.45, "the first attempt did not "
                                "wait with the program's busy timeout\n" + ctx)
        self.assertSqliteRecovered(events, db)
        self.assertRowsOnce(db, {MARK + "-holder", MARK + "-own"})


class NeverRetried(SqliteTest):
    """Busy errors that no retry can resolve come back at once: the whole transaction
    has to be rolled back by the program (docs/design.md H19)."""

    # A retry rule that, if it were applied, would keep the call for 10 s.
    LONG = "{ attempts: 100, backoff: { base: 10ms, max: 100ms, jitter: full }, deadline: 10s }"

    def victim(self, db, shim, policy, between):
        """Run PY_VICTIM; between() runs once it has read and before it writes.
        Returns (result dict, Result)."""
        cmd = py(PY_VICTIM, db)
        t0 = time.monotonic()
        p = self.spawn(cmd, shim_env(policy) if shim else base_env())
        ready = p.readline(RUN_TIMEOUT)
        if not ready.startswith("ready"):
            self.fail("victim did not start: %r\n%s" % (ready, p.transcript()))
        between()
        p.send("go\n")
        rc = p.finish(RUN_TIMEOUT)
        r = Result(cmd, rc, "".join(p.out), "".join(p.err), time.monotonic() - t0)
        self.assertOk(r)
        return json.loads(r.stdout.strip().splitlines()[-1]), r

    def assertGaveUpAtOnce(self, res, r, events, db, reason, errname):
        ctx = "%r\n%r\n%s" % (res, r, describe(events))
        self.assertEqual(res.get("result"), "OperationalError", ctx)
        self.assertEqual(res.get("name"), errname, ctx)
        self.assertLess(res["elapsed"], 0.5, "the shim retried a busy error that retrying "
                        "cannot resolve\n" + ctx)
        gave = events_of(events, "gave_up", rule="db")
        self.assertTrue(gave, "no gave_up event\n" + ctx)
        g = gave[-1]
        self.assertEqual(g.get("reason"), reason, ctx)
        self.assertIsInstance(g.get("msg"), str, ctx)
        self.assertGreater(len(g["msg"]), 10, "gave_up without advice in msg\n" + ctx)
        self.assertEqual(g.get("db"), db, ctx)
        self.assertEqual(g.get("op"), "sqlite", ctx)
        self.assertTrue(str(g.get("err", "")).startswith("SQLITE_BUSY"), ctx)
        self.assertFalse(events_of(events, "retry"), "a retry was scheduled\n" + ctx)

    def deadlock(self, shim, policy=None):
        """Rollback journal. The holder (this process) has RESERVED and commits, which
        waits for the victim's SHARED lock; the victim's INSERT needs RESERVED. SQLite
        returns SQLITE_BUSY to the victim without calling its busy handler: only its
        ROLLBACK lets the holder commit."""
        db = self.make_db()
        holder = sqlite3.connect(db, timeout=15, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO ledger(note) VALUES ('s3cret-holder')")
        done = {}

        def commit():
            t0 = time.monotonic()
            try:
                holder.execute("COMMIT")
                done["result"] = "ok"
            except sqlite3.Error as e:
                done["result"] = str(e)
            done["at"] = time.monotonic()
            done["took"] = done["at"] - t0

        t = threading.Thread(target=commit)

        def between():
            t.start()
            time.sleep(0.3)     # the holder is now waiting for the victim's read lock
            self.assertNotIn("result", done, "the holder committed past a reader")

        res, r = self.victim(db, shim, policy, between)
        ended = time.monotonic()
        t.join(20)
        holder.close()
        self.assertEqual(done.get("result"), "ok", "%r %r" % (done, r))
        # The holder got its lock as soon as the victim rolled back.
        self.assertLess(done["at"] - ended, 2.0, "%r %r" % (done, r))
        self.assertRowsOnce(db, {MARK + "-holder"})
        return db, res, r

    def test_deferred_upgrade_deadlock(self):
        _, res, r = self.deadlock(shim=False)
        self.assertEqual((res.get("result"), res.get("name")),
                         ("OperationalError", "SQLITE_BUSY"), repr(r))
        self.assertLess(res["elapsed"], 0.5, repr(r))

        pol, log = self.wd.policy(sqlite_rule("*/app.db", retry=self.LONG))
        db, res, r = self.deadlock(shim=True, policy=pol)
        events = read_events(log)
        self.assertGaveUpAtOnce(res, r, events, db, "upgrade", "SQLITE_BUSY")
        self.assertNoSqlText(log)

    def snapshot(self, shim, policy=None):
        """WAL. The victim has a read snapshot; another connection commits a write; the
        victim's INSERT cannot build on its old snapshot: SQLITE_BUSY_SNAPSHOT, forever
        until it rolls back."""
        db = self.make_db(wal=True)
        writer = sqlite3.connect(db, timeout=5, isolation_level=None)

        def between():
            writer.execute("INSERT INTO ledger(note) VALUES ('s3cret-writer')")

        res, r = self.victim(db, shim, policy, between)
        writer.close()
        self.assertRowsOnce(db, {MARK + "-writer"})
        return db, res, r

    def test_wal_busy_snapshot(self):
        _, res, r = self.snapshot(shim=False)
        self.assertEqual((res.get("result"), res.get("name")),
                         ("OperationalError", "SQLITE_BUSY_SNAPSHOT"), repr(r))

        pol, log = self.wd.policy(sqlite_rule("*/app.db", retry=self.LONG))
        db, res, r = self.snapshot(shim=True, policy=pol)
        events = read_events(log)
        self.assertGaveUpAtOnce(res, r, events, db, "snapshot", "SQLITE_BUSY_SNAPSHOT")
        self.assertNoSqlText(log)


class Untouched(SqliteTest):
    """A sqlite rule changes nothing for programs, or databases, it does not cover."""

    def policy(self):
        return self.wd.policy(sqlite_rule(
            "*/app.db", extra="    breaker: { trip: { consecutive: 2 }, open_for: 5s }\n"
                              "    rate_limit: { rate: 20/s, burst: 1 }\n"))

    def test_program_without_sqlite(self):
        pol, log = self.policy()
        cmds = [py("import sys; print(1); sys.exit(3)")]
        if CURL:
            cmds.append([CURL, "-sS", "--max-time", "5", "http://127.0.0.1:%d/" % free_port()])
        for cmd in cmds:
            plain = run(cmd)
            r = run(cmd, shim=True, policy=pol)
            # curl's message carries its own timing ("after 0 ms").
            norm = lambda s: re.sub(r"\d+ ms", "N ms", s)
            self.assertEqual((r.rc, r.stdout, norm(r.stderr)),
                             (plain.rc, plain.stdout, norm(plain.stderr)), repr(r))
        self.assertNoCallEvents(read_events(log))

    def test_database_not_covered(self):
        """Another database, under a held lock: the same immediate error as without the
        shim, and no event."""
        db = self.make_db("other.db")
        holder = sqlite3.connect(db, timeout=5, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            pol, log = self.policy()
            plain = run(py(PY_UNCOVERED, db))
            r = run(py(PY_UNCOVERED, db), shim=True, policy=pol)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        self.assertOk(plain)
        self.assertEqual(plain.stdout.split("\n")[0], "SQLITE_BUSY database is locked", repr(plain))
        self.assertEqual((r.rc, r.stdout), (plain.rc, plain.stdout), repr(r))
        self.assertNoCallEvents(read_events(log))


# A user-defined function that writes to a second database runs inside the step of the
# statement that calls it. Prints what a direct write to the second database gave, then
# what the outer statement gave.
PY_NESTED = """
import sqlite3, sys
outer, inner = sys.argv[1], sys.argv[2]
i = sqlite3.connect(inner, timeout=0, isolation_level=None)
def nested():
    i.execute("INSERT INTO ledger(note) VALUES ('s3cret-nested')")
    return 7
o = sqlite3.connect(outer, timeout=0, isolation_level=None)
o.create_function("nested", 0, nested)
for label, run in (("direct", lambda: i.execute("INSERT INTO ledger(note) VALUES ('s3cret-direct')")
                               and "ok"),
                   ("outer", lambda: o.execute("SELECT nested()").fetchone()[0])):
    try:
        print(label, run())
    except sqlite3.Error as e:
        print(label, type(e).__name__, e)
"""


class Outermost(SqliteTest):

    def test_call_inside_an_acted_on_call_is_left_alone(self):
        """The policy acts on the outermost call only: a statement a user-defined
        function runs while the policy acts on the statement that called it is part of
        that statement's work, even on a database whose rule fails every statement."""
        outer, inner = self.make_db("outer.db"), self.make_db("inner.db")
        pol, log = self.wd.policy(
            sqlite_rule("*/outer.db", name="outer") +
            sqlite_rule("*/inner.db", name="inner", retry=None,
                        extra="    inject: [ { errno: SQLITE_IOERR } ]\n"))
        r = run(py(PY_NESTED, outer, inner), shim=True, policy=pol)
        events = read_events(log)
        ctx = "%r\n%s" % (r, describe(events))
        self.assertOk(r, ctx)
        self.assertEqual(r.stdout.splitlines(),
                         ["direct OperationalError disk I/O error", "outer 7"], ctx)
        self.assertEqual(self.rows(inner)[2], {"s3cret-nested"}, ctx)
        injected = events_of(events, "injected")
        self.assertEqual([(e.get("rule"), e.get("call")) for e in injected],
                         [("inner", "sqlite3_step")], ctx)


class Events(SqliteTest):

    def test_event_fields_and_no_sql(self):
        """bulwark.yaml(5) EVENTS: `db` is the database path, `err` the symbolic result code, `call` the
        SQLite function; no SQL text, table name or parameter anywhere."""
        db = self.make_db()
        pol, log = self.wd.policy(sqlite_rule("*/app.db"))
        start = start_time()
        rs = run_parallel([py(PY_WRITER, db, "w%d" % w, 30, start) for w in (1, 2, 3)],
                          shim=True, policy=pol)
        for r in rs:
            self.assertOk(r)
        ctx = transcript(rs)
        self.assertEqual(sum(error_count(r) for r in rs), 0, ctx)
        events = read_events(log)
        ctx = describe(events[-60:])
        calls = [e for e in events if e.get("event") not in ("start", "exit")]
        self.assertTrue(events_of(calls, "fail"), "no lock conflict was seen\n" + ctx)
        for e in calls:
            self.assertEqual(e.get("rule"), "db", ctx)
            self.assertEqual(e.get("op"), "sqlite", ctx)
            self.assertEqual(e.get("db"), db, ctx)
            self.assertIn(e.get("call"), SQLITE_CALLS, ctx)
            self.assertNotIn("dest", e, ctx)
            self.assertNotIn("fd", e, ctx)
            if e["event"] in ("fail", "retry"):
                self.assertEqual(e.get("err"), "SQLITE_BUSY", ctx)
                self.assertIsInstance(e.get("attempt"), int, ctx)
        for e in events_of(events, "retry"):
            self.assertIsInstance(e.get("delay_ms"), (int, float), ctx)
            self.assertLessEqual(e["delay_ms"], 50.5, ctx)
        stats = [e["stats"]["db"] for e in events_of(events, "exit") if "db" in e.get("stats", {})]
        self.assertEqual(len(stats), 3, "one exit event per writer with the rule's counters\n"
                         + ctx)
        self.assertGreater(sum(s.get("retries", 0) for s in stats), 0, ctx)
        self.assertGreater(sum(s.get("recovered", 0) for s in stats), 0, ctx)
        self.assertNoSqlText(log)


class BreakerAndLimit(SqliteTest):

    def test_breaker_refuses_at_storage_layer(self):
        """While the lock is held, two failed attempts open the breaker; later statements
        are refused with an ordinary "database is locked", also once the lock is free
        (the breaker is still open). Another database keeps working in the same
        process, and the refused one is not damaged."""
        db = self.make_db()
        other = os.path.realpath(self.wd.file("other.db"))
        pol, log = self.wd.policy(sqlite_rule(
            "*/app.db", retry="{ attempts: 3, backoff: { base: 1ms, max: 2ms } }",
            extra="    breaker: { trip: { consecutive: 2 }, open_for: 5s }\n"))
        holder = sqlite3.connect(db, timeout=5, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO ledger(note) VALUES ('s3cret-holder')")
        p = self.spawn(py(PY_BREAKER, db, other, 5), shim_env(pol))
        p.readline(RUN_TIMEOUT)
        holder.execute("COMMIT")    # the lock is free from now on
        holder.close()
        p.send("go\n")
        rc = p.finish(RUN_TIMEOUT)
        out, err = "".join(p.out), "".join(p.err)
        events = read_events(log)
        ctx = "rc=%r\n--- stdout\n%s--- stderr\n%s\n--- events\n%s" % (
            rc, out, err, describe(events))
        self.assertEqual(rc, 0, ctx)
        self.assertNotIn("malformed", out + err, ctx)
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), 3, ctx)
        held, after, other_rows = (json.loads(x) for x in lines)
        locked = "OperationalError SQLITE_BUSY: database is locked"
        self.assertEqual(held, [locked] * 5, ctx)
        self.assertEqual(after, locked, "the open breaker did not refuse\n" + ctx)
        self.assertEqual(other_rows, [5, 10], ctx)

        opened = [x for x in events_of(events, "breaker", rule="db") if x.get("to") == "open"]
        self.assertTrue(opened, ctx)
        self.assertEqual(opened[0].get("db"), db, ctx)
        rejected = events_of(events, "rejected", rule="db")
        # statements 2 to 5 while held, and the one after the lock was freed
        self.assertGreaterEqual(len(rejected), 4, ctx)
        for x in rejected:
            self.assertEqual(x.get("db"), db, ctx)
            self.assertEqual(x.get("err"), "SQLITE_BUSY", ctx)
        self.assertFalse([x for x in events if x.get("db") == other], ctx)
        self.assertRowsOnce(db, {MARK + "-holder"})
        self.assertNoSqlText(log)

    def test_rate_limit_paces_statements(self):
        """20/s, burst 1: 41 autocommit INSERTs take about 2 s."""
        n = 41
        db = self.make_db()
        plain = run(py(PY_PACED, db, n))
        self.assertOk(plain)
        self.assertLess(float(plain.stdout), 1.2, "too slow without the shim to measure "
                        "pacing\n%r" % plain)
        db = self.make_db()
        pol, log = self.wd.policy(sqlite_rule(
            "*/app.db", retry=None, extra="    rate_limit: { rate: 20/s, burst: 1 }\n"))
        r = run(py(PY_PACED, db, n), shim=True, policy=pol)
        self.assertOk(r)
        events = read_events(log)
        took = float(r.stdout)
        ctx = "%r\n%s" % (r, describe(events[-20:]))
        self.assertGreaterEqual(took, 1.6, "not paced\n" + ctx)
        self.assertLessEqual(took, 3.5, "paced more than 20/s\n" + ctx)
        throttled = events_of(events, "throttled", rule="db")
        self.assertTrue(throttled, ctx)
        for x in throttled:
            self.assertEqual(x.get("db"), db, ctx)
            self.assertLessEqual(x.get("delay_ms", 0), 1000, ctx)
        self.assertFalse(events_of(events, "limited"), ctx)
        self.assertRowsOnce(db, {"%s-%d" % (MARK, i) for i in range(n)})
        self.assertNoSqlText(log)


if __name__ == "__main__":
    unittest.main()
