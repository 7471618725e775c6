"""The `bulwark` command itself: check, run (validation, environment, exit statuses,
signals, warnings) and explain, driven as a user would from a shell."""

import json
import os
import re
import shutil
import signal
import subprocess
import unittest

import harness
from harness import (LIB, PYTHON, RUN_TIMEOUT, TOOL, ShimTest, base_env, events_in_text, prog,
                     py, run)

VALID = """\
version: 1
log:
  sink: stderr
  level: error
rules:
  - name: pg
    match: { ops: [connect], dest: ["127.0.0.1:5432"] }
    retry: quick
"""

# The misspelled key is on line 4, column 5 (1-based).
MISSPELLED = """\
version: 1
rules:
  - name: pg
    retyr: quick
"""

EXPLAIN = """\
version: 1
log: { sink: stderr, level: error }
rules:
  - name: pg
    match: { ops: [connect], dest: ["127.0.0.1:5432"] }
    retry: quick
  - name: internal-names
    match: { ops: [resolve], host: ["*.internal"] }
    retry: quick
  - name: cache-for-psql
    match: { ops: [connect], dest: ["*:6379"], prog: ["psql"] }
    retry: quick
  - name: by-name
    match: { ops: [connect], dest: ["localhost:5433"] }
    retry: quick
"""

# Prints the environment as JSON: what the library would be given.
PRINT_ENV = py("import json, os; print(json.dumps(dict(os.environ)))")


def tool(*args, **kw):
    return run([TOOL] + list(args), **kw)


def rule_line(text, name):
    """The 1-based line of `- name: NAME` in a policy text."""
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip() == "- name: %s" % name:
            return n
    raise AssertionError("no rule %s" % name)


