#!/bin/sh
# The whole suite, streamed as it runs, with one closing line "N passed, M failed" that CI
# reads.
# usage: run-all.sh [PASS...]   PASS: plain (default), asan, tsan
#   make check: plain; make test: plain asan tsan; make check-asan: asan
#
# A step is one line at the bottom: `step PASS KEY "TITLE" COMMAND...`. COMMAND ends its
# output with its own closing line "WORD: N passed, M failed[, K skipped]", and may list
# each failure as "WORD: failed ID". KEY names the tests a step runs: the same tests run
# again under a sanitizer have the same KEY and count once in the closing line, failed if
# they failed in any pass (by ID where the step lists them, else the most failures of any
# pass). Each pass is also summed up on its own before the closing line.
passes=${*:-plain}
for pass in $passes; do
	case $pass in
	plain | asan | tsan) ;;
	*) echo "run-all.sh: unknown pass '$pass' (plain, asan, tsan)" >&2; exit 2 ;;
	esac
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# Python's output must stream through the pipe below, not wait for a full buffer.
export PYTHONUNBUFFERED=1
t0=$(date +%s)
: >"$tmp/steps"

pass_title() {
	case $1 in
	plain) echo "plain" ;;
	asan) echo "ASan+UBSan" ;;
	tsan) echo "TSan" ;;
	*) echo "$1" ;;
	esac
}

step() {
	pass=$1 key=$2 title=$3; shift 3
	case " $passes " in *" $pass "*) ;; *) return 0 ;; esac
	[ "$pass" = plain ] || title="$(pass_title "$pass"): $title"
	echo
	cmd=$*; [ ${#cmd} -gt 72 ] && cmd="$(echo "$cmd" | cut -c1-69)..."
	echo "== $title ($cmd)"
	s0=$(date +%s)
	{ "$@" 2>&1; echo $? >"$tmp/rc"; } | tee "$tmp/out"
	rc=$(cat "$tmp/rc")
	line=$(grep -E '^[A-Za-z_-]+: [0-9]+ passed, [0-9]+ failed' "$tmp/out" | tail -n 1)
	p=$(echo "$line" | sed -n 's/^[^:]*: \([0-9]*\) passed.*/\1/p')
	f=$(echo "$line" | sed -n 's/^[^:]*: [0-9]* passed, \([0-9]*\) failed.*/\1/p')
	k=$(echo "$line" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p')
	# a step that failed without saying so (a crash, a build missing) is one failure
	[ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ] && f=1
	sed -n 's/^[A-Za-z_-]*: failed \(.*\)$/\1/p' "$tmp/out" >>"$tmp/ids.$key"
	secs=$(($(date +%s) - s0))
	printf '%s|%s|%s|%s|%s|%s|%s\n' "$pass" "$key" "$title" "${p:-0}" "${f:-0}" "${k:-0}" "$secs" \
		>>"$tmp/steps"
	echo "-- $title: ${p:-0} passed, ${f:-0} failed${k:+, $k skipped} (${secs}s)"
}

summary() {
	echo
	echo "== summary ($(($(date +%s) - t0))s)"
	awk -F'|' '{ printf "  %-40s %5d passed, %d failed%s  %ds\n", $3, $4, $5,
		($6 > 0 ? ", " $6 " skipped" : ""), $7 }' "$tmp/steps"
	for pass in $passes; do
		[ "$pass" = plain ] && continue
		awk -F'|' -v p="$pass" -v t="$(pass_title "$pass") pass" '$1 == p { a += $4; b += $5 }
			END { printf "  %-40s %5d passed, %d failed\n", t, a, b }' "$tmp/steps"
	done
	# Each KEY once: its largest count of tests, its failures united over the passes.
	total=0 failed=0
	for key in $(cut -d'|' -f2 "$tmp/steps" | sort -u); do
		n=$(awk -F'|' -v k="$key" '$2 == k && $4 + $5 > m { m = $4 + $5 } END { print m + 0 }' "$tmp/steps")
		fc=$(awk -F'|' -v k="$key" '$2 == k && $5 > m { m = $5 } END { print m + 0 }' "$tmp/steps")
		fi=$(sort -u "$tmp/ids.$key" 2>/dev/null | grep -c .)
		[ "$fi" -gt "$fc" ] && fc=$fi
		[ "$fc" -gt "$n" ] && n=$fc
		total=$((total + n)); failed=$((failed + fc))
	done
	[ "$passes" = plain ] || echo "  (the closing line counts each test once, failed if it failed in any pass)"
	passed=$((total - failed))
	# a run that ran nothing must not pass for a green one
	[ "$total" -eq 0 ] && { echo "run-all.sh: no test ran" >&2; failed=1; }
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

step plain unit        "unit tests"           sh tests/unit/run.sh build/tests/test_*
step plain integration "integration tests"    python3 tests/integration/run.py
step plain conformance "conformance: bare and under policies that must not act" python3 tests/conformance/run.py
step plain cpython     "CPython's own suites, bare and under the library" python3 tests/cpython/run.py
step plain deps        "packages: probe, never install unasked" sh tests/deps/run.sh
step plain install     "install, completion, uninstall" sh tests/install/run.sh
step asan  unit        "unit tests"           env ASAN_OPTIONS=detect_leaks=1 sh tests/unit/run.sh build-asan/tests/test_*
step asan  sanitize    "programs"             python3 tests/sanitize/run.py build-asan asan
step tsan  unit        "unit tests"           setarch -R sh tests/unit/run.sh build-tsan/tests/test_*
step tsan  sanitize    "programs"             python3 tests/sanitize/run.py build-tsan tsan

summary
