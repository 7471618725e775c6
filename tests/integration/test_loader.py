"""The policy loader end to end, through `bulwark check` and through the library itself.

1. What a policy may cost: every process that loads the library reads the policy, so a
   file past a bound (size, nesting, nodes, aliases, copies inherited from defaults) is
   a `FILE:LINE:COL: message` error naming the bound, from `bulwark check` and as the
   library's config_error event, and costs a process little CPU and memory; files just
   inside the bounds load, just as cheaply. The pathological files are generated; before
   the bounds, the alias one cost 3.4 GB and 22 s per process and the nested ones up to
   48 s. The CPU and memory ceilings are far above what the files cost now (at most
   0.1 s and 32 MB), measured with getrusage: CPU time, not wall time, so that a loaded
   machine does not fail them.
2. A byte bucket's burst takes sizes (64KiB), shown with its unit by check and explain.
3. A state.dir longer than the state paths can hold is an error, not another directory.

`python3 tests/integration/test_loader.py --write DIR` writes the generated policies to
DIR, to measure one process by hand:

    for f in DIR/*.yaml; do /usr/bin/time -f "%e s %M KB $f" \\
        env LD_PRELOAD=build/libbulwark.so BULWARK_CONFIG=$f /bin/true; done
"""

import os
import re
import resource
import subprocess
import sys
import unittest

# Also runnable as `python3 -m unittest tests/integration/test_loader.py`.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import TOOL, ShimTest, base_env, events_in_text, run, shim_env

CPU_CEILING_S = 1.0                 # the worst file costs under 0.1 s of CPU now
RSS_CEILING_KB = 150 * 1024         # and 32 MB resident (50000 nodes)
AS_LIMIT = 2 << 30                  # so that a regression fails instead of eating the host
CPU_LIMIT_S = 30


# -- generated policies: (text, expected error as "LINE:COL: message", or None) ----------

JUNK_KEY = ("unknown key 'junk'; expected one of version, mode, on_config_error, seed, log, "
            "defaults, rules, state")
DEPTH_MSG = "more than 64 levels of nested lists and mappings; a policy needs a handful"
NODES_MSG = "more than 50000 values, lists and mappings in all; a policy needs a few hundred"
ALIAS_MSG = ("aliases stand for more than 50000 values, lists and mappings in all (each use "
             "counts all the alias names)")


