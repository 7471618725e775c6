"""Fleet mode (`state: { share: fleet }`): rate limits and breakers held by every host
through a real redis-server started here on a free loopback port. A "host" is a process
tree under its own `bulwark run` with its own state directory, as on a machine of its own.
Skipped, saying so, where redis-server is not installed."""
import calendar
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import unittest

from harness import (PYTHON, TOOL, ShimTest, base_env, events_of, free_port, read_events)

REDIS = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
NEED_REDIS = "redis-server is not installed (make deps-test installs it)"


class Redis:
    """A redis-server on a free loopback port that saves nothing; restart() brings it
    back empty on the same port."""

    def __init__(self, workdir, port=None):
        self.port = port or free_port()
        self.dir = workdir
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=base_env())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.cmd("PING")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not come up on port %d" % self.port)

    def cmd(self, *args):
        """One command, its reply's first line (enough for these tests)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = "*%d\r\n" % len(args) + "".join(
                "$%d\r\n%s\r\n" % (len(str(a)), a) for a in args)
            s.sendall(out.encode())
            return s.recv(65536).decode(errors="replace").split("\r\n")[0]

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self):
        self.kill()
        self.start()

    def stop(self):
        self.kill()


class Silent:
    """A port that accepts connections and never answers (a Redis stuck for good)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.done = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.done:
            try:
                c, _ = self.sock.accept()
                self.held.append(c)
            except OSError:
                pass

    def stop(self):
        self.done = True
        for c in self.held:
            c.close()
        self.sock.close()


# Between two wall-clock instants, offers connects to a dead port at a steady rate and
# records, per call, when it began, how long it took, and whether it was admitted (the
# kernel refused it: ECONNREFUSED) or limited (bulwark refused it: EAGAIN).
CLIENT = r"""
import errno, json, os, socket, sys, time
port, rate, start, end, out = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
calls = []
while time.time() < start:
    time.sleep(0.005)
t = time.monotonic()
t0 = time.time() - t
while time.time() < end and len(calls) < 100000:
    s = socket.socket()
    a = time.monotonic()
    try:
        s.connect(("127.0.0.1", port))
        r = "connected"
    except OSError as e:
        r = {errno.ECONNREFUSED: "ok", errno.EAGAIN: "limited",
             errno.EHOSTUNREACH: "rejected"}.get(e.errno, str(e.errno))
    b = time.monotonic()
    s.close()
    calls.append((round(t0 + a, 4), round(b - a, 6), r))
    t += 1.0 / rate
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(calls, f)
os.rename(tmp, out)
"""


def ts_of(ev):
    """An event's time, in seconds since the epoch."""
    t = ev["ts"]
    return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float(t[19:-1] or 0)


def breaker_rule(dest_port, open_for="2s", open_for_max="2s", scope="dest"):
    return ("  - name: db\n"
            "    match: { ops: [connect], dest: [\"127.0.0.1:%d\"] }\n"
            "    retry: off\n"
            "    breaker: { scope: %s, trip: { consecutive: 3 }, open_for: %s, "
            "open_for_max: %s, errno: EHOSTUNREACH }\n"
            % (dest_port, scope, open_for, open_for_max))


def rate_rule(dest_port, rate="100/s", burst=10):
    return ("  - name: api\n"
            "    match: { ops: [connect], dest: [\"127.0.0.1:%d\"] }\n"
            "    retry: off\n"
            "    rate_limit: { rate: %s, burst: %d, on_limit: fail, errno: EAGAIN }\n"
            % (dest_port, rate, burst))


def fleet_state(redis_port, hosts=2, on_unreachable="local", extra=""):
    return ("state:\n  share: fleet\n  redis: \"redis://127.0.0.1:%d/0\"\n  hosts: %d\n"
            "  on_unreachable: %s\n  key_prefix: \"t%d:\"\n%s"
            % (redis_port, hosts, on_unreachable, os.getpid(), extra))


