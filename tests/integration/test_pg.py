"""PostgreSQL client calls (op pg): libpq's connect family retried and refused, statements
run again only where that cannot repeat an effect, against a real server that the tests
restart, stop and kill sessions of.

One cluster (initdb in a temporary directory, 127.0.0.1 on a free port and a unix socket
in that directory) serves every test of PgServerTest; each test leaves it running. The
clients are PostgreSQL's own: psql (statements sent with PQsendQuery, connections made
with PQconnectdbParams) and pgbench, and python3 calling libpq through ctypes. Each test
runs the same thing bare first where that shows the failure the library mends.
"""

import os
import re
import shutil
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (LIB, PG_ENV, PYTHON, TOOL, PgCluster, ShimTest, base_env, describe,
                     events_in_text, events_of, free_port, pg_missing, pg_tool, read_events,
                     rule, run, shim_env)

PSQL = pg_tool("psql")
PGBENCH = pg_tool("pgbench")
STRACE = shutil.which("strace")
MISSING = pg_missing()

# Long enough for a server that is down for a few seconds (a restart, a start that
# replays WAL): at least ~5 s of backoff before the deadline.
RETRY = "retry: { attempts: 60, backoff: { base: 50ms, max: 200ms, jitter: equal }, deadline: 20s }\n"


def psql_argv(cluster, *extra, unix=False):
    return [PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"] + cluster.conninfo(unix) + list(extra)


def aborted_clients(text):
    """Clients pgbench reports aborted: "client 3 aborted while establishing connection",
    and "client 1 script 0 aborted in command 1 query 0: ..." for a statement."""
    return len(re.findall(r"client \d+ (?:script \d+ )?aborted", text))


class PgPolicyTest(ShimTest):
    """What needs no server: the policy side, and programs that do not use libpq."""

    def test_check_accepts_pg_rules(self):
        body = ("retry: { attempts: 5, on: [SQLSTATE_08000, SQLSTATE_57P03] }\n"
                "breaker: { trip: { consecutive: 3 }, errno: SQLSTATE_08004 }\n"
                "rate_limit: { rate: 20/s, on_limit: fail }\n"
                "inject: [ { errno: SQLSTATE_53300, probability: 10% } ]\n")
        pol, _ = self.wd.policy(rule("db", ["pg"], ["127.0.0.1:5432", "db.internal:*",
                                                    "unix:/run/postgresql/*"], db=["app*"],
                                     body=body))
        r = run([TOOL, "check", pol])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("ops: [pg]", r.stdout)
        self.assertIn("SQLSTATE_08000", r.stdout)

    def test_check_refuses_what_cannot_apply(self):
        for body, says in (("timeout: { connect: 1s }", "does not apply"),
                           ("retry: { on: [ECONNREFUSED] }", "errno names apply"),
                           ("inject: [ { reset: true } ]", "does not apply")):
            pol, _ = self.wd.policy(rule("db", ["pg"], body=body + "\n"))
            r = run([TOOL, "check", pol])
            self.assertEqual(r.rc, 1, r)
            self.assertIn(says, r.stderr, r)

    def test_explain(self):
        pol, _ = self.wd.policy(rule("app", ["pg"], ["db.internal:5432"], db=["app"])
                                + rule("local", ["pg"], ["unix:/run/postgresql/*"])
                                + rule("any", ["connect"]))
        r = run([TOOL, "explain", "-c", pol, "--db", "app", "pg", "db.internal:5432"])
        self.assertIn('rule "app"', r.stdout, r)
        r = run([TOOL, "explain", "-c", pol, "--db", "other", "pg", "db.internal:5432"])
        self.assertIn("no rule matches", r.stdout, r)
        r = run([TOOL, "explain", "-c", pol, "pg", "unix:/run/postgresql/.s.PGSQL.5432"])
        self.assertIn('rule "local"', r.stdout, r)

    def test_library_needs_no_libpq(self):
        """libpq is found at run time: the library links only the C library (and the
        loader), and exports only the names it interposes."""
        readelf = shutil.which("readelf")
        nm = shutil.which("nm")
        if not readelf or not nm:
            self.skipTest("readelf and nm (binutils) are not installed")
        needed = re.findall(r"\(NEEDED\).*\[(.*)\]", run([readelf, "-d", LIB]).stdout)
        self.assertTrue(needed)
        for lib in needed:
            self.assertRegex(lib, r"^(libc|libdl|libpthread|ld-linux[-\w]*)\.so", needed)
        names = set(run([nm, "-D", "--defined-only", LIB]).stdout.split()[2::3])
        with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
                os.path.abspath(__file__)))), "shim", "exports.map")) as f:
            exported = set(re.findall(r"\b(\w+);", f.read()))
        self.assertIn("PQconnectdb", names)
        self.assertEqual(names - exported, set(), "exported beyond shim/exports.map")

    def test_programs_without_libpq_untouched(self):
        pol, log = self.wd.policy(rule("pg", ["pg"], body=RETRY))
        code = "import socket, sys; print(sys.version_info[0])"
        bare = run([PYTHON, "-c", code])
        r = run([PYTHON, "-c", code], shim=True, policy=pol)
        self.assertEqual((r.rc, r.stdout, r.stderr), (bare.rc, bare.stdout, bare.stderr))
        self.assertNoCallEvents(self.events(log))


