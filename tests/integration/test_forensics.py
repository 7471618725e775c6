"""Flaky-run forensics: `bulwark report --replay` (an observed failure, on every run),
`bulwark report --format html` (a timeline a person can look at) and `bulwark suggest`
(a policy sized from what observe mode measured). See bulwark(1)."""

import json
import os
import re
import shutil
import struct
import unittest
import zlib
from datetime import datetime, timedelta, timezone

from harness import PYTHON, ROOT, TOOL, ShimTest, bulwark_run, free_port, run

FLAKY = os.path.join(ROOT, "examples", "flaky-test")


def failing_tests(out):
    """{test name: the last exception named in its traceback} from unittest's output."""
    got = {}
    for block in out.split("=" * 70)[1:]:
        m = re.search(r"^(?:ERROR|FAIL): (test_\w+)", block.strip(), re.M)
        e = re.findall(r"^(\w+Error)\b", block, re.M)
        if m:
            got[m.group(1)] = e[-1] if e else "?"
    return got


def fail_events(path, prog_prefix="python3"):
    """The failures of a log as (op, dest, err, n), in log order, of the test process."""
    out = []
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            if e.get("event") == "fail" and e.get("prog", "").startswith(prog_prefix):
                out.append((e.get("op"), e.get("dest"), e.get("err"), e.get("n")))
    return out


def errors_by_dest(report):
    """{(dest, err): count} of a `report --format json`, observed and enforced alike."""
    got = {}
    for d in report["destinations"]:
        for part in (d, d["observe"]):
            for err, n in part["errors"].items():
                got[(d["dest"], err)] = got.get((d["dest"], err), 0) + n
    return got


# ---- a log written by hand: known figures ----

T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=timezone.utc)


