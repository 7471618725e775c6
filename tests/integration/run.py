#!/usr/bin/env python3
"""Run the integration tests (tests/integration/test_*.py) and print one closing line:

    integration: N passed, N failed[, N skipped]

Exit status 0 only when nothing failed or errored. `python3 tests/integration/run.py
[PATTERN...]` runs only the tests whose id contains one of the patterns.
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def selected(suite, patterns):
    """Flatten suite, keeping the tests whose id contains a pattern (all when none)."""
    out = []
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            out.extend(selected(t, patterns))
        elif not patterns or any(p in t.id() for p in patterns):
            out.append(t)
    return out


class CountingResult(unittest.TextTestResult):
    """Counts passes itself: an error in a module or class fixture is reported without
    a test having run, so testsRun minus the rest would undercount."""

    passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(argv):
    os.environ.setdefault("BULWARK_BUILD", os.path.join(ROOT, "build"))
    os.environ["BULWARK_BUILD"] = os.path.abspath(os.environ["BULWARK_BUILD"])
    sys.path.insert(0, HERE)

    loader = unittest.TestLoader()
    suite = unittest.TestSuite(selected(loader.discover(HERE, pattern="test_*.py",
                                                        top_level_dir=HERE), argv))
    t0 = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2,
                                     resultclass=CountingResult)
    result = runner.run(suite)
    # A failed import shows up as one errored pseudo-test: it counts as a failure.
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.passed
    line = "integration: %d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    sys.stderr.write("integration: took %.0fs\n" % (time.monotonic() - t0))
    sys.stderr.flush()
    print(line)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