@unittest.skipIf(MISSING, MISSING)
class PgServerTest(ShimTest):
    cluster = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cluster = PgCluster()
        try:
            cls.cluster.start()
            r = cls.cluster.sql("CREATE TABLE counter(k int PRIMARY KEY, note text)")
            if r.rc != 0:
                raise AssertionError(repr(r))
        except BaseException:
            cls.cluster.remove()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.remove()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.addCleanup(self._server_up)
        self.assertEqual(self.cluster.sql("TRUNCATE counter").rc, 0)

    def _server_up(self):
        """A test that stopped the server and failed leaves it running for the next."""
        if self.cluster.sql("SELECT 1", timeout=10).rc != 0:
            self.cluster.start()

    def counted(self):
        r = self.cluster.sql("SELECT k FROM counter ORDER BY k")
        self.assertEqual(r.rc, 0, r)
        return [int(x) for x in r.stdout.split()]

    def wait_counted(self, want, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.counted() == want:
                return
            time.sleep(0.05)
        self.fail("counter is %r, not %r, after %ss" % (self.counted(), want, timeout))

    def policy(self, body=RETRY, **kw):
        return self.wd.policy(rule("pg", ["pg"], body=body), **kw)

    # -- healthy: nothing changes ---------------------------------------------------

    def test_healthy_identical(self):
        argv = psql_argv(self.cluster, "-c", "SELECT 1 + 1; SELECT count(*) FROM counter;")
        bare = run(argv, env=PG_ENV)
        pol, log = self.policy()
        r = run(argv, env=PG_ENV, shim=True, policy=pol)
        self.assertEqual((r.rc, r.stdout, r.stderr), (bare.rc, bare.stdout, bare.stderr))
        evs = self.events(log)
        self.assertFalse([e for e in evs if e.get("event") not in ("start", "exit")],
                         describe(evs))
        stats = events_of(evs, "exit")[0]["stats"]["pg"]
        self.assertGreaterEqual(stats["calls"], 2, describe(evs))

    # -- the connect family -----------------------------------------------------------

    def pgbench_restart(self, mode, script=None):
        """pgbench -C -S (a connection per transaction, read-only) while the server
        restarts in mode, bare, under a pg rule and under the built-in default policy
        (`bulwark run` with no policy file); script: pgbench's transaction instead of
        the built-in -S. Returns {run: (aborted clients, Result)}
        and the pg rule's events. One thread per client: a client waiting in a retry
        holds its thread, and a smart shutdown waits for the sessions that thread holds."""
        if not PGBENCH:
            self.skipTest("pgbench is not installed")
        r = run([PGBENCH, "-i", "-s", "1", "-q"] + self.cluster.conninfo()[:-2] + ["postgres"],
                env=PG_ENV, timeout=60)
        self.assertEqual(r.rc, 0, r)
        pol, log = self.policy(level="info")
        work = ["-S"]
        if script:
            work = ["-f", self.wd.file("script.sql")]
            with open(work[1], "w") as f:
                f.write(script)
        bench = [PGBENCH, "-C"] + work + ["-T", "6", "-c", "4", "-j", "4"] + \
            self.cluster.conninfo()[:-2] + ["postgres"]
        runs = (("bare", bench, dict(shim=False)),
                ("a pg rule", bench, dict(shim=True, policy=pol)),
                ("the built-in default policy", [TOOL, "run", "--"] + bench,
                 dict(cwd=self.wd.path)))
        aborted = {}
        for name, argv, kw in runs:
            t = threading.Timer(2.0, self.cluster.restart, kwargs={"mode": mode})
            t.start()
            try:
                res = run(argv, env=PG_ENV, timeout=60, **kw)
            finally:
                t.join(70)
            aborted[name] = (aborted_clients(res.stderr), res)
        sys.stderr.write("\n  pgbench -C %s -T 6 -c 4 -j 4, %s restart: aborted clients %s\n"
                         % (" ".join(work), mode, ", ".join("%s %d" % (k, v[0]) for k, v in aborted.items())))
        self.assertGreater(aborted["bare"][0], 0, "bare pgbench did not abort:\n%r"
                           % aborted["bare"][1])
        self.assertEqual(aborted["a pg rule"][0], 0, "%r\n%s" % (aborted["a pg rule"][1],
                                                               describe(read_events(log))))
        res = aborted["the built-in default policy"][1]
        self.assertEqual(aborted["the built-in default policy"][0], 0, res)
        self.assertTrue(events_of(events_in_text(res.stderr), "recovered", rule="default-pg"),
                        res)
        return aborted, self.events(log)

    def test_pgbench_survives_smart_restart(self):
        """A smart shutdown refuses new connections ("shutting down") until the sessions
        end, then nothing listens, then the server is "starting up": bare, the clients
        abort; under a pg rule, and under the built-in default policy, none does."""
        _, evs = self.pgbench_restart("smart")
        self.assertTrue(events_of(evs, "recovered", op="pg", call="PQconnectdbParams"),
                        describe(evs))
        errs = {e.get("err") for e in events_of(evs, "fail", op="pg")}
        self.assertIn("SQLSTATE_57P03", errs, describe(evs))

    def test_pgbench_survives_fast_restart(self):
        """A fast shutdown also ends the sessions under way: a SELECT in flight gets
        "terminating connection" (57P01) or finds its connection gone. pgbench sends it
        with PQsendQuery and reads it with PQconsumeInput and PQgetResult: it is sent
        again on a new connection, and no client aborts, under a pg rule and under the
        built-in default policy (whose connect breaker, which the refused connects of
        the restart trip, leaves libpq's connections to the pg rule)."""
        _, evs = self.pgbench_restart("fast")
        self.assertTrue(events_of(evs, "recovered", op="pg"), describe(evs))

    def test_pgbench_read_only_scan_survives_fast_restart(self):
        """The same with a transaction that is mostly its statement (a scan of 100000
        rows, a few milliseconds): a fast restart nearly always finds some of them in
        flight."""
        self.pgbench_restart("fast", "SELECT count(*) FROM pgbench_accounts;\n")

    def test_breaker_refuses_without_connecting(self):
        """A dead server: the retries trip the breaker (shared by the processes under one
        `bulwark run`); the next psql gets a connection handle in CONNECTION_BAD that says
        why, and makes no connect(2)."""
        if not STRACE:
            self.skipTest("strace is not installed")
        port = free_port()
        pol, log = self.wd.policy(rule("pg", ["pg"], body=(
            "retry: { attempts: 3, backoff: { base: 10ms, max: 20ms } }\n"
            "breaker: { trip: { consecutive: 2 }, open_for: 60s }\n")),
            extra="state: { share: group, dir: %s }\n" % self.wd.file("state"))
        os.mkdir(self.wd.file("state"), 0o700)
        trace = self.wd.file("connects.txt")
        argv = [PSQL, "-X", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d",
                "postgres", "-c", "SELECT 1"]
        script = ('"$@"; echo "first=$?"; %s -f -q -e trace=connect -o %s "$@"; '
                  'echo "second=$?"' % (STRACE, trace))
        r = run([TOOL, "run", "-c", pol, "--", "/bin/sh", "-c", script, "sh"] + argv,
                env=PG_ENV, timeout=60)
        self.assertIn("first=2", r.stdout, r)
        self.assertIn("second=2", r.stdout, r)
        self.assertIn("circuit breaker is open", r.stderr, r)
        self.assertIn("no connection was attempted", r.stderr, r)
        with open(trace) as f:
            traced = f.read()
        self.assertIn("+++ exited with 2 +++", traced)
        self.assertNotIn("htons(%d)" % port, traced, "the refused psql connected:\n" + traced)
        evs = self.events(log)
        self.assertTrue(events_of(evs, "breaker", to="open"), describe(evs))
        self.assertTrue(events_of(evs, "rejected", op="pg", err="SQLSTATE_08001"), describe(evs))
        # bare, the same psql does connect
        r = run([STRACE, "-f", "-q", "-e", "trace=connect", "-o", trace] + argv, env=PG_ENV)
        with open(trace) as f:
            self.assertIn("htons(%d)" % port, f.read())

    # -- statements -------------------------------------------------------------------

    def run_script(self, steps, shim, pol=None, unix=False, app="bw-script"):
        """psql reading statements from a pipe (not interactive: a lost connection ends
        it), fed by steps: each a statement, or a callable run between statements once
        the statements before it have shown their effect. Returns (exit status, psql's
        output)."""
        env = dict(PG_ENV, PGAPPNAME=app)
        env = shim_env(pol, **env) if shim else base_env(**env)
        p = self.spawn(psql_argv(self.cluster, "-e", unix=unix), env)
        for step in steps:
            if callable(step):
                step()
                continue
            try:
                p.send(step + "\n")
            except BrokenPipeError:     # psql has ended: the rest is never read
                break
        rc = p.finish(timeout=60)
        return rc, p.transcript()

    def later(self, delay_s, fn):
        """fn run delay_s from now in a thread; joined at the end of the test."""
        t = threading.Timer(delay_s, fn)
        t.start()
        self.addCleanup(t.join, 70)
        return t

    def test_autocommit_statements_run_once_across_restart(self):
        """Autocommit statements with the server stopped and started again between them:
        bare, psql loses its connection and stops; under a pg rule the statement after
        the restart is sent on a new connection, and every statement runs exactly once
        (the counter's primary key would refuse a second run)."""
        starts = []

        def restart_between():
            self.wait_counted([1])
            self.cluster.stop("fast")
            # the next statement is sent while nothing listens; the server comes back
            starts.append(self.later(1.0, self.cluster.start))

        def settle():
            time.sleep(0.2)

        steps = ["INSERT INTO counter VALUES (1, 'a');", restart_between, settle,
                 "INSERT INTO counter VALUES (2, 'b');", "INSERT INTO counter VALUES (3, 'c');"]
        rc, out = self.run_script(steps, shim=False, unix=True)
        self.assertEqual(rc, 2, out)
        self.assertIn("connection to server was lost", out)
        starts[0].join(70)
        self.wait_counted([1])

        self.assertEqual(self.cluster.sql("TRUNCATE counter").rc, 0)
        pol, log = self.policy()
        rc, out = self.run_script(steps, shim=True, pol=pol, unix=True)
        evs = read_events(log)
        self.assertEqual(rc, 0, out + describe(evs))
        self.assertEqual(self.counted(), [1, 2, 3], out)
        rec = events_of(evs, "recovered", op="pg", call="PQsendQuery")
        self.assertEqual(len(rec), 1, describe(evs))
        self.assertTrue(rec[0]["dest"].startswith("unix:%s/.s.PGSQL." % self.cluster.dir), rec)
        self.assertEqual(rec[0]["db"], "postgres")
        self.assertEqual(events_of(evs, "fail", op="pg", call="PQsendQuery")[0]["err"],
                         "SQLSTATE_08006", describe(evs))
        for e in evs:
            self.assertNotIn("INSERT", str(e), "SQL text in an event")

    def terminate(self, app):
        """pg_terminate_backend on the session of psql named app, and wait until its
        process is gone (its socket closed): a statement sent before that would reach a
        session that is dying, whose outcome the client cannot know."""
        r = self.cluster.sql("SELECT pid FROM pg_stat_activity WHERE application_name = '%s'"
                             % app)
        self.assertEqual(len(r.stdout.split()), 1, r)
        pid = int(r.stdout)
        r = self.cluster.sql("SELECT pg_terminate_backend(%d)" % pid)
        self.assertEqual(r.stdout.strip(), "t", r)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        return
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.02)
        self.fail("backend %d still runs 15 s after pg_terminate_backend" % pid)

    def test_terminated_idle_session_reconnects(self):
        """pg_terminate_backend on an idle autocommit session: the next statement was
        never sent to it, so it goes to a new session, once."""
        def kill():
            self.wait_counted([1])
            self.terminate("bw-idle")

        steps = ["INSERT INTO counter VALUES (1, 'a');", kill,
                 "INSERT INTO counter VALUES (2, 'b');"]
        rc, out = self.run_script(steps, shim=False, app="bw-idle")
        self.assertEqual(rc, 2, out)
        self.assertEqual(self.cluster.sql("TRUNCATE counter").rc, 0)
        pol, log = self.policy()
        rc, out = self.run_script(steps, shim=True, pol=pol, app="bw-idle")
        self.assertEqual(rc, 0, out + describe(read_events(log)))
        self.assertEqual(self.counted(), [1, 2])

    def test_transaction_is_not_retried(self):
        """Inside BEGIN..COMMIT, a terminated session is the program's to handle: nothing
        is run again, psql sees the error, and the transaction's work is gone."""
        def kill():
            self.wait_counted([1])
            self.terminate("bw-txn")

        steps = ["INSERT INTO counter VALUES (1, 'autocommit');", "BEGIN;",
                 "INSERT INTO counter VALUES (10, 'in the transaction');", kill,
                 "INSERT INTO counter VALUES (11, 'in the transaction');", "COMMIT;"]
        pol, log = self.policy()
        rc, out = self.run_script(steps, shim=True, pol=pol, app="bw-txn")
        evs = read_events(log)
        self.assertEqual(rc, 2, out + describe(evs))
        self.assertIn("terminating connection due to administrator command", out)
        self.assertEqual(self.counted(), [1])
        self.assertFalse(events_of(evs, "retry", op="pg"), describe(evs))
        self.assertFalse(events_of(evs, "recovered", op="pg"), describe(evs))

    def test_session_state_is_not_lost(self):
        """A session that ran SET is not reconnected behind psql's back: the next
        statement would run under other settings. The event says why."""
        def kill():
            self.wait_counted([1])
            self.terminate("bw-set")

        steps = ["SET statement_timeout = '5min';", "INSERT INTO counter VALUES (1, 'a');",
                 kill, "INSERT INTO counter VALUES (2, 'b');"]
        pol, log = self.policy()
        rc, out = self.run_script(steps, shim=True, pol=pol, app="bw-set")
        evs = read_events(log)
        self.assertEqual(rc, 2, out + describe(evs))
        self.assertEqual(self.counted(), [1])
        self.assertTrue(events_of(evs, "gave_up", op="pg", reason="session_state"),
                        describe(evs))

    def conflict(self, shim, mode, pol=None):
        """A serialization failure (40001) met by an UPDATE that a program sends with
        PQexec under REPEATABLE READ, alone in autocommit or inside BEGIN: another
        session updates the row first and commits while the UPDATE waits for its lock.
        Returns the program's Result."""
        self.assertEqual(self.cluster.sql("DROP TABLE IF EXISTS acct; CREATE TABLE acct(k int "
                                          "PRIMARY KEY, v int); INSERT INTO acct VALUES (1, 0)")
                         .rc, 0)
        holder = self.spawn(psql_argv(self.cluster), base_env(**PG_ENV))
        holder.send("BEGIN; UPDATE acct SET v = v + 1 WHERE k = 1; SELECT 'held';\n")
        for _ in range(5):
            if holder.readline(timeout=30) == "held":
                break
        else:
            self.fail("the row was not taken\n" + holder.transcript())
        env = dict(PG_ENV, PGAPPNAME="bw-conflict",
                   PGOPTIONS="-c default_transaction_isolation=repeatable\\ read")
        env = shim_env(pol, **env) if shim else base_env(**env)
        live = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.cluster.port
        prog = self.spawn([PYTHON, "-c", CTYPES_UPDATE, live, mode], env)
        # the UPDATE waits for the row's lock
        end = time.monotonic() + 20
        while time.monotonic() < end:
            r = self.cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name "
                                 "= 'bw-conflict' AND wait_event_type = 'Lock'")
            if r.stdout.strip() == "1":
                break
            time.sleep(0.05)
        else:
            self.fail("the UPDATE never waited for its lock\n" + prog.transcript())
        holder.send("COMMIT;\n")
        self.assertEqual(holder.finish(timeout=30), 0, holder.transcript())
        rc = prog.finish(timeout=30)
        return rc, prog.transcript()

    def test_serialization_failure_alone_in_autocommit_is_retried(self):
        rc, out = self.conflict(False, "autocommit")
        self.assertIn("40001", out)
        self.assertEqual(self.cluster.sql("SELECT v FROM acct").stdout.strip(), "1")
        pol, log = self.policy()
        rc, out = self.conflict(True, "autocommit", pol)
        evs = read_events(log)
        self.assertEqual(rc, 0, out + describe(evs))
        self.assertIn("UPDATE 1", out)
        self.assertEqual(self.cluster.sql("SELECT v FROM acct").stdout.strip(), "2")
        self.assertTrue(events_of(evs, "recovered", op="pg", call="PQexec"), describe(evs))
        self.assertEqual(events_of(evs, "fail", op="pg")[0]["err"], "SQLSTATE_40001")

    def test_serialization_failure_in_transaction_is_passed_through(self):
        pol, log = self.policy()
        rc, out = self.conflict(True, "transaction", pol)
        evs = read_events(log)
        self.assertIn("40001", out, describe(evs))
        self.assertEqual(self.cluster.sql("SELECT v FROM acct").stdout.strip(), "1")
        self.assertFalse(events_of(evs, "retry", op="pg"), describe(evs))

    def test_lost_after_sent_is_not_retried(self):
        """An autocommit statement whose session is terminated while it runs: the
        statement was sent and its outcome is unknown, so it goes back to the program,
        with a gave_up event that says why."""
        pol, log = self.policy()
        live = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.cluster.port
        sql = "INSERT INTO counter SELECT 7, pg_sleep(30)::text"
        prog = self.spawn([PYTHON, "-c", CTYPES_EXEC, live, sql],
                          shim_env(pol, **dict(PG_ENV, PGAPPNAME="bw-lost")))
        end = time.monotonic() + 20
        while time.monotonic() < end:
            r = self.cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name "
                                 "= 'bw-lost' AND state = 'active'")
            if r.stdout.strip() == "1":
                break
            time.sleep(0.05)
        self.terminate("bw-lost")
        rc = prog.finish(timeout=30)
        out = prog.transcript()
        evs = read_events(log)
        self.assertEqual(rc, 1, out + describe(evs))
        # libpq's last result: the FATAL (57P01), or the end of the connection after it
        self.assertRegex(out, r"error (57P01)?\n")
        self.assertEqual(self.counted(), [])
        self.assertTrue(events_of(evs, "gave_up", op="pg", call="PQexec",
                                  reason="unknown_outcome"), describe(evs))
        self.assertFalse(events_of(evs, "retry", op="pg"), describe(evs))

    # -- statements in flight (PQsendQuery, then PQgetResult) --------------------------

    def hold_lock(self):
        """A session that holds counter in ACCESS EXCLUSIVE mode until it commits (send
        "COMMIT;") or the server ends it: every statement on counter waits meanwhile."""
        holder = self.spawn(psql_argv(self.cluster), base_env(**dict(PG_ENV,
                                                                      PGAPPNAME="bw-holder")))
        holder.send("BEGIN; LOCK TABLE counter IN ACCESS EXCLUSIVE MODE; SELECT 'held';\n")
        for _ in range(5):
            if holder.readline(timeout=30) == "held":
                return holder
        self.fail("the lock was not taken\n" + holder.transcript())

    def wait_waiting(self, app, timeout=20):
        """Until a statement of the session named app waits for a lock (it was sent and
        runs); bounded."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = self.cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name "
                                 "= '%s' AND wait_event_type = 'Lock'" % app)
            if r.stdout.strip() == "1":
                return True
            time.sleep(0.05)
        return False

    def in_flight(self, app, statement, before=(), after=(), restart=False, retried=False):
        """psql runs before, then statement, which waits for a lock held by another
        session; meanwhile its session is terminated (or the server restarted, fast,
        which ends both sessions), then the lock is let go and after follows. When the
        statement is expected to be sent again, the lock is let go once it waits again.
        Returns the steps for run_script."""
        holder = []

        def lock():
            holder.append(self.hold_lock())

        def end_session():
            self.assertTrue(self.wait_waiting(app), "the statement never waited for the lock")
            if restart:
                self.cluster.restart("fast")
                return
            self.terminate(app)
            if retried:
                self.wait_waiting(app)
            holder[0].send("COMMIT;\n")

        return list(before) + [lock, statement, end_session] + list(after)

    def test_read_only_in_flight_across_restart(self):
        """A fast restart while a read-only statement runs: bare, psql gets the
        termination and stops; under a pg rule the SELECT is sent again once the server
        is back, its answer printed as if nothing happened, and the script goes on with
        every autocommit statement run exactly once."""
        steps = self.in_flight("bw-flight", "SELECT count(*) AS seen FROM counter;",
                               before=["INSERT INTO counter VALUES (1, 'a');",
                                       lambda: self.wait_counted([1])],
                               after=["INSERT INTO counter VALUES (2, 'b');",
                                      "INSERT INTO counter VALUES (3, 'c');"], restart=True)
        rc, out = self.run_script(steps, shim=False, app="bw-flight")
        self.assertEqual(rc, 2, out)
        self.assertIn("terminating connection due to administrator command", out)
        self.assertEqual(self.counted(), [1])

        self.assertEqual(self.cluster.sql("TRUNCATE counter").rc, 0)
        pol, log = self.policy()
        rc, out = self.run_script(steps, shim=True, pol=pol, app="bw-flight")
        evs = read_events(log)
        self.assertEqual(rc, 0, out + describe(evs))
        self.assertEqual(self.counted(), [1, 2, 3])
        self.assertRegex(out, r"FROM counter;\n1\n", "the SELECT's answer")
        self.assertNotIn("terminating", out)
        rec = events_of(evs, "recovered", op="pg", call="PQsendQuery")
        self.assertEqual(len(rec), 1, describe(evs))
        first = events_of(evs, "fail", op="pg", call="PQsendQuery")[0]
        self.assertIn(first["err"], ("SQLSTATE_57P01", "SQLSTATE_08006"), describe(evs))
        for e in evs:
            self.assertNotIn("counter", str(e), "SQL text in an event")

    def test_read_only_in_flight_in_transaction_is_not_retried(self):
        """The same SELECT inside BEGIN..COMMIT, its session terminated while it runs:
        the transaction is gone whatever the SELECT did, so nothing is sent again; psql
        sees the error, and the failure is counted."""
        steps = self.in_flight("bw-txn-ro", "SELECT count(*) FROM counter;", before=["BEGIN;"],
                               after=["COMMIT;"])
        pol, log = self.policy()
        rc, out = self.run_script(steps, shim=True, pol=pol, app="bw-txn-ro")
        evs = read_events(log)
        self.assertEqual(rc, 2, out + describe(evs))
        self.assertIn("terminating connection due to administrator command", out)
        self.assertFalse(events_of(evs, "retry", op="pg"), describe(evs))
        self.assertTrue(events_of(evs, "fail", op="pg", call="PQsendQuery",
                                  err="SQLSTATE_57P01"), describe(evs))

    def test_write_in_flight_is_not_retried(self):
        """An autocommit INSERT whose session is terminated while it runs (it waits for
        a lock): it may have run, so it is not sent again; psql sees the error, and the
        gave_up event says why."""
        steps = self.in_flight("bw-write", "INSERT INTO counter VALUES (5, 'e');")
        pol, log = self.policy()
        rc, out = self.run_script(steps, shim=True, pol=pol, app="bw-write")
        evs = read_events(log)
        self.assertEqual(rc, 2, out + describe(evs))
        self.assertIn("terminating connection due to administrator command", out)
        self.assertEqual(self.counted(), [])
        self.assertFalse(events_of(evs, "retry", op="pg"), describe(evs))
        self.assertTrue(events_of(evs, "gave_up", op="pg", call="PQsendQuery",
                                  reason="unknown_outcome"), describe(evs))

    def test_read_only_exec_lost_is_retried(self):
        """PQexec of a read-only statement whose session is terminated while it runs (it
        waits for a lock): it goes again on a new connection, where PQexec of a write
        does not (test_lost_after_sent_is_not_retried)."""
        live = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.cluster.port
        pol, log = self.policy()
        holder = self.hold_lock()
        prog = self.spawn([PYTHON, "-c", CTYPES_EXEC, live, "SELECT count(*) FROM counter"],
                          shim_env(pol, **dict(PG_ENV, PGAPPNAME="bw-exec-ro")))
        self.assertTrue(self.wait_waiting("bw-exec-ro"), prog.transcript())
        self.terminate("bw-exec-ro")
        self.wait_waiting("bw-exec-ro")
        holder.send("COMMIT;\n")
        rc = prog.finish(timeout=30)
        evs = read_events(log)
        self.assertEqual((rc, prog.transcript().split("\n")[1]), (0, "SELECT 1"),
                         prog.transcript() + describe(evs))
        self.assertTrue(events_of(evs, "recovered", op="pg", call="PQexec"), describe(evs))

    def test_lost_in_flight_found_by_consume_input(self):
        """A program that waits for its results itself, as an event loop does: it sends
        a SELECT (PQsendQuery), watches the socket it had then, and reads with
        PQconsumeInput until PQisBusy says the results are in. Its backend is killed
        (SIGKILL: no message, the connection just ends, and the server restarts its
        sessions) while the SELECT waits for a lock. Bare, PQconsumeInput reports the
        connection lost; under a pg rule it sends the SELECT again on a new connection
        and the program reads the answer from the old socket's loop."""
        live = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.cluster.port
        sql = "SELECT count(*) FROM counter"
        self.assertEqual(self.cluster.sql("INSERT INTO counter VALUES (1, 'a')").rc, 0)
        pol, log = self.policy()
        outs = {}
        for name, env in (("bare", base_env(**dict(PG_ENV, PGAPPNAME="bw-async"))),
                          ("shim", shim_env(pol, **dict(PG_ENV, PGAPPNAME="bw-async")))):
            holder = self.hold_lock()
            prog = self.spawn([PYTHON, "-c", CTYPES_ASYNC, live, sql], env)
            self.assertTrue(self.wait_waiting("bw-async"), prog.transcript())
            r = self.cluster.sql("SELECT pid FROM pg_stat_activity WHERE application_name = "
                                 "'bw-async'")
            os.kill(int(r.stdout), 9)
            rc = prog.finish(timeout=60)
            holder.kill()
            outs[name] = (rc, prog.transcript())
            # the server restarts its sessions after a backend was killed: bounded wait
            end = time.monotonic() + 30
            while self.cluster.sql("SELECT 1", timeout=10).rc != 0:
                self.assertLess(time.monotonic(), end, "the server did not come back")
                time.sleep(0.1)
        self.assertEqual(outs["bare"][0], 1, outs["bare"][1])
        self.assertIn("lost", outs["bare"][1])
        evs = read_events(log)
        self.assertEqual(outs["shim"][0], 0, outs["shim"][1] + describe(evs))
        self.assertIn("answer 1", outs["shim"][1])
        self.assertTrue(events_of(evs, "recovered", op="pg", call="PQsendQuery"), describe(evs))

    def test_single_row_mode_is_not_sent_again(self):
        """A read-only SELECT read row by row (PQsetSingleRowMode after PQsendQuery) whose
        session is terminated while it runs: sent again it would come back whole, so it
        is not; the program gets the error, and the gave_up event says why."""
        live = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.cluster.port
        pol, log = self.policy()
        holder = self.hold_lock()
        prog = self.spawn([PYTHON, "-c", CTYPES_ASYNC, live, "SELECT count(*) FROM counter",
                           "single"], shim_env(pol, **dict(PG_ENV, PGAPPNAME="bw-single")))
        self.assertTrue(self.wait_waiting("bw-single"), prog.transcript())
        self.terminate("bw-single")
        holder.send("COMMIT;\n")
        rc = prog.finish(timeout=30)
        evs = read_events(log)
        self.assertEqual(rc, 1, prog.transcript() + describe(evs))
        self.assertFalse(events_of(evs, "retry", op="pg"), describe(evs))
        self.assertTrue(events_of(evs, "gave_up", op="pg", call="PQsendQuery",
                                  reason="unknown_outcome"), describe(evs))

    def test_pipeline_failures_are_counted_not_retried(self):
        """Pipeline mode: several statements in flight, their results read in turn. A
        failure there (a 40001 raised by the statement itself) is counted and logged,
        and goes to the program untouched: nothing is sent again."""
        live = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.cluster.port
        pol, log = self.policy()
        r = run([PYTHON, "-c", CTYPES_PIPELINE, live], env=PG_ENV, shim=True, policy=pol)
        evs = self.events(log)
        self.assertEqual((r.rc, r.stdout.split()), (0, ["7", "0", "10"]), repr(r) + describe(evs))
        self.assertTrue(events_of(evs, "fail", op="pg", call="PQsendQueryParams",
                                  err="SQLSTATE_40001"), describe(evs))
        self.assertFalse(events_of(evs, "retry", op="pg"), describe(evs))

    def conflict_psql(self, shim, script, pol=None):
        """A serialization failure (40001) met by an UPDATE that psql sends (PQsendQuery,
        read with PQgetResult) under SERIALIZABLE: another session updates the row first
        and commits while the UPDATE waits for its lock. script: psql's input, the
        UPDATE on a line of its own. Returns (exit status, psql's output)."""
        self.assertEqual(self.cluster.sql("DROP TABLE IF EXISTS acct; CREATE TABLE acct(k int "
                                          "PRIMARY KEY, v int); INSERT INTO acct VALUES (1, 0)")
                         .rc, 0)
        holder = self.spawn(psql_argv(self.cluster), base_env(**PG_ENV))
        holder.send("BEGIN; UPDATE acct SET v = v + 1 WHERE k = 1; SELECT 'held';\n")
        for _ in range(5):
            if holder.readline(timeout=30) == "held":
                break
        else:
            self.fail("the row was not taken\n" + holder.transcript())
        env = dict(PG_ENV, PGAPPNAME="bw-ser",
                   PGOPTIONS="-c default_transaction_isolation=serializable")
        env = shim_env(pol, **env) if shim else base_env(**env)
        prog = self.spawn(psql_argv(self.cluster, "-e"), env)
        prog.send(script)
        self.assertTrue(self.wait_waiting("bw-ser"), "the UPDATE never waited for its lock\n"
                        + prog.transcript())
        holder.send("COMMIT;\n")
        self.assertEqual(holder.finish(timeout=30), 0, holder.transcript())
        rc = prog.finish(timeout=30)
        return rc, prog.transcript()

    def test_serialization_failure_psql_autocommit_is_retried(self):
        script = "UPDATE acct SET v = v + 1 WHERE k = 1;\n"
        rc, out = self.conflict_psql(False, script)
        self.assertIn("could not serialize access", out)
        self.assertEqual(self.cluster.sql("SELECT v FROM acct").stdout.strip(), "1")
        pol, log = self.policy()
        rc, out = self.conflict_psql(True, script, pol)
        evs = read_events(log)
        self.assertEqual(rc, 0, out + describe(evs))
        self.assertNotIn("could not serialize", out)
        self.assertIn("UPDATE 1", out)
        self.assertEqual(self.cluster.sql("SELECT v FROM acct").stdout.strip(), "2")
        self.assertTrue(events_of(evs, "recovered", op="pg", call="PQsendQuery"), describe(evs))
        self.assertEqual(events_of(evs, "fail", op="pg")[0]["err"], "SQLSTATE_40001")

    def test_serialization_failure_psql_transaction_is_passed_through(self):
        pol, log = self.policy()
        rc, out = self.conflict_psql(True, "BEGIN;\nUPDATE acct SET v = v + 1 WHERE k = 1;\n"
                                     "COMMIT;\n", pol)
        evs = read_events(log)
        self.assertEqual(rc, 3, out)   # ON_ERROR_STOP: a script error
        self.assertIn("could not serialize access", out, describe(evs))
        self.assertEqual(self.cluster.sql("SELECT v FROM acct").stdout.strip(), "1")
        self.assertFalse(events_of(evs, "retry", op="pg"), describe(evs))
        self.assertTrue(events_of(evs, "fail", op="pg", call="PQsendQuery",
                                  err="SQLSTATE_40001"), describe(evs))

    def test_inject_sqlstate_on_statements(self):
        """inject: a SQLSTATE on a statement is raised by the server in its place: the
        program gets an error result with that code from a statement that never ran.
        psql's SELECT (PQsendQuery) meets one and is retried; a PQexec without a retry
        returns it."""
        pol, log = self.policy(body=RETRY + "inject: [ { errno: SQLSTATE_57P01, after: 1, "
                               "count: 1 } ]\n")
        r = run(psql_argv(self.cluster, "-c", "INSERT INTO counter VALUES (1, 'once') "
                          "RETURNING k"), env=PG_ENV, shim=True, policy=pol)
        evs = self.events(log)
        self.assertEqual((r.rc, r.stdout.split()[:1]), (0, ["1"]), repr(r) + describe(evs))
        self.assertEqual(self.counted(), [1])
        inj = events_of(evs, "injected", op="pg", call="PQsendQuery")
        self.assertEqual(len(inj), 1, describe(evs))
        self.assertTrue(events_of(evs, "recovered", op="pg", call="PQsendQuery"), describe(evs))

        pol, log = self.policy(body="inject: [ { errno: SQLSTATE_53300, after: 1, count: 1 } ]\n")
        live = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.cluster.port
        r = run([PYTHON, "-c", CTYPES_EXEC, live, "INSERT INTO counter VALUES (2, 'never')"],
                env=PG_ENV, shim=True, policy=pol)
        evs = self.events(log)
        self.assertEqual((r.rc, r.stdout.strip()), (1, "error 53300"), repr(r) + describe(evs))
        self.assertEqual(self.counted(), [1])
        self.assertTrue(events_of(evs, "injected", op="pg", call="PQexec"), describe(evs))

    # -- libpq called directly ----------------------------------------------------------

    def test_ctypes_connect_family(self):
        """PQconnectdb, PQconnectStart and PQconnectPoll as a program calls them (python3
        and ctypes): after the breaker trips on a dead server, PQconnectdb returns a
        CONNECTION_BAD handle at once, with the reason and no socket; PQconnectStart is
        refused alike and PQconnectPoll on it fails; PQfinish frees them."""
        code = CTYPES_CLIENT
        dead = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % free_port()
        pol, log = self.wd.policy(rule("pg", ["pg"], body=(
            "breaker: { trip: { consecutive: 2 }, open_for: 60s }\n")))
        bare = run([PYTHON, "-c", code, dead], env=PG_ENV)
        self.assertEqual(bare.rc, 0, bare)
        self.assertNotIn("circuit breaker", bare.stdout)
        r = run([PYTHON, "-c", code, dead], env=PG_ENV, shim=True, policy=pol)
        self.assertEqual(r.rc, 0, r)
        lines = r.stdout.splitlines()
        self.assertEqual([x.split()[:2] for x in lines[0:2]], [["connectdb", "1"]] * 2, r)
        self.assertEqual(lines[2], "connectdb 1 sock -1", r)
        self.assertIn("circuit breaker is open", lines[3], r)
        self.assertEqual(lines[4:6], ["start 1", "poll 0"], r)
        self.assertTrue(lines[6].startswith("setdb 1 sock -1 bulwark refused"), r)
        evs = self.events(log)
        self.assertEqual([e["call"] for e in events_of(evs, "rejected", op="pg")],
                         ["PQconnectdb", "PQconnectStart", "PQsetdbLogin"], describe(evs))
        # a healthy server: started and polled by the program, the outcome is seen
        live = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.cluster.port
        r = run([PYTHON, "-c", CTYPES_POLL, live], env=PG_ENV, shim=True, policy=pol)
        self.assertEqual(r.stdout.strip(), "ok", r)


