"""Lifecycle and safety (bulwark(1), docs/design.md 4): switches that turn the shim off or make it
watch only, broken policies, programs no rule covers, fork, programs that close every
descriptor, errno, hooks that run before the library's constructor, and `bulwark run`."""

import os
import re
import subprocess
import time
import unittest

from harness import (CURL, LIB, PYTHON, PY_CLIENT, ShimTest, bulwark_run, curl, describe, events_of,
                     free_port, late_rule, prog, py, read_events, retry_yaml, rule, run, shim_env,
                     url)


@unittest.skipUnless(CURL, "curl is not installed")
class Switches(ShimTest):

    def test_disable_is_pure_passthrough(self):
        srv = self.server(delay_s=5)
        pol, log = self.wd.policy(rule(
            "down", ["connect"], ["127.0.0.1:%d" % srv.port],
            "retry: { attempts: 3, backoff: { base: 10ms, max: 10ms } }"))
        # The same run without the switch retries and logs: the policy does apply.
        control = run(curl(url(srv.port)), shim=True, policy=pol)
        self.assertEqual(control.rc, 7)
        self.assertTrue(events_of(read_events(log), "gave_up"), describe(read_events(log)))
        os.unlink(log)
        r = run(curl(url(srv.port)), shim=True, policy=pol, env={"BULWARK_DISABLE": "1"})
        self.assertEqual(r.rc, 7, repr(r))
        self.assertLess(r.elapsed, 1.9, "BULWARK_DISABLE=1 still retried")
        self.assertEqual(read_events(log), [], "BULWARK_DISABLE=1 still logged")

    def observe_run(self, env=None, extra="", via_tool=False):
        srv = self.server(delay_s=5)
        pol, log = self.wd.policy(late_rule(srv.port), extra=extra)
        plain = run(curl(url(srv.port)))
        if via_tool:
            r = bulwark_run(["-c", pol, "--observe"], curl(url(srv.port)))
        else:
            r = run(curl(url(srv.port)), shim=True, policy=pol, env=env)
        self.assertEqual((r.rc, r.stdout), (plain.rc, plain.stdout), repr(r))
        self.assertEqual(r.rc, 7, repr(r))
        self.assertLess(r.elapsed, 1.9, "observe mode delayed the call")
        events = read_events(log)
        calls = [e for e in events if e.get("event") not in ("start", "exit")]
        self.assertTrue(calls, "observe mode logged no decision:\n" + describe(events))
        for e in calls:
            self.assertIs(e.get("observe"), True, describe(events))
        self.assertFalse(events_of(events, "recovered"), describe(events))
        self.assertTrue(events_of(events, "fail", err="ECONNREFUSED"), describe(events))
        start = events_of(events, "start")
        if start:
            self.assertEqual(start[0].get("mode"), "observe")

    def test_observe_env(self):
        self.observe_run(env={"BULWARK_MODE": "observe"})

    def test_observe_policy(self):
        self.observe_run(extra="mode: observe\n")

    def test_observe_flag(self):
        self.observe_run(via_tool=True)

    def test_no_matching_rule_changes_nothing(self):
        """A rule for another network: same output, same exit, no event (docs/design.md 4)."""
        srv = self.server(delay_s=0)
        srv.wait_listening()
        pol, log = self.wd.policy(rule("elsewhere", ["connect", "send", "recv"],
                                       ["10.255.0.0/16"], "retry: %s" % retry_yaml()))
        down = free_port()
        for port in (srv.port, down):
            plain = run(curl(url(port)))
            r = run(curl(url(port)), shim=True, policy=pol)
            # curl's error message carries its own timing ("after 0 ms").
            self.assertEqual((r.rc, r.stdout, re.sub(r"\d+ ms", "N ms", r.stderr)),
                             (plain.rc, plain.stdout, re.sub(r"\d+ ms", "N ms", plain.stderr)))
        self.assertNoCallEvents(read_events(log))


