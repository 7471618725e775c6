"""The flaky-run recipe of README.md (section 5), exactly as written:

    bulwark run --observe -o file:/tmp/obs.log -- make test
    bulwark report /tmp/obs.log

with no other flag, must name a connect the server refused and a connection it reset in
the middle of a reply. The suite here is written for the test: its service misbehaves
on a seeded plan, told by the suite (over a pipe) which test comes next, so that the same
tests fail the same way on every run, whatever the machine's load.
"""

import json
import os
import re
import subprocess
import unittest

from harness import PYTHON, TOOL, ShimTest, bulwark_run, run

# The service: on 127.0.0.1, one request line per connection ("GET key"), one line back.
# Before each test the suite writes "test N" on its stdin; the service makes ready what
# its plan says for that test and answers "ready N": "ok" (listening, answers), "refuse"
# (its listener closed: the connect is refused) or "reset" (it reads the request, sends
# half an answer and resets the connection). "quit" ends it.
SERVICE = r'''
import random, select, socket, struct, sys
seed, tests = int(sys.argv[1]), int(sys.argv[2])
plan = ["refuse", "reset"] + ["ok"] * (tests - 2)
random.Random(seed).shuffle(plan)
port = 0

def listen():
    global port
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port))
    l.listen(8)
    port = l.getsockname()[1]
    return l

l, mode = listen(), "ok"
print("port", port, " ".join(plan), flush=True)
while True:
    ready, _, _ = select.select([sys.stdin] + ([l] if l else []), [], [], 30)
    if not ready:
        sys.exit("no word from the suite in 30 s")
    if sys.stdin in ready:
        words = sys.stdin.readline().split()
        if not words or words[0] == "quit":
            sys.exit(0)
        mode = plan[int(words[1]) - 1]
        if mode == "refuse" and l:
            l.close()
            l = None
        elif mode != "refuse" and not l:
            l = listen()
        print("ready", words[1], flush=True)
        continue
    c, _ = l.accept()
    with c:
        key = c.makefile().readline().split()[-1]
        if mode == "reset":
            c.sendall(b"val")
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            c.sendall(("value-of-%s\n" % key).encode())
'''

# The suite: six tests, one request each, on a connection of its own.
SUITE = r'''
import os, socket, subprocess, sys, unittest
HERE = os.path.dirname(os.path.abspath(__file__))
SEED, TESTS = os.environ.get("FLAKY_SEED", "5"), 6
service = port = None

def setUpModule():
    global service, port
    service = subprocess.Popen([sys.executable, os.path.join(HERE, "service.py"), SEED,
                                str(TESTS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    port = int(service.stdout.readline().split()[1])

def tearDownModule():
    service.stdin.write("quit\n")
    service.stdin.close()
    service.wait(10)
    service.stdout.close()

def get(key):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("GET %s\n" % key).encode())
        return s.makefile().readline().strip()

class Client(unittest.TestCase):
    def setUp(self):
        n = self.id().rsplit("_", 1)[1]
        service.stdin.write("test %s\n" % n)
        service.stdin.flush()
        assert service.stdout.readline().split() == ["ready", n]

for n in range(1, TESTS + 1):
    setattr(Client, "test_%d" % n, lambda self, n=n: self.assertEqual(get("k%d" % n),
                                                                        "value-of-k%d" % n))

if __name__ == "__main__":
    unittest.main()
'''


class FlakyRecipe(ShimTest):

    def suite(self, seed="5"):
        d = os.path.join(self.wd.path, "suite")
        os.mkdir(d)
        for name, text in (("service.py", SERVICE), ("suite.py", SUITE)):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        return d

    def failing(self, out):
        """{test name: the exception that ended it} from unittest's output."""
        got = {}
        for block in out.split("=" * 70)[1:]:
            m = re.search(r"^(?:ERROR|FAIL): (test_\d+)", block.strip(), re.M)
            e = re.findall(r"^(\w+Error)\b", block, re.M)
            if m:
                got[m.group(1)] = e[-1] if e else "?"
        return got

    def test_report_names_a_refusal_and_a_reset(self):
        d = self.suite()
        # the same two tests fail the same way, bare: the plan of seed 5
        bare = run([PYTHON, "suite.py"], cwd=d, timeout=60)
        self.assertEqual(bare.rc, 1, bare)
        broken = self.failing(bare.stderr)
        self.assertEqual(sorted(broken.values()), ["ConnectionRefusedError",
                                                   "ConnectionResetError"], bare)

        # the recipe: observe into a file, no other flag, no policy file anywhere
        log = os.path.join(self.wd.path, "obs.log")
        r = bulwark_run(["--observe", "-o", "file:" + log], [PYTHON, "suite.py"], cwd=d,
                        timeout=60)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(self.failing(r.stderr), broken, r)     # observe changed nothing

        table = run([TOOL, "report", log])
        self.assertEqual(table.rc, 0, table)
        doc = json.loads(run([TOOL, "report", "--format", "json", log]).stdout)
        errors = {}
        for g in doc["destinations"]:
            for err, n in g["observe"]["errors"].items():
                errors[(g["rule"], err)] = errors.get((g["rule"], err), 0) + n
        ctx = "%s\n%r" % (table.stdout, errors)
        self.assertEqual(errors, {("default-connect", "ECONNREFUSED"): 1,
                                  ("default-observe", "ECONNRESET"): 1}, ctx)
        top = {e["err"]: e["count"] for e in doc["top_errors"]}
        self.assertEqual(top, {"ECONNREFUSED": 1, "ECONNRESET": 1}, ctx)
        # the table says both, and nothing is missing: every process logged its end
        self.assertIn("ECONNREFUSED", table.stdout)
        self.assertIn("ECONNRESET", table.stdout)
        self.assertEqual(doc["notes"], [], ctx)
        self.assertEqual(doc["processes"], 2, ctx)
        self.assertEqual({x["rule"]: x["processes"] for x in doc["rules"]}["default-observe"],
                         2, ctx)


if __name__ == "__main__":
    unittest.main()