# python3 calling libpq as a C program would: the library loaded RTLD_GLOBAL and its
# functions looked up in the global scope, where a preloaded library comes first.
CTYPES_PRELUDE = """
import ctypes, ctypes.util, sys
ctypes.CDLL("libpq.so.5", mode=ctypes.RTLD_GLOBAL)
pq = ctypes.CDLL(None)
pq.PQconnectdb.restype = ctypes.c_void_p
pq.PQconnectStart.restype = ctypes.c_void_p
for f in ("PQstatus", "PQsocket", "PQconnectPoll", "PQfinish", "PQerrorMessage"):
    getattr(pq, f).argtypes = [ctypes.c_void_p]
pq.PQerrorMessage.restype = ctypes.c_char_p
info = sys.argv[1].encode()
"""

CTYPES_CLIENT = CTYPES_PRELUDE + """
for i in range(3):
    c = pq.PQconnectdb(info)
    print("connectdb", pq.PQstatus(c), "sock", pq.PQsocket(c))
    msg = pq.PQerrorMessage(c).decode()
    pq.PQfinish(c)
print(msg.strip())
c = pq.PQconnectStart(info)
print("start", pq.PQstatus(c))
print("poll", pq.PQconnectPoll(c))
pq.PQfinish(c)
opts = dict(kv.split("=") for kv in sys.argv[1].split())
pq.PQsetdbLogin.restype = ctypes.c_void_p
c = pq.PQsetdbLogin(opts["host"].encode(), opts["port"].encode(), None, None,
                    opts["dbname"].encode(), opts["user"].encode(), None)
print("setdb", pq.PQstatus(c), "sock", pq.PQsocket(c), pq.PQerrorMessage(c).decode().strip())
pq.PQfinish(c)
"""