class BadPolicy(ShimTest):

    # "bogus" is an unknown key at line 5, column 5.
    BAD = ("version: 1\nrules:\n  - name: r\n    match: { ops: [connect] }\n"
           "    bogus: 1\n")

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_passthrough_with_one_config_error(self):
        pol = self.wd.write("bad.yaml", self.BAD)
        log = self.wd.file("events.log")
        env = {"BULWARK_LOG": "file:" + log}
        srv = self.server(delay_s=0)
        srv.wait_listening()
        r = run(curl(url(srv.port)), shim=True, policy=pol, env=env)
        self.assertOk(r)
        self.assertEqual(r.stdout, "ok")
        down = run(curl(url(free_port())), shim=True, policy=pol, env=env)
        self.assertEqual(down.rc, 7, repr(down))
        self.assertLess(down.elapsed, 1.9, "a broken policy still retried")

        events = read_events(log)
        errs = events_of(events, "config_error")
        # Two processes ran: one config_error each, and nothing else about calls.
        self.assertEqual(len(errs), 2, describe(events))
        for e in errs:
            self.assertEqual(e.get("lvl"), "error")
            self.assertEqual(e.get("file"), pol, describe(events))
            self.assertEqual((e.get("line"), e.get("col")), (5, 5), describe(events))
            self.assertIn("bogus", e.get("msg", ""), describe(events))
        self.assertNoCallEvents([e for e in events if e.get("event") != "config_error"],
                                started=False)

    def test_abort_exits_2(self):
        bad = ("version: 1\non_config_error: abort\nrules:\n  - name: r\n"
               "    match: { ops: [connect] }\n    retry: { attempts: 1000 }\n")
        pol = self.wd.write("abort.yaml", bad)
        log = self.wd.file("events.log")
        r = run(py("print('ran')"), shim=True, policy=pol, env={"BULWARK_LOG": "file:" + log})
        self.assertEqual(r.rc, 2, repr(r))
        self.assertNotIn("ran", r.stdout)
        errs = events_of(read_events(log), "config_error")
        self.assertEqual(len(errs), 1, describe(read_events(log)))
        self.assertEqual(errs[0].get("line"), 6)

    def test_bulwark_run_refuses_bad_policy(self):
        pol = self.wd.write("bad.yaml", self.BAD)
        marker = self.wd.file("ran")
        r = bulwark_run(["-c", pol], ["touch", marker])
        self.assertEqual(r.rc, 2, repr(r))
        self.assertFalse(os.path.exists(marker), "bulwark run executed the command anyway")
        self.assertRegex(r.stderr, re.escape(pol) + r":5:5: .*bogus")


