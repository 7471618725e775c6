"""The event stream (bulwark.yaml(5) EVENTS): JSON Lines with a fixed key prefix, the start and exit
events, level filtering, the environment overrides of the sink and level, and appends by
several processes to one file."""

import json
import os
import unittest

from harness import (PYTHON, TS_RE, ShimTest, describe, events_in_text, events_of, free_port,
                     late_rule, py, read_events, rule, run)

LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}
# The level each event is logged at (bulwark.yaml(5) EVENTS table).
EVENT_LEVEL = {
    "start": "info", "config_error": "error", "fail": "info", "retry": "warn",
    "recovered": "warn", "gave_up": "error", "timeout": "warn", "breaker": "warn",
    "rejected": "warn", "throttled": "info", "limited": "warn", "failover": "warn",
    "injected": "info", "exit": "info",
}
PREFIX = ["ts", "lvl", "event", "pid", "tid", "prog"]

# Connects to a late server, prints its own pid so events can be checked against it.
CLIENT = """
import os, socket, sys
print(os.getpid(), flush=True)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
s.recv(4096)
"""

# Several processes at once, to check that their lines never interleave.
FANOUT = """
import os, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
kids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        s.recv(4096)
        os._exit(0)
    kids.append(pid)
sys.exit(sum(os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) != 0 for k in kids))
"""


def whitespace_outside_strings(line):
    """Index of the first whitespace character outside a JSON string, or -1."""
    in_str = esc = False
    for i, ch in enumerate(line):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in " \t\r\n":
            return i
    return -1


class Format(ShimTest):

    def late_run(self, level="debug", log_extra="", env=None, delay=1.0):
        srv = self.server(delay_s=delay)
        pol, log = self.wd.policy(late_rule(srv.port), level=level, log_extra=log_extra,
                                  name="p%d.yaml" % srv.port, log="e%d.log" % srv.port)
        r = run(py(CLIENT, srv.port), shim=True, policy=pol, env=env)
        self.assertOk(r)
        return srv, pol, log, r

    def test_lines_are_compact_json_with_fixed_prefix(self):
        srv, pol, log, r = self.late_run(env={"BULWARK_SEED": "42"})
        pid = int(r.stdout.split()[0])
        with open(log, "rb") as f:
            raw = f.read()
        self.assertTrue(raw.endswith(b"\n"), "the last event is not a whole line")
        lines = raw.decode("utf-8").split("\n")[:-1]
        self.assertGreater(len(lines), 3)
        for line in lines:
            ev = json.loads(line)   # keeps the key order of the line
            keys = list(ev)
            self.assertEqual(keys[:6], PREFIX, line)
            self.assertEqual(whitespace_outside_strings(line), -1, line)
            self.assertRegex(ev["ts"], TS_RE)
            self.assertEqual(ev["lvl"], EVENT_LEVEL.get(ev["event"], ev["lvl"]), line)
            self.assertEqual(ev["pid"], pid, line)
            self.assertIsInstance(ev["tid"], int, line)
            self.assertEqual(ev["prog"], os.path.basename(PYTHON), line)
        events = read_events(log)
        self.assertRecovered(events, rule="late", dest="127.0.0.1:%d" % srv.port)

        start = events_of(events, "start")
        self.assertEqual(len(start), 1, describe(events))
        self.assertIs(events[0], start[0], "start is not the first event")
        s = start[0]
        self.assertRegex(s.get("version", ""), r"^\d+\.\d+\.\d+")
        self.assertEqual(s.get("config"), pol)
        self.assertEqual(s.get("rules"), 1)
        self.assertEqual(s.get("mode"), "enforce")
        self.assertEqual(s.get("seed"), 42)

    def test_timestamps_are_in_order(self):
        srv, pol, log, r = self.late_run()
        stamps = [e["ts"] for e in read_events(log)]
        self.assertEqual(stamps, sorted(stamps))

    def test_exit_summary(self):
        srv, pol, log, r = self.late_run(log_extra="  summary: false\n")
        self.assertFalse(events_of(read_events(log), "exit"), "summary: false still summed up")

        srv, pol, log, r = self.late_run(log_extra="  summary: true\n")
        events = read_events(log)
        ex = events_of(events, "exit")
        self.assertEqual(len(ex), 1, describe(events))
        self.assertIs(events[-1], ex[0], "exit is not the last event")
        stats = ex[0].get("stats", {}).get("late")
        self.assertIsInstance(stats, dict, describe(events))
        for key in ("calls", "failures", "retries", "recovered", "gave_up", "rejected",
                    "throttled", "limited", "injected"):
            self.assertIsInstance(stats.get(key), int, "stats.late.%s: %s" % (key, stats))
        rec = events_of(events, "recovered", rule="late")[0]
        self.assertEqual(stats["recovered"], 1, stats)
        self.assertEqual(stats["retries"], rec["attempts"] - 1, stats)
        self.assertEqual(stats["failures"], rec["attempts"] - 1, stats)
        self.assertEqual(stats["gave_up"], 0, stats)
        self.assertGreaterEqual(stats["calls"], 1, stats)

    FORKED = """
import os, socket, sys
port = int(sys.argv[1])
def once():
    socket.create_connection(("127.0.0.1", port)).close()
for _ in range(3):
    once()
pid = os.fork()
if pid == 0:
    once()
    sys.exit(0)
os.waitpid(pid, 0)
"""

    def test_a_forked_child_counts_its_own_calls(self):
        """A child's exit event counts the calls it made, not its parent's before the
        fork as well (the call counters were left as the fork found them)."""
        srv = self.server(delay_s=0)
        srv.wait_listening()
        pol, log = self.wd.policy(rule("r", ["connect"], ["127.0.0.1:%d" % srv.port]))
        r = run(py(self.FORKED, srv.port), shim=True, policy=pol)
        self.assertOk(r)
        events = read_events(log)
        calls = sorted(e["stats"]["r"]["calls"] for e in events_of(events, "exit"))
        self.assertEqual(calls, [1, 3], describe(events))


