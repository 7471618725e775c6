"""The examples do what their READMEs say: each script is run as a user would run it,
and its own verdict (exit status, closing line) and the figures it prints are checked.
An example that rots fails here, not in a user's hands."""
import os
import re
import shutil
import tempfile
import unittest

from harness import ROOT, TOOL, pg_missing, run

EX = os.path.join(ROOT, "examples")
CURL = shutil.which("curl")


def script(*parts):
    return ["sh", os.path.join(EX, *parts)]


class Examples(unittest.TestCase):

    def ok(self, r):
        self.assertEqual(r.rc, 0, r)

    def test_ci_startup_race_fails_alone_and_passes_under_the_policy(self):
        alone = run(script("ci-startup-race", "race.sh"), timeout=30)
        self.assertNotEqual(alone.rc, 0, alone)
        self.assertIn("Connection refused", alone.stderr, alone)
        cured = run([TOOL, "run", "-c", os.path.join(EX, "ci-startup-race", "bulwark.yaml"),
                     "--"] + script("ci-startup-race", "race.sh"), timeout=30)
        self.ok(cured)
        self.assertIn("PASS", cured.stdout, cured)
        self.assertIn('"event":"recovered"', cured.stderr, cured)

    @unittest.skipUnless(shutil.which("redis-server"), "redis-server is not installed")
    def test_fleet_two_hosts_share_one_limit(self):
        r = run(script("fleet", "fleet.sh"), timeout=90)
        self.ok(r)
        self.assertIn("fleet.sh: OK", r.stdout, r)
        m = re.search(r"host a admitted (\d+), host b (\d+): (\d+) of 500", r.stdout)
        self.assertTrue(m, r.stdout)
        self.assertLessEqual(int(m.group(3)), 520, r.stdout)
        self.assertIn("fleet events: 2", r.stdout, r)

    def test_ci_process_tree_shares_one_breaker(self):
        r = run(script("ci-startup-race", "tree.sh"), timeout=60)
        self.ok(r)
        self.assertIn("tree.sh: OK", r.stdout, r)
        self.assertIn("40 reached the kernel, 0 refused", r.stdout, r)
        m = re.search(r"(\d+) reached the kernel, (\d+) refused by the shared breaker", r.stdout)
        self.assertIsNotNone(m, r)
        self.assertLessEqual(int(m.group(1)), 8, r)
        self.assertIn("exit status 2", r.stdout, r)

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_legacy_service_fails_over_to_the_replica(self):
        r = run(script("legacy-service", "failover.sh"), timeout=40)
        self.ok(r)
        self.assertEqual(r.stdout.count("replica"), 3, r)
        self.assertIn('"event":"failover"', r.stderr, r)
        self.assertIn('"to":"open"', r.stderr, r)

    def test_postgres_restart_aborts_alone_and_not_under_bulwark(self):
        why = pg_missing()
        if why:
            self.skipTest(why)
        r = run(script("postgres-restart", "restart.sh"), timeout=120)
        self.ok(r)
        alone = re.search(r"without bulwark: (\d) of 4 clients aborted", r.stdout)
        under = re.search(r"with bulwark *: (\d) of 4 clients aborted", r.stdout)
        self.assertTrue(alone and under, r)
        self.assertGreater(int(alone.group(1)), 0, r)
        self.assertEqual(int(under.group(1)), 0, r)
        self.assertIn('"event":"recovered"', r.stdout, r)
    def test_legacy_service_changes_policy_live_and_is_scraped(self):
        r = run(script("legacy-service", "live.sh"), timeout=60)
        self.ok(r)
        before, after = r.stdout.split("== policy edited while it runs")
        # which of the 3 is refused is the threads' race; that one is, every round
        rounds = re.findall(r"(?m)^round \d+: (.*)$", before)
        self.assertTrue(rounds, r)
        self.assertTrue(all(sorted(x.split()) == ["ok", "ok", "refused"] for x in rounds), r)
        # the edit is seen within about a second, without a restart
        self.assertRegex(after, r"round \d+: ok ok ok\n", r)
        self.assertIn('"event":"reload"', r.stderr, r)
        self.assertIn('"event":"bulkhead_full"', r.stderr, r)
        m = re.search(r'(?m)^bulwark_bulkhead_max\{[^}]*rule="backend"[^}]*\} 4$', r.stdout)
        self.assertIsNotNone(m, r)
        refused = r.stdout.count("refused")
        m = re.search(r'(?m)^bulwark_rule_bulkhead_full_total\{[^}]*\} (\d+)$', r.stdout)
        self.assertIsNotNone(m, r)
        self.assertEqual(int(m.group(1)), refused, r)

    def test_sqlite_contention_loses_no_row(self):
        r = run(script("sqlite-contention", "contend.sh"), timeout=90)
        self.ok(r)
        under = r.stdout.split("== with bulwark")[-1]
        self.assertEqual(len(re.findall(r" 0 of 50 transactions failed", under)), 4, r)
        self.assertIn("rows: 200 of 200, 200 distinct", under, r)
        self.assertIn('"reason":"upgrade"', r.stdout + r.stderr, r)

    def test_flaky_test_observe_reproduce_cure(self):
        r = run(script("flaky-test", "run.sh"), timeout=120)
        self.ok(r)
        self.assertIn("run.sh: OK", r.stdout, r)

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_make_demo_shows_a_recovery(self):
        r = run(["sh", os.path.join(EX, "demo.sh")], timeout=60, cwd=ROOT)
        self.ok(r)
        self.assertIn("HTTP 200", r.stdout, r)
        self.assertIn("recovered", r.stdout, r)

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_make_demo_is_not_changed_by_a_users_policy(self):
        # the demo shows the built-in default: a user's own policy (one that does
        # nothing) must not take its place
        xdg = tempfile.mkdtemp(prefix="bw-xdg-")
        try:
            os.makedirs(os.path.join(xdg, "bulwark"))
            with open(os.path.join(xdg, "bulwark", "bulwark.yaml"), "w") as f:
                f.write("version: 1\nrules: []\n")
            r = run(["sh", os.path.join(EX, "demo.sh")], timeout=60, cwd=ROOT,
                    env={"XDG_CONFIG_HOME": xdg})
        finally:
            shutil.rmtree(xdg, True)
        self.ok(r)
        self.assertIn("bulwark: policy: the built-in default", r.stdout + r.stderr, r)


if __name__ == "__main__":
    unittest.main()
