"""`bulwark metrics` (bulwark(1), METRICS) with real programs: a group kept alive by one
long-lived process, 50 short-lived python3 clients that come and go (5 at a time), each
making 2 connects to a live server and 1 to a dead port under a rule with retries, a
breaker, a rate limit and a bulkhead; meanwhile `bulwark metrics --listen` is scraped
over HTTP (urllib) again and again:

- the text is valid exposition format (our own parser, test_report.parse_prom; and
  `promtool check metrics` when promtool is installed);
- every counter and histogram series only ever grows from one scrape to the next;
- at the end the rule counters equal the sums of the exit events in the log, and the
  histograms count every call the rule carried;
- --textfile writes the same families to a file, atomically (no temporary left).

Without the counters in the group's file there is no bulwark_rule_*_total at all, and a
counter kept per process would drop when its process leaves."""
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

from harness import (PYTHON, ShimTest, TOOL, describe, events_of, free_port, read_events, rule,
                     run, shim_env)
from test_bulkhead import CountingServer
from test_report import parse_prom

PROMTOOL = shutil.which("promtool")

CLIENT = """
import socket, sys
live, dead = int(sys.argv[1]), int(sys.argv[2])
for port in (live, dead, live):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"x")
        s.recv(10)
    except OSError:
        pass
    s.close()
"""

STATS = ["calls", "failures", "retries", "recovered", "gave_up", "rejected", "throttled",
         "limited", "injected", "bulkhead_full", "shed"]


def series(fams):
    """{(sample name, sorted labels): value} of every counter and histogram sample."""
    out = {}
    for name, f in fams.items():
        if f["type"] not in ("counter", "histogram"):
            continue
        for sname, lab, v in f["samples"]:
            out[(sname, tuple(sorted(lab.items())))] = v
    return out


def check_histograms(t, fam):
    """What a histogram must be: per series, buckets by growing le, cumulative, +Inf last
    and equal to _count."""
    by = {}
    for name, lab, v in fam["samples"]:
        key = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
        by.setdefault(key, {"b": [], "count": None})
        if name.endswith("_bucket"):
            by[key]["b"].append((float(lab["le"]), v))
        elif name.endswith("_count"):
            by[key]["count"] = v
    t.assertTrue(by)
    for key, h in by.items():
        les = [le for le, _ in h["b"]]
        t.assertEqual(les, sorted(les), key)
        t.assertEqual(les[-1], float("inf"), key)
        vals = [v for _, v in h["b"]]
        t.assertEqual(vals, sorted(vals), key)
        t.assertEqual(vals[-1], h["count"], key)