class Filtering(ShimTest):

    def run_level(self, level, env=None):
        srv = self.server(delay_s=1.0)
        pol, log = self.wd.policy(late_rule(srv.port), level=level)
        r = run(py(CLIENT, srv.port), shim=True, policy=pol, env=env)
        self.assertOk(r)
        return read_events(log), log

    def test_level_warn_drops_info(self):
        events, _ = self.run_level("warn")
        self.assertTrue(events_of(events, "retry"), describe(events))
        self.assertTrue(events_of(events, "recovered"), describe(events))
        for e in events:
            self.assertLessEqual(LEVELS[e["lvl"]], LEVELS["warn"], describe(events))

    def test_level_env_overrides(self):
        events, _ = self.run_level("warn", env={"BULWARK_LEVEL": "debug"})
        self.assertTrue(events_of(events, "fail"), describe(events))

    def test_log_env_overrides_sink(self):
        other = self.wd.file("other.log")
        events, log = self.run_level("debug", env={"BULWARK_LOG": "file:" + other})
        self.assertEqual(events, [], "events still went to the policy's sink")
        self.assertTrue(events_of(read_events(other), "recovered"))

    def test_stderr_sink(self):
        srv = self.server(delay_s=1.0)
        pol, log = self.wd.policy(late_rule(srv.port))
        r = run(py(CLIENT, srv.port), shim=True, policy=pol, env={"BULWARK_LOG": "stderr"})
        self.assertOk(r)
        events = events_in_text(r.stderr)
        self.assertTrue(events_of(events, "recovered"), r.stderr)
        for line in r.stderr.splitlines():
            if line.startswith("{"):
                self.assertEqual(list(json.loads(line))[:6], PREFIX, line)


class SharedFile(ShimTest):

    def test_concurrent_processes_append_whole_lines(self):
        srv = self.server(delay_s=1.0)
        pol, log = self.wd.policy(late_rule(srv.port))
        r = run(py(FANOUT, srv.port, 6), shim=True, policy=pol)
        self.assertOk(r)
        events = read_events(log)   # fails on any torn or interleaved line
        rec = events_of(events, "recovered", rule="late")
        self.assertEqual(len({e["pid"] for e in rec}), 6, describe(events))


class Seed(ShimTest):
    """The seed makes jitter reproducible (bulwark(1) --seed, bulwark.yaml(5) INJECT), and the start event tells
    which seed a run used, so that a random run can be replayed."""

    def delays(self, seed=None):
        port = self.port
        self.n += 1
        pol, log = self.wd.policy(
            rule("down", ["connect"], ["127.0.0.1:%d" % port],
                 "retry: { attempts: 6, backoff: { base: 10ms, max: 40ms, jitter: full } }"),
            name="s%d.yaml" % self.n, log="s%d.log" % self.n)
        code = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d))\n"
                "except ConnectionRefusedError:\n    print('refused')\n" % port)
        env = {} if seed is None else {"BULWARK_SEED": seed}
        r = run(py(code), shim=True, policy=pol, env=env)
        self.assertOk(r)
        events = read_events(log)
        start = events_of(events, "start")
        self.assertTrue(start, describe(events))
        return start[0].get("seed"), [e.get("delay_ms") for e in events_of(events, "retry")]

    def setUp(self):
        super().setUp()
        self.port, self.n = free_port(), 0

    def test_same_seed_same_delays(self):
        seed, first = self.delays("1234")
        self.assertEqual(seed, 1234)
        self.assertEqual(len(first), 5)
        self.assertEqual(self.delays("1234"), (1234, first))
        self.assertNotEqual(self.delays("4321")[1], first)

    def test_random_seed_can_be_replayed(self):
        seed, first = self.delays()
        self.assertIsInstance(seed, int)
        self.assertNotEqual(seed, 0, "seed 0 means random; the start event must say which")
        # The sign of a seed of 2^63 or more is test_large_seed's business: replay with
        # the unsigned reading so that this test does not fail on half the draws.
        self.assertEqual(self.delays(str(seed % 2 ** 64))[1], first)

    def test_large_seed_is_reported_as_given(self):
        """A seed is an unsigned 64-bit number: the start event must print the one that
        --seed and BULWARK_SEED accept, not its two's-complement reading."""
        big = 2 ** 64 - 1
        seed, first = self.delays(str(big))
        self.assertEqual(seed, big)


if __name__ == "__main__":
    unittest.main()
