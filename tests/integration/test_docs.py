"""The documentation says what the code does: every policy it shows loads, the error it
prints for a typo is the one a typo gives, the commands it runs can be run as written, and
bulwark(1) names every option and environment variable there is. A drift fails here, not
in a reader's hands."""

import glob
import os
import re
import unittest

from harness import ROOT, TOOL, ShimTest, run

README = os.path.join(ROOT, "README.md")
EXAMPLE_READMES = sorted(glob.glob(os.path.join(ROOT, "examples", "*", "README.md")))
MARKDOWN = [README] + EXAMPLE_READMES + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
MAN = sorted(glob.glob(os.path.join(ROOT, "docs", "*.[15]")))
MAN1 = os.path.join(ROOT, "docs", "bulwark.1")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def fenced(path):
    """(line, language, text) of each fenced block of a Markdown file."""
    text = read(path)
    for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        yield text[:m.start()].count("\n") + 1, m.group(1), m.group(2)


def man_examples(path):
    """(line, text) of each .nf/.fi block of a man page, roff escapes undone."""
    text = read(path)
    for m in re.finditer(r"^\.nf\n(.*?)^\.fi", text, re.S | re.M):
        body = m.group(1).replace("\\-", "-").replace("\\e", "\\").replace("\\(aq", "'")
        yield text[:m.start()].count("\n") + 1, body


def policies():
    """(where, text) of every whole policy the documentation shows. A block is a policy
    when it has `rules:` or starts like one; a fragment (`retry:` alone) is not, nor an
    outline with `{ ... }` in place of a section (bulwark.yaml(5), OVERVIEW)."""
    out = []
    for path in MARKDOWN:
        for line, lang, body in fenced(path):
            if lang in ("yaml", "") and re.search(r"(?m)^(version|rules):", body):
                out.append(("%s:%d" % (os.path.relpath(path, ROOT), line), body))
    for path in MAN:
        for line, body in man_examples(path):
            if re.search(r"(?m)^(version|rules):", body) and "{ ... }" not in body:
                out.append(("%s:%d" % (os.path.relpath(path, ROOT), line), body))
    return out


class Docs(ShimTest):

    def test_every_policy_shown_loads(self):
        found = policies()
        self.assertGreaterEqual(len(found), 8, found)
        for where, text in found:
            with self.subTest(where=where):
                self.assertRegex(text, r"(?m)^version: 1\b", "%s: no `version: 1`" % where)
                pol = self.wd.write("shown.yaml", text)
                r = run([TOOL, "check", pol])
                self.assertEqual(r.rc, 0, "%s does not load:\n%s" % (where, r.stderr))

    def test_the_typo_example_prints_what_a_typo_prints(self):
        # README: the tour's policy with `attempts` misspelled, and the line it gives
        text = read(README)
        policy = next(body for _, lang, body in fenced(README)
                      if lang == "yaml" and body.startswith("# bulwark.yaml"))
        shown = re.search(r"(?m)^bulwark\.yaml:\d+:\d+: .*attemps.*$", text)
        self.assertIsNotNone(shown, "README shows no typo error")
        typo = re.sub(r"\battempts:", "attemps:", policy, count=1)
        self.assertNotEqual(typo, policy)
        self.wd.write("bulwark.yaml", typo)
        r = run([TOOL, "check", "bulwark.yaml"], cwd=self.wd.path)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.stderr.splitlines()[0], shown.group(0))

    def test_commands_name_the_command_they_run(self):
        # In the README, commands run the build's command (build/bulwark); elsewhere a bare
        # `bulwark` is the installed one, and the page says how it gets installed.
        for path in MARKDOWN:
            bare = []
            for line, lang, body in fenced(path):
                if lang not in ("sh", ""):
                    continue
                for i, l in enumerate(body.splitlines()):
                    cmd = l[2:] if l.startswith("$ ") else l if lang == "sh" else ""
                    if re.match(r"\s*bulwark\s", cmd) or re.search(r"\|\s*bulwark\s", cmd):
                        bare.append("%d: %s" % (line + 1 + i, l))
            rel = os.path.relpath(path, ROOT)
            with self.subTest(path=rel):
                if path == README:
                    self.assertEqual(bare, [], "README: use build/bulwark")
                elif bare:
                    self.assertTrue("make install" in read(path),
                                    "%s runs a bare bulwark without saying how it is "
                                    "installed:\n%s" % (rel, "\n".join(bare)))

    def test_man_page_names_every_option(self):
        man = read(MAN1).replace("\\-", "-")
        usage = run([TOOL, "--help"]).stdout
        options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-zA-Z])\b", usage))
        self.assertIn("-V", options)
        missing = sorted(o for o in options if not re.search(r"(?<![\w-])%s\b" % re.escape(o),
                                                              man))
        self.assertEqual(missing, [], "bulwark --help has options bulwark(1) does not name")

    def test_man_page_names_every_environment_variable(self):
        names = set()
        for path in glob.glob(os.path.join(ROOT, "*", "*.c")) + \
                glob.glob(os.path.join(ROOT, "shim", "*", "*.c")):
            names.update(re.findall(r'getenv\("(BULWARK_[A-Z_]+)"\)', read(path)))
        self.assertIn("BULWARK_GROUP", names)
        env = read(MAN1).split(".SH ENVIRONMENT", 1)[1].split("\n.SH ", 1)[0]
        missing = sorted(n for n in names if not re.search(r"(?m)^\.B %s$" % n, env))
        self.assertEqual(missing, [], "read by the code, not in bulwark(1) ENVIRONMENT")


if __name__ == "__main__":
    unittest.main()
