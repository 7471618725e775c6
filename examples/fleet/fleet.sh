#!/bin/sh
# Two "hosts" (two process trees under their own `bulwark run`, each with its own state
# directory, two clients each offering 100 connects a second) share fleet.yaml's limit of
# 100/s through a redis-server started here:
#   1. 5 s with Redis: the fleet admits about 500 (at most 100 x 5 + burst + 2 leases),
#      half each;
#   2. 6 s with Redis killed after 2 s: each host goes on with 50/s, one `fleet` event
#      each, and `bulwark status --fleet` says so.
# Exits 0 when that happens, 1 with the reason when not.
#   sh examples/fleet/fleet.sh        BULWARK=path/to/bulwark to use another build
set -u
here=$(cd "$(dirname "$0")" && pwd)
BULWARK=${BULWARK:-$here/../../build/bulwark}
[ -x "$BULWARK" ] || BULWARK=$(command -v bulwark || echo "$BULWARK")
[ -x "$BULWARK" ] || { echo "fleet.sh: $BULWARK is not built: run make" >&2; exit 1; }
REDIS=$(command -v redis-server || true)
[ -n "$REDIS" ] || { echo "fleet.sh: redis-server is not installed" >&2; exit 1; }
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
unset BULWARK_CONFIG BULWARK_LOG BULWARK_LEVEL BULWARK_MODE BULWARK_SEED BULWARK_DISABLE \
      BULWARK_GROUP LD_PRELOAD 2>/dev/null || true
tmp=$(mktemp -d /tmp/bulwark-fleet.XXXXXX)
redis_pid=
cleanup() {
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RPORT=$(port)
DB=$(port)          # nobody listens: a refused connect is one the limit admitted
sed -e "s/6399/$RPORT/" -e "s/5999/$DB/" "$here/fleet.yaml" >"$tmp/fleet.yaml"

fail() {
	echo "fleet.sh: FAILED: $*" >&2
	exit 1
}
start_redis() {
	"$REDIS" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
		>/dev/null 2>&1 &
	redis_pid=$!
	sleep 0.5
}

# One client: connects at 100/s for $2 seconds; prints "<admitted> <limited>".
cat >"$tmp/client.py" <<'PYEOF'
import errno, socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
ok = limited = 0
t = time.monotonic()
end = t + seconds
while time.monotonic() < end:
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
    except OSError as e:
        ok += e.errno == errno.ECONNREFUSED
        limited += e.errno == errno.EAGAIN
    s.close()
    t += 0.01
    time.sleep(max(0, t - time.monotonic()))
print(ok, limited)
PYEOF

# host NAME SECONDS: one tree of two clients, its own state directory
host() {
	mkdir -p "$tmp/$1" && chmod 700 "$tmp/$1"
	XDG_RUNTIME_DIR="$tmp/$1" "$BULWARK" run -q -c "$tmp/fleet.yaml" \
		-l info -o "file:$tmp/$1.log" -- sh -c \
		"'$PY' '$tmp/client.py' $DB $2 & '$PY' '$tmp/client.py' $DB $2 & wait" \
		>"$tmp/$1.out" 2>&1
}
admitted() { awk '{ n += $1 } END { print n + 0 }' "$tmp/$1.out"; }

start_redis
echo "1. two hosts, 200/s offered each, 100/s for the fleet, 5 s"
host a 5 & pa=$!
host b 5 & pb=$!
wait "$pa" "$pb"
a=$(admitted a) b=$(admitted b)
total=$((a + b))
echo "   host a admitted $a, host b $b: $total of 500 allowed (bound 500 + 10 + 2 x 5 = 520)"
[ "$total" -le 520 ] || fail "the fleet admitted $total, more than 520"
[ "$total" -ge 400 ] || fail "the fleet admitted $total, far less than 500"

echo "2. the same for 6 s; Redis killed after 2 s"
(sleep 2; kill "$redis_pid") & pk=$!
mkdir -p "$tmp/c"
(sleep 4.5; XDG_RUNTIME_DIR="$tmp/c" "$BULWARK" status --fleet --dir "$tmp/c/bulwark" \
	>"$tmp/status.out" 2>&1; echo $? >"$tmp/status.rc") & ps=$!
host c 6 & pc=$!
host d 6
wait "$pk" "$ps" "$pc"
redis_pid=
c=$(admitted c) d=$(admitted d)
echo "   host c admitted $c, host d $d (about 100 each for 2 s of a 50/s share, then 50/s)"
events=$(grep -h '"event":"fleet"' "$tmp/c.log" "$tmp/d.log" | wc -l)
echo "   fleet events: $events"
grep -h '"event":"fleet"' "$tmp/c.log" | sed 's/^/   /' | cut -c1-160
[ "$events" -eq 2 ] || fail "expected one fleet event per host, got $events"
echo "   bulwark status --fleet on host c, Redis gone (exit $(cat "$tmp/status.rc")):"
sed 's/^/   | /' "$tmp/status.out"
[ "$(cat "$tmp/status.rc")" = 1 ] || fail "status --fleet should exit 1 (degraded)"
[ "$c" -ge 250 ] && [ "$d" -ge 250 ] || fail "a host stopped while Redis was gone"
echo "fleet.sh: OK"
