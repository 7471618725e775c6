"""Redis client calls (op redis): hiredis's connect family retried and refused, commands
sent again only where that cannot repeat an effect.

A C program on libhiredis (progs/clients/redis_client.c) talks to a real redis-server
started by the tests on a free loopback port, and to a small RESP server in this process
that answers as each test scripts it (LOADING twice, a connection closed after a command
arrived). Each test runs the same thing bare first where that shows the failure the
library mends.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (CLIENT_PROGS, LIB, PYTHON, REDIS_SERVER, TOOL, RedisServer, RespServer,
                     ShimTest, base_env, describe, events_of, free_port, hiredis_missing,
                     lib_prog, read_events, resp_command, rule, run, shim_env)

STRACE = shutil.which("strace")
MISSING = hiredis_missing()
# Long enough for a server that is down for a few seconds (a restart on a loaded machine)
RETRY = "retry: { attempts: 100, backoff: { base: 20ms, max: 200ms, jitter: equal }, deadline: 30s }\n"


class RedisPolicyTest(ShimTest):
    """What needs no server: the policy side, and programs that do not use hiredis."""

    def test_check_accepts_redis_rules(self):
        body = ("retry: { attempts: 5, on: [REDIS_LOADING, ECONNREFUSED] }\n"
                "breaker: { trip: { consecutive: 3 } }\n"
                "rate_limit: { rate: 20/s, on_limit: fail }\n"
                "inject: [ { errno: REDIS_BUSY, probability: 10% } ]\n")
        pol, _ = self.wd.policy(rule("cache", ["redis"], ["127.0.0.1:6379", "unix:/run/redis/*"],
                                     db=["0"], body=body))
        r = run([TOOL, "check", pol])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("ops: [redis]", r.stdout)
        self.assertIn("REDIS_LOADING", r.stdout)

    def test_check_refuses_what_cannot_apply(self):
        for body, says in (("retry: { on: [SQLSTATE_57P03] }", "does not apply"),
                           ("retry: { on: [REDIS_NOPE] }", "REDIS_NOPE"),
                           ("inject: [ { reset: true } ]", "does not apply")):
            pol, _ = self.wd.policy(rule("cache", ["redis"], body=body + "\n"))
            r = run([TOOL, "check", pol])
            self.assertEqual(r.rc, 1, r)
            self.assertIn(says, r.stderr, r)

    def test_explain(self):
        pol, _ = self.wd.policy(rule("cache", ["redis"], ["cache.internal:6379"], db=["2"])
                                + rule("local", ["redis"], ["unix:/run/redis/*"]))
        r = run([TOOL, "explain", "-c", pol, "--db", "2", "redis", "cache.internal:6379"])
        self.assertIn('rule "cache"', r.stdout, r)
        r = run([TOOL, "explain", "-c", pol, "--db", "0", "redis", "cache.internal:6379"])
        self.assertIn("no rule matches", r.stdout, r)
        r = run([TOOL, "explain", "-c", pol, "redis", "unix:/run/redis/redis.sock"])
        self.assertIn('rule "local"', r.stdout, r)

    def test_library_exports_only_interposed_names(self):
        """hiredis and libmariadb are found at run time: the library links only the C
        library (and the loader), and exports only what shim/exports.map names."""
        readelf, nm = shutil.which("readelf"), shutil.which("nm")
        if not readelf or not nm:
            self.skipTest("readelf and nm (binutils) are not installed")
        needed = re.findall(r"\(NEEDED\).*\[(.*)\]", run([readelf, "-d", LIB]).stdout)
        self.assertTrue(needed)
        for lib in needed:
            self.assertRegex(lib, r"^(libc|libdl|libpthread|ld-linux[-\w]*)\.so", needed)
        names = set(run([nm, "-D", "--defined-only", LIB]).stdout.split()[2::3])
        with open(os.path.join(os.path.dirname(LIB), "..", "shim", "exports.map")) as f:
            exported = set(re.findall(r"\b(\w+);", f.read()))
        for name in ("redisCommand", "redisConnectWithOptions", "mysql_real_connect",
                     "mysql_stmt_execute"):
            self.assertIn(name, names)
        self.assertEqual(names - exported, set(), "exported beyond shim/exports.map")

    def test_programs_without_hiredis_untouched(self):
        pol, log = self.wd.policy(rule("cache", ["redis", "mysql"], body=RETRY))
        code = "import socket, sys; print(sys.version_info[0])"
        bare = run([PYTHON, "-c", code])
        r = run([PYTHON, "-c", code], shim=True, policy=pol)
        self.assertEqual((r.rc, r.stdout, r.stderr), (bare.rc, bare.stdout, bare.stderr))
        self.assertNoCallEvents(self.events(log))


class _RedisClient(ShimTest):
    """The C client, compiled once per class, and ways to run it."""

    prog_dir = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prog_dir = tempfile.mkdtemp(prefix="bw-rdp-", dir="/tmp")
        cls.client = lib_prog(os.path.join(CLIENT_PROGS, "redis_client.c"), cls.prog_dir,
                              "hiredis", ["-I/usr/include/hiredis", "-lhiredis"],
                              "libhiredis-dev")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prog_dir, ignore_errors=True)
        super().tearDownClass()

    def policy(self, body=RETRY, **kw):
        return self.wd.policy(rule("cache", ["redis"], body=body), **kw)

    def resp(self, answer):
        s = RespServer(answer)
        self.track(s)
        return s

    def run_client(self, lines, port, shim, pol=None, host="127.0.0.1", argv0=()):
        """The client fed lines; (exit status, stdout lines, stderr)."""
        env = shim_env(pol) if shim else base_env()
        p = subprocess.run(list(argv0) + [self.client, host, str(port)], env=env,
                           input="".join(line + "\n" for line in lines).encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        return p.returncode, p.stdout.decode().splitlines(), p.stderr.decode()

    def later(self, delay_s, fn):
        """fn run delay_s from now in a thread; joined at the end of the test."""
        t = threading.Timer(delay_s, fn)
        t.start()
        self.addCleanup(t.join, 70)
        return t


@unittest.skipIf(MISSING, MISSING)
class RedisClientTest(_RedisClient):
    """Against a RESP server of the test's own."""

    # -- a server that declined ---------------------------------------------------------

    def test_loading_twice_then_ok_is_retried(self):
        """A server that is loading its dataset answers -LOADING: it did not run the
        command. Bare, the program gets the error; under a redis rule the command is
        sent again and the program gets +OK, the server having seen it three times."""
        loading = [2]

        def answer(n, args):
            if args[0].upper() == b"SET" and loading[0] > 0:
                loading[0] -= 1
                return b"-LOADING Redis is loading the dataset in memory\r\n"
            return b"+OK\r\n"
        srv = self.resp(answer)
        rc, out, err = self.run_client(["SET k v"], srv.port, shim=False)
        self.assertEqual(out, ["connected", "error LOADING Redis is loading the dataset in memory"],
                         err)
        loading[0] = 2
        srv.commands.clear()
        pol, log = self.policy()
        rc, out, err = self.run_client(["SET k v"], srv.port, shim=True, pol=pol)
        evs = read_events(log)
        self.assertEqual((rc, out), (0, ["connected", "status OK"]), err + describe(evs))
        self.assertEqual([c[0] for c in srv.commands], [b"SET"] * 3)
        rec = self.assertRecovered(evs, op="redis", err="REDIS_LOADING")
        self.assertEqual(rec["call"], "redisCommandArgv")
        self.assertEqual(rec["dest"], "127.0.0.1:%d" % srv.port)
        self.assertEqual(rec["db"], "0")
        for e in evs:
            self.assertNotIn('"v"', str(e).replace("'", '"'), "a value in an event")

    def test_lost_after_sent_incr_is_not_sent_again(self):
        """The connection closes after INCR reached the server, before its reply: it may
        have run, so it goes back to the program (gave_up, unknown_outcome) and the
        server sees it once. A GET lost the same way goes again on a new connection."""
        drop = [1]

        def answer(n, args):
            if args[0].upper() in (b"INCR", b"GET") and drop[0]:
                drop[0] -= 1
                return None
            return b":1\r\n" if args[0].upper() == b"INCR" else b"$1\r\n1\r\n"
        srv = self.resp(answer)
        pol, log = self.policy()
        rc, out, err = self.run_client(["INCR counter"], srv.port, shim=True, pol=pol)
        evs = read_events(log)
        self.assertEqual(rc, 1, out)
        self.assertTrue(out[-1].startswith("ioerror"), out)
        self.assertEqual([c[0] for c in srv.commands], [b"INCR"])
        self.assertEqual(srv.connections, 1)
        self.assertTrue(events_of(evs, "gave_up", op="redis", reason="unknown_outcome"),
                        describe(evs))
        self.assertFalse(events_of(evs, "retry", op="redis"), describe(evs))
        drop[0] = 1
        srv.commands.clear()
        rc, out, err = self.run_client(["GET counter"], srv.port, shim=True, pol=pol)
        evs = read_events(log)
        self.assertEqual((rc, out), (0, ["connected", "str 1"]), err + describe(evs))
        self.assertEqual([c[0] for c in srv.commands], [b"GET", b"GET"])
        self.assertTrue(events_of(evs, "recovered", op="redis", call="redisCommandArgv"),
                        describe(evs))

    def test_idempotent_command_lost_after_sent_is_sent_again(self):
        """A SET lost once it was sent is not sent again, unless the rule's idempotent
        list names it (setting a key to the same value twice changes nothing more)."""
        drop = [1]

        def answer(n, args):
            if drop[0]:
                drop[0] -= 1
                return None
            return b"+OK\r\n"
        srv = self.resp(answer)
        pol, log = self.policy()
        rc, out, err = self.run_client(["SET k v"], srv.port, shim=True, pol=pol)
        self.assertEqual(rc, 1, out)
        self.assertEqual(len(srv.commands), 1)
        drop[0] = 1
        srv.commands.clear()
        pol, log = self.policy(body=RETRY + "idempotent: [set]\n", log="vouched.log")
        rc, out, err = self.run_client(["SET k v"], srv.port, shim=True, pol=pol)
        evs = read_events(log)
        self.assertEqual((rc, out), (0, ["connected", "status OK"]), err + describe(evs))
        self.assertEqual([c[0] for c in srv.commands], [b"SET", b"SET"])
        self.assertTrue(events_of(evs, "recovered", op="redis", call="redisCommandArgv"),
                        describe(evs))

    def test_injected_loading_is_retried_and_never_sent(self):
        """An injected LOADING is an answer the server never gave: the command is not
        sent until the faults are spent, then once."""
        srv = self.resp(lambda n, args: b"+OK\r\n")
        pol, log = self.policy(body=RETRY + "inject: [ { errno: REDIS_LOADING, count: 2 } ]\n")
        rc, out, err = self.run_client(["SET k v"], srv.port, shim=True, pol=pol)
        evs = read_events(log)
        self.assertEqual((rc, out), (0, ["connected", "status OK"]), err + describe(evs))
        self.assertEqual([c[0] for c in srv.commands], [b"SET"])
        self.assertEqual(len(events_of(evs, "injected", op="redis", err="REDIS_LOADING")), 2,
                         describe(evs))
        self.assertTrue(events_of(evs, "recovered", op="redis"), describe(evs))

    def test_pipeline_is_observed_not_sent_again(self):
        """A pipelined command's reply read with redisGetReply: a LOADING answer is the
        program's (never sent again), counted under the rule."""
        srv = self.resp(lambda n, args: b"-LOADING busy loading\r\n")
        pol, log = self.policy()
        rc, out, err = self.run_client(["\\append SET k v", "\\getreply"], srv.port, shim=True,
                                       pol=pol)
        evs = read_events(log)
        self.assertEqual(out, ["connected", "ok", "error LOADING busy loading"], err)
        self.assertEqual(len(srv.commands), 1)
        fails = events_of(evs, "fail", op="redis", call="redisGetReply")
        self.assertEqual([e["err"] for e in fails], ["REDIS_LOADING"], describe(evs))
        self.assertFalse(events_of(evs, "retry", op="redis"), describe(evs))

    # -- breaker ------------------------------------------------------------------------

    def test_connect_rule_leaves_the_redis_rules_connections_alone(self):
        """A connect rule and a redis rule on one dead server: the redis rule's 3
        attempts are 3 connect(2)s, not 3 x 3 (a retry within a retry), and the connect
        rule says nothing about them."""
        if not STRACE:
            self.skipTest("strace is not installed")
        port = free_port()
        dest = ["127.0.0.1:%d" % port]
        pol, log = self.wd.policy(
            rule("cache", ["redis"], body="retry: { attempts: 3, backoff: { base: 5ms, max: 10ms } }\n")
            + rule("net", ["connect"], dest,
                   body="retry: { attempts: 3, backoff: { base: 5ms, max: 10ms } }\n"))
        trace = self.wd.file("connects.txt")
        rc, out, err = self.run_client([], port, shim=True, pol=pol,
                                       argv0=[STRACE, "-f", "-q", "-e", "trace=connect",
                                              "-o", trace])
        self.assertTrue(out and out[0].startswith("connect error"), out)
        with open(trace) as f:
            traced = f.read()
        self.assertEqual(traced.count("htons(%d)" % port), 3, traced)
        evs = self.events(log)
        self.assertEqual(events_of(evs, "fail", rule="net"), [], describe(evs))
        self.assertEqual(len(events_of(evs, "fail", rule="cache")), 3, describe(evs))

    def test_breaker_refuses_without_connecting(self):
        """A dead server: two refused connects trip the breaker; the next redisConnect
        returns a context with err set that says why, no descriptor, and no connect(2);
        so does a redisAsyncConnect."""
        if not STRACE:
            self.skipTest("strace is not installed")
        port = free_port()
        pol, log = self.policy(body="breaker: { trip: { consecutive: 2 }, open_for: 60s }\n")
        trace = self.wd.file("connects.txt")
        rc, out, err = self.run_client(["\\connect"] * 3 + ["\\async"], port, shim=True,
                                       pol=pol,
                                       argv0=[STRACE, "-f", "-q", "-e", "trace=connect",
                                              "-o", trace])
        self.assertEqual(len(out), 5, out)
        self.assertTrue(all(x.startswith("connect error") for x in out[:4]), out)
        self.assertRegex(out[4], r"^async 1 bulwark refused 127\.0\.0\.1:%d" % port)
        self.assertIn("Connection refused", out[0])
        self.assertTrue(out[2].startswith("connect error -1 bulwark refused 127.0.0.1:%d" % port),
                        out)
        with open(trace) as f:
            traced = f.read()
        self.assertEqual(traced.count("htons(%d)" % port), 2, traced)
        evs = self.events(log)
        self.assertTrue(events_of(evs, "breaker", to="open"), describe(evs))
        self.assertEqual(len(events_of(evs, "rejected", op="redis", call="redisConnect")), 2,
                         describe(evs))
        self.assertEqual(len(events_of(evs, "rejected", op="redis",
                                       call="redisConnectNonBlock")), 1, describe(evs))