class Processes(ShimTest):

    FORK = PY_CLIENT + """
import os, sys
port = int(sys.argv[1])
def get():
    return http_get(socket.create_connection(("127.0.0.1", port))).endswith(b"ok")
pid = os.fork()
if pid == 0:
    os._exit(0 if get() else 1)
ok = get()
_, status = os.waitpid(pid, 0)
print(os.getpid(), pid, ok, os.waitstatus_to_exitcode(status) == 0)
"""

    def test_fork_child_retries_on_its_own(self):
        srv = self.server(delay_s=1.5)
        pol, log = self.wd.policy(late_rule(srv.port))
        plain = run(py(self.FORK, srv.port))
        self.assertFailed(plain)
        r = run(py(self.FORK, srv.port), shim=True, policy=pol)
        self.assertOk(r)
        parent, child, pok, cok = r.stdout.split()
        self.assertEqual((pok, cok), ("True", "True"), repr(r))
        events = read_events(log)
        pids = {e.get("pid") for e in events_of(events, "recovered", rule="late")}
        self.assertEqual(pids, {int(parent), int(child)}, describe(events))

    CLOSER = """
import os, socket, sys
port, outdir, how = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if how == "closerange":
    os.closerange(3, 1024)
elif how == "dup2":
    # Point every descriptor at /dev/null first, as a daemon redirecting its output
    # might: a log descriptor that survives this writes into the void.
    null = os.open("/dev/null", os.O_RDWR)
    for fd in range(3, 1024):
        if fd != null:
            try:
                os.dup2(null, fd)
            except OSError:
                pass
    os.closerange(3, 1024)
else:
    for fd in range(3, 1024):
        try:
            os.close(fd)
        except OSError:
            pass
files = [open(os.path.join(outdir, "f%d" % i), "w") for i in range(8)]
for i, f in enumerate(files):
    f.write("before%d\\n" % i)
    f.flush()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
data = s.recv(4096)
for i, f in enumerate(files):
    f.write("after%d\\n" % i)
    f.close()
print("ok" if data.endswith(b"ok") else data)
"""

    def closer(self, how):
        """The program closes every descriptor above 2 (as daemons do), then opens
        files that take the lowest numbers: events must still reach the log file and
        never the program's files."""
        srv = self.server(delay_s=1.0)
        pol, log = self.wd.policy(late_rule(srv.port))
        out = self.wd.file("out")
        os.mkdir(out)
        r = run(py(self.CLOSER, srv.port, out, how), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ok")
        for i in range(8):
            with open(os.path.join(out, "f%d" % i)) as f:
                self.assertEqual(f.read(), "before%d\nafter%d\n" % (i, i),
                                 "event bytes landed in the program's file f%d" % i)
        self.assertRecovered(read_events(log), rule="late")

    def test_closerange_keeps_log_working(self):
        self.closer("closerange")

    def test_close_loop_keeps_log_working(self):
        self.closer("close")

    def test_dup2_over_everything_keeps_log_working(self):
        self.closer("dup2")

    SPAWNER = """
import socket, subprocess, sys, threading
port = int(sys.argv[1])
ok = []
def get():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    ok.append(s.recv(4096).endswith(b"ok"))
t = threading.Thread(target=get)
t.start()
spawned = 0
while t.is_alive():
    subprocess.run(["true"], check=True)
    spawned += 1
t.join()
print(ok == [True], spawned > 0)
"""

    def test_spawning_while_another_thread_retries(self):
        """CPython spawns with vfork, whose child runs hooks (close, dup2) in the
        parent's memory while a thread of the parent sits in the retry loop
        (docs/design.md H15)."""
        srv = self.server(delay_s=1.0)
        pol, log = self.wd.policy(late_rule(srv.port))
        r = run(py(self.SPAWNER, srv.port), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "True True", repr(r))
        self.assertRecovered(read_events(log), rule="late")

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_process_tree_inherits(self):
        """`bulwark run -- sh -c 'curl ...'`: the grandchild is covered too."""
        srv = self.server(delay_s=1.5)
        pol, log = self.wd.policy(late_rule(srv.port))
        r = bulwark_run(["-c", pol], ["sh", "-c", " ".join(curl(url(srv.port)))])
        self.assertOk(r)
        self.assertEqual(r.stdout, "ok")
        events = read_events(log)
        self.assertRecovered(events, rule="late")
        self.assertEqual({e.get("prog") for e in events_of(events, "recovered")}, {"curl"})


class Errno(ShimTest):

    def errno_run(self, **kw):
        r = run([prog("errno_check"), str(self.refused)], **kw)
        self.assertOk(r)
        return r

    def test_errno_exactly_as_libc(self):
        self.refused = free_port()
        plain = self.errno_run()
        # Every socket op under a rule, so the hooks do their full work on every call.
        retry = "retry: { attempts: 2, backoff: { base: 10ms, max: 10ms } }"
        rules = (rule("refused", ["connect"], ["127.0.0.1:%d" % self.refused], retry) +
                 rule("all", ["connect", "accept", "send", "recv", "resolve"], body=retry))
        pol, log = self.wd.policy(rules)
        shim = self.errno_run(shim=True, policy=pol)
        self.assertEqual(shim.stdout, plain.stdout)
        events = read_events(log)
        self.assertTrue(events_of(events, "gave_up", rule="refused"), describe(events))

        none, _ = self.wd.policy(rule("none", [], ["10.255.0.0/16"], "retry: quick"),
                                 name="none.yaml", log="none.log")
        passthrough = self.errno_run(shim=True, policy=none)
        self.assertEqual(passthrough.stdout, plain.stdout)

    def test_errno_kept_across_fork_in_a_group(self):
        """The fork handler takes a slot in the group's process table, asking kill(0)
        about slots of processes that died: the child's errno stays the program's."""
        self.refused = free_port()
        state = self.wd.file("state")
        os.mkdir(state, 0o700)
        pol, _ = self.wd.policy(
            rule("all", ["connect"], body="breaker: { trip: { consecutive: 5 } }"),
            extra="state: { share: group, dir: %s }\n" % state)
        env = {"BULWARK_GROUP": "g1"}
        # two members alive at once, then killed without leaving: dead pids in slots 0
        # and 1 (the program takes 0; its child asks about 1)
        members = [subprocess.Popen(["sleep", "30"], env=shim_env(
            pol, **env)) for _ in range(2)]
        time.sleep(0.5)
        for p in members:
            p.kill()
            p.wait()
        r = self.errno_run(shim=True, policy=pol, env=env)
        self.assertIn("fork(child's errno) rc=0", r.stdout)


class EarlyConstructor(ShimTest):
    """A library connects from its constructor before bulwark's constructor has run
    (docs/design.md H1): the hook must initialize itself and retry."""

    def early(self, order):
        srv = self.server(delay_s=1.0, kind="echo")
        pol, log = self.wd.policy(late_rule(srv.port))
        out = self.wd.file("early.out")
        so = prog("earlyconn.so")
        preload = "%s:%s" % ((LIB, so) if order == "bulwark-first" else (so, LIB))
        env = {"EARLY_PORT": srv.port, "EARLY_OUT": out, "LD_DEBUG": "files"}
        r = run(["/bin/true"], preload=preload, policy=pol, env=env)
        self.assertOk(r)
        with open(out) as f:
            self.assertEqual(f.read().strip(), "OK")
        self.assertRecovered(read_events(log), rule="late")
        # Which constructor ran first, from the dynamic loader's own account.
        inits = re.findall(r"calling init: (\S+)", r.stderr)
        names = [os.path.basename(p) for p in inits]
        return names.index("earlyconn.so") < names.index("libbulwark.so")

    def test_hook_before_constructor(self):
        early_first = self.early("bulwark-first")
        self.assertTrue(early_first, "earlyconn's constructor did not run before bulwark's")

    def test_hook_after_constructor(self):
        self.early("early-first")

    def test_plain_failure(self):
        srv = self.server(delay_s=5, kind="echo")
        out = self.wd.file("early.out")
        run(["/bin/true"], preload=prog("earlyconn.so"),
            env={"EARLY_PORT": srv.port, "EARLY_OUT": out})
        with open(out) as f:
            self.assertIn("FAIL connect", f.read())


class BulwarkRun(ShimTest):
    """The front end's contract (bulwark(1)): exit status, LD_PRELOAD handling."""

    def test_exit_status_is_the_commands(self):
        self.assertEqual(bulwark_run([], ["sh", "-c", "exit 3"]).rc, 3)
        self.assertEqual(bulwark_run([], ["sh", "-c", "kill -TERM $$"]).rc, 128 + 15)
        self.assertEqual(bulwark_run([], [self.wd.file("no-such-command")]).rc, 127)

    def test_preload_is_prepended(self):
        other = "/lib/x86_64-linux-gnu/libm.so.6"
        r = bulwark_run([], [PYTHON, "-c", "import os; print(os.environ['LD_PRELOAD'])"],
                        env={"LD_PRELOAD": other}, cwd=self.wd.path)
        self.assertOk(r)
        entries = re.split(r"[: ]", r.stdout.strip())
        self.assertEqual(os.path.realpath(entries[0]), os.path.realpath(LIB), repr(r))
        self.assertIn(other, entries, "bulwark run dropped an existing preload")

    def test_policy_passed_by_absolute_path(self):
        self.wd.policy(late_rule(free_port()), name="rel.yaml")
        r = bulwark_run(["-c", "rel.yaml"],
                        [PYTHON, "-c", "import os; print(os.environ.get('BULWARK_CONFIG'))"],
                        cwd=self.wd.path)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), self.wd.file("rel.yaml"))


if __name__ == "__main__":
    unittest.main()
