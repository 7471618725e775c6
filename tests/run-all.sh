#!/bin/sh
# The whole suite, one closing line: cmocka unit tests, integration tests with real
# programs, the differential conformance suite, CPython's own suites bare and under the
# library, then (with --sanitizers) the ASan+UBSan and TSan runs.
# usage: run-all.sh [--sanitizers] UNIT_BINARY...
san=0
if [ "${1:-}" = "--sanitizers" ]; then san=1; shift; fi
out=$(mktemp); trap 'rm -f "$out"' EXIT
rc=0
step() {
	"$@" >>"$out.step" 2>&1 || rc=1
	cat "$out.step"; cat "$out.step" >>"$out"; rm -f "$out.step"
}
step sh tests/unit/run.sh "$@"
step python3 tests/integration/run.py
step python3 tests/conformance/run.py
step python3 tests/cpython/run.py
if [ $san -eq 1 ]; then
	step env ASAN_OPTIONS=detect_leaks=1 sh tests/unit/run.sh build-asan/tests/test_*
	step python3 tests/sanitize/run.py build-asan asan
	step setarch -R sh tests/unit/run.sh build-tsan/tests/test_*
	step python3 tests/sanitize/run.py build-tsan tsan
fi
p=$(sed -n 's/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
f=$(sed -n 's/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$out" | awk '{s+=$1} END {print s+0}')
[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
