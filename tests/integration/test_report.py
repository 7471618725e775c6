"""`bulwark report` (bulwark(1)): event logs of several processes and files merged into one
summary per rule and destination, as a table, JSON and Prometheus text. The logs are
built by hand, so every figure is known in advance, and also come from a real run of a
python3 client under the shim."""

import json
import math
import os
import re
import subprocess
import unittest

from harness import (PYTHON, TOOL, ShimTest, events_of, free_port, py, read_events,
                     retry_yaml, run)

# -- building logs by hand ----------------------------------------------------------

BASE_TS = "2025-06-01T10:00:%09.6fZ"


def ev(t, event, pid, **kw):
    """One event line as the library writes it: the common keys first, no whitespace.
    t is the second within the test minute."""
    d = {"ts": BASE_TS % t, "lvl": "info", "event": event, "pid": pid, "tid": pid,
         "prog": "app%d" % pid}
    d.update(kw)
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False)


def stats(**counts):
    """An exit event's counters for one rule, every one present as the library does."""
    keys = ["calls", "failures", "retries", "recovered", "gave_up", "rejected",
            "throttled", "limited", "injected", "bulkhead_full", "shed"]
    return {k: counts.get(k, 0) for k in keys}


PG = "127.0.0.1:5432"
PG9 = "10.0.0.9:5432"
OBS = "127.0.0.1:6000"
API = "[::1]:8080"
DB = "/srv/app.db"
HOST = "svc.internal"
LONG_RULE = "a-really-long-rule-name-for-testing-truncation"
LONG_DEST = "unix:/run/some/very/long/directory/name/that/keeps/going/on/server.sock"
ODD_DEST = 'unix:/tmp/we"ird\\dir\nx.sock'     # a quote, a backslash and a line feed

# Two "processes" (101, 102) interleaved in one file.
FILE_A = [
    ev(0.0, "start", 101, version="0.1.0", config="/p.yaml", rules=3, mode="enforce",
       seed=18446744073709551615),           # past 2^63: must not cost the line
    ev(0.1, "fail", 101, rule="db", op="connect", dest=PG, err="ECONNREFUSED", attempt=1),
    ev(0.1, "fail", 102, rule="db", op="connect", dest=PG9, err="ETIMEDOUT", attempt=1),
    ev(0.11, "retry", 101, lvl="warn", rule="db", op="connect", dest=PG,
       err="ECONNREFUSED", attempt=2, delay_ms=100),
    ev(0.12, "timeout", 102, lvl="warn", rule="db", op="connect", dest=PG9),
    ev(0.13, "retry", 102, lvl="warn", rule="db", op="connect", dest=PG9,
       err="ETIMEDOUT", attempt=2, delay_ms=300),
    "this line is a program's own output",
    ev(0.21, "fail", 101, rule="db", op="connect", dest=PG, err="ECONNREFUSED", attempt=2),
    ev(0.22, "retry", 101, lvl="warn", rule="db", op="connect", dest=PG,
       err="ECONNREFUSED", attempt=3, delay_ms=200),
    ev(0.43, "fail", 102, rule="db", op="connect", dest=PG9, err="ETIMEDOUT", attempt=2),
    ev(0.44, "gave_up", 102, lvl="error", rule="db", op="connect", dest=PG9,
       err="ETIMEDOUT", attempts=2, reason="deadline"),
    ev(0.45, "breaker", 102, lvl="warn", rule="db", dest=PG9, **{"from": "closed"},
       to="open"),
    ev(0.46, "rejected", 102, lvl="warn", rule="db", op="connect", dest=PG9,
       err="ECONNREFUSED"),
    ev(0.47, "rejected", 102, lvl="warn", rule="db", op="connect", dest=PG9,
       err="ECONNREFUSED"),
    ev(0.48, "breaker", 102, lvl="warn", rule="db", dest=PG9, **{"from": "open"},
       to="half_open"),                      # not an opening
    ev(0.5, "fail", 101, rule="db", op="connect", dest=PG, err="ECONNREFUSED", attempt=3),
    ev(0.5, "gave_up", 101, lvl="error", rule="db", op="connect", dest=PG,
       err="ECONNREFUSED", attempts=3, reason="attempts"),
    ev(0.51, "failover", 101, lvl="warn", rule="db", op="connect", dest="127.0.0.1:5433",
       **{"from": PG}),
    '[1, 2, 3]',
    ev(0.6, "fail", 102, rule="db", op="connect", dest=PG, err="ECONNREFUSED", attempt=1),
    ev(0.61, "retry", 102, lvl="warn", rule="db", op="connect", dest=PG,
       err="ECONNREFUSED", attempt=2, delay_ms=50.5),
    ev(0.7, "recovered", 102, lvl="warn", rule="db", op="connect", dest=PG, attempts=2,
       elapsed_ms=51.2),
    ev(0.8, "fail", 101, rule=LONG_RULE, op="connect", dest=LONG_DEST, err="ENOENT",
       attempt=1),
    ev(0.8, "gave_up", 101, lvl="error", rule=LONG_RULE, op="connect", dest=LONG_DEST,
       err="ENOENT", attempts=1, reason="attempts"),
    ev(0.9, "fail", 101, rule="odd", op="connect", dest=ODD_DEST, err="ECONNRESET",
       attempt=1),
    ev(5.0, "exit", 101, stats={"db": stats(calls=1, failures=3, retries=2, gave_up=1),
                                LONG_RULE: stats(calls=1, failures=1, gave_up=1),
                                "odd": stats(calls=1, failures=1)}),
    ev(5.5, "exit", 102, stats={"db": stats(calls=3, failures=3, retries=2, recovered=1,
                                            gave_up=1, rejected=2)}),
]

