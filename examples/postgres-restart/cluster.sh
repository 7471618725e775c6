# A throw-away PostgreSQL cluster for a script to run clients against; sourced, not run.
# Sets bin (PostgreSQL's programs), dir (the cluster's directory in /tmp, removed at exit),
# port (a free loopback port), conn (pgbench/psql arguments) and pgctl (pg_ctl on the
# cluster, waiting for each step), and starts the server. As root the server runs as
# postgres, else nobody: PostgreSQL refuses to run as root.
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pgbench" ]; then
	echo "PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
	exit 1
fi
dir=$(mktemp -d /tmp/bw-pg-XXXXXX)
chmod 755 "$dir"
as=""
if [ "$(id -u)" = 0 ]; then
	user=postgres
	id "$user" >/dev/null 2>&1 || user=nobody
	chown "$user" "$dir"
	as="runuser -u $user --"
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
conn="-h 127.0.0.1 -p $port -U postgres"
pgctl() { $as "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
	-o "-h 127.0.0.1 -p $port -k $dir -c fsync=off" "$@" >/dev/null; }
cluster_remove() {
	[ -f "$dir/data/postmaster.pid" ] &&
		$as "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$dir"
}
trap cluster_remove EXIT
trap 'exit 130' INT TERM
export LANG=C LC_ALL=C
unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS
$as "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --locale=C --no-sync >/dev/null ||
	exit 1
pgctl start || exit 1
"$bin/pgbench" -i -s 1 -q $conn postgres >/dev/null 2>&1 || { echo "pgbench -i failed" >&2; exit 1; }
