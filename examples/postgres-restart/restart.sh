#!/bin/sh
# pgbench opens a new connection for every transaction (-C) while its server restarts.
# Alone, its clients abort on the first connection the server turns away; under bulwark
# they wait for the server and finish the run.
#   sh examples/postgres-restart/restart.sh        (from anywhere; `make` first; as a user
#                                                   PostgreSQL runs as: not root, or root
#                                                   with a `postgres` or `nobody` account)
set -u
cd "$(dirname "$0")/../.." || exit 1
if [ ! -x build/bulwark ] || [ ! -f build/libbulwark.so ]; then
	echo "build bulwark first: make" >&2
	exit 1
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pgbench" ]; then
	echo "PostgreSQL is not installed (Debian: apt-get install postgresql postgresql-contrib)" >&2
	exit 1
fi
policy=$PWD/examples/postgres-restart/bulwark.yaml
dir=$(mktemp -d /tmp/bw-pg-example-XXXXXX)
chmod 755 "$dir"
# the server refuses to run as root: as root, run it as postgres (else nobody)
as=""
if [ "$(id -u)" = 0 ]; then
	user=postgres
	id "$user" >/dev/null 2>&1 || user=nobody
	chown "$user" "$dir"
	as="runuser -u $user --"
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pgctl() { $as "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
	-o "-h 127.0.0.1 -p $port -k $dir -c fsync=off" "$@" >/dev/null; }
cleanup() {
	[ -f "$dir/data/postmaster.pid" ] && $as "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export LANG=C LC_ALL=C
unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS
$as "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --locale=C --no-sync >/dev/null || exit 1
pgctl start || exit 1
conn="-h 127.0.0.1 -p $port -U postgres"
"$bin/pgbench" -i -s 1 -q $conn postgres >/dev/null 2>&1 || { echo "pgbench -i failed" >&2; exit 1; }

# round LABEL [PREFIX...]: pgbench for 6 s, the server restarted 2 s in. A smart restart
# lets the sessions under way finish and turns new connections away until it is back.
round() {
	label=$1
	shift
	(sleep 2; pgctl restart -m smart) &
	restarter=$!
	"$@" "$bin/pgbench" -C -S -T 6 -c 4 -j 4 $conn postgres >"$dir/out" 2>&1
	wait $restarter
	aborted=$(grep -Ec "client [0-9]+ (script [0-9]+ )?aborted" "$dir/out")
	grep -m 1 "aborted" "$dir/out" | sed 's/^/    /'
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/out" | head -n 1)
	echo "$label: $aborted of 4 clients aborted, ${tps:-?} transactions/s"
}

echo "== pgbench -C -S -T 6 -c 4 -j 4, the server restarted (pg_ctl restart -m smart) 2 s in"
round "without bulwark"
round "with bulwark    " build/bulwark run -q -c "$policy" -o "file:$dir/events.log" --
echo
echo "== what bulwark saw (build/bulwark report)"
build/bulwark report "$dir/events.log" | sed -n '/BY RULE/,/^$/p'
grep -m 1 '"event":"recovered"' "$dir/events.log"
