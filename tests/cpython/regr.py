"""CPython's regression test driver (`python3 -m test`), recording every test's outcome.

usage: python3 regr.py OUT.jsonl REGRTEST_ARG...

Runs regrtest in this process exactly as `python3 -m test REGRTEST_ARG...` would (same
resource gating, same fixtures), and appends one JSON object per outcome to OUT.jsonl as
it happens: {"id", "outcome", "detail"}, outcome one of ok, fail, error, skip, xfail, xpass.
regrtest's own summary and its --junit-xml leave out what a comparison needs: an error in
setUpClass or setUpModule never reaches the XML, and a failing subtest there has no name.
A test with subtests gets one line per subtest outcome that is not a plain pass, under
the id of the test itself; run.py keeps the worst. Written line by line, so a run that
hangs or crashes still leaves what it got through.
"""

import json
import os
import sys
import unittest
import unittest.case
import unittest.result
import unittest.suite


def _test_id(test):
    if isinstance(test, unittest.case._SubTest):
        return test.test_case.id()
    if isinstance(test, unittest.suite._ErrorHolder):
        # "setUpClass (test.test_x.Class)": a fixture, reported as itself.
        return test.description
    try:
        return test.id()
    except Exception:
        return str(test)


def _detail(err):
    if not err:
        return ""
    etype, value, _ = err
    text = "%s: %s" % (getattr(etype, "__name__", etype), value)
    return text.splitlines()[0][:300] if text else ""


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    out_path = sys.argv[1]
    out = open(out_path, "a", buffering=1, encoding="utf-8")
    pid = os.getpid()

    # regrtest's result class moved between 3.11 releases.
    ours = unittest.TestResult
    for where in ("test.libregrtest.testresult", "test.support.testresult"):
        try:
            ours = __import__(where, fromlist=["x"]).RegressionTestResult
            break
        except (ImportError, AttributeError):
            pass

    def record(result, test, outcome, detail=""):
        # Only the results of regrtest's own runner, in this process: a test that runs
        # a unittest suite of its own, or a forked child that returns, is not ours.
        if os.getpid() != pid or not isinstance(result, ours):
            return
        out.write(json.dumps({"id": _test_id(test), "outcome": outcome,
                              "detail": detail}) + "\n")

    base = unittest.result.TestResult
    orig = {name: getattr(base, name) for name in
            ("addSuccess", "addError", "addFailure", "addSkip", "addExpectedFailure",
             "addUnexpectedSuccess", "addSubTest")}

    def addSuccess(self, test):
        record(self, test, "ok")
        return orig["addSuccess"](self, test)

    def addError(self, test, err):
        record(self, test, "error", _detail(err))
        return orig["addError"](self, test, err)

    def addFailure(self, test, err):
        record(self, test, "fail", _detail(err))
        return orig["addFailure"](self, test, err)

    def addSkip(self, test, reason):
        record(self, test, "skip", str(reason)[:300])
        return orig["addSkip"](self, test, reason)

    def addExpectedFailure(self, test, err):
        record(self, test, "xfail", _detail(err))
        return orig["addExpectedFailure"](self, test, err)

    def addUnexpectedSuccess(self, test):
        record(self, test, "xpass")
        return orig["addUnexpectedSuccess"](self, test)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            record(self, subtest, kind, "%s: %s" % (subtest._subDescription(), _detail(err)))
        return orig["addSubTest"](self, test, subtest, err)

    for name, fn in list(locals().items()):
        if name in orig:
            setattr(base, name, fn)

    from test.libregrtest.main import main as regrtest_main
    sys.argv = [sys.argv[0]] + sys.argv[2:]
    regrtest_main()


if __name__ == "__main__":
    sys.exit(main())
