"""MySQL and MariaDB client calls (op mysql): libmariadb's mysql_real_connect retried and
refused, statements run again only where that cannot repeat an effect, against a real
MariaDB server that the tests restart and kill sessions of.

One server (mariadb-install-db in a temporary directory, 127.0.0.1 on a free port and a
unix socket in that directory) serves every test of MariaServerTest. The client is a C
program on libmariadb (progs/clients/mysql_client.c): the mariadb command line client
links its client library statically, where no preload reaches it. Each test runs the
same thing bare first where that shows the failure the library mends.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CLIENT_PROGS, MARIADB_CLI, TOOL, MariaServer, ShimTest, base_env, describe,
                     events_of, free_port, lib_prog, mariadb_missing, read_events, rule, run,
                     shim_env)

STRACE = shutil.which("strace")
MISSING = mariadb_missing()
# Long enough for a server that is down for a few seconds (a restart)
RETRY = "retry: { attempts: 100, backoff: { base: 50ms, max: 300ms, jitter: equal }, deadline: 40s }\n"


class MysqlPolicyTest(ShimTest):
    """What needs no server: the policy side."""

    def test_check_accepts_mysql_rules(self):
        body = ("retry: { attempts: 5, on: [MYSQL_2013, MYSQL_1213] }\n"
                "breaker: { trip: { consecutive: 3 }, errno: MYSQL_2003 }\n"
                "rate_limit: { rate: 20/s, on_limit: fail }\n"
                "inject: [ { errno: MYSQL_1040, probability: 10% } ]\n")
        pol, _ = self.wd.policy(rule("db", ["mysql"], ["127.0.0.1:3306", "unix:/run/mysqld/*"],
                                     db=["app*"], body=body))
        r = run([TOOL, "check", pol])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("ops: [mysql]", r.stdout)
        self.assertIn("MYSQL_2013", r.stdout)

    def test_check_refuses_what_cannot_apply(self):
        for body, says in (("timeout: { connect: 1s }", "does not apply"),
                           ("retry: { on: [ECONNREFUSED] }", "errno names apply"),
                           ("retry: { on: [REDIS_LOADING] }", "does not apply"),
                           ("inject: [ { reset: true } ]", "does not apply")):
            pol, _ = self.wd.policy(rule("db", ["mysql"], body=body + "\n"))
            r = run([TOOL, "check", pol])
            self.assertEqual(r.rc, 1, r)
            self.assertIn(says, r.stderr, r)

    def test_explain(self):
        pol, _ = self.wd.policy(rule("app", ["mysql"], ["db.internal:3306"], db=["app"])
                                + rule("local", ["mysql"], ["unix:/run/mysqld/*"]))
        r = run([TOOL, "explain", "-c", pol, "--db", "app", "mysql", "db.internal:3306"])
        self.assertIn('rule "app"', r.stdout, r)
        r = run([TOOL, "explain", "-c", pol, "--db", "other", "mysql", "db.internal:3306"])
        self.assertIn("no rule matches", r.stdout, r)
        r = run([TOOL, "explain", "-c", pol, "mysql", "unix:/run/mysqld/mysqld.sock"])
        self.assertIn('rule "local"', r.stdout, r)


class _MysqlClient(ShimTest):
    prog_dir = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prog_dir = tempfile.mkdtemp(prefix="bw-myp-", dir="/tmp")
        cls.prog = lib_prog(os.path.join(CLIENT_PROGS, "mysql_client.c"), cls.prog_dir,
                              "libmariadb", ["-I/usr/include/mariadb", "-lmariadb"],
                              "libmariadb-dev")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prog_dir, ignore_errors=True)
        super().tearDownClass()

    def policy(self, body=RETRY, **kw):
        return self.wd.policy(rule("db", ["mysql"], body=body), **kw)


@unittest.skipIf(MISSING, MISSING)
class MysqlRefusalTest(_MysqlClient):
    def test_connect_rule_leaves_the_mysql_rules_connections_alone(self):
        """A connect rule and a mysql rule on one dead server: the mysql rule's 3
        attempts are 3 connect(2)s, not 3 x 3 (a retry within a retry), and the connect
        rule says nothing about them."""
        if not STRACE:
            self.skipTest("strace is not installed")
        port = free_port()
        pol, log = self.wd.policy(
            rule("db", ["mysql"], body="retry: { attempts: 3, backoff: { base: 5ms, max: 10ms } }\n")
            + rule("net", ["connect"], ["127.0.0.1:%d" % port],
                   body="retry: { attempts: 3, backoff: { base: 5ms, max: 10ms } }\n"))
        trace = self.wd.file("connects.txt")
        r = run([STRACE, "-f", "-q", "-e", "trace=connect", "-o", trace, self.prog,
                 "127.0.0.1", str(port), "root", "bw"], shim=True, policy=pol, timeout=60)
        self.assertIn("connect error", r.stdout, r)
        with open(trace) as f:
            traced = f.read()
        self.assertEqual(traced.count("htons(%d)" % port), 3, traced)
        evs = read_events(log)
        self.assertEqual(events_of(evs, "fail", rule="net"), [], describe(evs))
        self.assertEqual(len(events_of(evs, "fail", rule="db")), 3, describe(evs))

    def test_breaker_refuses_without_connecting(self):
        """A dead server: the retries trip the breaker (shared by the processes under one
        `bulwark run`); the next mysql_real_connect fails at once with CR_CONNECTION_ERROR
        (2002, as libmariadb fails a server it cannot reach) and a message that says why,
        and makes no connect(2)."""
        if not STRACE:
            self.skipTest("strace is not installed")
        port = free_port()
        pol, log = self.wd.policy(rule("db", ["mysql"], body=(
            "retry: { attempts: 3, backoff: { base: 10ms, max: 20ms } }\n"
            "breaker: { trip: { consecutive: 2 }, open_for: 60s }\n")),
            extra="state: { share: group, dir: %s }\n" % self.wd.file("state"))
        os.mkdir(self.wd.file("state"), 0o700)
        trace = self.wd.file("connects.txt")
        argv = [self.prog, "127.0.0.1", str(port), "root", "bw"]
        script = ('"$@" </dev/null; echo "first=$?"; %s -f -q -e trace=connect -o %s "$@" '
                  '</dev/null; echo "second=$?"' % (STRACE, trace))
        r = run([TOOL, "run", "-c", pol, "--", "/bin/sh", "-c", script, "sh"] + argv,
                timeout=60)
        self.assertIn("first=2", r.stdout, r)
        self.assertIn("second=2", r.stdout, r)
        self.assertRegex(r.stdout, r"connect error 2002 bulwark refused the connection to "
                         r"127\.0\.0\.1:%d" % port)
        self.assertIn("no connection was attempted", r.stdout, r)
        with open(trace) as f:
            traced = f.read()
        self.assertIn("+++ exited with 2 +++", traced)
        self.assertNotIn("htons(%d)" % port, traced, "the refused client connected:\n" + traced)
        evs = self.events(log)
        self.assertTrue(events_of(evs, "breaker", to="open"), describe(evs))
        self.assertTrue(events_of(evs, "rejected", op="mysql", call="mysql_real_connect",
                                  err="MYSQL_2002"),
                        describe(evs))
        # bare, the same client does connect
        r = run([STRACE, "-f", "-q", "-e", "trace=connect", "-o", trace] + argv)
        with open(trace) as f:
            self.assertIn("htons(%d)" % port, f.read())


@unittest.skipIf(MISSING, MISSING)
class MariaServerTest(_MysqlClient):
    server = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = MariaServer()
        try:
            cls.server.start()
            r = cls.server.sql("CREATE DATABASE bw; CREATE TABLE bw.counter(k int PRIMARY KEY, "
                               "note varchar(64)) ENGINE=InnoDB", db=None)
            if r.rc != 0:
                raise AssertionError(repr(r))
        except BaseException:
            cls.server.remove()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.remove()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if not self.server.running():
            self.server.start()
        self.assertEqual(self.server.sql("TRUNCATE counter").rc, 0)

    def counted(self):
        r = self.server.sql("SELECT k FROM counter ORDER BY k")
        self.assertEqual(r.rc, 0, r)
        return [int(x) for x in r.stdout.split()]

    def wait_counted(self, want, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.counted() == want:
                return
            time.sleep(0.05)
        self.fail("counter is %r, not %r, after %ss" % (self.counted(), want, timeout))

    def later(self, delay_s, fn):
        t = threading.Timer(delay_s, fn)
        t.start()
        self.addCleanup(t.join, 70)
        return t

    def client(self, pol=None, unix=False):
        argv = [self.client_path(), "-" if unix else "127.0.0.1", str(self.server.port), "root",
                "bw"] + ([self.server.sock] if unix else [])
        return self.spawn(argv, shim_env(pol) if pol else base_env())

    def client_path(self):
        return self.prog

    def ask(self, c, line, n=1, timeout=30):
        """line sent to the client, and its next n lines of output."""
        c.send(line + "\n")
        return [c.readline(timeout=timeout) for _ in range(n)]

    def kill(self, conn_id):
        """KILL CONNECTION conn_id, and wait until the server has let it go."""
        r = self.server.sql("KILL CONNECTION %d" % conn_id)
        self.assertEqual(r.rc, 0, r)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            r = self.server.sql("SELECT count(*) FROM information_schema.processlist "
                                "WHERE id = %d" % conn_id)
            if r.stdout.strip() == "0":
                time.sleep(0.1)   # its socket closed: the FIN is on its way
                return
            time.sleep(0.05)
        self.fail("connection %d still there 15 s after KILL" % conn_id)

    def conn_id(self, c):
        out = self.ask(c, "SELECT CONNECTION_ID()", 2)
        self.assertEqual(out[1], "ok", out)
        return int(out[0].split()[1])

    # -- healthy: nothing changes -------------------------------------------------------

    def test_healthy_identical(self):
        lines = ("INSERT INTO counter VALUES (1, 'a')\nSELECT k, note FROM counter\n\\ping\n"
                 "\\prepare SELECT k FROM counter WHERE k = 1\n\\execute\n"
                 "\\query SELECT count(*) FROM counter\n")
        argv = [self.client_path(), "127.0.0.1", str(self.server.port), "root", "bw"]
        bare = subprocess.run(argv, input=lines.encode(), env=base_env(), timeout=60,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.server.sql("TRUNCATE counter")
        pol, log = self.policy()
        r = subprocess.run(argv, input=lines.encode(), env=shim_env(pol), timeout=60,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (bare.returncode, bare.stdout, bare.stderr))
        evs = self.events(log)
        self.assertNoCallEvents(evs)
        stats = events_of(evs, "exit")[0]["stats"]["db"]
        self.assertGreaterEqual(stats["calls"], 6, describe(evs))

    # -- statements ---------------------------------------------------------------------

    def test_autocommit_statements_run_once_across_restart(self):
        """Autocommit statements with the server stopped and started again between them:
        bare, the client loses its connection and stops; under a mysql rule the statement
        after the restart is sent on a new connection, and every statement runs exactly
        once (the counter's primary key would refuse a second run)."""
        for shim in (False, True):
            self.server.sql("TRUNCATE counter")
            pol, log = self.policy() if shim else (None, None)
            c = self.client(pol, unix=shim)
            self.assertEqual(c.readline(timeout=30), "connected")
            self.assertEqual(self.ask(c, "INSERT INTO counter VALUES (1, 'a')"), ["ok 1"])
            self.server.stop()
            t = self.later(1.0, self.server.start)
            out = self.ask(c, "INSERT INTO counter VALUES (2, 'b')", timeout=60)
            t.join(70)
            if not shim:
                self.assertRegex(out[0], r"^error (2006|2013) ", c.transcript())
                self.assertEqual(c.finish(), 1)
                self.assertEqual(self.counted(), [1])
                continue
            self.assertEqual(out, ["ok 1"], c.transcript())
            self.assertEqual(self.ask(c, "INSERT INTO counter VALUES (3, 'c')"), ["ok 1"])
            self.assertEqual(c.finish(), 0)
            self.assertEqual(self.counted(), [1, 2, 3])
            evs = read_events(log)
            rec = events_of(evs, "recovered", op="mysql", call="mysql_real_query")
            self.assertEqual(len(rec), 1, describe(evs))
            self.assertEqual(rec[0]["dest"], "unix:" + self.server.sock)
            self.assertEqual(rec[0]["db"], "bw")
            self.assertEqual(events_of(evs, "fail", op="mysql",
                                       call="mysql_real_query")[0]["err"], "MYSQL_2006",
                             describe(evs))
            for e in evs:
                self.assertNotIn("INSERT", str(e), "SQL text in an event")

    def test_killed_idle_session_reconnects(self):
        """KILL CONNECTION on an idle autocommit session: the next statement was never
        sent to it, so it goes to a new session, once."""
        pol, log = self.policy()
        c = self.client(pol)
        self.assertEqual(c.readline(timeout=30), "connected")
        self.assertEqual(self.ask(c, "INSERT INTO counter VALUES (1, 'a')"), ["ok 1"])
        self.kill(self.conn_id(c))
        self.assertEqual(self.ask(c, "INSERT INTO counter VALUES (2, 'b')"), ["ok 1"],
                         c.transcript())
        self.assertEqual(c.finish(), 0)
        self.assertEqual(self.counted(), [1, 2])

    def test_kill_in_transaction_is_not_retried(self):
        """Inside BEGIN..COMMIT, a killed connection is the program's to handle: nothing
        is run again, the client sees the error, and the transaction's work is gone."""
        pol, log = self.policy()
        c = self.client(pol)
        self.assertEqual(c.readline(timeout=30), "connected")
        self.assertEqual(self.ask(c, "INSERT INTO counter VALUES (1, 'autocommit')"), ["ok 1"])
        self.assertEqual(self.ask(c, "BEGIN"), ["ok 0"])
        self.assertEqual(self.ask(c, "INSERT INTO counter VALUES (10, 'in the transaction')"),
                         ["ok 1"])
        self.kill(self.conn_id(c))
        out = self.ask(c, "INSERT INTO counter VALUES (11, 'in the transaction')")
        self.assertRegex(out[0], r"^error (2006|2013) ", c.transcript())
        self.assertEqual(c.finish(), 1)
        self.assertEqual(self.counted(), [1])
        evs = read_events(log)
        self.assertFalse(events_of(evs, "retry", op="mysql"), describe(evs))
        self.assertFalse(events_of(evs, "recovered", op="mysql"), describe(evs))

    def test_session_state_is_not_lost(self):
        """A session that set a user variable is not reconnected behind the program's
        back: the next statement would see it unset. The event says why."""
        pol, log = self.policy()
        c = self.client(pol)
        self.assertEqual(c.readline(timeout=30), "connected")
        self.assertEqual(self.ask(c, "SET @who = 'bw'"), ["ok 0"])
        self.kill(self.conn_id(c))
        out = self.ask(c, "INSERT INTO counter VALUES (2, @who)")
        self.assertRegex(out[0], r"^error (2006|2013) ", c.transcript())
        self.assertEqual(c.finish(), 1)
        evs = read_events(log)
        self.assertTrue(events_of(evs, "gave_up", op="mysql", reason="session_state"),
                        describe(evs))
        self.assertEqual(self.counted(), [])

    def test_lost_after_sent_is_not_retried(self):
        """An autocommit statement whose connection is killed while it runs: the
        statement was sent and its outcome is unknown, so it goes back to the program,
        with a gave_up event that says why."""
        pol, log = self.policy()
        c = self.client(pol)
        self.assertEqual(c.readline(timeout=30), "connected")
        conn = self.conn_id(c)
        c.send("INSERT INTO counter SELECT 7, SLEEP(30)\n")
        end = time.monotonic() + 20
        while time.monotonic() < end:
            r = self.server.sql("SELECT count(*) FROM information_schema.processlist "
                                "WHERE id = %d AND command = 'Query'" % conn)
            if r.stdout.strip() == "1":
                break
            time.sleep(0.05)
        self.assertEqual(self.server.sql("KILL CONNECTION %d" % conn).rc, 0)
        out = c.readline(timeout=30)
        self.assertRegex(out, r"^error (2006|2013) ", c.transcript())
        self.assertEqual(c.finish(), 1)
        evs = read_events(log)
        self.assertEqual(self.counted(), [])
        self.assertTrue(events_of(evs, "gave_up", op="mysql", call="mysql_real_query",
                                  reason="unknown_outcome"), describe(evs))
        self.assertFalse(events_of(evs, "retry", op="mysql"), describe(evs))

    def killed_while_waiting(self, pol, sql):
        """sql sent by a client under pol while another session holds counter locked
        (LOCK TABLES ... WRITE), so that it waits in the server, sent and not run; its
        connection killed then, the lock released a moment later. Returns the client's
        answer and its Spawned."""
        holder = self.spawn([MARIADB_CLI, "--no-defaults", "--unbuffered", "-h", "127.0.0.1",
                             "-P", str(self.server.port), "-u", "root", "-N", "-B", "bw"],
                            base_env())
        holder.send("LOCK TABLES counter WRITE; SELECT 'held';\n")
        self.assertEqual(holder.readline(timeout=30), "held", holder.transcript())
        c = self.client(pol)
        self.assertEqual(c.readline(timeout=30), "connected")
        conn = self.conn_id(c)
        c.send(sql + "\n")
        end = time.monotonic() + 20
        while time.monotonic() < end:
            r = self.server.sql("SELECT count(*) FROM information_schema.processlist WHERE id "
                                "= %d AND state LIKE '%%metadata lock%%'" % conn)
            if r.stdout.strip() == "1":
                break
            time.sleep(0.05)
        else:
            self.fail("the statement never waited for the lock\n" + c.transcript())
        self.assertEqual(self.server.sql("KILL CONNECTION %d" % conn).rc, 0)
        self.later(0.5, lambda: holder.send("UNLOCK TABLES; SELECT 'free';\n"))
        out = c.readline(timeout=30)
        return out, c

    def test_read_only_query_lost_after_sent_runs_again(self):
        """A SELECT whose connection is lost once it was sent: it reads and changes
        nothing, so it runs again on a new connection."""
        self.assertEqual(self.server.sql("INSERT INTO counter VALUES (8, 'h')").rc, 0)
        pol, log = self.policy()
        out, c = self.killed_while_waiting(pol, "SELECT k, note FROM counter WHERE k = 8")
        self.assertEqual(out, "row 8 h", c.transcript())
        self.assertEqual(c.readline(), "ok")
        self.assertEqual(c.finish(), 0)
        evs = read_events(log)
        rec = events_of(evs, "recovered", op="mysql", call="mysql_real_query")
        self.assertEqual(len(rec), 1, describe(evs))
        self.assertIn(events_of(evs, "fail", op="mysql")[0]["err"], ("MYSQL_2013", "MYSQL_2006"))

    def test_idempotent_statement_lost_after_sent_runs_again(self):
        """An UPDATE lost once it was sent is not run again, unless the rule's idempotent
        list names it."""
        self.assertEqual(self.server.sql("INSERT INTO counter VALUES (9, 'i')").rc, 0)
        sql = "UPDATE counter SET note = 'done' WHERE k = 9"
        pol, log = self.policy()
        out, c = self.killed_while_waiting(pol, sql)
        self.assertRegex(out, r"^error (2006|2013) ", c.transcript())
        self.assertEqual(c.finish(), 1)
        self.assertTrue(events_of(read_events(log), "gave_up", op="mysql",
                                  reason="unknown_outcome"))
        self.assertEqual(self.server.sql("SELECT note FROM counter WHERE k = 9").stdout.strip(),
                         "i")
        pol, log = self.wd.policy(rule("db", ["mysql"], body=RETRY + (
            'idempotent: ["update  counter SET note = \'done\'"]\n')), log="vouched.log")
        out, c = self.killed_while_waiting(pol, sql)
        self.assertEqual(out, "ok 1", c.transcript())
        self.assertEqual(c.finish(), 0)
        self.assertEqual(self.server.sql("SELECT note FROM counter WHERE k = 9").stdout.strip(),
                         "done")
        evs = read_events(log)
        self.assertTrue(events_of(evs, "recovered", op="mysql", call="mysql_real_query"),
                        describe(evs))

    def lock_wait(self, pol, statements, log=None):
        """Another session holds row 1 of acct (BEGIN; UPDATE) while the client sends
        statements, the last an UPDATE of that row, with a lock wait timeout of 1 s for
        new sessions; the holder commits once the client's first wait timed out (its
        1205, seen in log under a policy, else in its answer). Returns the client's answer
        to the UPDATE and the Spawned."""
        self.assertEqual(self.server.sql("DROP TABLE IF EXISTS acct; CREATE TABLE acct(k int "
                                         "PRIMARY KEY, v int) ENGINE=InnoDB; INSERT INTO acct "
                                         "VALUES (1, 0)").rc, 0)
        self.assertEqual(self.server.sql("SET GLOBAL innodb_lock_wait_timeout = 1").rc, 0)
        self.addCleanup(self.server.sql, "SET GLOBAL innodb_lock_wait_timeout = 50")
        holder = self.spawn([MARIADB_CLI, "--no-defaults", "--unbuffered", "-h", "127.0.0.1",
                             "-P", str(self.server.port), "-u", "root", "-N", "-B", "bw"],
                            base_env())
        holder.send("BEGIN; UPDATE acct SET v = v + 1 WHERE k = 1; SELECT 'held';\n")
        self.assertEqual(holder.readline(timeout=30), "held", holder.transcript())
        c = self.client(pol)
        self.assertEqual(c.readline(timeout=30), "connected")
        for sql in statements[:-1]:
            self.assertEqual(self.ask(c, sql), ["ok 0"], c.transcript())
        c.send(statements[-1] + "\n")
        out = None
        if log:
            end = time.monotonic() + 30
            while not events_of(read_events(log), "fail", op="mysql", err="MYSQL_1205"):
                self.assertLess(time.monotonic(), end, "no 1205 within 30 s\n" + c.transcript())
                time.sleep(0.05)
        else:
            out = c.readline(timeout=30)
        holder.send("COMMIT; SELECT 'done';\n")
        self.assertEqual(holder.readline(timeout=30), "done", holder.transcript())
        return out if out is not None else c.readline(timeout=30), c

    def acct(self):
        return self.server.sql("SELECT v FROM acct WHERE k = 1").stdout.strip()

    def test_lock_wait_timeout_alone_in_autocommit_is_retried(self):
        """A lone autocommit UPDATE that times out waiting for a row lock (1205) was rolled
        back whole: bare, the program gets the error; under a mysql rule it runs again once
        the lock is free, and the row is updated once by each session."""
        update = "UPDATE acct SET v = v + 1 WHERE k = 1"
        out, c = self.lock_wait(None, [update])
        self.assertRegex(out, r"^error 1205 ", c.transcript())
        self.assertEqual(c.finish(), 1)
        self.assertEqual(self.acct(), "1")
        pol, log = self.policy()
        out, c = self.lock_wait(pol, [update], log)
        self.assertEqual(out, "ok 1", c.transcript())
        self.assertEqual(c.finish(), 0)
        self.assertEqual(self.acct(), "2")
        evs = read_events(log)
        self.assertTrue(events_of(evs, "recovered", op="mysql", call="mysql_real_query"),
                        describe(evs))

    def test_lock_wait_timeout_in_transaction_is_passed_through(self):
        pol, log = self.policy()
        out, c = self.lock_wait(pol, ["BEGIN", "UPDATE acct SET v = v + 1 WHERE k = 1"], log)
        self.assertRegex(out, r"^error 1205 ", c.transcript())
        self.assertEqual(c.finish(), 1)
        self.assertEqual(self.acct(), "1")
        evs = read_events(log)
        self.assertFalse(events_of(evs, "retry", op="mysql"), describe(evs))

    def test_injected_faults(self):
        """An injected 2003 at mysql_real_connect and an injected deadlock (1213) at a
        lone autocommit statement are retried; nothing is sent for them, so the
        statement runs once."""
        pol, log = self.policy(body=RETRY + (
            "inject: [ { errno: MYSQL_2003, count: 1 }, { errno: MYSQL_1213, after: 2, "
            "count: 1 } ]\n"))
        c = self.client(pol)
        self.assertEqual(c.readline(timeout=30), "connected", c.transcript())
        self.assertEqual(self.ask(c, "INSERT INTO counter VALUES (6, 'f')"), ["ok 1"],
                         c.transcript())
        self.assertEqual(c.finish(), 0)
        self.assertEqual(self.counted(), [6])
        evs = read_events(log)
        self.assertEqual(sorted(e["err"] for e in events_of(evs, "injected", op="mysql")),
                         ["MYSQL_1213", "MYSQL_2003"], describe(evs))
        self.assertEqual(sorted(e["call"] for e in events_of(evs, "recovered", op="mysql")),
                         ["mysql_real_connect", "mysql_real_query"], describe(evs))

    def test_ping_reconnects_an_idle_session(self):
        """mysql_ping on a session the server closed: it has no effect to repeat, so the
        session is made anew and the ping answers."""
        pol, log = self.policy()
        c = self.client(pol)
        self.assertEqual(c.readline(timeout=30), "connected")
        self.kill(self.conn_id(c))
        self.assertEqual(self.ask(c, "\\ping"), ["ok"], c.transcript())
        self.assertEqual(self.ask(c, "INSERT INTO counter VALUES (5, 'e')"), ["ok 1"])
        self.assertEqual(c.finish(), 0)
        self.assertEqual(self.counted(), [5])
        evs = read_events(log)
        self.assertTrue(events_of(evs, "recovered", op="mysql", call="mysql_ping"),
                        describe(evs))

    def test_connect_waits_for_a_starting_server(self):
        """mysql_real_connect while the server is down: bare it fails with 2002 (socket
        file) or 2003; under a mysql rule it is retried until the server is up."""
        self.server.stop()
        t = self.later(1.0, self.server.start)
        pol, log = self.policy()
        c = self.client(pol, unix=True)
        self.assertEqual(c.readline(timeout=60), "connected", c.transcript())
        t.join(70)
        self.assertEqual(self.ask(c, "INSERT INTO counter VALUES (4, 'd')"), ["ok 1"])
        self.assertEqual(c.finish(), 0)
        evs = read_events(log)
        self.assertTrue(events_of(evs, "recovered", op="mysql", call="mysql_real_connect"),
                        describe(evs))
        self.assertIn(events_of(evs, "fail", op="mysql")[0]["err"],
                      ("MYSQL_2002", "MYSQL_2003"), describe(evs))


if __name__ == "__main__":
    unittest.main()
