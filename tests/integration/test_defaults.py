"""Defaults that do no harm: what a program sees under the built-in default policy, and
what a policy file that says nothing about logging puts on the program's stderr.

- The built-in default retries connects to network peers that come up late, never a
  connect to a local (AF_UNIX) socket: a missing optional socket (/dev/log, a session bus,
  systemd's userdb) answers at once, with the kernel's own errno, after the same number
  of connect(2) calls as without the library.
- Without `log.level`, stderr gets only what changes the program's behaviour (level warn:
  retries, give-ups, breakers, refusals, timeouts, failovers); a file or syslog sink gets
  the detail (level info: start, fail, exit, throttling, injection).
"""

import os
import re
import shutil
import subprocess
import unittest

from harness import (LIB, PY_CLIENT, ShimTest, bulwark_run, describe, events_in_text,
                     events_of, py, read_events, rule, run)

STRACE = shutil.which("strace")
LOGGER = shutil.which("logger")
UNSHARE = shutil.which("unshare")

# A blocking AF_UNIX stream connect to argv[1]; prints the errno's name, or "ok".
PY_UNIX_CONNECT = """
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
"""


def traced_connects(wd, argv, path, shim, env=None):
    """Run argv under strace (the library preloaded into argv only, when shim) and return
    (result, the number of connect(2) calls to the unix path `path`)."""
    out = wd.file("connect.strace")
    if os.path.exists(out):
        os.unlink(out)
    cmd = ["strace", "-f", "-qq", "-o", out, "-e", "trace=connect"]
    if shim:
        cmd += ["-E", "LD_PRELOAD=" + LIB]
    for k, v in (env or {}).items():
        cmd += ["-E", "%s=%s" % (k, v)]
    r = run(cmd + argv)
    with open(out) as f:
        n = sum(1 for line in f if re.search(r'connect\(\d+, \{sa_family=AF_UNIX, '
                                             r'sun_path="%s"' % re.escape(path), line))
    return r, n


