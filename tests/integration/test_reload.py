"""Live reload (bulwark(1) RELOAD, bulwark.yaml(5) RELOAD, docs/design.md 2.2): a running
program picks up a changed policy file by itself, whether the file was saved by rename or
swapped under a Kubernetes-style `..data` link; an invalid edit keeps the policy in force
and says where the file is wrong, once; an unchanged limit keeps its tokens; the mode
flips between observe and enforce; `bulwark reload --group` makes a whole group read its
file again when the file's identity did not change.

The programs are small python clients under the library, talking to listeners of their
own: 127.0.0.1 (the "api", whose connects a rule limits) and 127.0.0.2 (the "other", whose
connects only give the library a slow path to notice the change on). Figures are counts
of calls and events with wide margins, never tight timings.
"""

import os
import time
import unittest

from harness import (PYTHON, TOOL, ShimTest, events_of, describe, py, read_events, rule,
                     run, shim_env)

# The client. Commands on stdin, one per line, each answered with one line:
#   go N      N connects to the api; "ok K limited M"
#   poke      one connect to the other listener; "poked"
#   loop S    connects to the api for S seconds, as fast as the policy lets them go;
#             "t T" (monotonic seconds) after each, then "done N"
CLIENT = r"""
import socket, sys, threading, time

def listener(host):
    l = socket.socket()
    l.bind((host, 0))
    l.listen(1024)
    def serve():
        while True:
            try:
                c, _ = l.accept()
            except OSError:
                return
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    return (host, l.getsockname()[1])

API = listener("127.0.0.1")
OTHER = listener("127.0.0.2")

def connect(addr):
    s = socket.socket()
    try:
        s.connect(addr)
        return True
    except OSError:
        return False
    finally:
        s.close()

print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "go":
        ok = sum(connect(API) for _ in range(int(cmd[1])))
        print("ok %d limited %d" % (ok, int(cmd[1]) - ok), flush=True)
    elif cmd[0] == "poke":
        connect(OTHER)
        print("poked", flush=True)
    elif cmd[0] == "loop":
        end = time.monotonic() + float(cmd[1])
        n = 0
        while time.monotonic() < end and n < 100000:
            connect(API)
            n += 1
            print("t %.4f" % time.monotonic(), flush=True)
        print("done %d" % n, flush=True)
"""

API = "127.0.0.1:*"
OTHER = "127.0.0.2:*"


def policy_text(log, api_limit, mode="enforce", other="", extra="", level="warn"):
    """A policy: a rule limiting the api's connects (api_limit: the rate_limit section's
    flow mapping, or None for no limit) and one about the other listener's (other: a
    section for it, to make a change that leaves the api alone)."""
    api = rule("api", ["connect"], [API], "rate_limit: %s\n" % api_limit if api_limit else "")
    oth = rule("other", ["connect"], [OTHER], other)
    return ("version: 1\nmode: %s\n%slog:\n  sink: \"file:%s\"\n  level: %s\nrules:\n%s%s"
            % (mode, extra, log, level, api, oth))


