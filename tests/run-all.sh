#!/bin/sh
# The whole suite: cmocka unit tests, then integration tests; one closing line.
out=$(mktemp); trap 'rm -f "$out"' EXIT
sh tests/unit/run.sh "$@" >"$out" 2>&1; urc=$?
cat "$out"
python3 tests/integration/run.py >>"$out" 2>&1; irc=$?
sed -n '/^unit: [0-9]* passed/,$p' "$out" | tail -n +2
p=$(sed -n 's/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
f=$(sed -n 's/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$out" | awk '{s+=$1} END {print s+0}')
[ $urc -ne 0 ] || [ $irc -ne 0 ] && [ "$f" -eq 0 ] && f=1
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