CTYPES_POLL = CTYPES_PRELUDE + """
import select, time
c = pq.PQconnectStart(info)
end = time.monotonic() + 20
st = 2
while st not in (0, 3) and time.monotonic() < end:
    fd = pq.PQsocket(c)
    if st == 1:
        select.select([fd], [], [], 1)
    else:
        select.select([], [fd], [], 1)
    st = pq.PQconnectPoll(c)
print("ok" if st == 3 and pq.PQstatus(c) == 0 else "failed %d %s" % (st, pq.PQerrorMessage(c)))
pq.PQfinish(c)
"""

# One UPDATE by PQexec, alone (autocommit) or inside BEGIN (transaction); prints what
# libpq says of it.
CTYPES_UPDATE = CTYPES_PRELUDE + """
pq.PQexec.restype = ctypes.c_void_p
pq.PQexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
for f in ("PQresultStatus", "PQclear", "PQcmdStatus"):
    getattr(pq, f).argtypes = [ctypes.c_void_p]
pq.PQcmdStatus.restype = ctypes.c_char_p
pq.PQresultErrorField.restype = ctypes.c_char_p
pq.PQresultErrorField.argtypes = [ctypes.c_void_p, ctypes.c_int]
c = pq.PQconnectdb(info)
if pq.PQstatus(c) != 0:
    sys.exit("connect: " + pq.PQerrorMessage(c).decode())
if sys.argv[2] == "transaction":
    pq.PQclear(pq.PQexec(c, b"BEGIN"))
r = pq.PQexec(c, b"UPDATE acct SET v = v + 1 WHERE k = 1")
if pq.PQresultStatus(r) in (1, 2):   # COMMAND_OK, TUPLES_OK
    print(pq.PQcmdStatus(r).decode())
    code = 0
else:
    print("error", (pq.PQresultErrorField(r, ord("C")) or b"").decode())
    code = 1
pq.PQclear(r)
pq.PQfinish(c)
sys.exit(code)
"""

