#!/bin/sh
# Run each cmocka binary; one line per binary as it finishes, a line
# "unit: failed BINARY:TEST" per failed test (a binary that died without naming one gives
# BINARY:*), and the closing line "unit: N passed, N failed".
pass=0; fail=0
for t in "$@"; do
	name=$(basename "$t")
	out=$("$t" 2>&1); rc=$?
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
	if [ $rc -ne 0 ]; then
		printf '%s\n' "$out" | grep -E 'FAILED|ERROR|Failure|error' | head -20
		printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([^ ]*\)$/\1/p' | sort -u |
			sed "s/^/unit: failed $name:/"
		if [ -z "$f" ]; then
			fail=$((fail + 1))
			echo "unit: failed $name:*"
		fi
		echo "  $name: exit $rc, ${p:-0} passed, ${f:-?} failed"
	else
		echo "  $name: ${p:-0} passed"
	fi
done
echo "unit: $pass passed, $fail failed"
[ $fail -eq 0 ]