class DefaultPolicyLocalSockets(ShimTest):
    """No BULWARK_CONFIG: the library runs its built-in default policy."""

    def default_env(self):
        # The detail goes to a file, so that a retry (a fail, a retry event) would show.
        return {"BULWARK_LOG": "file:" + self.wd.file("events.log"), "BULWARK_LEVEL": "debug"}

    @unittest.skipUnless(STRACE, "strace is not installed")
    def test_missing_unix_socket_fails_at_once(self):
        path = self.wd.file("absent.sock")
        argv = py(PY_UNIX_CONNECT, path)
        bare, n_bare = traced_connects(self.wd, argv, path, shim=False)
        self.assertOk(bare)
        self.assertEqual(bare.stdout.strip(), "ENOENT", bare)
        self.assertEqual(n_bare, 1, bare)

        r, n = traced_connects(self.wd, argv, path, shim=True, env=self.default_env())
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ENOENT", r)
        # once, as without the library: no retry, no breaker to answer ECONNREFUSED later
        self.assertEqual(n, 1, "connect(2) calls to %s: %d\n%r" % (path, n, r))
        events = self.events(self.wd.file("events.log"))
        self.assertNoCallEvents(events)

    def test_refused_unix_socket_fails_at_once(self):
        """A stale socket file (its server gone): ECONNREFUSED, not retried, no event."""
        import socket
        path = self.wd.file("stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        r = run(py(PY_UNIX_CONNECT, path), shim=True, env=self.default_env())
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ECONNREFUSED", r)
        self.assertNoCallEvents(self.events(self.wd.file("events.log")))

    @unittest.skipUnless(STRACE and LOGGER, "strace or logger is not installed")
    def test_logger_to_a_missing_socket(self):
        """logger(1) with no syslog daemon: it tries its socket (datagram, then stream)
        and gives up; under the default policy it makes exactly the same calls."""
        path = self.wd.file("nolog.sock")
        argv = [LOGGER, "-u", path, "bulwark test_defaults"]
        bare, n_bare = traced_connects(self.wd, argv, path, shim=False)
        self.assertGreaterEqual(n_bare, 1, bare)
        r, n = traced_connects(self.wd, argv, path, shim=True, env=self.default_env())
        self.assertEqual(r.rc, bare.rc, r)
        self.assertEqual(n, n_bare, "connect(2) calls to %s: %d under the default policy, "
                         "%d without the library\n%r" % (path, n, n_bare, r))
        self.assertNoCallEvents(self.events(self.wd.file("events.log")))

    def test_network_connects_still_retried(self):
        """The same default still retries a refused TCP connect to a server that comes
        up late (the control: the log above would show a retry if there were one)."""
        srv = self.server(delay_s=0.5)
        code = PY_CLIENT + "import sys\nprint(connect_once(int(sys.argv[1])))\n"
        r = run(py(code, srv.port), shim=True, env=self.default_env())
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ok", r)
        events = self.events(self.wd.file("events.log"))
        self.assertRecovered(events, dest="127.0.0.1:%d" % srv.port, rule="default-connect")

# Connects to 127.0.0.1:argv[1], retried by the policy if the server is late, and reads
# the answer; stderr is left to the library.
PY_GET = PY_CLIENT + """
import sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(http_get(s).decode().split("\\r\\n")[-1])
"""


class QuietStderr(ShimTest):
    """A policy file without `log:`: stderr carries only what changed the program's
    behaviour; a file sink gets the detail."""

    def policy_without_log(self, port):
        text = "version: 1\nrules:\n" + rule(
            "svc", ["connect", "send", "recv"], ["127.0.0.1:%d" % port],
            "retry: { attempts: 40, backoff: { base: 50ms, max: 100ms, jitter: equal } }")
        return self.wd.write("policy.yaml", text)

    def test_healthy_connect_adds_nothing_to_stderr(self):
        srv = self.server(delay_s=0)
        srv.wait_listening()
        pol = self.policy_without_log(srv.port)
        r = run(py(PY_GET, srv.port), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ok", r)
        self.assertEqual(r.stderr, "", "the library wrote on the program's stderr:\n%r" % r)
        # the control: the library did load and count the calls (its file sink says so)
        log = self.wd.file("detail.log")
        r = run(py(PY_GET, srv.port), shim=True, policy=pol, env={"BULWARK_LOG": "file:" + log})
        self.assertOk(r)
        self.assertEqual(r.stderr, "", r)
        events = self.events(log)
        exits = events_of(events, "exit")
        self.assertTrue(exits and exits[0]["stats"]["svc"]["calls"] >= 3, describe(events))

    def test_retry_shows_on_stderr_and_bookkeeping_does_not(self):
        srv = self.server(delay_s=0.6)
        pol = self.policy_without_log(srv.port)
        r = run(py(PY_GET, srv.port), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ok", r)
        events = events_in_text(r.stderr)
        self.assertTrue(events_of(events, "retry", rule="svc"), r)
        self.assertTrue(events_of(events, "recovered", rule="svc"), r)
        noise = [e for e in events if e["event"] in ("start", "fail", "exit")]
        self.assertEqual(noise, [], describe(noise))
        # every stderr line is one of those events: nothing else was written
        self.assertEqual(len(events), len(r.stderr.splitlines()), r)

    def test_file_sink_gets_the_detail(self):
        """The same policy with -o file:...: info by default, what `bulwark report`
        needs (start, fail, exit); stderr stays empty (-q: without it, `bulwark run`
        names the policy file it uses there)."""
        srv = self.server(delay_s=0.6)
        pol = self.policy_without_log(srv.port)
        log = self.wd.file("run.log")
        r = bulwark_run(["-q", "-c", pol, "-o", "file:" + log], py(PY_GET, srv.port))
        self.assertOk(r)
        self.assertEqual(r.stderr, "", r)
        events = self.events(log)
        for name in ("fail", "retry", "recovered", "exit"):
            self.assertTrue(events_of(events, name), "no %s event:\n%s" % (name, describe(events)))

    def test_builtin_default_into_a_file_gets_the_detail(self):
        """No policy file, events to a file: the built-in default names no level either."""
        srv = self.server(delay_s=0)
        srv.wait_listening()
        log = self.wd.file("run.log")
        r = run(py(PY_GET, srv.port), shim=True, env={"BULWARK_LOG": "file:" + log})
        self.assertOk(r)
        self.assertEqual(r.stderr, "", r)
        events = self.events(log)
        exits = events_of(events, "exit")
        self.assertTrue(exits and exits[0]["stats"]["default-connect"]["calls"] == 1,
                        describe(events))


def no_syslog_run(argv, policy, fake=None):
    """Run argv under the library and policy with no syslog daemon: as it is when there
    is no /dev/log, else in a private mount namespace whose /dev is an empty tmpfs (root
    only). fake: a socket path that /dev/log then points at, a syslog daemon of the
    test's own. None when this machine cannot arrange it."""
    if fake is None and not os.path.lexists("/dev/log"):
        return run(argv, shim=True, policy=policy)
    if not UNSHARE or os.geteuid() != 0:
        return None
    # the library goes into argv only, not into unshare, sh, mount or ln
    script = ('mount -t tmpfs tmpfs /dev || exit 97; %s'
              'LD_PRELOAD="$BW_PRELOAD" BULWARK_CONFIG="$BW_POLICY" exec "$@"'
              % ('ln -s "$BW_FAKE_LOG" /dev/log || exit 97; ' if fake else ""))
    cmd = [UNSHARE, "-m", "sh", "-c", script, "sh"]
    env = {"BW_FAKE_LOG": fake or "", "BW_PRELOAD": LIB, "BW_POLICY": policy}
    if run(cmd + ["true"], env=env).rc != 0:
        return None
    return run(cmd + argv, env=env)


class SyslogSink(ShimTest):
    """log.sink: syslog on a machine without a syslog daemon: the events go to stderr,
    after one config_error event that says why, rather than nowhere."""

    def policy(self, port):
        text = "version: 1\nlog: { sink: syslog }\nrules:\n" + rule(
            "svc", ["connect"], ["127.0.0.1:%d" % port],
            "retry: { attempts: 40, backoff: { base: 50ms, max: 100ms, jitter: equal } }")
        return self.wd.write("policy.yaml", text)

    def test_events_fall_back_to_stderr(self):
        srv = self.server(delay_s=0.6)
        r = no_syslog_run(py(PY_GET, srv.port), self.policy(srv.port))
        if r is None:
            self.skipTest("/dev/log exists and cannot be hidden here (needs root, unshare)")
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ok", r)
        events = events_in_text(r.stderr)
        errs = events_of(events, "config_error")
        self.assertEqual(len(errs), 1, r)
        self.assertEqual(errs[0].get("file"), "/dev/log", r)
        self.assertIn("syslog", errs[0].get("msg", ""), r)
        # on stderr now, at stderr's level: the retries, not the bookkeeping
        self.assertTrue(events_of(events, "recovered", rule="svc"), r)
        self.assertFalse(events_of(events, "start") + events_of(events, "exit"), r)

    def test_events_reach_a_syslog_daemon(self):
        """The control: with a syslog socket there, events go to it at level info, and
        nothing to stderr."""
        import socket
        fake = self.wd.file("log.sock")
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(fake)
        self.addCleanup(rx.close)
        srv = self.server(delay_s=0)
        srv.wait_listening()
        r = no_syslog_run(py(PY_GET, srv.port), self.policy(srv.port), fake=fake)
        if r is None:
            self.skipTest("cannot give the program a /dev/log of the test's own here")
        self.assertOk(r)
        self.assertEqual(r.stderr, "", r)
        rx.settimeout(5)
        got = []
        while True:
            try:
                got.append(rx.recv(8192).decode())
            except socket.timeout:
                break
            if '"event":"exit"' in got[-1]:
                break
        self.assertTrue(any('"event":"start"' in m for m in got), got)
        self.assertTrue(all(m.startswith("<14>bulwark: {") for m in got), got)


if __name__ == "__main__":
    unittest.main()
