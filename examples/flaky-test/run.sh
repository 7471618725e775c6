#!/bin/sh
# The three steps of README.md, non-interactively:
#   1. observe: run the flaky suite under `bulwark run --observe` until it fails, and let
#      `bulwark report` name the cause (rule, destination, error);
#   2. reproduce: inject.yaml makes it fail on every run, at the same calls;
#   3. cure: cure.yaml makes it pass on every run, and inject-cure.yaml shows the retry
#      beating the reproduced failure too.
# Exits 0 when all of that happens as described, 1 (with the reason) when not.
#   sh examples/flaky-test/run.sh          BULWARK=path/to/bulwark to use another build
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
BULWARK=${BULWARK:-$here/../../build/bulwark}
# installed copies of the examples use the installed tool
[ -x "$BULWARK" ] || BULWARK=$(command -v bulwark || echo "$BULWARK")
[ -x "$BULWARK" ] || { echo "run.sh: $BULWARK is not built: run make" >&2; exit 1; }
# The real interpreter, not a wrapper script (pyenv): fewer processes in the logs.
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
unset BULWARK_CONFIG BULWARK_LOG BULWARK_LEVEL BULWARK_MODE BULWARK_SEED BULWARK_DISABLE \
      LD_PRELOAD 2>/dev/null || true
tmp=$(mktemp -d /tmp/flaky-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
# One port for every run, so the report adds the runs up under one destination.
FLAKY_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export FLAKY_PORT
dest="127.0.0.1:$FLAKY_PORT"

fail() {
	echo "run.sh: FAILED: $*" >&2
	exit 1
}

# failing_tests OUTPUT: the names of the tests that failed or errored, sorted, one line.
failing_tests() {
	sed -n 's/^\(ERROR\|FAIL\): \(test_[a-z_]*\).*/\2/p' "$1" | sort | tr '\n' ' '
}

echo "== 0. the suite alone, 6 runs (P passed, F failed)"
line=""
for i in 1 2 3 4 5 6; do
	if "$PY" test_suite.py >"$tmp/plain.out" 2>&1; then line="${line}P"; else line="${line}F"; fi
done
echo "   $line"

echo "== 1. observe: run under --observe until a run fails, then report"
n=0
failed=0
while [ $n -lt 20 ]; do
	n=$((n + 1))
	# the built-in default, whatever policy the user keeps in ~/.config
	if env -u BULWARK_CONFIG XDG_CONFIG_HOME="$tmp" \
		"$BULWARK" run --observe -o "file:$tmp/observe.log" -- \
		"$PY" test_suite.py >"$tmp/observe.out" 2>&1; then
		echo "   run $n: passed"
	else
		echo "   run $n: failed: $(failing_tests "$tmp/observe.out")"
		failed=1
		break
	fi
done
[ $failed = 1 ] || fail "the suite passed 20 times in a row under --observe"
grep -q "ConnectionRefusedError" "$tmp/observe.out" ||
	fail "the observed failure is not a refused connection:
$(cat "$tmp/observe.out")"

"$BULWARK" report "$tmp/observe.log" | sed 's/^/   /'
"$BULWARK" report --format json "$tmp/observe.log" >"$tmp/report.json" ||
	fail "bulwark report --format json"
# The cause: which rule and destination failed, with what error, in observe mode.
"$PY" - "$dest" "$tmp/report.json" <<'PY' || fail "the cause was not found"
import json, sys
dest, report = sys.argv[1], sys.argv[2]
errs = {}
doc = json.load(open(report))
# with no flag but -o, nothing may be missing: fail and exit events of every process
if doc["notes"]:
    sys.exit("the report says figures are missing: %s" % "; ".join(doc["notes"]))
for d in doc["destinations"]:
    if d["dest"] != dest:
        continue
    for err, n in d["observe"]["errors"].items():
        errs[(d["rule"], err)] = errs.get((d["rule"], err), 0) + n
src = "bulwark report"
hits = {k: n for k, n in errs.items() if k[1] == "ECONNREFUSED"}
if not hits:
    sys.exit("no ECONNREFUSED on %s in %s: %r" % (dest, src, errs))
for (rule, err), n in sorted(hits.items()):
    print("   cause (from %s): rule %s, dest %s: %d x %s, in observe mode"
          % (src, rule, dest, n, err))
PY

echo "== 2. reproduce: inject.yaml, 3 runs, each must fail at the same calls"
ref=""
for i in 1 2 3; do
	rm -f "$tmp/inject.log"
	if "$BULWARK" run -c inject.yaml -o "file:$tmp/inject.log" -- \
		"$PY" test_suite.py >"$tmp/inject.out" 2>&1; then
		fail "run $i under inject.yaml passed:
$(cat "$tmp/inject.out")"
	fi
	tests=$(failing_tests "$tmp/inject.out")
	# Refusals the service made by itself (fail events not marked injected) shift which
	# call comes k-th; only runs without them must match the reference exactly.
	counts=$("$PY" - "$tmp/inject.log" <<'PY'
import json, sys
inj = nat = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "injected":
        inj += 1
    elif e.get("event") == "fail" and not e.get("injected"):
        nat += 1
print(inj, nat)
PY
)
	set -- $counts
	echo "   run $i: failed: $tests ($1 injected, $2 refused by the service itself)"
	[ "$1" -ge 1 ] || fail "run $i: no injected fault"
	if [ "$2" = 0 ]; then
		if [ -z "$ref" ]; then
			ref="$tests|$1"
		elif [ "$ref" != "$tests|$1" ]; then
			fail "run $i differs from an earlier clean run: $tests|$1 vs $ref"
		fi
	fi
done

echo "== 3. cure: cure.yaml, 5 runs, each must pass"
for i in 1 2 3 4 5; do
	"$BULWARK" run -c cure.yaml -o "file:$tmp/cure.log" -- \
		"$PY" test_suite.py >"$tmp/cure.out" 2>&1 ||
		fail "run $i under cure.yaml failed:
$(cat "$tmp/cure.out")"
done
rec=$(grep -c '"event":"recovered"' "$tmp/cure.log")
echo "   5 passed; the service refused and the retry recovered $rec connect(s)"

echo "== 3b. the cure against the reproduced failure: inject-cure.yaml"
"$BULWARK" run -c inject-cure.yaml -o "file:$tmp/ic.log" -- \
	"$PY" test_suite.py >"$tmp/ic.out" 2>&1 ||
	fail "the suite failed under inject-cure.yaml:
$(cat "$tmp/ic.out")"
inj=$(grep -c '"event":"injected"' "$tmp/ic.log")
rec=$(grep -c '"event":"recovered"' "$tmp/ic.log")
[ "$inj" -ge 1 ] && [ "$rec" -ge 1 ] ||
	fail "inject-cure.yaml: want injected and recovered events, got $inj and $rec"
echo "   passed: $inj injected refusal(s), $rec connect(s) recovered"

echo "run.sh: OK: flaky alone, cause found, reproduced every time, cured"