def ts(sec):
    return (T0 + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LogWriter:
    def __init__(self):
        self.lines = []

    def ev(self, sec, event, pid, prog, lvl="info", **fields):
        e = {"ts": ts(sec), "lvl": lvl, "event": event, "pid": pid, "tid": pid, "prog": prog}
        e.update(fields)
        self.lines.append(json.dumps(e))

    def start(self, sec, pid, prog, ppid=1, cmd_hash="00000000000000aa", mode="observe"):
        self.ev(sec, "start", pid, prog, version="0.1.0", config="t.yaml", rules=1,
                mode=mode, seed=1, cmd_hash=cmd_hash, ppid=ppid, summary=True)

    def write(self, path):
        with open(path, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        return path


LE_MS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]


def hist(**at):
    """A 17-bucket histogram: at={"b8": 98} puts 98 calls in bucket 8 (at most 50 ms)."""
    h = [0] * 17
    for k, v in at.items():
        h[int(k[1:])] = v
    return h


# ---- headless Chromium ----

def chromium():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


def png_pixels(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError("%s is not a PNG" % path)
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            if depth != 8 or color not in (2, 6):
                raise AssertionError("unexpected PNG format: depth %d color %d" % (depth, color))
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


class Replay(ShimTest):
    """The flaky example's suite fails once in observe mode; its replay policy makes it
    fail the same way on a machine where it never fails by itself, on every run."""

    def observe_until_it_fails(self, port, log):
        for i in range(30):
            if os.path.exists(log):
                os.unlink(log)
            r = bulwark_run(["-q", "--observe", "-o", "file:" + log], [PYTHON, "test_suite.py"],
                            cwd=FLAKY, env={"FLAKY_PORT": port}, timeout=60)
            if r.rc != 0:
                return r
        self.fail("the flaky suite passed 30 times in a row under --observe")

    def test_replay_fails_the_same_way_every_time_and_the_cure_passes(self):
        port = free_port()
        obs = self.wd.file("obs.log")
        r = self.observe_until_it_fails(port, obs)
        seen = failing_tests(r.stderr)
        self.assertTrue(seen, r)
        self.assertEqual(set(seen.values()), {"ConnectionRefusedError"}, r)
        original = fail_events(obs)
        self.assertTrue(original, "no fail event of the suite in the observe log")
        self.assertTrue(all(n for _, _, _, n in original), original)

        rep = run([TOOL, "report", "--replay", obs])
        self.assertEqual(rep.rc, 0, rep)
        replay = self.wd.write("replay.yaml", rep.stdout)
        self.assertIn("cmd_hash:", rep.stdout)
        self.assertIn(obs + ":", rep.stdout)          # says where each fault came from
        chk = run([TOOL, "check", "-q", replay])
        self.assertEqual(chk.rc, 0, chk)

        # the laptop: a service that never reloads, where the suite passes by itself
        calm = {"FLAKY_PORT": port, "FLAKY_RELOADS": "0"}
        plain = run([PYTHON, "test_suite.py"], cwd=FLAKY, env=calm, timeout=60)
        self.assertEqual(plain.rc, 0, plain)

        want_report = errors_by_dest(json.loads(run([TOOL, "report", "--format", "json",
                                                     obs]).stdout))
        for i in range(10):
            log = self.wd.file("replay%d.log" % i)
            r = bulwark_run(["-q", "-c", replay, "-o", "file:" + log],
                            [PYTHON, "test_suite.py"], cwd=FLAKY, env=calm, timeout=60)
            ctx = "run %d\n%r\n%s" % (i + 1, r, rep.stdout)
            self.assertNotEqual(r.rc, 0, ctx)
            self.assertEqual(failing_tests(r.stderr), seen, ctx)
            # the same calls failed with the same errors, numbered as in the original
            self.assertEqual(fail_events(log), original, ctx)
            got = errors_by_dest(json.loads(run([TOOL, "report", "--format", "json",
                                                 log]).stdout))
            self.assertEqual(got, want_report, ctx)

        # the cure against the replayed failure: the replay rules take cure.yaml's policy
        cure = run([TOOL, "report", "--replay", "-c", os.path.join(FLAKY, "cure.yaml"), obs])
        self.assertEqual(cure.rc, 0, cure)
        cured = self.wd.write("cured.yaml", cure.stdout)
        for i in range(3):
            log = self.wd.file("cured%d.log" % i)
            r = bulwark_run(["-q", "-c", cured, "-o", "file:" + log],
                            [PYTHON, "test_suite.py"], cwd=FLAKY, env=calm, timeout=60)
            self.assertEqual(r.rc, 0, "%r\n%s" % (r, cure.stdout))
            evs = [json.loads(x) for x in open(log)]
            injected = [e for e in evs if e.get("event") == "fail" and e.get("injected")]
            self.assertEqual(len(injected), len(original), cure.stdout)
            self.assertTrue([e for e in evs if e.get("event") == "recovered"], cure.stdout)

    def test_nothing_to_replay(self):
        w = LogWriter()
        w.start(0, 10, "client", mode="observe")
        w.ev(1, "exit", 10, "client", stats={})
        log = w.write(self.wd.file("calm.log"))
        r = run([TOOL, "report", "--replay", log])
        # said on stderr; what it writes still loads, with no rule
        self.assertEqual(r.rc, 0, r)
        self.assertIn("no failure to replay", r.stderr)
        self.assertIn("rules: []", r.stdout)
        pol = self.wd.write("empty.yaml", r.stdout)
        self.assertEqual(run([TOOL, "check", "-q", pol]).rc, 0, r.stdout)


class ReadmeLoop(ShimTest):
    """README section 6 as written, from the top of the checkout: its files in this test's
    directory and its port a free one, so that runs side by side do not meet."""

    def test_the_loop_runs_as_written(self):
        text = open(os.path.join(ROOT, "README.md")).read()
        sec = text.split("### 6. ", 1)[1].split("\n### ", 1)[0]
        block = re.search(r"^```sh\n(.*?)^```", sec, re.S | re.M).group(1)
        self.assertIn("FLAKY_PORT=27810", block)
        script = block.replace("/tmp/", self.wd.path + "/").replace(
            "FLAKY_PORT=27810", "FLAKY_PORT=%d" % free_port())
        # the status of each run that the README says fails (replay) or passes (verify)
        lines = [l + ' ; echo "status $?"' if l.startswith("FLAKY_RELOADS=0 ") else l
                 for l in script.splitlines()]
        self.assertEqual(sum(l.endswith('"status $?"') for l in lines), 2, block)
        r = run(["bash", "-c", "\n".join(lines)], cwd=ROOT, timeout=240)
        status = re.findall(r"^status (\d+)$", r.stdout, re.M)
        self.assertEqual(len(status), 2, r)
        self.assertNotEqual(status[0], "0", "the replay did not fail\n%r" % r)
        self.assertEqual(status[1], "0", "the fix did not pass under the replay\n%r" % r)
        self.assertIn("ECONNREFUSED", r.stdout)                  # the report names it
        self.assertTrue(os.path.getsize(self.wd.file("report.html")) > 0)
        self.assertIn("replay-1-", open(self.wd.file("fixed.yaml")).read())


class Html(ShimTest):

    def synthetic_log(self):
        """Every kind of mark, and names a page must not take for markup."""
        w = LogWriter()
        evil_prog = "</script><script>alert(1)</script>"
        dest, evil = "127.0.0.1:6000", "<img src=x onerror=alert(2)>"
        w.start(0, 10, "client", mode="enforce")
        w.start(0.1, 11, evil_prog, ppid=10, mode="enforce")
        for k, sec in enumerate((1.0, 1.2, 1.4)):
            w.ev(sec, "fail", 10, "client", rule="svc", op="connect", call="connect",
                 dest=dest, err="ECONNREFUSED", attempt=k + 1, n=k + 1)
        for k, sec in enumerate((1.05, 1.25)):
            w.ev(sec, "retry", 10, "client", lvl="warn", rule="svc", op="connect",
                 call="connect", dest=dest, err="ECONNREFUSED", attempt=k + 2, delay_ms=50)
        w.ev(1.5, "recovered", 10, "client", lvl="warn", rule="svc", op="connect",
             call="connect", dest=dest, attempts=3, elapsed_ms=500)
        w.ev(2.0, "breaker", 10, "client", lvl="warn", rule="svc", op="connect", dest=dest,
             **{"from": "closed", "to": "open"})
        w.ev(4.0, "breaker", 10, "client", lvl="warn", rule="svc", op="connect", dest=dest,
             **{"from": "open", "to": "half_open"})
        w.ev(4.1, "breaker", 10, "client", lvl="warn", rule="svc", op="connect", dest=dest,
             **{"from": "half_open", "to": "closed"})
        w.ev(5.0, "throttled", 11, evil_prog, lvl="warn", rule="svc", op="connect", dest=evil,
             delay_ms=10)
        w.ev(6.0, "fail", 11, evil_prog, rule="svc", op="connect", call="connect", dest=evil,
             err="ECONNRESET", attempt=1, n=7)
        w.ev(8.0, "exit", 11, evil_prog, stats={})
        w.ev(9.0, "exit", 10, "client", stats={})
        return w.write(self.wd.file("synthetic.log"))

    def html(self, log):
        r = run([TOOL, "report", "--format", "html", log])
        self.assertEqual(r.rc, 0, r)
        page = r.stdout
        self.assertTrue(page.lstrip().lower().startswith("<!doctype html>"), page[:200])
        # self-contained: no address to fetch, no script or style from elsewhere
        self.assertIsNone(re.search(r"(?i)https?:|//[a-z0-9.-]+\.[a-z]", page),
                          "the page names an address")
        self.assertIsNone(re.search(r"(?i)<(script|img|iframe|link|embed|object)\b[^>]*\b"
                                    r"(src|href|data)\s*=", page), "the page loads something")
        self.assertNotIn("@import", page)
        self.assertNotIn("url(", page)
        return self.wd.write("report.html", page)

    def dom(self, browser, path):
        """The page as Chromium left it once its script ran, and its element counts."""
        prof = self.wd.file("chromium-profile")
        r = run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                 "--no-first-run", "--user-data-dir=" + prof, "--dump-dom",
                 "file://" + path], timeout=120)
        self.assertEqual(r.rc, 0, r)
        m = re.search(r'<p id="drawn"([^>]*)>', r.stdout)
        self.assertIsNotNone(m, "no drawn element in the DOM:\n" + r.stdout[-3000:])
        counts = {k: int(v) for k, v in re.findall(r'data-(\w+)="(\d+)"', m.group(1))}
        self.assertTrue(counts, "the page's script reported nothing:\n" + m.group(0))
        return counts

    def test_page_escapes_what_logs_say(self):
        page = open(self.html(self.synthetic_log())).read()
        self.assertNotIn("<img src=x", page)
        self.assertNotIn("<script>alert(1)", page)
        self.assertIn("&lt;img src=x onerror=alert(2)&gt;", page)
        # the one script is the page's own
        self.assertEqual(len(re.findall(r"<script\b", page)), 1)

    def test_timeline_is_drawn_in_headless_chromium(self):
        browser = chromium()
        if not browser:
            self.skipTest("chromium is not installed (Debian: apt-get install chromium; "
                          "`make deps-test` installs it)")
        path = self.html(self.synthetic_log())
        n = self.dom(browser, path)
        ctx = repr(n)
        # two processes, each with the one destination it called
        self.assertEqual(n.get("processes"), 2, ctx)
        self.assertEqual(n.get("rows"), 2, ctx)
        self.assertEqual(n.get("failures"), 4, ctx)
        self.assertEqual(n.get("retries"), 2, ctx)
        self.assertEqual(n.get("throttled"), 1, ctx)
        self.assertEqual(n.get("breaker_bands"), 1, ctx)
        # 4 fail, 2 retry, 1 recovered, 3 breaker, 1 throttled
        self.assertEqual(n.get("marks"), 11, ctx)

        # screenshots: the timeline's marks are on it, in their colours. The same page
        # without its marks is the reference (the legend has a swatch of each colour).
        page = open(path).read()
        bare = re.sub(r"<(circle|path) class=\"mark [^\"]*\".*?</\1>\n", "", page, flags=re.S)
        self.assertNotEqual(bare, page)
        bare_path = self.wd.write("bare.html", bare)
        red, orange = {}, {}
        for name, p in (("page", path), ("bare", bare_path)):
            colours = self.screenshot(browser, p)
            red[name] = colours.get((0xd6, 0x27, 0x28), 0)
            orange[name] = colours.get((0xff, 0x7f, 0x0e), 0)
        # 4 failure circles of radius 4, 2 retry triangles: some 20 pixels each at least
        self.assertGreater(red["page"] - red["bare"], 4 * 20, repr(red))
        self.assertGreater(orange["page"] - orange["bare"], 2 * 10, repr(orange))

    def screenshot(self, browser, path):
        """{(r, g, b): pixels} of the page as headless Chromium draws it, 1200 x 700."""
        shot = self.wd.file("shot.png")
        if os.path.exists(shot):
            os.unlink(shot)
        r = run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--hide-scrollbars", "--user-data-dir=" + self.wd.file("chromium-profile"),
                 "--window-size=1200,700", "--screenshot=" + shot, "file://" + path],
                timeout=120)
        self.assertTrue(os.path.exists(shot), r)
        w, h, rows = png_pixels(shot)
        self.assertEqual((w, h), (1200, 700), r)
        colours = {}
        for row in rows:
            for px in row:
                colours[px] = colours.get(px, 0) + 1
        return colours

    def test_example_run_in_headless_chromium(self):
        """A real run: the flaky example under its seeded faults and cure."""
        browser = chromium()
        if not browser:
            self.skipTest("chromium is not installed (Debian: apt-get install chromium)")
        log = self.wd.file("ic.log")
        r = bulwark_run(["-q", "-c", "inject-cure.yaml", "-o", "file:" + log],
                        [PYTHON, "test_suite.py"], cwd=FLAKY,
                        env={"FLAKY_PORT": free_port(), "FLAKY_RELOADS": "0"}, timeout=60)
        self.assertEqual(r.rc, 0, r)
        evs = [json.loads(x) for x in open(log)]
        fails = len([e for e in evs if e.get("event") == "fail" and e.get("dest")])
        retries = len([e for e in evs if e.get("event") == "retry" and e.get("dest")])
        self.assertGreater(fails, 0)
        n = self.dom(browser, self.html(log))
        self.assertEqual((n.get("failures"), n.get("retries")), (fails, retries), repr(n))
        self.assertGreaterEqual(n.get("rows", 0), 1, repr(n))
        self.assertGreaterEqual(n.get("processes", 0), 1, repr(n))