def alias_dests(rules=11000, dests=4000):
    """One match of many dests, named by an alias in every other rule (~400 KB)."""
    d = ", ".join('"10.%d.%d.1:80"' % (i // 256, i % 256) for i in range(dests))
    head = "version: 1\nrules:\n  - name: r0\n    match: &m { ops: [connect], dest: [%s] }\n" % d
    return head + "".join("  - { name: r%d, match: *m }\n" % i for i in range(1, rules))


def flow(open_, close, n=20000):
    return "version: 1\njunk: " + open_ * n + "1" + close * n + "\n"


def prog_list(n):
    return ("version: 1\nrules:\n  - name: a\n    match: { prog: [" +
            ", ".join("p%d" % i for i in range(n)) + "] }\n")


def many_rules(n):
    return "version: 1\nrules:\n" + "".join("  - {name: r%d}\n" % i for i in range(n))


def anchors(n):
    """n anchors, then an alias of each: libyaml looked each up among all of them."""
    return ("version: 1\nrules:\n  - name: a\n    match:\n      prog: [" +
            ", ".join("&a%d x" % i for i in range(n)) + ", " +
            ", ".join("*a%d" % i for i in range(n)) + "]\n")


def inherited(fallbacks, rules):
    fb = ", ".join('"127.0.0.1:%d"' % (1000 + i) for i in range(fallbacks))
    return ("version: 1\ndefaults:\n  fallback: [%s]\nrules:\n" % fb +
            "".join("  - {name: r%d, match: {ops: [connect]}}\n" % i for i in range(rules)))


def aliases_inside(rules):
    """A match of 106 nodes (mapping, 4 keys and lists, 100 dests) used by rules - 1 rules."""
    d = ", ".join('"10.0.%d.1:80"' % i for i in range(100))
    head = "version: 1\nrules:\n  - name: r0\n    match: &m { ops: [connect], dest: [%s] }\n" % d
    return head + "".join("  - { name: r%d, match: *m }\n" % i for i in range(1, rules))


# The 64th `{` or `[` after "junk: " is the 65th level: the root mapping is the first.
PAST_BOUNDS = {
    # 4006 nodes behind each alias: the 13th use, rule r13's, is one too many
    "alias-dests.yaml": (alias_dests, "17:25: " + ALIAS_MSG),
    "flow-maps.yaml": (lambda: flow("{a: ", "}"), "2:%d: %s" % (7 + 63 * 4, DEPTH_MSG)),
    "flow-seqs.yaml": (lambda: flow("[", "]", 50000), "2:%d: %s" % (7 + 63, DEPTH_MSG)),
    "many-nodes.yaml": (lambda: prog_list(100000), None),     # position checked below
    # 5 nodes before the list, 3 a rule: the 50001st is the mapping of rules[16665]
    "many-rules.yaml": (lambda: many_rules(40000), "16668:5: " + NODES_MSG),
    "over-inherit.yaml": (lambda: inherited(50, 1200),
                          "1005:5: rules[1000]: rules inherit more than 50000 fallback and "
                          "inject entries from defaults in all (each rule gets a copy)"),
    "too-large.yaml": (lambda: "version: 1\n#" + " " * (1 << 20), None),
    # a socket's entry numbers its rules in 12 bits
    "too-many-rules.yaml": (lambda: many_rules(4096), "3:3: rules: at most 4095 rules, got 4096"),
}

WITHIN_BOUNDS = {
    "max-nodes.yaml": lambda: prog_list(49988),
    "max-rules.yaml": lambda: many_rules(4095),
    "max-anchors.yaml": lambda: anchors(16000),
    "max-aliases.yaml": lambda: aliases_inside(471),
    "max-inherit.yaml": lambda: inherited(40, 1250),
}


def write_all(d):
    os.makedirs(d, exist_ok=True)
    for name, (gen, _) in PAST_BOUNDS.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(gen())
    for name, gen in WITHIN_BOUNDS.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(gen())


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT_S, CPU_LIMIT_S))


def measured(argv, env):
    """Run argv under the limits above; (rc, stdout, stderr, cpu seconds, peak RSS KB) of
    that one process, from wait4."""
    with open(os.devnull, "rb") as null:
        p = subprocess.Popen(argv, env=env, stdin=null, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=limited)
        out, err = p.stdout.read(), p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stdout.close()
        p.stderr.close()
    return (p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
            ru.ru_utime + ru.ru_stime, ru.ru_maxrss)


class Bounds(ShimTest):

    def write(self, name, text):
        return self.wd.write(name, text)

    def check_cost(self, what, cpu, rss):
        self.assertLess(cpu, CPU_CEILING_S, "%s: %.2f s of CPU" % (what, cpu))
        self.assertLess(rss, RSS_CEILING_KB, "%s: %d KB resident" % (what, rss))

    def expected(self, name, text, want):
        if name == "many-nodes.yaml":   # the 50001st node: the 49989th name of the list
            col = text.index("p49988") - text.index("    match:") + 1
            return "4:%d: %s" % (col, NODES_MSG)
        if name == "too-large.yaml":
            return None
        return want

    def test_past_each_bound(self):
        for name, (gen, want) in PAST_BOUNDS.items():
            with self.subTest(policy=name):
                text = gen()
                path = self.write(name, text)
                want = self.expected(name, text, want)
                rc, out, err, cpu, rss = measured([TOOL, "check", path], base_env())
                self.assertEqual(rc, 1, "%s\n%s" % (name, err[-2000:]))
                first = err.splitlines()[0] if err else ""
                if want is None:   # no position: only the file's name
                    self.assertEqual(first, path + ": larger than 1 MiB, the most a policy "
                                     "may be")
                else:
                    self.assertEqual(first, "%s:%s" % (path, want))
                self.check_cost("bulwark check " + name, cpu, rss)

                env = shim_env(path)
                rc, out, err, cpu, rss = measured(["/bin/true"], env)
                self.assertEqual(rc, 0, err[-2000:])   # passthrough: the program runs
                errs = [e for e in events_in_text(err) if e.get("event") == "config_error"]
                self.assertEqual(len(errs), 1, err[-2000:])
                if want is not None:
                    line, col, msg = re.match(r"(\d+):(\d+): (.*)", want).groups()
                    self.assertEqual((errs[0].get("line"), errs[0].get("col"),
                                      errs[0].get("msg")), (int(line), int(col), msg))
                self.check_cost("a process under " + name, cpu, rss)

    def test_within_bounds(self):
        for name, gen in WITHIN_BOUNDS.items():
            with self.subTest(policy=name):
                path = self.write(name, gen())
                rc, out, err, cpu, rss = measured([TOOL, "check", path], base_env())
                self.assertEqual(rc, 0, "%s\n%s" % (name, err[-2000:]))
                env = shim_env(path, BULWARK_LEVEL="info")
                rc, out, err, cpu, rss = measured(["/bin/true"], env)
                self.assertEqual(rc, 0, err[-2000:])
                starts = [e for e in events_in_text(err) if e.get("event") == "start"]
                self.assertEqual(len(starts), 1, err[-2000:])
                self.check_cost("a process under " + name, cpu, rss)


