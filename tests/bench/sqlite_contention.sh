#!/bin/sh
# SQLite writers under contention: SQLite's own busy_timeout against bulwark's retry.
#
#   A: WRITERS processes, each making N autocommit INSERTs into one database, with
#      sqlite3_busy_timeout(T ms) and no shim: SQLite waits for the lock itself.
#   B: the same program with busy_timeout 0 (no busy handler) under LD_PRELOAD and a
#      sqlite rule whose total wait budget is the same T: retry deadline T, full jitter.
#
# Both must finish with zero errors (every INSERT done, WRITERS x N distinct rows). Prints
# the throughput of each as the median of interleaved runs (A, B, A, B ...) and the ratio
# B/A: 1.0 = the shim's retry moves as many rows per second as SQLite's own busy handler.
# Never judges a timing: exit 0 when every run was measured without an error, 1 when
# something could not run or a run had errors (the report says which).
#
# Knobs (environment): BENCH_SQLITE_PAIRS (default 7, at least 5), BENCH_SQLITE_WRITERS
# (4), BENCH_SQLITE_N (INSERTs per writer, 200), BENCH_SQLITE_TIMEOUT_MS (T, 5000: the
# busy timeout python3's sqlite3 sets), BENCH_SQLITE_BACKOFF (the rule's backoff,
# "{ base: 1ms, max: 100ms, jitter: full }"), BENCH_SQLITE_LEVEL (the policy's log level,
# warn: the built-in default's), BENCH_LIB (another build of the library).
set -u
cd "$(dirname "$0")/../.." || exit 1

unset LD_PRELOAD BULWARK_CONFIG BULWARK_LOG BULWARK_LEVEL BULWARK_MODE BULWARK_SEED BULWARK_DISABLE

OUT=build/bench
S=$OUT/sqlite-samples
LIB=${BENCH_LIB:-build/libbulwark.so}
SNAP=$PWD/$OUT/libbulwark-sqlite.so
PAIRS=${BENCH_SQLITE_PAIRS:-7}
WRITERS=${BENCH_SQLITE_WRITERS:-4}
N=${BENCH_SQLITE_N:-200}
T=${BENCH_SQLITE_TIMEOUT_MS:-5000}
BACKOFF=${BENCH_SQLITE_BACKOFF:-"{ base: 1ms, max: 100ms, jitter: full }"}
LEVEL=${BENCH_SQLITE_LEVEL:-warn}
WATCHDOG=120

[ "$PAIRS" -ge 5 ] 2>/dev/null || PAIRS=5
say() { printf '%s\n' "$*" >&2; }

if [ ! -f "$LIB" ]; then
	say "sqlite bench: $LIB is missing; run make first"
	exit 1
fi
rm -rf "$S"
mkdir -p "$S" || exit 1
if ! ${CC:-cc} -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE \
	-o "$OUT/sqlite_contention" tests/bench/sqlite_contention.c -lsqlite3; then
	say "sqlite bench: cannot build tests/bench/sqlite_contention.c (libsqlite3-dev installed?)"
	exit 1
fi
# The library may be rebuilt by others while we measure: every run uses this one copy.
cp -p "$LIB" "$SNAP.tmp" && mv "$SNAP.tmp" "$SNAP" || exit 1

# The shim's events of every B run go to one file, outside the timed loop's stderr.
EVLOG=$PWD/$S/events.log
POLICY=$OUT/policy-sqlite.yaml
cat >"$POLICY" <<EOF
version: 1
log: { sink: "file:$EVLOG", level: $LEVEL }
rules:
  - name: bench-sqlite
    match: { ops: [sqlite] }
    retry: { attempts: 100, backoff: $BACKOFF, deadline: ${T}ms }
EOF

# Does the shim load this policy? A preload ld.so cannot open, or a refused policy, would
# otherwise be measured as a shim that changes nothing.
probe=$(env LD_PRELOAD="$SNAP" BULWARK_CONFIG="$PWD/$POLICY" BULWARK_LOG=stderr \
	BULWARK_LEVEL=info timeout 30 /bin/true 2>&1)
case $probe in
*'"event":"start"'*) ;;
*)
	say "sqlite bench: the shim did not load $POLICY:"
	say "$(printf '%s\n' "$probe" | head -n 3)"
	exit 1 ;;
