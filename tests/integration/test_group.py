"""Shared state across a process tree: under one `bulwark run` with
`state: {share: group}`, processes act as one client: a breaker opened by some opens
for all, and a rate limit holds for the tree, not per process."""
import os
import shutil
import subprocess
import time
import unittest

from harness import (PYTHON, PY_CLIENT, ShimTest, bulwark_run, describe, events_of, free_port,
                     read_events, rule, run, shim_env)
from test_policies import connect_syscalls

STRACE = shutil.which("strace")

# Each process makes 5 connects to the dead port and writes what each returned to a file
# of its own (several processes on one pipe can interleave their lines). With a lock file,
# each connect is made holding it: the processes take turns, call by call.
DEAD_CLIENT = PY_CLIENT + """
import fcntl, os, sys, time
port, delay, outdir = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
lock = sys.argv[4] if len(sys.argv) > 4 else None
time.sleep(delay)
out = []
for _ in range(5):
    lf = open(lock, "w") if lock else None
    if lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
    out.append(str(connect_once(port)))
    if lf:
        lf.close()
tmp = os.path.join(outdir, "%d.tmp" % os.getpid())
with open(tmp, "w") as f:
    f.write(" ".join(out))
os.rename(tmp, os.path.join(outdir, "%d.out" % os.getpid()))
"""

RATE_CLIENT = """
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
t = time.monotonic()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.close()
print("%.3f" % (time.monotonic() - t))
"""


def tree(n, code, *args):
    """A shell line that starts n python3 clients in parallel and waits for them."""
    one = " ".join("'%s'" % a for a in [PYTHON, "-c", code.replace("'", "'\\''")] +
                   [str(a) for a in args])
    return ["sh", "-c", " ".join([one + " &"] * n) + " wait"]


def results(outdir):
    """What each process of a tree wrote: {file: [result, ...]}."""
    out = {}
    for name in sorted(os.listdir(outdir)):
        if name.endswith(".out"):
            with open(os.path.join(outdir, name)) as f:
                out[name] = f.read().split()
    return out


class SharedBreaker(ShimTest):

    def tree_against_dead_port(self, turns):
        """8 processes under one `bulwark run` with a shared breaker that 5 failures
        open, each making 5 connects to a dead port: every call is refused, and the
        connect(2) calls, counted with strace, are returned with the events."""
        port = free_port()
        pol, log = self.wd.policy(
            rule("db", ["connect"], ["127.0.0.1:%d" % port],
                 "retry: off\nbreaker: { trip: { consecutive: 5 }, open_for: 30s }"),
            extra="state: { share: group }\n")
        st = self.wd.file("tree.strace")
        outdir = self.wd.file("out")
        os.mkdir(outdir)
        args = [port, 0.05, outdir] + ([self.wd.file("turns.lock")] if turns else [])
        r = bulwark_run(["-c", pol], [STRACE, "-f", "-e", "trace=connect", "-o", st] +
                        tree(8, DEAD_CLIENT, *args), timeout=60)
        self.assertOk(r)
        got = results(outdir)
        self.assertEqual(len(got), 8, got)
        for name, calls in got.items():
            self.assertEqual(calls, ["111"] * 5, (name, got))   # every call refused
        return connect_syscalls(st, port), read_events(log)

    @unittest.skipUnless(STRACE, "strace is not installed")
    def test_breaker_opens_for_the_whole_tree(self):
        # the processes take turns call by call: 5 failures in total open the breaker
        # for all 8, so 40 calls make exactly 5 syscalls (alone, each would make 5)
        calls, evs = self.tree_against_dead_port(turns=True)
        self.assertEqual(calls, 5, describe(evs))
        self.assertEqual(len(events_of(evs, "rejected", rule="db")), 35, describe(evs))
        self.assertEqual(len(events_of(evs, "breaker", rule="db")), 1, describe(evs))

    @unittest.skipUnless(STRACE, "strace is not installed")
    def test_breaker_opens_for_the_whole_tree_all_at_once(self):
        # all at once: the same, give or take the calls already under way when it opens,
        # at most one per other process (a closed breaker lets every call through)
        calls, evs = self.tree_against_dead_port(turns=False)
        self.assertGreaterEqual(calls, 5, describe(evs))
        self.assertLessEqual(calls, 5 + 7, describe(evs))
        self.assertEqual(len(events_of(evs, "rejected", rule="db")), 40 - calls,
                         describe(evs))
        self.assertEqual(len(events_of(evs, "breaker", rule="db")), 1, describe(evs))

    def test_without_sharing_each_process_learns_alone(self):
        port = free_port()
        pol, log = self.wd.policy(
            rule("db", ["connect"], ["127.0.0.1:%d" % port],
                 "retry: off\nbreaker: { trip: { consecutive: 5 }, open_for: 30s }"))
        outdir = self.wd.file("out")
        os.mkdir(outdir)
        r = bulwark_run(["-c", pol], tree(4, DEAD_CLIENT, port, 0, outdir), timeout=60)
        self.assertOk(r)
        self.assertEqual(list(results(outdir).values()), [["111"] * 5] * 4)
        evs = read_events(log)
        self.assertEqual(len(events_of(evs, "fail", rule="db")), 20, describe(evs))
        self.assertEqual(len(events_of(evs, "rejected", rule="db")), 0, describe(evs))

    def test_state_file_removed_when_the_tree_ends(self):
        port = free_port()
        state = self.wd.file("state")
        os.mkdir(state, 0o700)
        pol, _ = self.wd.policy(
            rule("db", ["connect"], ["127.0.0.1:%d" % port],
                 "breaker: { trip: { consecutive: 1 } }"),
            extra="state: { share: group, dir: %s }\n" % state)
        r = bulwark_run(["-c", pol], ["sh", "-c", "ls %s" % state] +
                        [], timeout=30)
        # nothing connected yet in `ls`, but the library joined the group at start
        self.assertOk(r)
        self.assertIn(".state", r.stdout)
        self.assertEqual(os.listdir(state), [])