# Two more (201, 202), with resolve, sqlite, rate limits, injection and observe mode.
FILE_B = [
    ev(0.05, "start", 201, version="0.1.0", config="/p.yaml", rules=3, mode="enforce",
       seed=7),
    ev(0.2, "throttled", 201, rule="api", op="send", dest=API, delay_ms=10),
    ev(0.2, "fail", 202, rule="db", op="connect", dest=OBS, err="ECONNREFUSED", attempt=1,
       observe=True),
    ev(0.21, "retry", 202, lvl="warn", rule="db", op="connect", dest=OBS,
       err="ECONNREFUSED", attempt=2, delay_ms=100, observe=True),
    ev(0.3, "throttled", 201, rule="api", op="send", dest=API, delay_ms=30),
    '{"ts":"2025-06-01T10:00:00.310000Z","lvl":"info","event":"fail","pid":201',
    ev(0.32, "throttled", 201, rule="api", op="send", dest=API, delay_ms=20),
    ev(0.33, "limited", 201, lvl="warn", rule="api", op="connect", dest=API,
       err="ECONNREFUSED"),
    ev(0.34, "bulkhead_full", 201, lvl="warn", rule="api", op="connect", dest=API,
       reason="refused", err="ECONNREFUSED", delay_ms=40, max=2),
    ev(0.35, "shed", 201, lvl="warn", rule="api", op="connect", dest=API,
       err="ECONNREFUSED", p=0.5),
    "",                                      # blank lines are passed over silently
    ev(0.4, "fail", 201, rule="dns", op="resolve", host=HOST, err="EAI_AGAIN", attempt=1),
    ev(0.41, "retry", 201, lvl="warn", rule="dns", op="resolve", host=HOST,
       err="EAI_AGAIN", attempt=2, delay_ms=5),
    ev(0.42, "recovered", 201, lvl="warn", rule="dns", op="resolve", host=HOST, attempts=2,
       elapsed_ms=5.3),
    ev(0.5, "injected", 202, rule="sq", op="sqlite", db=DB, err="SQLITE_BUSY", delay_ms=7,
       injected=True),
    ev(0.51, "fail", 202, rule="sq", op="sqlite", db=DB, err="SQLITE_BUSY", attempt=1,
       injected=True),
    ev(0.52, "retry", 202, lvl="warn", rule="sq", op="sqlite", db=DB, err="SQLITE_BUSY",
       attempt=2, delay_ms=1.5),
    ev(0.53, "recovered", 202, lvl="warn", rule="sq", op="sqlite", db=DB, attempts=2,
       elapsed_ms=1.6),
    '{"no_event": 1}',
    ev(0.6, "warning", 202, lvl="warn", msg="something to know"),
    ev(0.01, "config_error", 203, lvl="error", file="/bad.yaml", line=3, col=5,
       msg="unknown key"),
    ev(0.7, "reload", 202, lvl="warn", file="/p.yaml", gen=2, changed=["api"],
       msg="policy reloaded: changed api"),
    ev(0.8, "reload", 203, lvl="error", file="/p.yaml", line=4, col=7, gen=1,
       msg="/p.yaml:4:7: unknown key; the policy in force stays"),
    ev(6.0, "exit", 201, stats={"api": stats(calls=6, throttled=3, limited=1,
                                             bulkhead_full=1, shed=1),
                                "dns": stats(calls=1, failures=1, retries=1,
                                             recovered=1)}),
]

# Line numbers (1-based) of the lines report must skip, per file.
SKIPPED_A = [7, 19]
SKIPPED_B = [6, 19]


def side(failures=0, errors=None, retries=0, recovered=0, gave_up=0, reasons=None,
         rejected=0, throttled=0, limited=0, injected=0, opens=0, timeouts=0, failovers=0,
         full=0, shed=0, delays=()):
    """The JSON figures of one side of a destination; delays are the delay_ms values."""
    d = sorted(delays)

    def q(p):
        return d[max(0, math.ceil(p * len(d)) - 1)] if d else None
    return {
        "failures": failures, "errors": errors or {}, "retries": retries,
        "recovered": recovered, "gave_up": gave_up, "gave_up_reasons": reasons or {},
        "rejected": rejected, "throttled": throttled, "limited": limited,
        "injected": injected, "breaker_opens": opens, "timeouts": timeouts,
        "failovers": failovers, "bulkhead_full": full, "shed": shed,
        "delay_ms": {"count": len(d), "total": sum(d), "p50": q(0.5), "p99": q(0.99)},
    }