esac
hooked=$(nm -D --defined-only "$SNAP" 2>/dev/null | awk '{ sub(/@.*/, "", $3); print $3 }' |
	grep -c '^sqlite3_step$')

DB=$PWD/$S/bench.db
fresh() { rm -f "$DB" "$DB-journal" "$DB-wal" "$DB-shm"; }

# sample NAME CMD...: one run on a fresh database; its number goes to $S/NAME, a failure
# (errors, a crash, the watchdog) to $S/NAME.errors with the program's last words.
sample() {
	name=$1; shift
	fresh
	out=$(timeout -k 5 "$WATCHDOG" "$@" 2>"$S/$name.last")
	rc=$?
	v=$(printf '%s\n' "$out" | awk '$1 == "inserts_per_s" && $2 + 0 > 0 { print $2 }')
	cat "$S/$name.last" >>"$S/$name.log"
	if [ $rc -eq 0 ] && [ -n "$v" ]; then
		echo "$v" >>"$S/$name"
	else
		why=$(tail -n 1 "$S/$name.last")
		[ $rc -eq 124 ] || [ $rc -eq 137 ] && why="no result within ${WATCHDOG}s (hung?)"
		echo "run $i: exit $rc: ${why:-no output}" >>"$S/$name.errors"
	fi
}

median() {
	sort -g "$1" | awk '{ v[NR] = $1 }
		END { if (NR == 0) exit 1; m = int((NR + 1) / 2)
		      print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'
}

echo "bulwark sqlite bench $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "library: $LIB built $(date -u -r "$SNAP" +%Y-%m-%dT%H:%M:%SZ)," \
	"sha256 $(sha256sum "$SNAP" | cut -c1-12)$([ "$hooked" -ge 1 ] || echo ', sqlite3_step NOT interposed')"
echo "sqlite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1), $(nproc) cpus," \
	"load $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "work: $WRITERS writer processes x $N autocommit INSERTs on one database (rollback" \
	"journal), $PAIRS interleaved pairs"
echo "  A: busy_timeout ${T}ms, no shim"
echo "  B: busy_timeout 0, shim: retry { attempts: 100, backoff: $BACKOFF, deadline: ${T}ms }"
say "sqlite bench: $PAIRS pairs of $WRITERS x $N INSERTs"

i=1
while [ $i -le "$PAIRS" ]; do
	sample A "$OUT/sqlite_contention" "$DB" "$WRITERS" "$N" "$T"
	sample B env "LD_PRELOAD=$SNAP" "BULWARK_CONFIG=$PWD/$POLICY" \
		"$OUT/sqlite_contention" "$DB" "$WRITERS" "$N" 0
	i=$((i + 1))
done
fresh

echo "machine: load $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo
status=0
for side in A B; do
	if [ -s "$S/$side.errors" ]; then
		status=1
		echo "$side: $(wc -l <"$S/$side.errors") of $PAIRS runs had errors:"
		sed 's/^/  /' "$S/$side.errors"
	fi
done
if [ -s "$S/A" ] && [ -s "$S/B" ]; then
	ma=$(median "$S/A") mb=$(median "$S/B")
	iqr=$(paste "$S/A" "$S/B" | awk 'NF == 2 { print $2 / $1 }' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) exit
			q1 = int((NR + 3) / 4); q3 = int((3 * NR + 3) / 4)
			printf "%.2f-%.2f", v[q1], v[q3] }')
	fmt='%-18s %-10s %14s %14s %9s  %-10s %s\n'
	printf "$fmt" benchmark metric "A busy_timeout" "B shim retry" "ratio B/A" "pair IQR" runs
	printf "$fmt" sqlite/contention inserts/s "$ma" "$mb" \
		"$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", b / a }')" "$iqr" \
		"$(wc -l <"$S/A")+$(wc -l <"$S/B")"
else
	status=1
	echo "sqlite/contention: not measured (no successful run on one side)"
fi
# What the shim did over all B runs, from its events (the level may hide some).
ev() { grep -c "\"event\":\"$1\"" "$EVLOG" 2>/dev/null || true; }
echo
echo "shim over the B runs (log level $LEVEL): $(ev retry) retries, $(ev recovered) calls" \
	"recovered, $(ev gave_up) gave up"
echo "sqlite bench: raw samples, stderr and events in $S/"
[ -s "$S/A.errors" ] || [ -s "$S/B.errors" ] && status=1
exit $status