class Metrics(ShimTest):

    def scrape(self, port):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertIn("text/plain", r.headers["Content-Type"])
            return r.read().decode()

    def test_scraped_while_processes_come_and_go(self):
        srv = self.track(CountingServer(0))
        dead = free_port()
        state = self.wd.file("state")
        pol, log = self.wd.policy(
            rule("svc", ["connect"], ["127.0.0.1:%d" % srv.port, "127.0.0.1:%d" % dead],
                 "retry: { attempts: 2, backoff: { base: 1ms, max: 2ms } }\n"
                 "breaker: { trip: { consecutive: 1000 } }\n"
                 "rate_limit: { rate: 10000/s, burst: 1000 }\n"
                 "concurrency: { max: 8, max_wait: 5s }\n"),
            level="info", extra="state: { share: group, dir: %s }\n" % state)
        env = shim_env(pol)
        anchor = self.spawn([PYTHON, "-c", "import sys; sys.stdin.read()"], env)
        port = free_port()
        server = self.spawn([TOOL, "metrics", "--listen", "127.0.0.1:%d" % port,
                             "--dir", state], shim_env(None, LD_PRELOAD=None))
        end = time.monotonic() + 10
        text = None
        while time.monotonic() < end:
            try:
                text = self.scrape(port)
                break
            except OSError:
                time.sleep(0.05)
        self.assertIsNotNone(text, server.transcript())

        scrapes = []
        stop = threading.Event()
        errors = []

        def scraper():
            n = 0
            while not stop.is_set() and n < 2000:
                n += 1
                try:
                    scrapes.append(self.scrape(port))
                except Exception as e:         # reported by the test, not lost
                    errors.append(e)
                    return
                time.sleep(0.02)
        t = threading.Thread(target=scraper, daemon=True)
        t.start()
        try:
            for _ in range(10):
                procs = [subprocess.Popen([PYTHON, "-c", CLIENT, str(srv.port), str(dead)],
                                          env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL) for _ in range(5)]
                for p in procs:
                    self.assertEqual(p.wait(30), 0)
        finally:
            stop.set()
            t.join(30)
        self.assertEqual(errors, [])
        final = self.scrape(port)
        scrapes.append(final)
        self.assertGreater(len(scrapes), 3)

        # monotonic from each scrape to the next
        last = {}
        for text in scrapes:
            now = series(parse_prom(text))
            for k, v in last.items():
                if k in now:
                    self.assertGreaterEqual(now[k], v, k)
                else:
                    self.fail("series %r went away" % (k,))
            last = now

        fams = parse_prom(final)
        check_histograms(self, fams["bulwark_call_duration_seconds"])
        evs = read_events(log)
        exits = [e for e in events_of(evs, "exit") if "svc" in e.get("stats", {})]
        self.assertEqual(len(exits), 50, describe(evs[-5:]))
        group = None
        for sname, lab, v in fams["bulwark_rule_calls_total"]["samples"]:
            if lab.get("rule") == "svc":
                group = lab["group"]
        self.assertIsNotNone(group, final)
        for st in STATS:
            want = sum(e["stats"]["svc"][st] for e in exits)
            got = [v for _, lab, v in fams["bulwark_rule_%s_total" % st]["samples"]
                   if lab == {"group": group, "rule": "svc"}]
            self.assertEqual(got, [want], st)
        self.assertEqual(sum(e["stats"]["svc"]["calls"] for e in exits), 150)
        self.assertGreater(sum(e["stats"]["svc"]["failures"] for e in exits), 0)
        # the histograms count each call once, per destination
        counts = {lab["dest"]: v
                  for name, lab, v in fams["bulwark_call_duration_seconds"]["samples"]
                  if name.endswith("_count") and lab.get("rule") == "svc"}
        self.assertEqual(counts, {"127.0.0.1:%d" % srv.port: 100, "127.0.0.1:%d" % dead: 50})
        failed = {lab["dest"]: v
                  for _, lab, v in fams["bulwark_dest_failed_calls_total"]["samples"]
                  if lab.get("rule") == "svc"}
        self.assertEqual(failed["127.0.0.1:%d" % dead], 50)
        self.assertEqual(failed["127.0.0.1:%d" % srv.port], 0)
        # the bulkheads hold nothing once the clients are gone; the breaker is closed
        inuse = [v for _, lab, v in fams["bulwark_bulkhead_in_use"]["samples"]
                 if lab.get("rule") == "svc"]
        self.assertEqual(inuse, [0, 0])
        self.assertTrue(fams["bulwark_breaker_state"]["samples"])

        if PROMTOOL:
            r = subprocess.run([PROMTOOL, "check", "metrics"], input=final.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout.decode())
        else:
            print("\n  promtool not installed: checked with our own parser only", end=" ")

        # --textfile: the same families, written whole under the name given
        out = self.wd.file("prom/bulwark.prom")
        os.mkdir(os.path.dirname(out))
        r = run([TOOL, "metrics", "--textfile", out, "--dir", state])
        self.assertOk(r)
        self.assertEqual(os.listdir(os.path.dirname(out)), ["bulwark.prom"])
        with open(out) as f:
            tf = parse_prom(f.read())
        self.assertEqual(set(tf), set(fams))
        anchor.finish()

    def test_destination_labels_are_capped(self):
        # 20 dead ports under one rule: 16 keep their own label, the other 4 are folded
        ports = [free_port() for _ in range(20)]
        state = self.wd.file("state")
        pol, log = self.wd.policy(
            rule("many", ["connect"], ["127.0.0.1:%d" % p for p in ports],
                 "retry: off\nbreaker: { trip: { consecutive: 1000 } }\n"),
            extra="state: { share: group, dir: %s }\n" % state)
        code = ("import socket, sys\nfor p in sys.argv[1:]:\n    s = socket.socket()\n"
                "    try:\n        s.connect(('127.0.0.1', int(p)))\n    except OSError:\n"
                "        pass\n    s.close()\nprint('done', flush=True)\nsys.stdin.read()\n")
        client = self.spawn([PYTHON, "-c", code] + [str(p) for p in ports], shim_env(pol))
        self.assertEqual(client.readline(timeout=20), "done")
        r = run([TOOL, "metrics", "--dir", state])
        self.assertOk(r)
        fams = parse_prom(r.stdout)
        if PROMTOOL:
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=r.stdout.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout.decode())
        counts = {lab["dest"]: v
                  for name, lab, v in fams["bulwark_call_duration_seconds"]["samples"]
                  if name.endswith("_count") and lab.get("rule") == "many"}
        self.assertEqual(len(counts), 17, counts)
        self.assertEqual(counts.pop("other"), 4)
        self.assertEqual(set(counts.values()), {1})
        dests = {lab["dest"] for _, lab, _ in fams["bulwark_breaker_state"]["samples"]
                 if lab.get("rule") == "many"}
        self.assertEqual(len(dests), 16, dests)
        closed = [v for _, lab, v in fams["bulwark_rule_breakers"]["samples"]
                  if lab.get("rule") == "many" and lab["state"] == "closed"]
        self.assertEqual(closed, [20])
        client.finish()
