"""Shared state across a process tree (SPEC 3.9): under one `bulwark run` with
`state: {share: group}`, processes act as one client: a breaker opened by some opens
for all, and a rate limit holds for the tree, not per process."""
import os
import shutil
import time
import unittest

from harness import PYTHON, ShimTest, bulwark_run, describe, events_of, free_port, read_events
from test_policies import connect_syscalls

STRACE = shutil.which("strace")

# Each process makes 5 connects to the dead port and prints what each returned.
DEAD_CLIENT = """
import socket, sys, time
port, delay = int(sys.argv[1]), float(sys.argv[2])
time.sleep(delay)
out = []
for _ in range(5):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        out.append("ok")
    except OSError as e:
        out.append(str(e.errno))
    s.close()
print(" ".join(out))
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


class SharedBreaker(ShimTest):

    @unittest.skipUnless(STRACE, "strace is not installed")
    def test_breaker_opens_for_the_whole_tree(self):
        port = free_port()
        pol, log = self.wd.policy(
            "  - name: db\n    match: { ops: [connect], dest: [\"127.0.0.1:%d\"] }\n"
            "    retry: off\n"
            "    breaker: { trip: { consecutive: 5 }, open_for: 30s }\n" % port,
            extra="state: { share: group }\n")
        st = self.wd.file("tree.strace")
        r = bulwark_run(["-c", pol], [STRACE, "-f", "-e", "trace=connect", "-o", st] +
                        tree(8, DEAD_CLIENT, port, 0.05), timeout=60)
        self.assertOk(r)
        lines = r.stdout.split("\n")
        results = " ".join(lines).split()
        self.assertEqual(results.count("111"), 40, r.stdout)     # every call refused
        evs = read_events(log)
        # 5 failures in total open the breaker for all 8 processes: 40 calls, 5 syscalls
        self.assertEqual(connect_syscalls(st, port), 5, describe(evs))
        self.assertEqual(len(events_of(evs, "rejected", rule="db")), 35, describe(evs))
        self.assertEqual(len(events_of(evs, "breaker", rule="db")), 1, describe(evs))

    def test_without_sharing_each_process_learns_alone(self):
        port = free_port()
        pol, log = self.wd.policy(
            "  - name: db\n    match: { ops: [connect], dest: [\"127.0.0.1:%d\"] }\n"
            "    retry: off\n"
            "    breaker: { trip: { consecutive: 5 }, open_for: 30s }\n" % port)
        r = bulwark_run(["-c", pol], tree(4, DEAD_CLIENT, port, 0), timeout=60)
        self.assertOk(r)
        evs = read_events(log)
        self.assertEqual(len(events_of(evs, "fail", rule="db")), 20, describe(evs))
        self.assertEqual(len(events_of(evs, "rejected", rule="db")), 0, describe(evs))

    def test_state_file_removed_when_the_tree_ends(self):
        port = free_port()
        state = self.wd.file("state")
        os.mkdir(state, 0o700)
        pol, _ = self.wd.policy(
            "  - name: db\n    match: { ops: [connect], dest: [\"127.0.0.1:%d\"] }\n"
            "    breaker: { trip: { consecutive: 1 } }\n" % port,
            extra="state: { share: group, dir: %s }\n" % state)
        r = bulwark_run(["-c", pol], ["sh", "-c", "ls %s" % state] +
                        [], timeout=30)
        # nothing connected yet in `ls`, but the library joined the group at start
        self.assertOk(r)
        self.assertIn(".state", r.stdout)
        self.assertEqual(os.listdir(state), [])


class SharedRateLimit(ShimTest):

    def test_four_processes_share_one_limit(self):
        srv = self.server(delay_s=0, kind="http")
        srv.wait_listening()
        pol, log = self.wd.policy(
            "  - name: lim\n    match: { ops: [connect], dest: [\"%s\"] }\n"
            "    rate_limit: { scope: rule, rate: 20/s, burst: 1, max_wait: 10s }\n"
            % srv.addr, extra="state: { share: group }\n")
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