class CliTest(ShimTest):

    def env_of(self, r):
        self.assertEqual(r.rc, 0, r)
        return json.loads(r.stdout.strip().splitlines()[-1])

    # -- check

    def test_check_valid_policy(self):
        pol = self.wd.write("p.yaml", VALID)
        r = tool("check", pol)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("pg", r.stdout)
        self.assertIn("version", r.stdout)
        self.assertEqual(r.stderr, "")

    def test_check_misspelled_key_names_file_line_col(self):
        pol = self.wd.write("p.yaml", MISSPELLED)
        r = tool("check", pol)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.stdout, "")
        self.assertRegex(r.stderr, r"(?m)^%s:4:5: .*retyr" % re.escape(pol))

    def test_check_missing_file(self):
        r = tool("check", self.wd.file("nope.yaml"))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("nope.yaml", r.stderr)

    def test_check_default_is_verbatim_and_valid(self):
        r = tool("check", "--default")
        self.assertEqual(r.rc, 0, r)
        for name in ("default-connect", "default-resolve", "default-sqlite"):
            self.assertIn(name, r.stdout)
        # What it prints is a policy to start from: it must load as it is.
        pol = self.wd.write("default.yaml", r.stdout)
        self.assertEqual(tool("check", pol).rc, 0)

    def test_check_finds_policy_like_run(self):
        self.wd.write("bulwark.yaml", VALID.replace("pg", "from-cwd"))
        other = self.wd.write("other.yaml", VALID.replace("pg", "from-env"))
        r = tool("check", cwd=self.wd.path)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("from-cwd", r.stdout)
        r = tool("check", cwd=self.wd.path, env={"BULWARK_CONFIG": other})
        self.assertIn("from-env", r.stdout)
        self.assertNotIn("from-cwd", r.stdout)

    def test_check_usage_errors(self):
        self.assertEqual(tool("check", "a.yaml", "b.yaml").rc, 2)
        self.assertEqual(tool("check", "--default", "a.yaml").rc, 2)
        self.assertEqual(tool("check", "--frobnicate").rc, 2)

    def test_check_config_option_and_quiet(self):
        pol = self.wd.write("p.yaml", VALID)
        by_arg = tool("check", pol)
        for args in (["-c", pol], ["--config", pol], ["--config=" + pol]):
            r = tool("check", *args)
            self.assertEqual((r.rc, r.stdout, r.stderr), (0, by_arg.stdout, ""), r)
        r = tool("check", "-c", self.wd.write("bad.yaml", MISSPELLED))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("retyr", r.stderr)
        self.assertEqual(tool("check", "-c", pol, pol).rc, 2)
        self.assertEqual(tool("check", "--default", "-c", pol).rc, 2)
        self.assertEqual(tool("check", "-c").rc, 2)
        # found rather than given, the file is named on stderr; -q keeps it quiet
        found = self.wd.write("bulwark.yaml", VALID)
        named = tool("check", found)
        r = tool("check", cwd=self.wd.path)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stdout, named.stdout)
        self.assertEqual(r.stderr.count("\n"), 1, r)
        for q in ("-q", "--quiet"):
            r = tool("check", q, cwd=self.wd.path)
            self.assertEqual((r.rc, r.stdout, r.stderr), (0, named.stdout, ""), r)

    # -- where the policy comes from: -c, $BULWARK_CONFIG, ./bulwark.yaml,
    #    $XDG_CONFIG_HOME/bulwark/bulwark.yaml (~/.config), /etc/bulwark/bulwark.yaml

    def search_tree(self):
        """A project directory without a policy, and a user config directory with one."""
        proj = os.path.join(self.wd.path, "proj")
        os.makedirs(os.path.join(self.wd.path, "xdg", "bulwark"))
        os.makedirs(proj)
        user = self.wd.write("xdg/bulwark/bulwark.yaml", VALID.replace("pg", "from-user"))
        return proj, user, {"XDG_CONFIG_HOME": self.wd.file("xdg")}

    def test_check_says_which_policy_applies_and_why(self):
        proj, user, env = self.search_tree()

        def check(*args, **more):
            r = tool("check", *args, cwd=proj, env=dict(env, **more))
            self.assertEqual(r.rc, 0, r)
            lines = r.stderr.splitlines()
            self.assertLessEqual(len(lines), 1, r)
            return re.search(r"name: (from-\w+)", r.stdout).group(1), "".join(lines)

        self.assertEqual(check(), ("from-user", "bulwark check: policy %s (the user's policy)"
                                   % user))
        cwd = os.path.join(proj, "bulwark.yaml")
        with open(cwd, "w") as f:
            f.write(VALID.replace("pg", "from-cwd"))
        self.assertEqual(check(), ("from-cwd", "bulwark check: policy %s (./bulwark.yaml in "
                                   "the working directory)" % cwd))
        env_pol = self.wd.write("env.yaml", VALID.replace("pg", "from-env"))
        self.assertEqual(check(BULWARK_CONFIG=env_pol),
                         ("from-env", "bulwark check: policy %s (from $BULWARK_CONFIG)" % env_pol))
        opt = self.wd.write("opt.yaml", VALID.replace("pg", "from-option"))
        self.assertEqual(check("-c", opt, BULWARK_CONFIG=env_pol), ("from-option", ""))
        self.assertEqual(check(opt, BULWARK_CONFIG=env_pol), ("from-option", ""))

    def test_user_policy_follows_the_xdg_rules(self):
        proj, _, _ = self.search_tree()
        home = os.path.join(self.wd.path, "home")
        os.makedirs(os.path.join(home, ".config", "bulwark"))
        in_home = self.wd.write("home/.config/bulwark/bulwark.yaml",
                                VALID.replace("pg", "from-home"))
        # without XDG_CONFIG_HOME, or with a relative one (which the XDG rules ignore),
        # ~/.config
        for xdg in (None, "", "xdg"):
            r = tool("check", cwd=self.wd.path if xdg == "xdg" else proj,
                     env={"XDG_CONFIG_HOME": xdg, "HOME": home})
            self.assertEqual(r.rc, 0, r)
            self.assertIn("from-home", r.stdout)
            self.assertIn(in_home, r.stderr)
        # and `run` hands that file to the library, made absolute
        env = self.env_of(tool("run", *PRINT_ENV, cwd=proj,
                               env={"XDG_CONFIG_HOME": None, "HOME": home}))
        self.assertEqual(env["BULWARK_CONFIG"], in_home)

    def test_builtin_default_when_nothing_is_found(self):
        if os.path.exists("/etc/bulwark/bulwark.yaml"):
            self.skipTest("this machine has /etc/bulwark/bulwark.yaml")
        proj, _, _ = self.search_tree()
        r = tool("check", cwd=proj)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("default-connect", r.stdout)
        self.assertEqual(r.stderr, "bulwark check: policy: the built-in default (no -c; none "
                         "of $BULWARK_CONFIG, ./bulwark.yaml, %s/bulwark/bulwark.yaml, "
                         "/etc/bulwark/bulwark.yaml)\n" % harness.NO_CONFIG_HOME)
        r = tool("run", "true", cwd=proj)
        self.assertEqual((r.rc, r.stderr), (0, "bulwark: policy: the built-in default (no "
                                            "policy file found)\n"), r)

    def test_run_names_its_policy_once_unless_quiet(self):
        proj, user, env = self.search_tree()
        r = tool("run", *PRINT_ENV, cwd=proj, env=env)
        self.assertEqual(self.env_of(r)["BULWARK_CONFIG"], user)
        self.assertEqual(r.stderr, "bulwark: policy %s (the user's policy)\n" % user, r)
        cwd = os.path.join(proj, "bulwark.yaml")
        with open(cwd, "w") as f:
            f.write(VALID)
        r = tool("run", *PRINT_ENV, cwd=proj, env=env)
        self.assertEqual(self.env_of(r)["BULWARK_CONFIG"], cwd)
        self.assertEqual(r.stderr, "bulwark: policy %s (./bulwark.yaml in the working "
                         "directory)\n" % cwd, r)
        for q in ("-q", "--quiet"):
            r = tool("run", q, "--", *PRINT_ENV, cwd=proj, env=env)
            self.assertEqual(self.env_of(r)["BULWARK_CONFIG"], cwd)
            self.assertEqual(r.stderr, "", r)
        # errors are still said under -q
        r = tool("run", "-q", "-c", self.wd.write("bad.yaml", MISSPELLED), "true")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("retyr", r.stderr)

    def test_library_alone_never_searches(self):
        # Under plain LD_PRELOAD only BULWARK_CONFIG counts: a ./bulwark.yaml or a user
        # policy does not change a program that happens to run where one is.
        proj, _, env = self.search_tree()
        with open(os.path.join(proj, "bulwark.yaml"), "w") as f:
            f.write(VALID)
        r = run(PRINT_ENV, shim=True, cwd=proj,
                env=dict(env, BULWARK_LEVEL="info", BULWARK_LOG="stderr"))
        self.assertEqual(r.rc, 0, r)
        starts = [e for e in events_in_text(r.stderr) if e["event"] == "start"]
        self.assertTrue(starts, r)
        self.assertEqual({e["config"] for e in starts}, {"<default>"}, r)

    # -- run: refusing before anything runs

    def test_run_refuses_bad_policy_and_runs_nothing(self):
        pol = self.wd.write("p.yaml", MISSPELLED)
        marker = self.wd.file("marker")
        r = tool("run", "-c", pol, "touch", marker)
        self.assertEqual(r.rc, 2, r)
        self.assertRegex(r.stderr, r"(?m)^%s:4:5: " % re.escape(pol))
        self.assertFalse(os.path.exists(marker), "the command ran despite the bad policy")

    def test_run_refuses_bad_overrides(self):
        marker = self.wd.file("marker")
        for args in (["-l", "verbose"], ["-o", "nowhere"], ["--seed", "-1"],
                     ["--seed", "abc"], ["--frobnicate"]):
            r = tool("run", *(args + ["touch", marker]), cwd=self.wd.path)
            self.assertEqual(r.rc, 2, r)
            self.assertIn(args[-1], r.stderr)
        r = tool("run", "touch", marker, cwd=self.wd.path, env={"BULWARK_LEVEL": "loud"})
        self.assertEqual(r.rc, 2, r)
        self.assertIn("BULWARK_LEVEL", r.stderr)
        self.assertFalse(os.path.exists(marker))

    def test_run_without_command_is_a_usage_error(self):
        r = tool("run", cwd=self.wd.path)
        self.assertEqual(r.rc, 2, r)
        r = tool("run", "-c", self.wd.write("p.yaml", VALID), cwd=self.wd.path)
        self.assertEqual(r.rc, 2, r)

    # -- run: exit statuses as a shell gives them

    def test_run_exit_status_passthrough(self):
        self.assertEqual(tool("run", "sh", "-c", "exit 3", cwd=self.wd.path).rc, 3)
        self.assertEqual(tool("run", "sh", "-c", "kill -TERM $$", cwd=self.wd.path).rc, 143)

    def test_run_not_found_is_127(self):
        r = tool("run", "bulwark-no-such-command", cwd=self.wd.path)
        self.assertEqual(r.rc, 127, r)
        self.assertIn("bulwark-no-such-command: command not found", r.stderr)
        r = tool("run", self.wd.file("missing"), cwd=self.wd.path)
        self.assertEqual(r.rc, 127, r)

    def test_run_not_executable_is_126(self):
        script = self.wd.write("noexec.sh", "#!/bin/sh\necho hi\n")
        os.chmod(script, 0o644)
        r = tool("run", script, cwd=self.wd.path)
        self.assertEqual(r.rc, 126, r)
        self.assertIn("Permission denied", r.stderr)
        self.assertEqual(tool("run", self.wd.path, cwd=self.wd.path).rc, 126)

    def test_run_leaves_command_options_alone(self):
        # -l after COMMAND is the command's, not --level.
        r = tool("run", "sh", "-c", 'echo "$0 $1"', "-l", "-c", cwd=self.wd.path)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stdout.strip(), "-l -c")

    def test_run_forwards_sigterm(self):
        code = ("import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, lambda s, f: sys.exit(7))\n"
                "print('ready', flush=True)\n"
                "time.sleep(20)\n")
        p = subprocess.Popen([TOOL, "run", PYTHON, "-c", code], cwd=self.wd.path,
                             env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline().strip(), b"ready")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=RUN_TIMEOUT), 7)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()

    # -- run: what the library is given

    def test_run_environment(self):
        self.wd.write("policy.yaml", VALID)
        r = tool("run", "-c", "policy.yaml", "-o", "file:ev.log", "-l", "debug", "--observe",
                 "--seed", "42", "--", *PRINT_ENV, cwd=self.wd.path,
                 env={"LD_PRELOAD": "libm.so.6 " + LIB})
        env = self.env_of(r)
        cfg = env["BULWARK_CONFIG"]
        self.assertTrue(os.path.isabs(cfg), cfg)
        self.assertTrue(os.path.samefile(cfg, self.wd.file("policy.yaml")), cfg)
        self.assertEqual(env["BULWARK_LOG"], "file:" + os.path.join(
            os.path.dirname(cfg), "ev.log"))
        self.assertEqual(env["BULWARK_LEVEL"], "debug")
        self.assertEqual(env["BULWARK_MODE"], "observe")
        self.assertEqual(env["BULWARK_SEED"], "42")
        # Ours first and once; the other preload kept.
        entries = [e for e in re.split("[ :]", env["LD_PRELOAD"]) if e]
        self.assertTrue(os.path.isabs(entries[0]), entries)
        self.assertTrue(os.path.samefile(entries[0], LIB), entries)
        self.assertEqual(sum(os.path.exists(e) and os.path.samefile(e, LIB)
                             for e in entries), 1, entries)
        self.assertIn("libm.so.6", entries)

    def test_run_builtin_default_unsets_config(self):
        # No -c, no ./bulwark.yaml, an empty BULWARK_CONFIG: the built-in default, which
        # the library loads when BULWARK_CONFIG is absent.
        r = tool("run", *PRINT_ENV, cwd=self.wd.path, env={"BULWARK_CONFIG": ""})
        env = self.env_of(r)
        self.assertNotIn("BULWARK_CONFIG", env)
        self.assertTrue(os.path.samefile(env["LD_PRELOAD"].split(":")[0], LIB))

    def test_run_picks_up_cwd_policy(self):
        self.wd.write("bulwark.yaml", VALID)
        env = self.env_of(tool("run", *PRINT_ENV, cwd=self.wd.path))
        self.assertTrue(os.path.samefile(env["BULWARK_CONFIG"], self.wd.file("bulwark.yaml")))

    # -- run: programs LD_PRELOAD cannot reach

    def test_run_warns_about_static_binary(self):
        gcc = shutil.which("gcc") or shutil.which("cc")
        if not gcc:
            self.skipTest("no C compiler")
        libc_a = subprocess.run([gcc, "-print-file-name=libc.a"], stdout=subprocess.PIPE,
                                text=True).stdout.strip()
        if not os.path.isabs(libc_a) or not os.path.exists(libc_a):
            self.skipTest("no libc.a for a static link")
        src = self.wd.write("st.c", '#include <stdio.h>\nint main(void) { puts("ran"); return 0; }\n')
        exe = self.wd.file("st")
        subprocess.run([gcc, "-static", "-o", exe, src], check=True, timeout=120)
        r = tool("run", exe, cwd=self.wd.path)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stdout.strip(), "ran")
        self.assertEqual(r.stderr.count("statically linked"), 1, r)
        # The same program linked dynamically, and a script: no warning.
        dyn = self.wd.file("dyn")
        subprocess.run([gcc, "-o", dyn, src], check=True, timeout=120)
        script = self.wd.write("s.sh", "#!/bin/sh\necho ran\n")
        os.chmod(script, 0o755)
        for cmd in (dyn, script):
            r = tool("run", cmd, cwd=self.wd.path)
            self.assertEqual(r.rc, 0, r)
            self.assertNotIn("warning", r.stderr)

    def test_run_warns_about_go_binary(self):
        gcc = shutil.which("gcc") or shutil.which("cc")
        objcopy = shutil.which("objcopy")
        if not gcc or not objcopy:
            self.skipTest("no C compiler or objcopy")
        # A dynamic program marked the way Go's linker marks its output.
        src = self.wd.write("g.c", "int main(void) { return 0; }\n")
        plain, go = self.wd.file("plain"), self.wd.file("go")
        subprocess.run([gcc, "-o", plain, src], check=True, timeout=120)
        subprocess.run([objcopy, "--add-section", ".go.buildinfo=%s" % src, plain, go],
                       check=True, timeout=60)
        r = tool("run", go, cwd=self.wd.path)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Go program", r.stderr)
        # -q: a warning is not an error
        r = tool("run", "-q", go, cwd=self.wd.path)
        self.assertEqual((r.rc, r.stderr), (0, ""), r)

    # -- explain

    def explain(self, *args):
        pol = self.wd.write("policy.yaml", EXPLAIN)
        return tool("explain", "-c", pol, *args), pol

    def test_explain_address_rule(self):
        r, pol = self.explain("connect", "127.0.0.1:5432")
        self.assertEqual(r.rc, 0, r)
        self.assertIn('rule "pg"', r.stdout)
        self.assertIn("%s:%d" % (pol, rule_line(EXPLAIN, "pg")), r.stdout)

    def test_explain_no_rule(self):
        r, _ = self.explain("connect", "127.0.0.1:5433")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("no rule matches", r.stdout)
        r, _ = self.explain("sqlite", "/srv/app.db")
        self.assertIn("no rule matches", r.stdout)

    def test_explain_resolve(self):
        r, _ = self.explain("resolve", "db.internal")
        self.assertEqual(r.rc, 0, r)
        self.assertIn('rule "internal-names"', r.stdout)

    def test_explain_host_name_dest(self):
        r, _ = self.explain("connect", "localhost:5433")
        self.assertEqual(r.rc, 0, r)
        self.assertIn('rule "by-name"', r.stdout)
        self.assertNotIn("no rule matches", r.stdout)

    def test_explain_host_name_needs_no_lookup(self):
        # Every lookup fails (flakydns.so, preloaded into bulwark itself) and each one is
        # logged: the answer comes from the policy's names, and nothing is looked up.
        dnslog = self.wd.file("lookups.log")
        env = {"FLAKYDNS_FAILS": "1000", "FLAKYDNS_LOG": dnslog}
        pol = self.wd.write("policy.yaml", EXPLAIN + """\
  - name: db-by-name
    match: { ops: [connect], dest: ["db.invalid:5499", "*.internal:6000"] }
""")
        for target, rule in (("db.invalid:5499", "db-by-name"), ("localhost:5433", "by-name"),
                             ("cache.internal:6000", "db-by-name")):
            r = run([TOOL, "explain", "-c", pol, "connect", target], timeout=10, env=env,
                    preload=prog("flakydns.so"))
            self.assertEqual(r.rc, 0, r)
            self.assertIn('connect %s: rule "%s" (%s:%d), by host name %s\n' % (
                target, rule, pol, rule_line(open(pol).read(), rule), target.split(":")[0]),
                r.stdout)
            self.assertNotIn("no rule matches", r.stdout)
        self.assertFalse(os.path.exists(dnslog) and open(dnslog).read(), "looked up")
        # a rule that lists addresses applies only if the name resolves to one of them:
        # said so, with what applies at any other address
        r = run([TOOL, "explain", "-c", pol, "connect", "db.internal:5432"], timeout=10,
                env=env, preload=prog("flakydns.so"))
        self.assertEqual(r.rc, 0, r)
        self.assertIn('connect db.internal:5432: rule "pg" (%s:%d), if db.internal resolves '
                      'to an address it lists (127.0.0.1:5432)\n' % (pol, rule_line(EXPLAIN, "pg")),
                      r.stdout)
        self.assertIn("connect db.internal:5432 at any other address: no rule matches",
                      r.stdout)
        # --resolve looks the name up now, and explains each address
        r = run([TOOL, "explain", "-c", pol, "--resolve", "connect", "db.invalid:5499"],
                timeout=10, env=env, preload=prog("flakydns.so"))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("db.invalid", r.stderr)

    def test_explain_says_curl_never_asks_for_localhost(self):
        # curl answers "localhost" (and *.localhost) itself, without getaddrinfo: the
        # library never learns the name, so a rule on it never matches curl's connects
        note = "note: curl resolves localhost itself"
        r, _ = self.explain("connect", "localhost:5433")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(note, r.stdout)
        self.assertIn("(127.0.0.1:5433, [::1]:5433)", r.stdout)
        r, _ = self.explain("--prog", "curl", "connect", "localhost:5433")
        self.assertIn(note, r.stdout)
        r, _ = self.explain("--prog", "psql", "connect", "localhost:5433")
        self.assertIn('rule "by-name"', r.stdout)
        self.assertNotIn("note:", r.stdout)
        # an address, or a rule that takes any address, needs no name: no note
        r, _ = self.explain("connect", "127.0.0.1:5433")
        self.assertNotIn("note:", r.stdout)
        r, _ = self.explain("connect", "localhost:6379")
        self.assertIn('rule "cache-for-psql"', r.stdout)
        self.assertNotIn("note:", r.stdout)
        # the lookup itself: curl never makes it
        pol = self.wd.write("resolve.yaml", "version: 1\nrules:\n  - name: names\n"
                            "    match: { ops: [resolve], host: [localhost] }\n")
        r = tool("explain", "-c", pol, "resolve", "localhost")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("note: curl never looks up localhost", r.stdout)
        r = tool("explain", "-c", pol, "--prog", "python3", "resolve", "localhost")
        self.assertNotIn("note:", r.stdout)
        # a rule for other programs only: curl's habits are not its business
        pol = self.wd.write("psql.yaml", "version: 1\nrules:\n  - name: pg\n"
                            "    match: { ops: [connect], dest: [\"localhost:5432\"], "
                            "prog: [psql] }\n")
        r = tool("explain", "-c", pol, "connect", "localhost:5432")
        self.assertIn('rule "pg"', r.stdout)
        self.assertNotIn("note:", r.stdout)

    @unittest.skipUnless(harness.CURL, "curl is not installed")
    def test_curl_really_never_asks_for_localhost(self):
        # What the note says, checked against the curl on this machine: under a rule on
        # localhost:PORT with a recorded retry, curl's refused connect is not retried,
        # while the same rule on the address is.
        port = harness.free_port()
        for dest, retried in (("localhost:%d" % port, False), ("127.0.0.1:%d" % port, True)):
            pol, log = self.wd.policy(harness.rule(
                "r", ["connect"], [dest], "retry: { attempts: 2, backoff: { base: 1ms, "
                "max: 1ms } }"), name="p-%s.yaml" % retried, log="ev-%s.log" % retried)
            r = tool("run", "-q", "-c", pol, "--", harness.CURL, "-s", "-m", "5",
                     "http://localhost:%d/" % port)
            self.assertNotEqual(r.rc, 0, r)
            evs = harness.read_events(log) if os.path.exists(log) else []
            self.assertEqual(any(e["event"] == "retry" for e in evs), retried, (dest, evs))

    def test_explain_prog(self):
        r, _ = self.explain("connect", "[::1]:6379")
        self.assertEqual(r.rc, 0, r)
        self.assertIn('rule "cache-for-psql"', r.stdout)
        self.assertIn("psql", r.stdout)
        self.assertIn("no rule matches", r.stdout)   # for every other program
        r, _ = self.explain("--prog", "psql", "connect", "[::1]:6379")
        self.assertIn('rule "cache-for-psql"', r.stdout)
        self.assertNotIn("no rule matches", r.stdout)
        r, _ = self.explain("--prog", "curl", "connect", "[::1]:6379")
        self.assertNotIn("cache-for-psql", r.stdout)
        self.assertIn("no rule matches", r.stdout)

    def test_explain_usage_errors(self):
        self.assertEqual(self.explain("frobnicate", "x")[0].rc, 2)
        self.assertEqual(self.explain("connect", "127.0.0.1")[0].rc, 2)
        self.assertEqual(self.explain("connect")[0].rc, 2)

    # -- the rest

    def test_version(self):
        r = tool("version")
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.stdout, r"^bulwark \S+\n")
        self.assertIn("libyaml", r.stdout)
        for flag in ("--version", "-V"):
            self.assertEqual(tool(flag).stdout, r.stdout)

    def test_help_and_no_arguments(self):
        for args in (["--help"], ["help"]):
            r = tool(*args)
            self.assertEqual(r.rc, 0, r)
            self.assertIn("bulwark run", r.stdout)
            self.assertIn("bulwark report", r.stdout)
            self.assertIn("bulwark status", r.stdout)
        r = tool()
        self.assertEqual(r.rc, 2, r)
        self.assertIn("bulwark run", r.stderr)
        self.assertEqual(tool("frobnicate").rc, 2)

    def test_unbuilt_commands_say_so(self):
        # Every command bulwark --help names is built: none may answer "not built yet".
        empty = self.wd.file("no-state")
        for args in (["status", "--dir", empty],):
            r = tool(*args)
            self.assertNotIn("not built yet", r.stderr, r)
            # status: no group there, so health is unknown (3), not a usage error
            self.assertEqual(r.rc, 3, r)
            self.assertIn("health: unknown", r.stdout)


if __name__ == "__main__":
    unittest.main()