@unittest.skipIf(MISSING or not REDIS_SERVER,
                 MISSING or "redis-server (redis-server) is not installed")
class RedisServerTest(_RedisClient):
    """Against a real redis-server."""

    server = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = RedisServer()
        try:
            cls.server.start()
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
        self.assertEqual(self.server.cmd("FLUSHALL"), "+OK")

    def spawned_client(self, pol):
        env = shim_env(pol) if pol else base_env()
        return self.spawn([self.client, "127.0.0.1", str(self.server.port)], env)

    def kill_clients(self):
        """CLIENT KILL of every normal client but the one asking; the idle client's
        socket is closed by the server."""
        self.assertRegex(self.server.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"),
                         r"^:\d+$")

    def test_healthy_identical(self):
        lines = ["SET k v", "GET k", "INCR n", "\\append GET k", "\\getreply"]
        bare = self.run_client(lines, self.server.port, shim=False)
        self.server.cmd("FLUSHALL")
        pol, log = self.policy()
        r = self.run_client(lines, self.server.port, shim=True, pol=pol)
        self.assertEqual(r, bare)
        evs = self.events(log)
        self.assertNoCallEvents(evs)

    def test_idle_connection_closed_runs_incr_once(self):
        """CLIENT KILL between two INCRs (a restart or an idle timeout does the same): bare,
        the second INCR fails; under a redis rule it is sent on a new connection, which
        SELECTs the database the program had chosen (a restored event says so), and the
        counter counts each INCR once."""
        for shim in (False, True):
            self.server.cmd("FLUSHALL")
            pol, log = self.policy() if shim else (None, None)
            c = self.spawned_client(pol)
            self.assertEqual(c.readline(), "connected")
            c.send("SELECT 3\nINCR n\n")
            self.assertEqual([c.readline(), c.readline()], ["status OK", "int 1"])
            self.kill_clients()
            c.send("INCR n\nGET n\n")
            if not shim:
                self.assertTrue(c.readline().startswith("ioerror"), c.transcript())
                self.assertEqual(c.finish(), 1)
                continue
            self.assertEqual([c.readline(), c.readline()], ["int 2", "str 2"], c.transcript())
            self.assertEqual(c.finish(), 0)
            evs = read_events(log)
            rec = events_of(evs, "recovered", op="redis", call="redisCommandArgv")
            self.assertEqual(len(rec), 1, describe(evs))
            self.assertEqual(rec[0]["db"], "3")
            self.assertTrue(events_of(evs, "restored", op="redis", reason="session_state"),
                            describe(evs))
        self.assertEqual(self.db3_get("n"), "2")

    def db3_get(self, key):
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as c:
            c.sendall(resp_command("SELECT", "3") + resp_command("GET", key))
            buf = b""
            while buf.count(b"\r\n") < 3:
                chunk = c.recv(4096)
                if not chunk:
                    break
                buf += chunk
        return buf.split(b"\r\n")[2].decode()

    def test_multi_is_not_reconnected(self):
        """A connection closed inside MULTI: the queued commands are gone with it, so the
        next command is the program's to fail, not sent on a new connection."""
        pol, log = self.policy()
        c = self.spawned_client(pol)
        self.assertEqual(c.readline(), "connected")
        c.send("MULTI\nINCR n\n")
        self.assertEqual([c.readline(), c.readline()], ["status OK", "status QUEUED"])
        self.kill_clients()
        c.send("EXEC\n")
        self.assertTrue(c.readline().startswith("ioerror"), c.transcript())
        self.assertEqual(c.finish(), 1)
        self.assertEqual(self.server.cmd("GET", "n"), "$-1")
        evs = read_events(log)
        self.assertFalse(events_of(evs, "retry", op="redis"), describe(evs))

    def test_restart_between_commands(self):
        """redis-server stopped and started again between two commands (nothing is saved,
        so the second SET starts a new dataset): under a redis rule the command waits for
        the server and goes on a new connection."""
        pol, log = self.policy()
        c = self.spawned_client(pol)
        self.assertEqual(c.readline(), "connected")
        c.send("SET a 1\n")
        self.assertEqual(c.readline(), "status OK")
        self.server.stop()
        t = self.later(1.0, self.server.start)
        c.send("SET b 2\n")
        self.assertEqual(c.readline(timeout=30), "status OK", c.transcript())
        t.join(60)
        self.assertEqual(c.finish(), 0)
        self.assertEqual(self.server.cmd("GET", "b"), "2")
        evs = read_events(log)
        self.assertTrue(events_of(evs, "recovered", op="redis", call="redisCommandArgv"),
                        describe(evs))


if __name__ == "__main__":
    unittest.main()
