#!/bin/sh
# A test tree of 8 processes, each connecting 5 times to a database that is down:
#   1. share: process - each process learns alone: 40 connects reach the kernel;
#   2. share: group   - the tree learns once: 5 reach it, 35 are refused by the shared
#      breaker without a system call;
#   3. `bulwark status`, run inside the tree, shows the open breaker and exits 2.
# Exits 0 when all of that happens, 1 with the reason when not.
#   sh examples/ci-startup-race/tree.sh        BULWARK=path/to/bulwark to use another build
set -u
here=$(cd "$(dirname "$0")" && pwd)
BULWARK=${BULWARK:-$here/../../build/bulwark}
# installed copies of the examples use the installed tool
[ -x "$BULWARK" ] || BULWARK=$(command -v bulwark || echo "$BULWARK")
[ -x "$BULWARK" ] || { echo "tree.sh: $BULWARK is not built: run make" >&2; exit 1; }
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
unset BULWARK_CONFIG BULWARK_LOG BULWARK_LEVEL BULWARK_MODE BULWARK_SEED BULWARK_DISABLE \
      BULWARK_GROUP LD_PRELOAD 2>/dev/null || true
tmp=$(mktemp -d /tmp/bulwark-tree.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
# A port nobody listens on: the database that is down.
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PORT PY

fail() {
	echo "tree.sh: FAILED: $*" >&2
	exit 1
}

# One test process: 5 connects, one word each (ok, or the errno name).
cat >"$tmp/client.py" <<'PYEOF'
import errno, os, socket
out = []
for _ in range(5):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", int(os.environ["PORT"])))
        out.append("ok")
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)))
    s.close()
print(" ".join(out))
PYEOF
# The tree: 8 clients at once, then (step 3) bulwark status from inside it.
cat >"$tmp/tree.sh" <<'SHEOF'
for i in 1 2 3 4 5 6 7 8; do "$PY" "$TMPD/client.py" >"$TMPD/out.$i" & done
wait
if [ -n "${STATUS:-}" ]; then
	"$BULWARK" status >"$TMPD/status.out" 2>&1
	echo $? >"$TMPD/status.rc"
fi
exit 0
SHEOF
export TMPD="$tmp" BULWARK

# run POLICY LOG: the tree under bulwark; prints "<connects> <refused by the breaker>"
run() {
	rm -f "$tmp"/out.*
	"$BULWARK" run -c "$1" -l info -o "file:$2" -- sh "$tmp/tree.sh" ||
		fail "bulwark run exited $?"
	calls=$(cat "$tmp"/out.* | wc -w)
	[ "$calls" -eq 40 ] || fail "expected 40 connects, the clients reported $calls"
	refused=$(cat "$tmp"/out.* | tr ' ' '\n' | grep -c ECONNREFUSED)
	[ "$refused" -eq 40 ] || fail "expected 40 ECONNREFUSED, got $refused"
	echo "$(grep -c '"event":"fail"' "$2") $(grep -c '"event":"rejected"' "$2")"
}

sed 's/share: group/share: process/' "$here/tree.yaml" >"$tmp/private.yaml"
echo "== 1. share: process: 8 processes x 5 connects to 127.0.0.1:$PORT (down)"
set -- $(run "$tmp/private.yaml" "$tmp/private.log")
echo "   every connect failed: $1 reached the kernel, $2 refused by a breaker"
[ "$1" -eq 40 ] || fail "each process should make its own 5 attempts (40), saw $1"

echo "== 2. share: group: the same tree, one breaker between them"
export STATUS=1
set -- $(run "$here/tree.yaml" "$tmp/group.log")
echo "   every connect failed: $1 reached the kernel, $2 refused by the shared breaker"
# 5, or a few more when processes were already connecting as the fifth failure landed
[ "$1" -ge 5 ] && [ "$1" -le 8 ] ||
	fail "the tree should stop after 5 failures in total, saw $1"
[ $(($1 + $2)) -eq 40 ] || fail "the other connects should be refused, saw $2"

echo "== 3. bulwark status, run inside the tree while the breaker was open"
sed 's/^/   /' "$tmp/status.out"
rc=$(cat "$tmp/status.rc")
echo "   exit status $rc (0 healthy, 1 degraded, 2 unhealthy, 3 unknown)"
[ "$rc" -eq 2 ] || fail "bulwark status should say unhealthy (2) with the breaker open"
echo "tree.sh: OK"