class ByteBurst(ShimTest):

    def test_check_and_explain_show_the_size(self):
        path = self.write_policy(
            "version: 1\nrules:\n  - name: upload\n    match: { ops: [send] }\n"
            "    rate_limit: { rate: 1MiB/s, burst: 64KiB }\n"
            "  - name: calls\n    match: { ops: [connect] }\n"
            "    rate_limit: { rate: 50/s, burst: 10 }\n")
        r = run([TOOL, "check", path])
        self.assertOk(r)
        self.assertIn("      rate: 1MiB/s\n      burst: 64KiB\n", r.stdout)
        self.assertIn("      rate: 50/s\n      burst: 10\n", r.stdout)
        r = run([TOOL, "explain", "-c", path, "send", "127.0.0.1:80"])
        self.assertOk(r)
        self.assertIn("    burst: 64KiB\n", r.stdout)

    def test_a_size_on_a_call_rate_says_why(self):
        path = self.write_policy(
            "version: 1\nrules:\n  - name: calls\n    match: { ops: [connect] }\n"
            "    rate_limit: { rate: 50/s, burst: 64KiB }\n")
        r = run([TOOL, "check", path])
        self.assertEqual(r.rc, 1, repr(r))
        self.assertEqual(r.stderr.splitlines()[0],
                         "%s:5:38: rules[0].rate_limit.burst: 64KiB is a size in bytes, but "
                         "the rate 50/s counts calls; give the burst as a number of calls, "
                         "such as 10" % path)

    def write_policy(self, text):
        return self.wd.write("policy.yaml", text)


class StateDir(ShimTest):

    def test_too_long_is_an_error_not_another_directory(self):
        # Cut short, this named a directory inside self.wd.path, and a process under the
        # policy created it there. The limit (4025) keeps <dir>/<group>.state in PATH_MAX.
        parent = self.wd.file("state")
        os.mkdir(parent)
        long_dir = os.path.join(parent, *(["d" * 200] * 21))
        self.assertGreater(len(long_dir), 4025)
        path = self.wd.write("policy.yaml", "version: 1\nstate:\n  share: group\n"
                             "  dir: %s\n" % long_dir)
        r = run([TOOL, "check", path])
        self.assertEqual(r.rc, 1, repr(r))
        self.assertEqual(r.stderr.splitlines()[0],
                         "%s:4:8: state.dir: longer than 4025 characters (%d)"
                         % (path, len(long_dir)))
        r = run(["/bin/true"], shim=True, policy=path)
        self.assertOk(r)
        errs = [e for e in events_in_text(r.stderr) if e.get("event") == "config_error"]
        self.assertEqual(len(errs), 1, r.stderr)
        self.assertEqual((errs[0].get("line"), errs[0].get("col")), (4, 8))
        self.assertEqual(os.listdir(parent), [])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        write_all(sys.argv[2])
        sys.exit(0)
    unittest.main()