# One statement (argv[2]) sent with PQsendQuery and waited for as an event loop does: the
# socket taken once, PQconsumeInput and PQisBusy until the results are in, all bounded.
CTYPES_ASYNC = CTYPES_PRELUDE + """
import select, time
for f in ("PQconsumeInput", "PQisBusy"):
    getattr(pq, f).argtypes = [ctypes.c_void_p]
pq.PQsendQuery.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
pq.PQgetResult.restype = ctypes.c_void_p
pq.PQgetResult.argtypes = [ctypes.c_void_p]
pq.PQresultStatus.argtypes = [ctypes.c_void_p]
pq.PQclear.argtypes = [ctypes.c_void_p]
pq.PQgetvalue.restype = ctypes.c_char_p
pq.PQgetvalue.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
c = pq.PQconnectdb(info)
if pq.PQstatus(c) != 0 or not pq.PQsendQuery(c, sys.argv[2].encode()):
    sys.exit("connect or send: " + pq.PQerrorMessage(c).decode())
if sys.argv[3:] == ["single"]:
    pq.PQsetSingleRowMode.argtypes = [ctypes.c_void_p]
    pq.PQsetSingleRowMode(c)
fd = pq.PQsocket(c)
end = time.monotonic() + 45
while time.monotonic() < end:
    if not pq.PQconsumeInput(c):
        print("lost:", pq.PQerrorMessage(c).decode().strip())
        sys.exit(1)
    if not pq.PQisBusy(c):
        break
    try:
        select.select([fd], [], [], 0.2)
    except (OSError, ValueError):
        time.sleep(0.2)
r = pq.PQgetResult(c)
if pq.PQresultStatus(r) not in (2, 9):   # TUPLES_OK, SINGLE_TUPLE
    print("error", pq.PQerrorMessage(c).decode().strip())
    sys.exit(1)
print("answer", pq.PQgetvalue(r, 0, 0).decode())
pq.PQclear(r)
while True:
    r = pq.PQgetResult(c)
    if not r:
        break
    pq.PQclear(r)
pq.PQfinish(c)
"""