# One process that connects to the dead port 3 times and prints what each returned.
THREE = PY_CLIENT + """
import sys
port = int(sys.argv[1])
print(" ".join(str(connect_once(port)) for _ in range(3)))
"""


class LeftoverStateFiles(ShimTest):
    """A state file left behind by processes that died (an empty one from a creator
    killed before sizing it, or a finished one laid out for another policy) is replaced,
    never mapped past its end: mapping a short file would kill the program with SIGBUS."""

    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.state = self.wd.file("state")
        os.mkdir(self.state, 0o700)
        self.file = os.path.join(self.state, "g1.state")

    def policy(self, name="db"):
        return self.wd.policy(
            rule(name, ["connect"], ["127.0.0.1:%d" % self.port],
                         "retry: off\nbreaker: { trip: { consecutive: 2 }, open_for: 30s }"),
            name=name + ".yaml", log=name + ".log",
            extra="state: { share: group, dir: %s }\n" % self.state)

    def two_in_a_row(self, pol):
        """Two processes one after the other in group g1: the second finds the breaker
        the first opened, so the file is really shared."""
        out = []
        for _ in range(2):
            r = run([PYTHON, "-c", THREE, str(self.port), "0"], shim=True, policy=pol,
                    env={"BULWARK_GROUP": "g1"}, timeout=30)
            self.assertEqual(r.rc, 0, r)
            out.append(r.stdout.split())
        self.assertEqual(out[0], ["111"] * 3)
        self.assertEqual(out[1], ["111"] * 3)
        evs = read_events(pol[:-len(".yaml")] + ".log")
        self.assertEqual(events_of(evs, "warning"), [], describe(evs))
        return out

    def test_empty_file_of_a_dead_creator_is_replaced(self):
        pol, log = self.policy()
        open(self.file, "w").close()
        old = time.time() - 10
        os.utime(self.file, (old, old))
        t = time.monotonic()
        self.two_in_a_row(pol)
        self.assertLess(time.monotonic() - t, 10)
        evs = read_events(log)
        # 2 failures open the shared breaker; the other 4 calls of the two are refused
        self.assertEqual(len(events_of(evs, "fail", rule="db")), 2, describe(evs))
        self.assertEqual(len(events_of(evs, "rejected", rule="db")), 4, describe(evs))
        self.assertGreater(os.path.getsize(self.file), 0)

    def test_short_file_is_never_mapped_past_its_end(self):
        pol, _ = self.policy()
        r = run(["true"], shim=True, policy=pol, env={"BULWARK_GROUP": "g1"})
        self.assertEqual(r.rc, 0, r)
        size = os.path.getsize(self.file)
        os.truncate(self.file, 4096)                 # a finished layout, cut short
        r = run([PYTHON, "-c", THREE, str(self.port), "0"], shim=True, policy=pol,
                env={"BULWARK_GROUP": "g1"}, timeout=30)
        self.assertEqual(r.rc, 0, r)                 # not -7 (SIGBUS)
        self.assertEqual(r.stdout.split(), ["111"] * 3, r)
        self.assertEqual(os.path.getsize(self.file), size)   # made again, whole

    def test_stale_file_of_another_policy_is_replaced(self):
        other, _ = self.policy(name="other")
        r = run(["true"], shim=True, policy=other, env={"BULWARK_GROUP": "g1"})
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(os.path.exists(self.file))  # named by bulwark run: it removes it
        pol, log = self.policy()
        self.two_in_a_row(pol)
        self.assertEqual(len(events_of(read_events(log), "fail", rule="db")), 2)

    def test_live_group_of_another_policy_is_left_alone(self):
        other, _ = self.policy(name="other")
        holder = subprocess.Popen(["sleep", "20"], env=shim_env(
            other, BULWARK_GROUP="g1"))
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(self.file) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
            before = os.stat(self.file).st_ino
            pol, log = self.policy()
            r = run([PYTHON, "-c", THREE, str(self.port), "0"], shim=True, policy=pol,
                    env={"BULWARK_GROUP": "g1"}, timeout=30)
            self.assertEqual(r.rc, 0, r)
            warned = events_of(read_events(log), "warning")
            self.assertEqual(len(warned), 1, describe(read_events(log)))
            self.assertIn("each process keeps its own state", warned[0]["msg"])
            self.assertEqual(os.stat(self.file).st_ino, before)   # theirs, untouched
        finally:
            holder.kill()
            holder.wait()


class SharedRateLimit(ShimTest):

    def test_four_processes_share_one_limit(self):
        srv = self.server(delay_s=0, kind="http")
        srv.wait_listening()
        pol, log = self.wd.policy(
            rule("lim", ["connect"], [srv.addr],
                 "rate_limit: { scope: rule, rate: 20/s, burst: 1, max_wait: 10s }"),
            extra="state: { share: group }\n")
        t = time.monotonic()
        r = bulwark_run(["-c", pol], tree(4, RATE_CLIENT, srv.port, 10), timeout=60)
        elapsed = time.monotonic() - t
        self.assertOk(r)
        # 40 connects at 20/s together: about 2 s (alone, each would take 0.5 s)
        self.assertGreater(elapsed, 1.6, r.stdout)
        self.assertLess(elapsed, 6, r.stdout)
        # the slowest process waited for the others' share: the tree, not each process,
        # was held to 20/s (which process gets tokens first is up to the scheduler)
        self.assertGreater(max(float(x) for x in r.stdout.split()), 1.5, r.stdout)


if __name__ == "__main__":
    unittest.main()