# What the two files add up to, flakiest first: failures + gave up + rejected, ties by
# destination then rule.
EXPECTED_DESTS = [
    ("db", PG9, side(failures=2, errors={"ETIMEDOUT": 2}, retries=1, gave_up=1,
                     reasons={"deadline": 1}, rejected=2, opens=1, timeouts=1,
                     delays=[300])),                                         # 5
    ("db", PG, side(failures=4, errors={"ECONNREFUSED": 4}, retries=3, recovered=1,
                    gave_up=1, reasons={"attempts": 1}, failovers=1,
                    delays=[100, 200, 50.5])),                               # 5
    (LONG_RULE, LONG_DEST, side(failures=1, errors={"ENOENT": 1}, gave_up=1,
                                reasons={"attempts": 1})),                   # 2
    ("sq", DB, side(failures=1, errors={"SQLITE_BUSY": 1}, retries=1, recovered=1,
                    injected=1, delays=[7, 1.5])),                           # 1
    ("dns", HOST, side(failures=1, errors={"EAI_AGAIN": 1}, retries=1, recovered=1,
                       delays=[5])),                                         # 1
    ("odd", ODD_DEST, side(failures=1, errors={"ECONNRESET": 1})),           # 1
    ("db", OBS, side()),                     # 0, but would have failed once
    ("api", API, side(throttled=3, limited=1, full=1, shed=1, delays=[10, 30, 20, 40])),         # 0
]
OBSERVED = {("db", OBS): side(failures=1, errors={"ECONNREFUSED": 1}, retries=1,
                              delays=[100])}

# Fail events of both sides: a failure logged in observe mode happened all the same.
EXPECTED_TOP = [("ECONNREFUSED", 5, 2), ("ETIMEDOUT", 2, 1), ("EAI_AGAIN", 1, 1),
                ("ECONNRESET", 1, 1), ("ENOENT", 1, 1), ("SQLITE_BUSY", 1, 1)]

# Exit counters per rule, flakiest first (failures + gave_up + rejected), then by name.
EXPECTED_RULES = [
    ("db", 2, stats(calls=4, failures=6, retries=4, recovered=1, gave_up=2, rejected=2)),
    (LONG_RULE, 1, stats(calls=1, failures=1, gave_up=1)),
    ("dns", 1, stats(calls=1, failures=1, retries=1, recovered=1)),
    ("odd", 1, stats(calls=1, failures=1)),
    ("api", 1, stats(calls=6, throttled=3, limited=1, bulkhead_full=1, shed=1)),
]

TOP_KEYS = ["processes", "files", "events", "lines", "skipped_lines", "config_errors",
            "warnings", "reloads", "reload_errors", "first", "last", "span_ms", "destinations",
            "top_errors", "rules", "notes"]
SIDE_KEYS = ["failures", "errors", "retries", "recovered", "gave_up", "gave_up_reasons",
             "rejected", "throttled", "limited", "injected", "breaker_opens", "timeouts",
             "failovers", "bulkhead_full", "shed", "delay_ms"]


# -- a small Prometheus text-format parser -------------------------------------------

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class PromError(AssertionError):
    pass


def parse_labels(s, i, lineno):
    """Parse {a="x",...} starting at s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL_RE.match(s, i)
        if not m:
            raise PromError("line %d: bad label name at %r" % (lineno, s[i:]))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise PromError("line %d: expected =\" after %s" % (lineno, name))
        i += 2
        val = []
        while s[i] != '"':
            if s[i] == "\\":
                nxt = s[i + 1]
                if nxt not in '\\"n':
                    raise PromError("line %d: bad escape \\%s" % (lineno, nxt))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            else:
                if s[i] == "\n":
                    raise PromError("line %d: raw line feed in a label" % lineno)
                val.append(s[i])
                i += 1
        i += 1
        if name in labels:
            raise PromError("line %d: label %s twice" % (lineno, name))
        labels[name] = "".join(val)
        if s[i] == ",":
            i += 1


def parse_prom(text):
    """Families {name: {"help", "type", "samples": [(sample name, labels, value)]}},
    checking what the exposition format and the textfile collector require: HELP and
    TYPE once per family and before its samples, valid names and labels, each family's
    samples together, no sample twice."""
    fams = {}
    order = []
    current = None
    seen = set()
    if not text.endswith("\n"):
        raise PromError("the text does not end with a line feed")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, rest = line[2:6], line[7:]
            name, _, arg = rest.partition(" ")
            if not NAME_RE.fullmatch(name):
                raise PromError("line %d: bad metric name %r" % (n, name))
            f = fams.setdefault(name, {"help": None, "type": None, "samples": []})
            if name not in order:
                order.append(name)
            key = kind.lower()
            if f[key] is not None:
                raise PromError("line %d: second %s for %s" % (n, kind, name))
            if f["samples"]:
                raise PromError("line %d: %s of %s after its samples" % (n, kind, name))
            if key == "type" and arg not in ("counter", "gauge", "summary", "histogram",
                                             "untyped"):
                raise PromError("line %d: bad type %r" % (n, arg))
            f[key] = arg
            current = name
            continue
        if line.startswith("#") or not line:
            raise PromError("line %d: unexpected %r" % (n, line))
        m = NAME_RE.match(line)
        if not m:
            raise PromError("line %d: bad sample %r" % (n, line))
        sname = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, n)
        if line[i:i + 1] != " ":
            raise PromError("line %d: no space before the value" % n)
        value = float(line[i + 1:])          # accepts NaN, +Inf
        fam = sname
        if current and fams[current]["type"] == "summary" and sname in (
                current, current + "_sum", current + "_count"):
            fam = current
        if current and fams[current]["type"] == "histogram" and sname in (
                current + "_bucket", current + "_sum", current + "_count"):
            if sname.endswith("_bucket") and "le" not in labels:
                raise PromError("line %d: a bucket without le" % n)
            fam = current
        if fam != current:
            raise PromError("line %d: sample %s outside its family (HELP/TYPE of %s "
                            "missing or not just before)" % (n, sname, fam))
        f = fams[fam]
        if f["help"] is None or f["type"] is None:
            raise PromError("line %d: %s has no HELP or TYPE" % (n, fam))
        key = (sname, tuple(sorted(labels.items())))
        if key in seen:
            raise PromError("line %d: sample %r twice" % (n, key))
        seen.add(key)
        f["samples"].append((sname, labels, value))
    return fams


def prom_value(fams, name, family=None, **labels):
    """The value of the one sample of name with exactly these labels, else None."""
    f = fams.get(family or name)
    if not f:
        return None
    for sname, lab, v in f["samples"]:
        if sname == name and lab == labels:
            return v
    return None


# -- the tests -------------------------------------------------------------------------

def report(*args, stdin=None):
    """Run `bulwark report ARGS`; stdin is a path whose content is fed to it."""
    if stdin is None:
        return run([TOOL, "report"] + list(args))
    with open(stdin, "rb") as f:
        return run([TOOL, "report"] + list(args), stdin=f)


def table_section(text, title):
    """The lines of a table section: from the line after the one starting with title to
    the next blank line."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(title):
            out = []
            for l in lines[i + 1:]:
                if not l:
                    break
                out.append(l)
            return out
    return None