class Reload(ShimTest):

    def setUp(self):
        super().setUp()
        self.log = self.wd.file("events.log")
        self.path = self.wd.file("policy.yaml")

    # -- helpers

    def save(self, text, path=None):
        """Write text to the policy file as editors do: a new file renamed over it."""
        path = path or self.path
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)

    def client(self, env=None):
        c = self.spawn(py(CLIENT), shim_env(self.path, **(env or {})))
        self.assertEqual(c.readline(timeout=20), "ready", c.transcript())
        return c

    def ask(self, c, cmd, timeout=20):
        c.send(cmd + "\n")
        return c.readline(timeout=timeout)

    def go(self, c, n):
        words = self.ask(c, "go %d" % n).split()
        self.assertEqual(words[0], "ok", words)
        return int(words[1]), int(words[3])

    def reloads(self, pid=None, **fields):
        evs = events_of(read_events(self.log), "reload", **fields)
        return [e for e in evs if pid is None or e.get("pid") == pid]

    def poke_until(self, c, cond, timeout=15):
        """Poke c (a call on a slow path) until cond() holds; the time it took."""
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout:
                self.fail("nothing after %ss of calls:\n%s" % (
                    timeout, describe(read_events(self.log))))
            self.ask(c, "poke")
            time.sleep(0.05)
        return time.monotonic() - t0

    def loop_counts(self, change):
        """Connects to the api in a loop for 7 s; change() is called 2.5 s in. The count
        of connects in the second before the change and in the 2 s from 2 s after it."""
        c = self.client()
        c.send("loop 7\n")
        times = []
        t_change = None
        while True:
            line = c.readline(timeout=30)
            if line.startswith("done"):
                break
            times.append(float(line.split()[1]))
            if t_change is None and times[-1] - times[0] >= 2.5:
                change()
                t_change = time.monotonic()
        self.assertIsNotNone(t_change, "the loop ended before the change: %r" % times[-5:])
        before = sum(1 for t in times if t_change - 1 <= t < t_change)
        after = sum(1 for t in times if t_change + 2 <= t < t_change + 4)
        return before, after

    # -- a changed file is picked up

    def check_rate_change(self, change):
        """4 connects a second, then 500 a second: the new rate holds 2 s after the change
        (the machine may be loaded: the bounds are wide, the two rates far apart)."""
        before, after = self.loop_counts(change)
        evs = read_events(self.log)
        self.assertLessEqual(before, 10, describe(evs))
        self.assertGreaterEqual(after, 60, "%d connects in the 2 s from 2 s after the change"
                                "\n%s" % (after, describe(evs)))
        rel = events_of(evs, "reload")
        self.assertEqual(len(rel), 1, describe(evs))
        self.assertEqual(rel[0]["lvl"], "warn", rel)
        self.assertEqual(rel[0]["changed"], ["api"], rel)
        self.assertEqual((rel[0]["added"], rel[0]["removed"]), ([], []), rel)
        self.assertEqual(rel[0]["gen"], 2, rel)

    def test_rate_change_by_rename(self):
        slow = "{ scope: rule, rate: 4/s, burst: 1, max_wait: 5s }"
        fast = "{ scope: rule, rate: 500/s, burst: 1, max_wait: 5s }"
        self.save(policy_text(self.log, slow))
        self.check_rate_change(lambda: self.save(policy_text(self.log, fast)))

    def test_rate_change_by_symlink_swap(self):
        """As a Kubernetes ConfigMap volume: policy.yaml -> ..data/policy.yaml, ..data ->
        a timestamped directory, swapped by renaming a new link over ..data."""
        cm = self.wd.file("cm")
        os.mkdir(cm)

        def publish(name, text):
            os.mkdir(os.path.join(cm, name))
            with open(os.path.join(cm, name, "policy.yaml"), "w") as f:
                f.write(text)
            os.symlink(name, os.path.join(cm, "..data_tmp"))
            os.rename(os.path.join(cm, "..data_tmp"), os.path.join(cm, "..data"))

        publish("..2025_01", policy_text(self.log, "{ scope: rule, rate: 4/s, burst: 1 }"))
        os.symlink("..data/policy.yaml", os.path.join(cm, "policy.yaml"))
        self.path = os.path.join(cm, "policy.yaml")

        def swap():
            publish("..2025_02", policy_text(self.log, "{ scope: rule, rate: 500/s, burst: 1 }"))
            for f in os.listdir(os.path.join(cm, "..2025_01")):
                os.unlink(os.path.join(cm, "..2025_01", f))
            os.rmdir(os.path.join(cm, "..2025_01"))

        self.check_rate_change(swap)

    # -- state across a reload

    def test_unchanged_limit_keeps_its_tokens(self):
        """A reload that changes another rule leaves the api's bucket as it was: its burst
        spent, the calls over it are still limited (rebuilt, it would let 5 more go)."""
        limit = "{ scope: rule, rate: 1/h, burst: 5, on_limit: fail }"
        self.save(policy_text(self.log, limit))
        c = self.client()
        self.assertEqual(self.go(c, 8), (5, 3))
        self.save(policy_text(self.log, limit, other="retry: { attempts: 3 }\n"))
        self.poke_until(c, lambda: self.reloads())
        rel = self.reloads()
        self.assertEqual(rel[0]["changed"], ["other"], rel)
        self.assertEqual(self.go(c, 5), (0, 5))
        # a doubled burst doubles what is left: nothing
        self.save(policy_text(self.log, "{ scope: rule, rate: 1/h, burst: 10, on_limit: fail }",
                              other="retry: { attempts: 3 }\n"))
        self.poke_until(c, lambda: len(self.reloads()) >= 2)
        self.assertEqual(self.go(c, 3), (0, 3))
        self.assertEqual(c.finish(), 0)

    def test_invalid_edit_keeps_the_policy_and_says_where_once(self):
        limit = "{ scope: rule, rate: 1/h, burst: 2, on_limit: fail }"
        self.save(policy_text(self.log, limit))
        c = self.client()
        self.assertEqual(self.go(c, 3), (2, 1))
        bad = policy_text(self.log, "{ scope: rule, rat: 100/s, burst: 50 }")
        self.save(bad)
        line = next(i for i, l in enumerate(bad.splitlines(), 1) if "rat:" in l)
        self.poke_until(c, lambda: self.reloads())
        # poked on for more than two more checks: the same file is not read again
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            self.ask(c, "poke")
            time.sleep(0.05)
        rel = self.reloads()
        self.assertEqual(len(rel), 1, describe(rel))
        self.assertEqual(rel[0]["lvl"], "error", rel)
        self.assertEqual(rel[0]["line"], line, rel)
        self.assertRegex(rel[0]["msg"], r"^%s:%d:\d+: " % (self.path, line))
        self.assertEqual(self.go(c, 3), (0, 3))             # the old limit holds
        # fixed, it is read and taken
        self.save(policy_text(self.log, "{ scope: rule, rate: 100/s, burst: 50 }"))
        self.poke_until(c, lambda: len(self.reloads()) >= 2)
        self.assertEqual(self.reloads()[1]["lvl"], "warn")
        self.assertEqual(self.go(c, 3), (3, 0))
        self.assertEqual(c.finish(), 0)

    def test_a_fifo_in_place_of_the_file_is_refused_not_read(self):
        """Reading a FIFO would block the thread that looks until someone writes to it."""
        self.save(policy_text(self.log, "{ scope: rule, rate: 1/h, burst: 2, on_limit: fail }"))
        c = self.client()
        os.unlink(self.path)
        os.mkfifo(self.path)
        self.poke_until(c, lambda: self.reloads(lvl="error"))
        self.assertIn("not a regular file", self.reloads()[-1]["msg"])
        self.assertEqual(self.go(c, 3), (2, 1))             # the policy in force stays
        self.assertEqual(c.finish(), 0)

    def test_observe_and_enforce_flip_live(self):
        limit = "{ scope: rule, rate: 1/h, burst: 1, on_limit: fail }"
        self.save(policy_text(self.log, limit, mode="observe", level="info"))
        c = self.client()
        self.assertEqual(self.go(c, 3), (3, 0))             # observed, not limited
        self.assertTrue(events_of(read_events(self.log), "limited", observe=True))
        self.save(policy_text(self.log, limit, mode="enforce", level="info"))
        self.poke_until(c, lambda: self.reloads(lvl="warn"))
        rel = self.reloads(lvl="warn")
        self.assertEqual(rel[0]["mode"], "enforce", rel)
        self.assertIn("mode observe -> enforce", rel[0]["msg"])
        ok, limited = self.go(c, 3)
        self.assertLessEqual(ok, 1)
        self.assertGreaterEqual(limited, 2)
        self.save(policy_text(self.log, limit, mode="observe", level="info"))
        self.poke_until(c, lambda: len(self.reloads(lvl="warn")) >= 2)
        self.assertEqual(self.go(c, 3), (3, 0))
        self.assertEqual(c.finish(), 0)

    def test_environment_still_overrides_the_file(self):
        """BULWARK_MODE=observe pins the mode: a reloaded file saying enforce stays
        observed."""
        limit = "{ scope: rule, rate: 1/h, burst: 1, on_limit: fail }"
        self.save(policy_text(self.log, limit, mode="enforce"))
        c = self.client({"BULWARK_MODE": "observe"})
        self.assertEqual(self.go(c, 2), (2, 0))
        self.save(policy_text(self.log, limit, mode="enforce", other="retry: { attempts: 3 }\n"))
        self.poke_until(c, lambda: self.reloads())
        rel = self.reloads()
        self.assertEqual((rel[0]["mode"], rel[0]["changed"]), ("observe", ["other"]), rel)
        self.assertEqual(self.go(c, 2), (2, 0))
        self.assertEqual(c.finish(), 0)

    # -- bulwark reload

    def test_bulwark_reload_asks_a_whole_group(self):
        """Three processes share state in a named group. The file is edited in place with
        its size and modification time kept: no process sees it change. `bulwark reload`
        makes all three read it again."""
        state = self.wd.file("state")
        group = "reload-%d" % os.getpid()
        extra = "state: { share: group, dir: \"%s\" }\n" % state
        self.save(policy_text(self.log, "{ scope: rule, rate: 10/s, burst: 5 }", extra=extra))
        env = {"BULWARK_GROUP": group}
        clients = [self.client(env) for _ in range(3)]
        pids = [c.p.pid for c in clients]
        st = os.stat(self.path)
        with open(self.path) as f:
            text = f.read()
        edited = text.replace("rate: 10/s", "rate: 20/s")
        self.assertEqual(len(edited), len(text))
        with open(self.path, "r+") as f:
            f.write(edited)
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            for c in clients:
                self.ask(c, "poke")
            time.sleep(0.05)
        self.assertEqual(self.reloads(), [], "a file whose identity is the same is not read")

        r = run([TOOL, "reload", "--group", group, "--dir", state])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("3 processes", r.stdout)
        t0 = time.monotonic()
        while any(not self.reloads(pid) for pid in pids):
            self.assertLess(time.monotonic() - t0, 15, describe(read_events(self.log)))
            for c in clients:
                self.ask(c, "poke")
            time.sleep(0.05)
        for pid in pids:
            rel = self.reloads(pid)
            self.assertEqual(len(rel), 1, describe(rel))
            self.assertEqual((rel[0].get("asked"), rel[0]["changed"]), (True, ["api"]), rel)
        for c in clients:
            self.assertEqual(c.finish(), 0)
        # the group has ended: nothing to reload
        r = run([TOOL, "reload", "--group", group, "--dir", state])
        self.assertEqual(r.rc, 1, r)
        self.assertIn("nothing to reload", r.stderr)

    def test_bulwark_reload_without_a_group(self):
        r = run([TOOL, "reload"])
        self.assertEqual(r.rc, 1, r)
        self.assertIn("nothing to reload", r.stderr)
        r = run([TOOL, "reload", "--group", "none-here", "--dir", self.wd.file("state")])
        self.assertEqual(r.rc, 1, r)
        self.assertIn("nothing to reload", r.stderr)
        r = run([TOOL, "reload", "--group", "a/b"])
        self.assertEqual(r.rc, 2, r)


if __name__ == "__main__":
    unittest.main()