# A statement that raises 40001, in pipeline mode; prints the status of each result up to
# the pipeline's sync (0 for the end of the statement's results).
CTYPES_PIPELINE = CTYPES_PRELUDE + """
for f in ("PQenterPipelineMode", "PQpipelineSync", "PQexitPipelineMode"):
    getattr(pq, f).argtypes = [ctypes.c_void_p]
pq.PQsendQueryParams.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int] + \\
    [ctypes.c_void_p] * 4 + [ctypes.c_int]
pq.PQgetResult.restype = ctypes.c_void_p
pq.PQgetResult.argtypes = [ctypes.c_void_p]
pq.PQresultStatus.argtypes = [ctypes.c_void_p]
pq.PQclear.argtypes = [ctypes.c_void_p]
c = pq.PQconnectdb(info)
sql = b"DO $$BEGIN RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'conflict'; END$$"
if (pq.PQstatus(c) != 0 or not pq.PQenterPipelineMode(c)
        or not pq.PQsendQueryParams(c, sql, 0, None, None, None, None, 0)
        or not pq.PQpipelineSync(c)):
    sys.exit("pipeline: " + pq.PQerrorMessage(c).decode())
for _ in range(10):
    r = pq.PQgetResult(c)
    st = pq.PQresultStatus(r) if r else 0
    print(st)
    if r:
        pq.PQclear(r)
    if st == 10:
        break
pq.PQexitPipelineMode(c)
pq.PQfinish(c)
"""

# One statement (argv[2]) by PQexec in autocommit.
CTYPES_EXEC = CTYPES_UPDATE.replace('b"UPDATE acct SET v = v + 1 WHERE k = 1"',
                                    'sys.argv[2].encode()')


if __name__ == "__main__":
    unittest.main()