class Suggest(ShimTest):
    DEST = "127.0.0.1:6000"

    def measured_log(self):
        """One client: 100 connects, 98 within 50 ms and 2 within 200 ms (the slowest
        180 ms), 40 of them in its busiest second over 10 seconds; 50 replies, 45 within
        10 ms and 5 within 500 ms (the slowest 450 ms). Outages of the destination: 3
        refusals in a row over 120 ms, 2 over 60 ms, and a lone one."""
        w, d = LogWriter(), self.DEST
        w.start(0, 10, "client")
        w.start(0.01, 11, "server", ppid=1, cmd_hash="00000000000000bb")

        def fail(sec, n):
            w.ev(sec, "fail", 10, "client", rule="observe", op="connect", call="connect",
                 dest=d, err="ECONNREFUSED", attempt=1, n=n, observe=True)

        def outage(sec, failures, ms):
            w.ev(sec, "outage", 10, "client", rule="observe", op="connect", call="connect",
                 dest=d, failures=failures, elapsed_ms=ms, observe=True)

        for k, n in enumerate((3, 4, 5)):
            fail(1.0 + k * 0.04, n)
        outage(1.12, 3, 120.0)
        fail(2.0, 10)
        outage(2.005, 1, 5.0)
        fail(3.0, 20)
        fail(3.03, 21)
        outage(3.06, 2, 60.0)
        common = dict(rule="observe", dest=d, observe=True, le_ms=LE_MS)
        w.ev(9.5, "calls", 10, "client", op="connect", calls=100, failures=6, first=ts(0.5),
             last=ts(9.5), peak_1s=40, active_s=10, max_ms=180.0, hist=hist(b8=98, b10=2),
             **common)
        w.ev(9.5, "calls", 10, "client", op="recv", calls=50, failures=0, first=ts(0.5),
             last=ts(9.5), peak_1s=8, active_s=10, max_ms=450.0, hist=hist(b6=45, b11=5),
             **common)
        # the server's side of the connections: accepted, not connected to: no rule
        w.ev(9.6, "calls", 11, "server", op="recv", rule="observe", dest="127.0.0.1:40000",
             observe=True, le_ms=LE_MS, calls=5, failures=0, first=ts(1), last=ts(2),
             peak_1s=5, active_s=1, max_ms=1.0, hist=hist(b3=5))
        w.ev(9.7, "exit", 11, "server", stats={})
        w.ev(9.8, "exit", 10, "client", stats={})
        return w.write(self.wd.file("measured.log"))

    def value(self, text, key, rule=None):
        """The first `key: value` of the rule named rule (or anywhere)."""
        if rule is not None:
            m = re.search(r"^  - name: %s\n(.*?)(?=^  - name:|\Z)" % re.escape(rule), text,
                          re.M | re.S)
            self.assertIsNotNone(m, "no rule %s in:\n%s" % (rule, text))
            text = m.group(1)
        m = re.search(r"^\s*%s:\s*([^#\n]+?)\s*(?:#.*)?$" % re.escape(key), text, re.M)
        self.assertIsNotNone(m, "no %s in:\n%s" % (key, text))
        return m.group(1)

    def test_values_come_from_the_figures(self):
        r = run([TOOL, "suggest", self.measured_log()])
        self.assertEqual(r.rc, 0, r)
        out = r.stdout
        pol = self.wd.write("suggested.yaml", out)
        chk = run([TOOL, "check", pol])
        self.assertEqual(chk.rc, 0, "%r\n%s" % (chk, out))
        rule = "dest-127.0.0.1-6000"
        self.assertEqual(re.findall(r"^  - name: (\S+)", out, re.M), [rule, rule + "-io"], out)
        # connect: p99 at most 200 ms, 4 x p99 = 800 ms, rounded up to 1 s
        self.assertEqual(self.value(out, "connect", rule), "1s", out)
        self.assertIn("p99 of 100 connects: at most 200ms", " ".join(out.split()))
        # recv: p99 at most 500 ms: 2 s
        self.assertEqual(self.value(out, "recv", rule + "-io"), "2s", out)
        # retry: the longest outage 120 ms; the waits must cover 240 ms: base 50 ms
        # (240/8 = 30, rounded up), max 200 ms (120, rounded up); equal jitter waits at
        # least 25 + 50 + 100 + 100 = 275 ms in 4 retries: 5 attempts; at most
        # 50 + 100 + 200 + 200 = 550 ms, + 240 ms = 790 ms: a 1 s deadline
        self.assertEqual(self.value(out, "attempts", rule), "5", out)
        self.assertEqual(self.value(out, "backoff", rule),
                         "{ base: 50ms, max: 200ms, jitter: equal }", out)
        self.assertEqual(self.value(out, "deadline", rule), "1s", out)
        self.assertEqual(self.value(out, "on", rule), "[ECONNREFUSED]", out)
        self.assertIn("120ms, 3 connects in a row", " ".join(out.split()))
        # breaker: it must not undo the retry (an open breaker refuses the retry's next
        # attempt): it trips after one more failure in a row than the retry's 5 attempts,
        # which no outage seen (3, 2 and 1 in a row) reached; open for the median outage
        # of two or more (of 60 and 120 ms, the upper)
        self.assertEqual(self.value(out, "trip", rule), "{ consecutive: 6 }", out)
        self.assertEqual(self.value(out, "open_for", rule), "200ms", out)
        # rate limit: 40 in the busiest second, 10 a second on average: twice that
        self.assertEqual(self.value(out, "rate", rule), "20/s", out)
        self.assertEqual(self.value(out, "burst", rule), "20", out)
        self.assertEqual(self.value(out, "max_wait", rule), "1s", out)

    def test_retry_outlasts_the_most_refusals_in_a_row(self):
        """Eight refusals within 2 ms: a retry sized on time alone (20 ms at least, five
        attempts) would meet them all and give up; it needs nine attempts, and a breaker
        that trips only after them."""
        w = LogWriter()
        w.start(0, 10, "client")
        for n in range(1, 9):
            w.ev(1 + n * 0.00025, "fail", 10, "client", rule="observe", op="connect",
                 call="connect", dest=self.DEST, err="ECONNREFUSED", attempt=1, n=n,
                 observe=True)
        w.ev(1.003, "outage", 10, "client", rule="observe", op="connect", call="connect",
             dest=self.DEST, failures=8, elapsed_ms=2.0, observe=True)
        w.ev(9.5, "calls", 10, "client", op="connect", rule="observe", dest=self.DEST,
             observe=True, le_ms=LE_MS, calls=12, failures=8, first=ts(1), last=ts(2),
             peak_1s=12, active_s=2, max_ms=0.1, hist=hist(b0=12))
        r = run([TOOL, "suggest", w.write(self.wd.file("burst.log"))])
        self.assertEqual(r.rc, 0, r)
        out = r.stdout
        self.assertEqual(self.value(out, "attempts"), "9", out)
        # 8 waits of at most 10 ms, and the 20 ms outage cover once more
        self.assertEqual(self.value(out, "backoff"), "{ base: 10ms, max: 10ms, jitter: equal }",
                         out)
        self.assertEqual(self.value(out, "deadline"), "100ms", out)
        self.assertEqual(self.value(out, "trip"), "{ consecutive: 10 }", out)

    def test_no_burst_no_outage(self):
        """Calls spread evenly and no failure: timeouts only, no retry, breaker or limit."""
        w = LogWriter()
        w.start(0, 10, "client")
        w.ev(9.5, "calls", 10, "client", op="connect", rule="observe", dest=self.DEST,
             observe=True, le_ms=LE_MS, calls=30, failures=0, first=ts(0), last=ts(9),
             peak_1s=4, active_s=10, max_ms=3.0, hist=hist(b5=30))
        r = run([TOOL, "suggest", w.write(self.wd.file("calm.log"))])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.value(r.stdout, "connect"), "200ms", r.stdout)   # the floor
        self.assertIn("retry: off", r.stdout)
        self.assertNotIn("breaker:", r.stdout)
        self.assertNotIn("rate_limit:", r.stdout)
        pol = self.wd.write("calm.yaml", r.stdout)
        self.assertEqual(run([TOOL, "check", "-q", pol]).rc, 0, r.stdout)

    def test_nothing_measured(self):
        w = LogWriter()
        w.start(0, 10, "client")
        r = run([TOOL, "suggest", w.write(self.wd.file("none.log"))])
        self.assertEqual(r.rc, 1, r)
        self.assertIn("no connect was measured", r.stderr)
        pol = self.wd.write("none.yaml", r.stdout)
        self.assertEqual(run([TOOL, "check", "-q", pol]).rc, 0, r.stdout)


if __name__ == "__main__":
    unittest.main()
