#!/bin/sh
# pgbench opens a new connection for every transaction (-C) while its server restarts.
# Alone, its clients abort on the first connection the server turns away; under bulwark
# they wait for the server and finish the run.
#   sh examples/postgres-restart/restart.sh [smart|fast]   (restart mode, smart by default;
#                                                   from anywhere; `make` first; as a user
#                                                   PostgreSQL runs as: not root, or root
#                                                   with a `postgres` or `nobody` account)
set -u
cd "$(dirname "$0")/../.." || exit 1
if [ ! -x build/bulwark ] || [ ! -f build/libbulwark.so ]; then
	echo "build bulwark first: make" >&2
	exit 1
fi
mode=${1:-smart}
case $mode in smart|fast) ;; *) echo "usage: $0 [smart|fast]" >&2; exit 2 ;; esac
policy=$PWD/examples/postgres-restart/bulwark.yaml
. examples/postgres-restart/cluster.sh

# round LABEL [PREFIX...]: pgbench for 6 s, the server restarted 2 s in. A smart restart
# lets the sessions under way finish and turns new connections away until it is back; a
# fast one also ends the statements under way.
round() {
	label=$1
	shift
	(sleep 2; pgctl restart -m "$mode") &
	restarter=$!
	"$@" "$bin/pgbench" -C -S -T 6 -c 4 -j 4 $conn postgres >"$dir/out" 2>&1
	wait $restarter
	aborted=$(grep -Ec "client [0-9]+ (script [0-9]+ )?aborted" "$dir/out")
	grep -m 1 "aborted" "$dir/out" | sed 's/^/    /'
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/out" | head -n 1)
	echo "$label: $aborted of 4 clients aborted, ${tps:-?} transactions/s"
}

echo "== pgbench -C -S -T 6 -c 4 -j 4, the server restarted (pg_ctl restart -m $mode) 2 s in"
round "without bulwark"
round "with bulwark    " build/bulwark run -q -c "$policy" -o "file:$dir/events.log" --
echo
echo "== what bulwark saw (build/bulwark report)"
build/bulwark report "$dir/events.log" | sed -n '/BY RULE/,/^$/p'
grep -m 1 '"event":"recovered"' "$dir/events.log"
