#!/bin/sh
# What a pg rule that never fires costs a PostgreSQL client: pgbench -S (read-only
# transactions) bare and under the library with a rule on every libpq call (retry and
# breaker armed, never needed), in interleaved runs, once on one connection per client
# and once with a new connection per transaction (-C, where the connect hooks work
# hardest). Prints transactions/s of each side as the median of the runs and the ratio
# (1.0 = no cost). Never judges a timing; exit 0 when every run was measured, 1 when one
# could not run. Skipped, with a line saying so, where PostgreSQL is not installed.
#
# Knobs (environment): BENCH_PG_PAIRS (default 5, at least 3), BENCH_PG_SECONDS (per run,
# 3), BENCH_LIB (another build of the library).
set -u
cd "$(dirname "$0")/../.." || exit 1
unset LD_PRELOAD BULWARK_CONFIG BULWARK_LOG BULWARK_LEVEL BULWARK_MODE BULWARK_SEED BULWARK_DISABLE

OUT=build/bench
S=$OUT/pg-samples
LIB=${BENCH_LIB:-build/libbulwark.so}
SNAP=$PWD/$OUT/libbulwark-pg.so
PAIRS=${BENCH_PG_PAIRS:-5}
SECS=${BENCH_PG_SECONDS:-3}
[ "$PAIRS" -ge 3 ] 2>/dev/null || PAIRS=3

if ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1; then
	echo "pg bench: skipped: PostgreSQL (pgbench) is not installed"
	exit 0
fi
[ -f "$LIB" ] || { echo "pg bench: $LIB is missing; run make first" >&2; exit 1; }
rm -rf "$S"
mkdir -p "$S" || exit 1
cp -p "$LIB" "$SNAP.tmp" && mv "$SNAP.tmp" "$SNAP" || exit 1
. examples/postgres-restart/cluster.sh

POLICY=$PWD/$OUT/policy-pg.yaml
EVLOG=$PWD/$S/events.log
printf '%s\n' "version: 1" "log: { sink: \"file:$EVLOG\", level: info }" "rules:" \
	"  - name: bench-pg" \
	"    match: { ops: [pg], dest: [\"127.0.0.1:*\"] }" \
	"    retry: { attempts: 5, backoff: { base: 100ms, max: 1s } }" \
	"    breaker: { trip: { consecutive: 5 } }" >"$POLICY"

# sample NAME FLAGS [ENV...]: one pgbench run; its transactions/s go to $S/NAME
sample() {
	name=$1 flags=$2
	shift 2
	env "$@" "$bin/pgbench" $flags -S -T "$SECS" -c 4 -j 4 $conn postgres >"$S/$name.last" 2>&1
	v=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$S/$name.last" | head -n 1)
	if [ -n "$v" ] && ! grep -q "aborted" "$S/$name.last"; then
		echo "$v" >>"$S/$name"
	else
		echo "run: $(tail -n 1 "$S/$name.last")" >>"$S/$name.errors"
	fi
}
median() {
	sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; m = int((NR + 1) / 2)
		print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'
}

echo "bulwark pg bench $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "$("$bin/postgres" --version), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "work: pgbench -S -T $SECS -c 4 -j 4, and the same with -C; $PAIRS interleaved pairs each"
i=1
while [ $i -le "$PAIRS" ]; do
	sample bare-S "" BENCH=1
	sample shim-S "" "LD_PRELOAD=$SNAP" "BULWARK_CONFIG=$POLICY"
	sample bare-C -C BENCH=1
	sample shim-C -C "LD_PRELOAD=$SNAP" "BULWARK_CONFIG=$POLICY"
	i=$((i + 1))
done
echo "machine: load $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo
status=0
fmt='%-16s %12s %12s %8s %s\n'
printf "$fmt" benchmark "bare tps" "shim tps" ratio runs
for m in S C; do
	label="pgbench -S"
	[ $m = C ] && label="pgbench -C -S"
	if [ -s "$S/bare-$m" ] && [ -s "$S/shim-$m" ]; then
		a=$(median "$S/bare-$m")
		b=$(median "$S/shim-$m")
		printf "$fmt" "$label" "$a" "$b" \
			"$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')" \
			"$(wc -l <"$S/bare-$m")+$(wc -l <"$S/shim-$m")"
	else
		status=1
		echo "$label: not measured: $(cat "$S/bare-$m.errors" "$S/shim-$m.errors" 2>/dev/null | head -n 1)"
	fi
done
echo
# the library must have been there: its exit events count the rule's calls
seen=$(grep '"event":"exit"' "$EVLOG" 2>/dev/null | grep -c '"bench-pg":{"calls":[1-9]')
echo "pg bench: $seen of the shim's runs counted libpq calls under the rule (raw samples in $S/)"
[ "$seen" -gt 0 ] || status=1
exit $status
