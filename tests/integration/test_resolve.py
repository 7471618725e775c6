"""Name resolution: retry of temporary failures (bulwark.yaml(5) MATCH resolve, RETRY), and connect rules
written with a host name (bulwark.yaml(5) MATCH dest).

Temporary DNS failures are made by progs/flakydns.so, a preload placed after bulwark:
bulwark's getaddrinfo hook calls it as "the real one", and it fails the first
FLAKYDNS_FAILS lookups with EAI_AGAIN (TRY_AGAIN for gethostbyname*).
"""

import os
import unittest

from harness import (CURL, LIB, NODE, NODE_HTTP, PY_ASYNCIO, PY_BLOCKING, ShimTest, curl, describe,
                     events_in_text, events_of, hosts_file_name, late_rule, localhost_addrs, prog,
                     py, read_events, rule, run, url)

GAI = "import socket\nprint(socket.getaddrinfo('localhost', 80, type=socket.SOCK_STREAM)[0][4][0])\n"


def resolve_rule(host=None):
    return rule("dns", ["resolve"], host=host,
                body="retry: { attempts: 3, backoff: { base: 10ms, max: 50ms } }")


class ResolveRetry(ShimTest):

    def flaky_env(self, fails, **extra):
        self.dnslog = self.wd.file("flakydns.log")
        env = {"FLAKYDNS_FAILS": fails, "FLAKYDNS_HOST": "localhost", "FLAKYDNS_LOG": self.dnslog}
        env.update(extra)
        return env

    def dns_calls(self):
        if not os.path.exists(self.dnslog):
            return []
        with open(self.dnslog) as f:
            return [line.split() for line in f.read().splitlines()]

    def both(self):
        """LD_PRELOAD with bulwark first, so its hook calls flakydns as the next one."""
        return "%s:%s" % (LIB, prog("flakydns.so"))

    def test_python_getaddrinfo_recovers(self):
        flaky = prog("flakydns.so")
        plain = run(py(GAI), preload=flaky, env=self.flaky_env(2))
        self.assertFailed(plain, "flakydns alone")
        self.assertIn("Temporary failure in name resolution", plain.stderr)
        self.assertEqual(len(self.dns_calls()), 1, "flakydns.so was not in the way")
        os.unlink(self.dnslog)

        pol, log = self.wd.policy(resolve_rule())
        r = run(py(GAI), preload=self.both(), policy=pol, env=self.flaky_env(2))
        self.assertOk(r)
        # the first address localhost has here (a Debian /etc/hosts lists ::1 for it too)
        self.assertEqual(r.stdout.strip(), localhost_addrs()[0])
        self.assertEqual([c[2] for c in self.dns_calls()], ["fail", "fail", "pass"])
        events = read_events(log)
        rec = self.assertRecovered(events, rule="dns", op="resolve", err="EAI_AGAIN")
        self.assertEqual(rec["attempts"], 3, describe(events))
        self.assertEqual(rec.get("host"), "localhost", describe(events))
        self.assertEqual(rec.get("call"), "getaddrinfo", describe(events))

    def test_each_resolver_entry_point(self):
        """getaddrinfo and the gethostbyname family all go through the resolve rule."""
        pol, log = self.wd.policy(resolve_rule())
        for fn in ("getaddrinfo", "gethostbyname", "gethostbyname2", "gethostbyname_r"):
            with self.subTest(call=fn):
                argv = [prog("resolve_client"), fn, "localhost"]
                plain = run(argv, preload=prog("flakydns.so"), env=self.flaky_env(2))
                self.assertFailed(plain)
                if os.path.exists(log):
                    os.unlink(log)
                r = run(argv, preload=self.both(), policy=pol, env=self.flaky_env(2))
                self.assertOk(r)
                self.assertEqual(r.stdout.strip(), "OK 127.0.0.1")
                events = read_events(log)
                rec = events_of(events, "recovered", op="resolve", call=fn)
                self.assertTrue(rec, describe(events))
                self.assertEqual(rec[0].get("attempts"), 3, describe(events))
                # getaddrinfo reports EAI_AGAIN; the gethostbyname family's TRY_AGAIN is
                # the same condition, and bulwark.yaml(5) EVENTS names resolve errors by EAI_* names.
                for ev in events_of(events, "retry", op="resolve"):
                    self.assertIn(ev.get("err"), ("EAI_AGAIN", "TRY_AGAIN"), describe(events))

    def test_gives_up_after_attempts(self):
        pol, log = self.wd.policy(resolve_rule())
        r = run(py(GAI), preload=self.both(), policy=pol, env=self.flaky_env(5))
        self.assertFailed(r)
        self.assertIn("Temporary failure in name resolution", r.stderr)
        self.assertEqual(len(self.dns_calls()), 3, "attempts: 3 means three lookups")
        events = read_events(log)
        gave = events_of(events, "gave_up", rule="dns")
        self.assertEqual(len(gave), 1, describe(events))
        self.assertEqual(gave[0].get("reason"), "attempts")
        self.assertEqual(gave[0].get("err"), "EAI_AGAIN")

    def test_permanent_failure_is_not_retried(self):
        """EAI_NONAME is an answer, not an outage: one lookup, no retry."""
        pol, log = self.wd.policy(resolve_rule())
        r = run(py(GAI), preload=self.both(), policy=pol,
                env=self.flaky_env(1, FLAKYDNS_ERR="NONAME"))
        self.assertFailed(r)
        self.assertEqual(len(self.dns_calls()), 1, "EAI_NONAME was retried")
        events = read_events(log)
        self.assertTrue(events_of(events, "start"), "the library did not start")
        self.assertFalse(events_of(events, "retry"), describe(events))

    def test_host_glob_limits_the_rule(self):
        """A resolve rule for *.internal leaves lookups of localhost alone."""
        pol, log = self.wd.policy(resolve_rule(host=["*.internal"]))
        r = run(py(GAI), preload=self.both(), policy=pol, env=self.flaky_env(2))
        self.assertFailed(r)
        self.assertEqual(len(self.dns_calls()), 1)
        self.assertNoCallEvents(read_events(log))

    @unittest.skipUnless(CURL and hosts_file_name(), "needs curl and a loopback name in /etc/hosts")
    def test_curl_resolver_thread(self):
        """curl resolves in a thread of its own: the retry runs there."""
        name, addr = hosts_file_name()
        srv = self.server(delay_s=0, hosts=(addr,))
        srv.wait_listening()
        argv = curl(url(srv.port, name), None)
        env = self.flaky_env(2, FLAKYDNS_HOST=name)
        plain = run(argv, preload=prog("flakydns.so"), env=env)
        self.assertEqual(plain.rc, 6, repr(plain))   # couldn't resolve host
        os.unlink(self.dnslog)
        pol, log = self.wd.policy(resolve_rule())
        r = run(argv, preload=self.both(), policy=pol, env=env)
        self.assertOk(r)
        self.assertEqual(r.stdout, "ok")
        events = read_events(log)
        rec = self.assertRecovered(events, rule="dns", op="resolve", err="EAI_AGAIN")
        self.assertEqual(rec.get("host"), name, describe(events))
        self.assertNotEqual(rec.get("tid"), rec.get("pid"), "expected curl's resolver thread")

    def test_default_policy_retries_resolve(self):
        """No policy at all: the built-in default-resolve rule (3 attempts) rides out two
        temporary failures and says so on stderr at warn."""
        r = run(py(GAI), preload=self.both(), env=self.flaky_env(2), cwd=self.wd.path)
        self.assertOk(r)
        events = events_in_text(r.stderr)
        self.assertTrue(events_of(events, "recovered", rule="default-resolve"),
                        "stderr:\n" + r.stderr)


