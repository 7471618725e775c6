#!/bin/sh
# Four processes write to one SQLite database at once, with no busy timeout. Alone, most
# of their transactions fail with "database is locked"; under bulwark none do, and every
# row is there exactly once. Then the one case bulwark never retries: a deferred
# transaction that has read and must upgrade to write.
#   sh examples/sqlite-contention/contend.sh        (from anywhere; `make` first)
set -u
cd "$(dirname "$0")/../.." || exit 1
if [ ! -x build/bulwark ] || [ ! -f build/libbulwark.so ]; then
	echo "build bulwark first: make" >&2
	exit 1
fi
policy=examples/sqlite-contention/bulwark.yaml
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
db=$dir/app.db
writers=4 n=50

# One writer: N transactions of BEGIN IMMEDIATE; INSERT; a little work; COMMIT.
# timeout=0 turns python's own 5 s busy timeout off, as the sqlite3 shell and a plain C
# program have none. A failed transaction is rolled back and counted, not retried.
cat >"$dir/writer.py" <<'PY'
import sqlite3, sys, time
db, wid, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c = sqlite3.connect(db, timeout=0, isolation_level=None)
while time.time() < start:
    time.sleep(0.001)
errors, last = 0, ""
for i in range(n):
    try:
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO orders(ref) VALUES (?)", ("w%s-%d" % (wid, i),))
        time.sleep(0.002)
        c.execute("COMMIT")
    except sqlite3.OperationalError as e:
        errors, last = errors + 1, str(e)
        if c.in_transaction:
            c.execute("ROLLBACK")
print("writer %s: %2d of %d transactions failed%s" % (wid, errors, n, last and " (%s)" % last))
PY

sql() { python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
for r in c.execute(sys.argv[2]): print(*r)' "$db" "$1"; }

# run_writers [PREFIX...]: all writers at once (each command prefixed, e.g. by bulwark run)
run_writers() {
	rm -f "$db" "$db-journal"
	sql "CREATE TABLE orders(id INTEGER PRIMARY KEY, ref TEXT NOT NULL)"
	start=$(python3 -c 'import time; print(time.time() + 0.5)')
	w=1
	while [ $w -le $writers ]; do
		"$@" python3 "$dir/writer.py" "$db" $w $n "$start" >"$dir/out.$w" 2>&1 &
		w=$((w + 1))
	done
	wait
	cat "$dir"/out.*
	sql "SELECT 'rows: ' || count(*) || ' of $((writers * n)), ' || count(DISTINCT ref) || ' distinct' FROM orders"
}

echo "== without bulwark: $writers writers x $n transactions, no busy timeout"
run_writers

echo
echo "== with bulwark ($policy)"
events=$dir/events.log
run_writers build/bulwark run -c "$policy" -o "file:$events" -l warn --
printf 'events: %s retry, %s recovered, %s gave_up; for example:\n' \
	"$(grep -c '"event":"retry"' "$events")" "$(grep -c '"event":"recovered"' "$events")" \
	"$(grep -c '"event":"gave_up"' "$events")"
grep -m 1 '"event":"retry"' "$events"
grep -m 1 '"event":"recovered"' "$events"

echo
echo "== never retried: a deferred transaction that has read and now must write"
# The holder (no bulwark) takes the write lock and keeps it for 1.5 s.
python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
c.execute("BEGIN IMMEDIATE"); c.execute("INSERT INTO orders(ref) VALUES (?)", ("holder",))
open(sys.argv[2], "w").close(); time.sleep(1.5); c.execute("COMMIT")' "$db" "$dir/held" &
holder=$!
while [ ! -e "$dir/held" ]; do sleep 0.05; done
: >"$events"
# The victim reads in a deferred transaction (a read lock), then writes. Waiting cannot
# give it the write lock while it holds that read lock: bulwark returns the error at once
# and says so; the program must roll back and run the transaction again.
build/bulwark run -c "$policy" -o "file:$events" -l warn -- python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
c.execute("BEGIN"); c.execute("SELECT count(*) FROM orders").fetchone()
t0 = time.monotonic()
try:
    c.execute("INSERT INTO orders(ref) VALUES (?)", ("victim",))
except sqlite3.OperationalError as e:
    print("victim: %s after %.3f s, rolls back" % (e, time.monotonic() - t0))
c.execute("ROLLBACK")' "$db"
cat "$events"
wait $holder