class HandBuilt(ShimTest):
    """Logs written by hand: every figure is known."""

    def setUp(self):
        super().setUp()
        self.a = self.wd.write("a.log", "\n".join(FILE_A) + "\n")
        # no final line feed: the last line still counts
        self.b = self.wd.write("b.log", "\n".join(FILE_B))

    def json_report(self, *args, **kw):
        r = report("--format", "json", *args, **kw)
        self.assertEqual(r.rc, 0, r)
        return json.loads(r.stdout), r

    def check_doc(self, doc, files=2):
        self.assertEqual(list(doc), TOP_KEYS)
        self.assertEqual(doc["files"], files)
        self.assertEqual(doc["processes"], 5)           # 101 102 201 202 203
        self.assertEqual(doc["lines"], len(FILE_A) + len(FILE_B))
        self.assertEqual(doc["skipped_lines"], 4)
        self.assertEqual(doc["events"], len(FILE_A) + len(FILE_B) - 4 - 1)   # - blank
        self.assertEqual(doc["config_errors"], 1)
        self.assertEqual(doc["warnings"], 1)
        self.assertEqual(doc["reloads"], 2)
        self.assertEqual(doc["reload_errors"], 1)
        self.assertEqual(doc["first"], "2025-06-01T10:00:00.000000Z")
        self.assertEqual(doc["last"], "2025-06-01T10:00:06.000000Z")
        self.assertEqual(doc["span_ms"], 6000)

        got = [(d["rule"], d["dest"]) for d in doc["destinations"]]
        self.assertEqual(got, [(r, d) for r, d, _ in EXPECTED_DESTS])
        for (rule, dest, want), d in zip(EXPECTED_DESTS, doc["destinations"]):
            self.assertEqual(list(d), ["rule", "dest"] + SIDE_KEYS + ["observe"])
            self.assertEqual(list(d["observe"]), SIDE_KEYS)
            did = {k: d[k] for k in SIDE_KEYS}
            self.assertEqual(did, want, "%s %s" % (rule, dest))
            self.assertEqual(d["observe"], OBSERVED.get((rule, dest), side()),
                             "%s %s (observe)" % (rule, dest))
        self.assertEqual([(e["err"], e["count"], e["dests"]) for e in doc["top_errors"]],
                         EXPECTED_TOP)
        self.assertEqual(doc["notes"], [])      # every process that started also ended
        self.assertEqual([(x["rule"], x["processes"], {k: x[k] for k in stats()})
                          for x in doc["rules"]], EXPECTED_RULES)
        for x in doc["rules"]:
            self.assertEqual(list(x), ["rule", "processes"] + list(stats()))

    def test_json(self):
        doc, r = self.json_report(self.a, self.b)
        self.check_doc(doc)
        # exact milliseconds: the sum of 100, 200 and 50.5 is 350.5, not 350.49999
        pg = doc["destinations"][1]["delay_ms"]
        self.assertEqual((pg["total"], pg["p50"], pg["p99"]), (350.5, 100, 200))
        self.assertIn('"total": 350.5', r.stdout)
        # the order of the files does not matter
        doc2, _ = self.json_report(self.b, self.a)
        self.assertEqual(doc2, doc)

    def test_skipped_lines_are_named_and_not_fatal(self):
        r = report(self.a, self.b)
        self.assertEqual(r.rc, 0, r)
        want = ["%s:%d: skipped: " % (self.a, n) for n in SKIPPED_A] + \
               ["%s:%d: skipped: " % (self.b, n) for n in SKIPPED_B]
        msgs = [l for l in r.stderr.splitlines() if ": skipped: " in l]
        self.assertEqual([m[:len(w)] for m, w in zip(msgs, want)], want, r.stderr)
        self.assertEqual(len(msgs), 4, r.stderr)
        self.assertIn("not JSON", msgs[0])
        self.assertIn("not a JSON object", msgs[1])
        self.assertIn("not JSON", msgs[2])                # cut short
        self.assertIn('"event"', msgs[3])

    def test_at_most_ten_skip_messages(self):
        bad = self.wd.write("bad.log", "\n".join(["garbage %d" % i for i in range(13)]
                                                 + [FILE_A[1]]) + "\n")
        r = report("--format", "json", bad)
        self.assertEqual(r.rc, 0, r)
        msgs = [l for l in r.stderr.splitlines() if ": skipped: " in l]
        self.assertEqual([m.split(": skipped:")[0] for m in msgs],
                         ["%s:%d" % (bad, n) for n in range(1, 11)], r.stderr)
        self.assertIn("13 lines skipped", r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual((doc["skipped_lines"], doc["events"]), (13, 1))

    def test_stdin(self):
        both = self.wd.write("both.log", "\n".join(FILE_A + FILE_B) + "\n")
        for args in ([], ["-"]):
            doc, r = self.json_report(*args, stdin=both)
            self.check_doc(doc, files=1)
            self.assertIn("<stdin>:%d: skipped: " % SKIPPED_A[0], r.stderr)
            self.assertIn("<stdin>:%d: skipped: " % (len(FILE_A) + SKIPPED_B[0]), r.stderr)
        # a file and standard input together
        doc, _ = self.json_report(self.a, "-", stdin=self.b)
        self.check_doc(doc)

    def test_prometheus(self):
        r = report("--format", "prometheus", self.a, self.b)
        self.assertEqual(r.rc, 0, r)
        fams = parse_prom(r.stdout)
        doc, _ = self.json_report(self.a, self.b)

        counters = ["retries", "recovered", "rejected", "throttled", "limited", "injected",
                    "breaker_opens", "timeouts", "failovers", "bulkhead_full", "shed"]
        for name in ["failures", "gave_up", "delay_ms"] + counters:
            self.assertEqual(fams["bulwark_%s_total" % name]["type"], "counter", name)
        self.assertEqual(fams["bulwark_delay_ms"]["type"], "summary")
        for d in doc["destinations"]:
            lab = {"rule": d["rule"], "dest": d["dest"]}
            for name in counters:
                self.assertEqual(prom_value(fams, "bulwark_%s_total" % name, **lab),
                                 d[name], (name, lab))
            for err, n in d["errors"].items():
                self.assertEqual(prom_value(fams, "bulwark_failures_total", err=err, **lab),
                                 n)
            for reason, n in d["gave_up_reasons"].items():
                self.assertEqual(prom_value(fams, "bulwark_gave_up_total", reason=reason,
                                            **lab), n)
            dm = d["delay_ms"]
            self.assertAlmostEqual(prom_value(fams, "bulwark_delay_ms_total", **lab),
                                   dm["total"])
            s = "bulwark_delay_ms"
            self.assertEqual(prom_value(fams, s + "_count", s, **lab), dm["count"])
            self.assertAlmostEqual(prom_value(fams, s + "_sum", s, **lab), dm["total"])
            for q, key in (("0.5", "p50"), ("0.99", "p99")):
                v = prom_value(fams, s, quantile=q, **lab)
                if dm[key] is None:
                    self.assertTrue(math.isnan(v), (lab, q))
                else:
                    self.assertAlmostEqual(v, dm[key])
        # every failure sample, and nothing else, is in the JSON
        n_fail = sum(len(d["errors"]) for d in doc["destinations"])
        self.assertEqual(len(fams["bulwark_failures_total"]["samples"]), n_fail)
        # the label with a quote, a backslash and a line feed survives escaping
        self.assertEqual(prom_value(fams, "bulwark_failures_total", rule="odd",
                                    dest=ODD_DEST, err="ECONNRESET"), 1)
        self.assertIn('dest="unix:/tmp/we\\"ird\\\\dir\\nx.sock"', r.stdout)
        # observe mode in families of its own
        self.assertEqual(prom_value(fams, "bulwark_observe_failures_total", rule="db",
                                    dest=OBS, err="ECONNREFUSED"), 1)
        self.assertEqual(prom_value(fams, "bulwark_observe_retries_total", rule="db",
                                    dest=OBS), 1)
        self.assertIsNone(prom_value(fams, "bulwark_failures_total", rule="db", dest=OBS,
                                     err="ECONNREFUSED"))
        # per rule, from the exit events
        for rule, procs, st in EXPECTED_RULES:
            self.assertEqual(prom_value(fams, "bulwark_rule_processes", rule=rule), procs)
            for k, v in st.items():
                self.assertEqual(prom_value(fams, "bulwark_rule_%s_total" % k, rule=rule),
                                 v, (rule, k))
        self.assertEqual(prom_value(fams, "bulwark_report_events"), doc["events"])
        self.assertEqual(prom_value(fams, "bulwark_report_processes"), 5)
        self.assertEqual(prom_value(fams, "bulwark_report_files"), 2)
        self.assertEqual(prom_value(fams, "bulwark_report_skipped_lines"), 4)
        self.assertEqual(prom_value(fams, "bulwark_report_last_event_timestamp_seconds")
                         - prom_value(fams, "bulwark_report_first_event_timestamp_seconds"),
                         6.0)

    def test_prometheus_without_observe_has_no_observe_families(self):
        r = report("--format", "prometheus", self.a)
        self.assertEqual(r.rc, 0, r)
        fams = parse_prom(r.stdout)
        self.assertFalse([f for f in fams if f.startswith("bulwark_observe_")])
        self.assertIn("bulwark_failures_total", fams)

    def test_table(self):
        r = report(self.a, self.b)
        self.assertEqual(r.rc, 0, r)
        out = r.stdout
        for line in out.split("\n"):
            self.assertLessEqual(len(line), 80, "too wide: %r" % line)
        lines = out.split("\n")
        self.assertEqual(lines[0], "bulwark report: %d events from 5 processes in 2 files, "
                         "4 lines skipped" % (len(FILE_A) + len(FILE_B) - 5))
        self.assertEqual(lines[1], "span: 2025-06-01T10:00:00.000000Z .. "
                         "2025-06-01T10:00:06.000000Z (6.0s)")

        rows = table_section(out, "BY RULE AND DESTINATION")
        self.assertEqual(rows[0].split(), ["RULE", "DEST", "FAIL", "RETRY", "RECOV",
                                           "GAVEUP", "REJECT", "OPENS"])
        self.assertEqual(len(rows) - 1, len(EXPECTED_DESTS))
        for row, (rule, dest, want) in zip(rows[1:], EXPECTED_DESTS):
            cells = row.split()
            figures = [want["failures"], want["retries"], want["recovered"],
                       want["gave_up"], want["rejected"], want["breaker_opens"]]
            self.assertEqual(cells[-6:], [str(n) for n in figures], row)
            name = " ".join(cells[:-6])
            shown = dest.replace("\n", "?")      # control characters cannot break a row
            if "…" in name:
                # cut: the rule from its start, the destination keeps both ends
                self.assertTrue(row.startswith(rule[:8]), row)
                tail = name.split("…")[-1]
                self.assertTrue(shown.endswith(tail), (row, dest))
            else:
                self.assertEqual(name, "%s %s" % (rule, shown), row)
        self.assertIn("…", "\n".join(rows))
        # the long destination kept its file name
        self.assertTrue(any("server.sock" in row for row in rows), rows)

        delays = table_section(out, "LIMITS AND ADDED DELAY")
        self.assertEqual(delays[0].split(), ["RULE", "DEST", "THROT", "LIMIT", "FULL",
                                             "SHED", "INJECT", "ADDED", "P50", "P99"])
        got = {tuple(row.split()[:2]): row.split()[2:] for row in delays[1:]}
        self.assertEqual(got, {
            ("db", PG9): ["0", "0", "0", "0", "0", "300ms", "300ms", "300ms"],
            ("db", PG): ["0", "0", "0", "0", "0", "350ms", "100ms", "200ms"],
            ("sq", DB): ["0", "0", "0", "0", "1", "8.5ms", "1.5ms", "7.0ms"],
            ("dns", HOST): ["0", "0", "0", "0", "0", "5.0ms", "5.0ms", "5.0ms"],
            ("api", API): ["3", "1", "1", "1", "0", "100ms", "20ms", "40ms"],
        })

        would = table_section(out, "WOULD HAVE")
        self.assertEqual([row.split() for row in would[1:]],
                         [["db", OBS, "1", "1", "0", "0", "0", "0", "0", "0"]])

        errs = table_section(out, "TOP ERRORS")
        self.assertEqual([row.split() for row in errs[1:len(EXPECTED_TOP) + 1]],
                         [[e, str(n), "%d%%" % round(100 * n / 11), str(d)]
                          for e, n, d in EXPECTED_TOP])
        self.assertIn("gave up by reason: attempts 2, deadline 1", out)
        self.assertIn("also: 1 timeout, 1 failover", out)

        rules = table_section(out, "PER RULE")
        self.assertEqual(rules[0].split(), ["RULE", "PROCS", "CALLS", "FAIL", "RETRY",
                                            "RECOV", "GAVEUP", "REJECT", "THROT", "LIMIT",
                                            "INJECT", "FULL", "SHED"])
        for row, (rule, procs, st) in zip(rules[1:], EXPECTED_RULES):
            cells = row.split()
            self.assertEqual(cells[-12:], [str(procs)] + [str(v) for v in st.values()], row)
            self.assertTrue(rule.startswith(cells[0].rstrip("…")), row)
        self.assertEqual(len(rules) - 1, len(EXPECTED_RULES))

    def test_table_abbreviates_big_counts(self):
        log = self.wd.write("big.log", ev(1, "exit", 9, stats={
            "r": stats(calls=123456789, failures=99999, retries=100000,
                       recovered=1234567)}) + "\n")
        r = report(log)
        self.assertEqual(r.rc, 0, r)
        row = table_section(r.stdout, "PER RULE")[1].split()
        self.assertEqual(row[:6], ["r", "1", "123M", "99999", "100k", "1.2M"])
        doc = json.loads(report("-f", "json", log).stdout)
        self.assertEqual(doc["rules"][0]["calls"], 123456789)

    def test_wide_table_cuts_nothing(self):
        for flag in ("--wide", "-w"):
            r = report(flag, self.a, self.b)
            self.assertEqual(r.rc, 0, r)
            self.assertNotIn("…", r.stdout)
            rows = table_section(r.stdout, "BY RULE AND DESTINATION")
            self.assertEqual(len(rows) - 1, len(EXPECTED_DESTS))
            for row, (rule, dest, want) in zip(rows[1:], EXPECTED_DESTS):
                cells = row.split()
                self.assertEqual(" ".join(cells[:-6]), "%s %s" % (rule, dest.replace("\n", "?")),
                                 row)
            self.assertGreater(max(len(l) for l in r.stdout.split("\n")), 80)
            rules = table_section(r.stdout, "PER RULE")
            self.assertEqual([row.split()[0] for row in rules[1:]],
                             [rule for rule, _, _ in EXPECTED_RULES])
        # counts whole
        log = self.wd.write("big.log", ev(1, "exit", 9, stats={
            "r": stats(calls=123456789, failures=99999, retries=100000,
                       recovered=1234567)}) + "\n")
        row = table_section(report("-w", log).stdout, "PER RULE")[1].split()
        self.assertEqual(row[:6], ["r", "1", "123456789", "99999", "100000", "1234567"])
        # the machine formats are whole already: the same with or without it
        self.assertEqual(report("-w", "-f", "json", self.a).stdout,
                         report("-f", "json", self.a).stdout)

    def test_exit_statuses(self):
        missing = self.wd.file("missing.log")
        r = report("--format", "json", missing, self.a)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("missing.log", r.stderr)
        # what could be read is still reported
        self.assertEqual(json.loads(r.stdout)["files"], 1)
        self.assertEqual(report(self.wd.path).rc, 1)     # a directory
        for args in (["--format", "xml", self.a], ["--nope"], ["--format"]):
            r = report(*args)
            self.assertEqual(r.rc, 2, r)
            self.assertIn("bulwark report", r.stderr)
        r = report("--help")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("bulwark report", r.stdout)

    def test_destination_falls_back_to_db_host_or_dash(self):
        log = self.wd.write("keys.log", "\n".join([
            ev(1, "fail", 7, rule="a", dest="", db=DB, err="SQLITE_BUSY"),   # empty: absent
            ev(2, "fail", 7, rule="a", host=HOST, err="EAI_AGAIN"),
            ev(3, "fail", 7, rule="a", err="EIO"),
            ev(4, "fail", 7, dest=PG),                                      # no rule, no err
            '{"event":""}',
        ]) + "\n")
        doc, r = self.json_report(log)
        self.assertEqual([(d["rule"], d["dest"], d["errors"]) for d in doc["destinations"]],
                         # all as flaky: by destination name
                         [("a", "-", {"EIO": 1}), ("a", DB, {"SQLITE_BUSY": 1}),
                          ("-", PG, {"unknown": 1}), ("a", HOST, {"EAI_AGAIN": 1})])
        self.assertEqual(doc["skipped_lines"], 1)
        self.assertIn("%s:5: skipped: " % log, r.stderr)

    def notes(self, *lines):
        log = self.wd.write("notes.log", "\n".join(lines) + "\n")
        doc, _ = self.json_report(log)
        table = report(log)
        self.assertEqual(table.rc, 0, table)
        for line in table.stdout.split("\n"):
            self.assertLessEqual(len(line), 79, "too wide: %r" % line)
        shown = table_section(table.stdout, "NOTES")
        self.assertEqual(bool(shown), bool(doc["notes"]), table.stdout)
        return doc["notes"], table.stdout

    def test_notes_name_why_figures_are_missing(self):
        start = dict(version="0.1.0", config="<default>", rules=3, mode="observe", seed=1)
        # a level that left the info events out: the notes say so, not log.summary
        notes, out = self.notes(
            ev(0.1, "retry", 7, lvl="warn", rule="db", dest=PG, err="ECONNREFUSED",
               attempt=2, delay_ms=100, observe=True))
        self.assertEqual(len(notes), 1, notes)
        self.assertIn("level warn", notes[0])
        self.assertNotIn("summary", notes[0])
        self.assertIn("no exit events (see NOTES)", out)
        # a process killed before its exit event, another that ended properly
        notes, _ = self.notes(
            ev(0.0, "start", 7, summary=True, **start), ev(0.0, "start", 8, summary=True, **start),
            ev(0.1, "fail", 7, rule="db", dest=PG, err="ECONNRESET", attempt=1),
            ev(0.2, "exit", 8, stats={"db": stats(calls=1)}))
        self.assertEqual(len(notes), 1, notes)
        self.assertTrue(notes[0].startswith("1 of 2 processes logged a start but no exit"),
                        notes)
        self.assertIn("killed", notes[0])
        # a process started again by exec keeps its pid: one start more, not one missing
        notes, _ = self.notes(
            ev(0.0, "start", 7, summary=True, **start), ev(0.1, "start", 7, summary=True, **start),
            ev(0.2, "exit", 7, stats={"db": stats(calls=1)}))
        self.assertEqual(notes, [])
        # log.summary: false is a choice, said as such
        notes, _ = self.notes(ev(0.0, "start", 7, summary=False, **start),
                              ev(0.1, "fail", 7, rule="db", dest=PG, err="ECONNRESET",
                                 attempt=1))
        self.assertEqual(len(notes), 1, notes)
        self.assertIn("log.summary: false", notes[0])
        # nothing at all
        notes, _ = self.notes()
        self.assertEqual(len(notes), 1, notes)
        self.assertIn("no events", notes[0])

    def test_empty_input(self):
        empty = self.wd.write("empty.log", "")
        for fmt in ("table", "json", "prometheus"):
            r = report("--format", fmt, empty)
            self.assertEqual(r.rc, 0, r)
        doc = json.loads(report("-f", "json", empty).stdout)
        self.assertEqual((doc["events"], doc["destinations"], doc["first"]), (0, [], None))
        parse_prom(report("-f", "prometheus", empty).stdout)


# The client of the real run: one connect to a port where nothing listens (given up),
# then, in the second process, one to a server that starts late (recovered).
CLIENT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
except OSError as e:
    print("refused:", e)
    sys.exit(3)
"""


class RealRun(ShimTest):
    """Logs the library wrote itself, for two processes appending to one file."""

    def test_real_run(self):
        dead, late = free_port(), free_port()
        rules = ("  - name: dead\n    match: { ops: [connect], dest: [\"127.0.0.1:%d\"] }\n"
                 "    retry: { attempts: 3, backoff: { base: 20ms, max: 100ms, "
                 "jitter: none } }\n"
                 "  - name: late\n    match: { ops: [connect], dest: [\"127.0.0.1:%d\"] }\n"
                 "    retry: %s\n" % (dead, late, retry_yaml()))
        pol, log = self.wd.policy(rules)
        r1 = run(py(CLIENT, dead), shim=True, policy=pol)
        self.assertEqual(r1.rc, 3, r1)
        # late only from now on, however long the first run took on a loaded machine
        srv = self.server(delay_s=0.6, port=late)
        r2 = run(py(CLIENT, srv.port), shim=True, policy=pol)
        self.assertOk(r2)
        events = read_events(log)
        self.assertTrue(events_of(events, "recovered", rule="late"), events)

        dead_dest, late_dest = "127.0.0.1:%d" % dead, srv.addr
        late_fails = len(events_of(events, "fail", rule="late"))
        late_delays = [e["delay_ms"] for e in events_of(events, "retry", rule="late")]
        self.assertGreater(late_fails, 0)
        pids = {e["pid"] for e in events}
        self.assertEqual(len(pids), 2, pids)

        r = report("--format", "json", log)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("skipped", r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual((doc["processes"], doc["files"], doc["events"]),
                         (2, 1, len(events)))
        self.assertEqual(doc["skipped_lines"], 0)
        by = {(d["rule"], d["dest"]): d for d in doc["destinations"]}
        self.assertEqual(set(by), {("dead", dead_dest), ("late", late_dest)})
        want_dead = side(failures=3, errors={"ECONNREFUSED": 3}, retries=2, gave_up=1,
                         reasons={"attempts": 1}, delays=[20, 40])
        want_late = side(failures=late_fails, errors={"ECONNREFUSED": late_fails},
                         retries=len(late_delays), recovered=1, delays=late_delays)
        got_dead = {k: by[("dead", dead_dest)][k] for k in SIDE_KEYS}
        got_late = {k: by[("late", late_dest)][k] for k in SIDE_KEYS}
        self.assertEqual(got_dead, want_dead)
        self.assertAlmostEqual(got_late["delay_ms"].pop("total"),
                               want_late["delay_ms"].pop("total"), places=6)
        self.assertEqual(got_late, want_late)
        # flakiest first: 3 failures + 1 gave up against late_fails
        first = "late" if late_fails > 4 or (late_fails == 4 and late_dest < dead_dest) \
            else "dead"
        self.assertEqual(doc["destinations"][0]["rule"], first)
        rules = {x["rule"]: x for x in doc["rules"]}
        self.assertEqual({k: rules["dead"][k] for k in stats()},
                         stats(calls=1, failures=3, retries=2, gave_up=1))
        self.assertEqual(rules["dead"]["processes"], 2)   # both processes had the rule
        self.assertEqual({k: rules["late"][k] for k in stats()},
                         stats(calls=1, failures=late_fails, retries=len(late_delays),
                               recovered=1))

        r = report("--format", "prometheus", log)
        self.assertEqual(r.rc, 0, r)
        fams = parse_prom(r.stdout)
        self.assertEqual(prom_value(fams, "bulwark_failures_total", rule="dead",
                                    dest=dead_dest, err="ECONNREFUSED"), 3)
        self.assertEqual(prom_value(fams, "bulwark_gave_up_total", rule="dead",
                                    dest=dead_dest, reason="attempts"), 1)
        self.assertEqual(prom_value(fams, "bulwark_retries_total", rule="dead",
                                    dest=dead_dest), 2)
        self.assertEqual(prom_value(fams, "bulwark_delay_ms_total", rule="dead",
                                    dest=dead_dest), 60)
        self.assertEqual(prom_value(fams, "bulwark_delay_ms", rule="dead", dest=dead_dest,
                                    quantile="0.99"), 40)
        self.assertEqual(prom_value(fams, "bulwark_recovered_total", rule="late",
                                    dest=late_dest), 1)
        self.assertEqual(prom_value(fams, "bulwark_failures_total", rule="late",
                                    dest=late_dest, err="ECONNREFUSED"), late_fails)
        self.assertEqual(prom_value(fams, "bulwark_rule_calls_total", rule="late"), 1)

        r = report(log)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(all(len(l) <= 80 for l in r.stdout.split("\n")), r.stdout)
        rows = table_section(r.stdout, "BY RULE AND DESTINATION")
        cells = {row.split()[0]: row.split()[2:] for row in rows[1:]}
        self.assertEqual(cells["dead"], ["3", "2", "0", "1", "0", "0"])
        self.assertEqual(cells["late"], [str(late_fails), str(len(late_delays)), "1", "0",
                                         "0", "0"])
        self.assertIn("bulwark report: %d events from 2 processes in 1 file\n"
                      % len(events), r.stdout)

        # the textfile collector recipe from the manual page
        prom = self.wd.file("bulwark.prom")
        sh = subprocess.run(["sh", "-c", 'bulwark() { "$BW" "$@"; }; '
                             'bulwark report --format prometheus "$1" > "$2.$$" && '
                             'mv "$2.$$" "$2"', "sh", log, prom],
                            env=dict(os.environ, BW=TOOL), timeout=30)
        self.assertEqual(sh.returncode, 0)
        with open(prom) as f:
            parse_prom(f.read())
        self.assertEqual(os.listdir(self.wd.path).count("bulwark.prom"), 1)
        self.assertFalse([n for n in os.listdir(self.wd.path) if n.startswith("bulwark.prom.")])


if __name__ == "__main__":
    unittest.main()