class HostNameDest(ShimTest):
    """`dest: ["localhost:PORT"]` matches connects to the addresses this process got for
    localhost; events then carry host and dest."""

    def test_rule_on_resolved_name(self):
        srv = self.server(delay_s=1.5, hosts=tuple(localhost_addrs()))
        pol, log = self.wd.policy(late_rule(srv.port, "byname", host="localhost"))
        argv = py(PY_BLOCKING, "localhost", srv.port)
        plain = run(argv)
        self.assertFailed(plain)
        self.assertIn("ConnectionRefusedError", plain.stderr)

        r = run(argv, shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ok")
        events = read_events(log)
        rec = self.assertRecovered(events, rule="byname")
        self.assertEqual(rec.get("host"), "localhost", describe(events))
        first = localhost_addrs()[0]
        want = ("[%s]:%d" if ":" in first else "%s:%d") % (first, srv.port)
        self.assertEqual(rec.get("dest"), want, describe(events))
        for ev in events_of(events, "retry", rule="byname"):
            self.assertEqual(ev.get("host"), "localhost", describe(events))

    def by_name(self, argv_for):
        srv = self.server(delay_s=1.5, hosts=tuple(localhost_addrs()))
        pol, log = self.wd.policy(late_rule(srv.port, "byname", host="localhost"))
        r = run(argv_for(srv.port), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ok")
        rec = self.assertRecovered(read_events(log), rule="byname")
        self.assertEqual(rec.get("host"), "localhost")

    def test_asyncio_resolves_in_a_worker_thread(self):
        """asyncio calls getaddrinfo in an executor thread and connects in the loop's:
        the name learned in one thread serves the match in the other."""
        self.by_name(lambda port: py(PY_ASYNCIO, "localhost", port))

    @unittest.skipUnless(NODE, "node is not on PATH")
    def test_node_by_name(self):
        self.by_name(lambda port: [NODE, "-e", NODE_HTTP, "localhost", str(port)])

    def test_rule_on_other_name_does_not_match(self):
        srv = self.server(delay_s=5)
        pol, log = self.wd.policy(late_rule(srv.port, "other", host="db.example.invalid"))
        r = run(py(PY_BLOCKING, "localhost", srv.port), shim=True, policy=pol)
        self.assertFailed(r)
        self.assertIn("ConnectionRefusedError", r.stderr)
        self.assertLess(r.elapsed, 1.9, "a connect was retried under a rule for another name")
        self.assertNoCallEvents(read_events(log))


if __name__ == "__main__":
    unittest.main()