@unittest.skipUnless(REDIS, NEED_REDIS)
class FleetTest(ShimTest):

    def redis(self):
        r = Redis(self.wd.file("."))
        self.addCleanup(r.stop)
        return r

    def host(self, name, policy, procs, dest_port, rate, start, end, code=CLIENT):
        """A host: `bulwark run` of a shell that starts `procs` clients, with a state
        directory of its own. Returns (Popen, its output directory, its state dir)."""
        out = self.wd.file(name)
        os.makedirs(out, exist_ok=True)
        state = self.wd.file(name + "-run")
        os.makedirs(state, mode=0o700, exist_ok=True)
        one = " ".join("'%s'" % a for a in [PYTHON, "-c", code.replace("'", "'\\''")])
        line = " ".join("%s %d %s %.3f %.3f %s/%d.json &" % (one, dest_port, rate, start, end,
                                                              out, i) for i in range(procs))
        env = base_env(XDG_RUNTIME_DIR=state)
        p = subprocess.Popen([TOOL, "run", "-q", "-c", policy, "--", "sh", "-c",
                              line + " wait"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p, out, state

    def calls(self, outdir):
        """Every call of every process of a host, in time order."""
        out = []
        for n in sorted(os.listdir(outdir)):
            if n.endswith(".json"):
                with open(os.path.join(outdir, n)) as f:
                    out.extend(json.load(f))
        return sorted(out)

    def finish(self, p, timeout=60):
        try:
            text, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            text, _ = p.communicate()
            self.fail("a host did not finish:\n%s" % text.decode(errors="replace"))
        self.assertEqual(p.returncode, 0, text.decode(errors="replace"))

    def status_file(self, state):
        """The fleet status the host's leader last wrote."""
        for root, _, files in os.walk(state):
            for n in files:
                if n.endswith(".fleet"):
                    with open(os.path.join(root, n)) as f:
                        return json.load(f)
        return None

    def test_two_hosts_share_one_limit(self):
        """Two hosts of two processes each offer 200/s for 10 s against a 100/s fleet
        limit: the fleet admits at most rate x T + burst + hosts x lease, at least 80 %
        of rate x T, and each host gets its fair share within 25 %."""
        r = self.redis()
        dead = free_port()
        pol, log = self.wd.policy(rate_rule(dead, "100/s", 10), level="info",
                                  extra=fleet_state(r.port, hosts=2))
        start = time.time() + 2.0
        end = start + 10.0
        hosts = [self.host("h%d" % i, pol, 2, dead, 100, start, end) for i in range(2)]
        for p, _, _ in hosts:
            self.finish(p)
        per_host = []
        for _, out, _ in hosts:
            c = self.calls(out)
            self.assertGreater(len(c), 1500, "each host offers about 2000 calls")
            per_host.append(sum(1 for x in c if x[2] == "ok"))
        total = sum(per_host)
        lease = 100 * 0.1 / 2             # rate x sync / hosts
        bound = 100 * 10 + 10 + 2 * lease
        print("\n  fleet accuracy: admitted %d of %d allowed over 10 s (%.3f), hosts %s, "
              "bound %d" % (total, 1000, total / 1000.0, per_host, bound))
        self.assertLessEqual(total, bound)
        self.assertGreaterEqual(total, 800)
        for n in per_host:
            self.assertLess(abs(n - total / 2.0), total / 2.0 * 0.25, per_host)
        self.assertEqual(events_of(read_events(log), "fleet"), [])

    def test_redis_killed_then_back_empty(self):
        """Redis dies mid-run and comes back empty on the same port: the host's calls go
        on at its local share (rate / hosts), with one `fleet` event each way; the calls
        take no longer while Redis is gone; and a SCRIPT FLUSH later is recovered from
        without an event."""
        r = self.redis()
        dead = free_port()
        pol, log = self.wd.policy(rate_rule(dead, "100/s", 10), level="info",
                                  extra=fleet_state(r.port, hosts=2))
        start = time.time() + 1.5
        end = start + 9.0
        p, out, state = self.host("h", pol, 2, dead, 100, start, end)
        time.sleep(max(0, start + 2.5 - time.time()))
        killed = time.time()
        r.kill()
        time.sleep(3.0)
        # the syncer may reach the new server before start() has seen it answer: the
        # time before start() is the earliest the return can be told
        back = time.time()
        r.start()
        time.sleep(1.5)
        self.assertEqual(r.cmd("SCRIPT", "FLUSH"), "+OK")
        flushed = time.time()
        # the leader's status (removed with the tree): its script loaded once more
        st = None
        while time.time() < end - 0.5:
            st = self.status_file(state)
            if st and st["script_loads"] >= 3 and st["updated_us"] / 1e6 > flushed + 0.5:
                break
            time.sleep(0.2)
        self.finish(p)
        calls = self.calls(out)
        evs = events_of(read_events(log), "fleet")
        self.assertEqual([(e["from"], e["to"]) for e in evs],
                         [("fleet", "local"), ("local", "fleet")], evs)
        # in order, and each before the next change of the test's (no timing bound: a
        # loaded machine may take its time, and the order is the property)
        self.assertTrue(killed < ts_of(evs[0]) < back, (killed, evs[0], back))
        self.assertTrue(back < ts_of(evs[1]) < flushed + 10.0, (back, evs[1]))
        # while Redis was gone: about 50/s on this host (100/s over 2 hosts), never 0
        gone = [x for x in calls if killed + 1.0 < x[0] < back - 0.2]
        span = back - 0.2 - (killed + 1.0)
        ok = sum(1 for x in gone if x[2] == "ok")
        self.assertGreater(ok, 50 * span * 0.6, ok)
        self.assertLess(ok, 50 * span * 1.4 + 10, ok)
        # and the program's calls took as long as before: no wait on the network
        def p90(xs):
            xs = sorted(x[1] for x in xs)
            return xs[int(len(xs) * 0.9)]
        before = [x for x in calls if start + 0.5 < x[0] < killed]
        self.assertLess(p90(gone), p90(before) * 5 + 0.05, (p90(gone), p90(before)))
        # after the flush the leader loaded its script again, still in fleet mode
        after = [x for x in calls if flushed + 0.5 < x[0]]
        self.assertGreater(sum(1 for x in after if x[2] == "ok"), 0)
        self.assertIsNotNone(st)
        self.assertEqual(st["mode"], "fleet")
        self.assertGreaterEqual(st["script_loads"], 3, st)

    def latencies(self, pol, seconds=3.0):
        start = time.time() + 1.0
        p, out, _ = self.host("b%d" % int(start * 1000), pol, 1, self.dead, 200, start,
                              start + seconds)
        self.finish(p)
        return sorted(x[1] for x in self.calls(out))

    def test_silent_redis_blocks_no_call(self):
        """A Redis that accepts and never answers: no program call takes longer than the
        same calls under share: group, and the host runs on its local share."""
        silent = Silent()
        self.addCleanup(silent.stop)
        self.dead = free_port()
        pol, log = self.wd.policy(rate_rule(self.dead, "100/s", 10), level="info",
                                  extra=fleet_state(silent.port, hosts=2), name="f.yaml")
        grp, _ = self.wd.policy(rate_rule(self.dead, "100/s", 10), level="info",
                                extra="state: { share: group }\n", name="g.yaml",
                                log="g.log")
        fleet = self.latencies(pol)
        group = self.latencies(grp)
        q = lambda xs, f: xs[min(len(xs) - 1, int(len(xs) * f))]
        print("\n  silent redis: p50 %.3f ms p99 %.3f ms max %.3f ms; share: group p50 %.3f "
              "ms p99 %.3f ms max %.3f ms" % (q(fleet, .5) * 1e3, q(fleet, .99) * 1e3,
                                              fleet[-1] * 1e3, q(group, .5) * 1e3,
                                              q(group, .99) * 1e3, group[-1] * 1e3))
        # the syncer waits 200 ms for each reply: a call that waited with it would show
        self.assertLess(q(fleet, .5), q(group, .5) * 5 + 0.02)
        self.assertLess(q(fleet, .9), q(group, .9) * 5 + 0.05)
        evs = events_of(read_events(log), "fleet")
        self.assertEqual([(e["from"], e["to"]) for e in evs], [("fleet", "local")], evs)
        self.assertIn("no answer in time", evs[0]["reason"])

    def test_fork(self):
        """A leader that forks and exits: the child never holds the parent's Redis
        connection, stands for election and refills its buckets on its own."""
        r = self.redis()
        dead = free_port()
        pol, log = self.wd.policy(rate_rule(dead, "50/s", 5), level="info",
                                  extra=fleet_state(r.port, hosts=1))
        code = r"""
import errno, os, socket, sys, time
port, redis_port = int(sys.argv[1]), int(sys.argv[2])
def call():
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
    except OSError as e:
        return e.errno == errno.ECONNREFUSED
    finally:
        s.close()
def redis_sockets():
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            s = socket.socket(fileno=int(fd))
        except OSError:
            continue
        try:
            if s.getpeername()[1] == redis_port:
                n += 1
        except (OSError, IndexError, TypeError):
            pass
        finally:
            s.detach()
    return n
end = time.time() + 1.0
ok = 0
while time.time() < end:
    ok += call()
    time.sleep(0.01)
print("parent", ok, redis_sockets(), flush=True)
pid = os.fork()
if pid:
    time.sleep(0.3)
    os._exit(0)
print("child-sockets", redis_sockets(), flush=True)
time.sleep(0.5)
ok = 0
end = time.time() + 3.0
while time.time() < end:
    ok += call()
    time.sleep(0.01)
print("child", ok, flush=True)
"""
        out = self.wd.file("fork.out")
        state = self.wd.file("fork-run")
        os.makedirs(state, mode=0o700)
        with open(out, "w") as f:
            p = subprocess.run([TOOL, "run", "-q", "-c", pol, "--", PYTHON, "-c", code,
                                str(dead), str(r.port)], env=base_env(XDG_RUNTIME_DIR=state),
                               stdout=f, stderr=subprocess.STDOUT, timeout=60)
        # the child outlives `bulwark run`'s wait for its parent: wait for its line
        deadline = time.monotonic() + 15
        text = ""
        while time.monotonic() < deadline:
            with open(out) as f:
                text = f.read()
            if "child " in text:
                break
            time.sleep(0.1)
        lines = {l.split()[0]: l.split()[1:] for l in text.splitlines() if l.strip()}
        self.assertEqual(p.returncode, 0, text)
        self.assertIn("child", lines, text)
        self.assertEqual(lines["parent"][1], "1", text)        # the leader's connection
        self.assertEqual(lines["child-sockets"][0], "0", text)  # closed in the child
        # 3 s at 50/s after the leader left: about 150 if the child took over, no more
        # than its last lease (5) if no one refilled
        self.assertGreater(int(lines["child"][0]), 60, text)

    def breaker_hosts(self, policies, starts, end, port):
        hosts = [self.host("bh%d" % i, pol, 1, port, 50, st, end)
                 for i, (pol, st) in enumerate(zip(policies, starts))]
        for p, _, _ in hosts:
            self.finish(p)
        return [self.calls(out) for _, out, _ in hosts]

    def test_breaker_opens_on_quorum(self):
        """Three hosts, a dead destination: two hosts trip their breakers (3 failures
        each), the quorum (2 of 3) opens it on the third before its first call, and the
        fleet sends one probe at a time, one open_for apart: connect(2) calls to the dead
        port across the fleet stay few."""
        r = self.redis()
        dead = free_port()
        pol, log = self.wd.policy(breaker_rule(dead), level="info",
                                  extra=fleet_state(r.port, hosts=3))
        t0 = time.time() + 1.5
        calls = self.breaker_hosts([pol] * 3, [t0, t0, t0 + 1.5], t0 + 6.5, dead)
        made = [sum(1 for x in c if x[2] == "ok") for c in calls]
        rejected = [sum(1 for x in c if x[2] == "rejected") for c in calls]
        evs = read_events(log)
        probes = sorted(ts_of(e) for e in events_of(evs, "breaker", to="half_open"))
        print("\n  fleet breaker: connects per host %s (rejected %s), probes at %s"
              % (made, rejected, ["%.2f" % (p - t0) for p in probes]))
        # the third host never tripped it: each connect it made was the fleet's probe
        self.assertLessEqual(made[2], sum(1 for p in probes if p > t0 + 1.5), probes)
        self.assertEqual(calls[2][0][2], "rejected", calls[2][:3])
        imposed = events_of(evs, "breaker", reason="fleet_quorum")
        self.assertGreaterEqual(len(imposed), 1, imposed)
        # 3 failures to trip on two hosts, then one probe per open_for (2 s) for the
        # fleet; alone, each of the three would trip and probe on its own (about 18)
        self.assertLessEqual(len(probes), 4, probes)
        self.assertLessEqual(sum(made), 6 + len(probes), made)
        for a, b in zip(probes, probes[1:]):
            self.assertGreater(b - a, 1.5, probes)

    def test_one_bad_host_poisons_no_one(self):
        """One host cannot reach the destination (its own network): its breaker opens,
        the others' stay closed and their calls go through."""
        r = self.redis()
        good = socket.socket()
        good.bind(("127.0.0.1", 0))
        good.listen(4096)
        self.addCleanup(good.close)
        port = good.getsockname()[1]
        dead = free_port()
        # one rule, scope rule: the same breaker for the fleet, whatever each host reaches
        bad, log = self.wd.policy(breaker_rule(dead, scope="rule"), level="info",
                                  extra=fleet_state(r.port, hosts=3), name="bad.yaml")
        ok, _ = self.wd.policy(breaker_rule(port, scope="rule"), level="info",
                               extra=fleet_state(r.port, hosts=3), name="ok.yaml")
        t0 = time.time() + 1.5
        calls = [self.host("bad", bad, 1, dead, 50, t0, t0 + 4),
                 self.host("ok1", ok, 1, port, 50, t0, t0 + 4),
                 self.host("ok2", ok, 1, port, 50, t0, t0 + 4)]
        for p, _, _ in calls:
            self.finish(p)
        res = [self.calls(out) for _, out, _ in calls]
        self.assertGreater(sum(1 for x in res[0] if x[2] == "rejected"), 100)
        for c in res[1:]:
            self.assertGreater(len(c), 100)
            self.assertEqual(set(x[2] for x in c), {"connected"})
        self.assertEqual(events_of(read_events(log), "breaker", reason="fleet_quorum"), [])

    def test_breaker_recovers_fleet_wide(self):
        """The destination comes back: the one probe that finds it closes the breaker on
        every host, those that never probed included."""
        r = self.redis()
        port = free_port()
        pol, log = self.wd.policy(breaker_rule(port, "1s", "1s"), level="info",
                                  extra=fleet_state(r.port, hosts=3))
        t0 = time.time() + 1.5
        hosts = [self.host("rh%d" % i, pol, 1, port, 50, t0, t0 + 6.5) for i in range(3)]
        time.sleep(max(0, t0 + 2.0 - time.time()))
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen(4096)
        self.addCleanup(srv.close)
        up = time.time()
        for p, _, _ in hosts:
            self.finish(p)
        res = [self.calls(out) for _, out, _ in hosts]
        evs = read_events(log)
        for c in res:
            late = [x[2] for x in c if x[0] > up + 3.0]
            self.assertGreater(len(late), 20)
            self.assertEqual(set(late), {"connected"}, c[-5:])
        closed = events_of(evs, "breaker", to="closed")
        self.assertTrue(any(e.get("reason") == "fleet_recovered" for e in closed), closed)
        probes = events_of(evs, "breaker", to="half_open")
        self.assertLessEqual(len([e for e in probes if ts_of(e) > up]), 2, probes)

    def test_status_fleet(self):
        """`bulwark status --fleet` inside a running host: its mode, the hosts seen, its
        bucket's lease and its breaker as it and the fleet see it; exit 0 while Redis
        answers."""
        r = self.redis()
        dead = free_port()
        body = ("  - name: db\n    match: { ops: [connect], dest: [\"127.0.0.1:%d\"] }\n"
                "    retry: off\n    breaker: { trip: { consecutive: 3 }, open_for: 5s }\n"
                "    rate_limit: { rate: 100/s, burst: 10 }\n" % dead)
        pol, _ = self.wd.policy(body, level="info", extra=fleet_state(r.port, hosts=2))
        state = self.wd.file("st")
        os.makedirs(state, mode=0o700)
        start = time.time() + 0.5
        client = " ".join("'%s'" % a for a in [PYTHON, "-c", CLIENT.replace("'", "'\\''")])
        line = ("%s %d 50 %.3f %.3f %s &  sleep 1.5; '%s' status --fleet > %s; echo $? >> %s;"
                " '%s' status --fleet --format json > %s; wait"
                % (client, dead, start, start + 2.0, self.wd.file("c.json"), TOOL,
                   self.wd.file("table"), self.wd.file("table"), TOOL, self.wd.file("json")))
        p = subprocess.run([TOOL, "run", "-q", "-c", pol, "--", "sh", "-c", line],
                           env=base_env(XDG_RUNTIME_DIR=state), capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.wd.file("table")) as f:
            table = f.read()
        self.assertIn("mode fleet", table)
        self.assertIn("hosts seen 1 of 2, quorum 2", table)
        self.assertEqual(table.split()[-1], "0", table)
        with open(self.wd.file("json")) as f:
            st = json.load(f)
        self.assertEqual(len(st), 1, st)
        st = st[0]
        self.assertEqual((st["mode"], st["hosts_seen"], st["hosts"]), ("fleet", 1, 2), st)
        self.assertEqual([(b["rule"], b["dest"], b["lease"]) for b in st["buckets"]],
                         [("db", "127.0.0.1:%d" % dead, 10)], st)
        self.assertEqual([(b["dest"], b["here"], b["fleet"], b["hosts_open"])
                          for b in st["breakers"]],
                         [("127.0.0.1:%d" % dead, "open", "closed", 1)], st)

    def test_leader_killed(self):
        """The leader is killed (SIGKILL, no exit handler runs): another process of the
        tree takes the lock and refills the bucket; the calls go on at the rate."""
        r = self.redis()
        dead = free_port()
        pol, _ = self.wd.policy(rate_rule(dead, "50/s", 5), level="info",
                                extra=fleet_state(r.port, hosts=1))
        start = time.time() + 1.0
        end = start + 5.0
        p, out, state = self.host("lk", pol, 2, dead, 100, start, end)
        time.sleep(max(0, start + 1.5 - time.time()))
        st = self.status_file(state)
        self.assertIsNotNone(st)
        leader = st["leader_pid"]
        os.kill(leader, 9)
        killed = time.time()
        deadline = time.time() + 3
        while time.time() < deadline:
            st = self.status_file(state)
            if st and st["leader_pid"] != leader and st["updated_us"] / 1e6 > killed:
                break
            time.sleep(0.1)
        self.assertNotEqual(st["leader_pid"], leader, st)
        try:
            p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
        calls = self.calls(out)
        window = end - (killed + 1.0)
        ok = sum(1 for x in calls if killed + 1.0 < x[0] and x[2] == "ok")
        # 50/s after the new leader took over; without one, at most the lease left (5)
        self.assertGreater(ok, 50 * window * 0.6, (ok, window))
        self.assertLess(ok, 50 * window * 1.3 + 15, (ok, window))

    def run_without_redis(self, mode):
        """One host whose Redis refuses every connection, offering 100/s for 2 s against
        a 50/s limit: (admitted, calls, fleet events)."""
        dead, nothing = free_port(), free_port()
        pol, log = self.wd.policy(rate_rule(dead, "50/s", 5), level="info",
                                  extra=fleet_state(nothing, hosts=2, on_unreachable=mode),
                                  name=mode + ".yaml", log=mode + ".log")
        start = time.time() + 0.5
        p, out, _ = self.host(mode, pol, 1, dead, 100, start, start + 2.0)
        self.finish(p)
        calls = self.calls(out)
        return (sum(1 for x in calls if x[2] == "ok"), len(calls),
                events_of(read_events(log), "fleet"))

    def test_on_unreachable_modes(self):
        """Without Redis from the start: local takes rate / hosts (25/s here), open the
        whole rate on each host (50/s), closed nothing; each says so in one fleet
        event."""
        local, n_local, ev_local = self.run_without_redis("local")
        opened, n_open, ev_open = self.run_without_redis("open")
        closed, n_closed, ev_closed = self.run_without_redis("closed")
        print("\n  without redis, 2 s at 100/s against 50/s over 2 hosts: local %d, open %d, "
              "closed %d" % (local, opened, closed))
        self.assertTrue(30 <= local <= 60, local)
        self.assertTrue(75 <= opened <= 115, opened)
        self.assertEqual(closed, 0)
        for evs, mode in ((ev_local, "local"), (ev_open, "open"), (ev_closed, "closed")):
            self.assertEqual([(e["from"], e["to"]) for e in evs], [("fleet", mode)], evs)
            self.assertIn("Connection refused", evs[0]["reason"])

    def test_program_closes_every_descriptor(self):
        """A program that closes every descriptor it did not open (as daemons do) and
        opens sockets and files that take their numbers: the leader's lock and Redis
        connection are gone, nothing of the syncer's is ever written into the program's
        descriptors, and the process leads again and refills its bucket."""
        r = self.redis()
        dead = free_port()
        pol, log = self.wd.policy(rate_rule(dead, "50/s", 5), level="info",
                                  extra=fleet_state(r.port, hosts=1))
        files = self.wd.file("files")
        os.makedirs(files)
        code = r"""
import errno, os, socket, sys, time
port, d = int(sys.argv[1]), sys.argv[2]
def calls(seconds):
    ok, end = 0, time.time() + seconds
    while time.time() < end:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            ok += e.errno == errno.ECONNREFUSED
        s.close()
        time.sleep(0.01)
    return ok
before = calls(1.0)
os.closerange(3, 4096)
# sockets and files on the numbers the syncer had: neither may ever hear from it
pairs = [socket.socketpair() for i in range(150)]
fds = [os.open(os.path.join(d, str(i)), os.O_RDWR | os.O_CREAT) for i in range(50)]
after = calls(2.0)
heard = 0
for a, b in pairs:
    for x in (a, b):
        try:
            heard += len(x.recv(65536, socket.MSG_DONTWAIT))
        except BlockingIOError:
            pass
heard += sum(os.fstat(f).st_size for f in fds)
print(before, after, max(p[1].fileno() for p in pairs), heard, flush=True)
"""
        state = self.wd.file("cl-run")
        os.makedirs(state, mode=0o700)
        p = subprocess.run([TOOL, "run", "-q", "-c", pol, "--", PYTHON, "-c", code,
                            str(dead), files], env=base_env(XDG_RUNTIME_DIR=state),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        before, after, top, written = map(int, p.stdout.split())
        self.assertGreater(top, 100, "the sockets took the numbers the syncer had used")
        self.assertEqual(written, 0, "the syncer wrote into the program's descriptors")
        self.assertGreater(before, 20, p.stdout)
        # 2 s at 50/s: about 100 with the bucket refilled, at most its lease (5) without
        self.assertGreater(after, 40, p.stdout)


class FleetPolicy(ShimTest):
    """The fleet's keys through the command: no Redis needed."""

    def test_reload_into_fleet_mode_keeps_limits_working(self):
        """A process that started under share: group and reloads a policy that says
        share: fleet keeps its state's settings (no syncer starts): its buckets go on
        refilling as before, and never refuse for good."""
        dead = free_port()
        rule = rate_rule(dead, "50/s", 5)
        pol, log = self.wd.policy(rule, level="info", extra="state: { share: group }\n")
        fleet, _ = self.wd.policy(rule, level="info", name="fleet.yaml",
                                  extra=fleet_state(free_port(), hosts=2))
        code = r"""
import errno, os, socket, sys, time
port, pol, new = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def calls(seconds):
    ok, end = 0, time.time() + seconds
    while time.time() < end:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            ok += e.errno == errno.ECONNREFUSED
        s.close()
        time.sleep(0.01)
    return ok
before = calls(1.0)
os.rename(new, pol)
print(before, calls(2.5), flush=True)
"""
        state = self.wd.file("rl-run")
        os.makedirs(state, mode=0o700)
        p = subprocess.run([TOOL, "run", "-q", "-c", pol, "--", PYTHON, "-c", code, str(dead),
                            pol, fleet], env=base_env(XDG_RUNTIME_DIR=state),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        before, after = map(int, p.stdout.split())
        self.assertGreater(before, 20, p.stdout)
        self.assertGreater(after, 60, p.stdout)         # 2.5 s at 50/s: about 125
        self.assertEqual(len(events_of(read_events(log), "reload")), 1)

    def test_check_and_explain(self):
        pol = self.wd.write("f.yaml", fleet_state(6379, hosts=4).replace("version", "") +
                            "rules:\n" + rate_rule(9, "100/s", 20))
        with open(pol) as f:
            text = "version: 1\n" + f.read()
        self.wd.write("f.yaml", text)
        p = subprocess.run([TOOL, "check", pol], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("share: fleet", p.stdout)
        self.assertIn("fleet_quorum: 2", p.stdout)
        p = subprocess.run([TOOL, "explain", "-c", pol, "connect", "127.0.0.1:9"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("fleet: the rate limit holds for every host together (per "
                      "destination)", p.stdout)
        self.assertIn("a lease of at most 3 tokens (with 4 hosts", p.stdout)
        bad = self.wd.write("bad.yaml", text.replace("hosts: 4", "hosts: many"))
        p = subprocess.run([TOOL, "check", bad], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("bad.yaml:5:10: state.hosts: expected an integer from 1 to 100000, "
                      "got 'many'", p.stderr)


if __name__ == "__main__":
    unittest.main()
