#!/bin/sh
# Fleet mode (`state: { share: fleet }`), against a redis-server started here:
#   1. ping-pong under the matching policy of run.sh with its state shared by a process
#      tree (share: group) and by a fleet (share: fleet): the calls take their tokens
#      from the same buckets in the same file, so the two ratios should be the same;
#   2. accuracy: two "hosts" (process trees with their own state directories), each
#      offering 200 connects/s for 5 s against a fleet limit of 100/s: what the fleet
#      admitted over what the limit allows (1.0 = exact; the bound is
#      (rate x T + burst + hosts x lease) / (rate x T)).
# Never judges a timing; exit 1 only when something could not run.
# Knobs: BENCH_FLEET_PAIRS (ping-pong samples per configuration, default 31).
set -u
cd "$(dirname "$0")/../.." || exit 1
unset LD_PRELOAD BULWARK_CONFIG BULWARK_LOG BULWARK_LEVEL BULWARK_MODE BULWARK_SEED \
      BULWARK_DISABLE BULWARK_GROUP
OUT=build/bench/fleet
LIB=$PWD/build/libbulwark.so
TOOL=$PWD/build/bulwark
PAIRS=${BENCH_FLEET_PAIRS:-31}
ROUNDS=10000
REDIS=$(command -v redis-server || true)
say() { printf '%s\n' "$*" >&2; }
if [ -z "$REDIS" ]; then
	echo "bench fleet: skipped, redis-server is not installed (make deps-test installs it)"
	exit 0
fi
[ -f "$LIB" ] && [ -x "$TOOL" ] || { say "bench fleet: run make first"; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT/state" && chmod 700 "$OUT/state" || exit 1
${CC:-cc} -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Itests/bench -o "$OUT/pingpong" \
	tests/bench/pingpong.c -lpthread || { say "bench fleet: cannot build pingpong"; exit 1; }
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RPORT=$(port)
"$REDIS" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$PWD/$OUT" \
	>"$OUT/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null' EXIT INT TERM
sleep 0.5

rules='rules:
  - name: bench-loopback
    match: { ops: [connect, send, recv], dest: ["127.0.0.1:*"] }
    breaker: { trip: { consecutive: 5 } }
    rate_limit: { rate: 1000MiB/s }
    timeout: { recv: 30s }'
printf 'version: 1\nstate: { share: group, dir: %s }\n%s\n' "$PWD/$OUT/state" "$rules" \
	>"$OUT/policy-group.yaml"
printf 'version: 1\nstate: { share: fleet, dir: %s, redis: "redis://127.0.0.1:%s/0", hosts: 1 }\n%s\n' \
	"$PWD/$OUT/state" "$RPORT" "$rules" >"$OUT/policy-fleet.yaml"

sample() {
	f=$1; shift
	v=$(timeout 60 "$@" 2>>"$f.log" | awk 'NF == 2 && $2 + 0 > 0 { v = $2 } END { print v }')
	[ -n "$v" ] && echo "$v" >>"$f"
}
median() {
	sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; m = int((NR + 1) / 2)
		print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'
}
say "bench fleet: ping-pong $ROUNDS round trips x 3 configurations x $PAIRS"
i=0
while [ $i -lt "$PAIRS" ]; do
	sample "$OUT/none" "$OUT/pingpong" $ROUNDS
	sample "$OUT/group" env LD_PRELOAD="$LIB" BULWARK_CONFIG="$PWD/$OUT/policy-group.yaml" \
		"$OUT/pingpong" $ROUNDS
	sample "$OUT/fleet" env LD_PRELOAD="$LIB" BULWARK_CONFIG="$PWD/$OUT/policy-fleet.yaml" \
		"$OUT/pingpong" $ROUNDS
	i=$((i + 1))
done
for c in none group fleet; do
	[ -s "$OUT/$c" ] || { say "bench fleet: ping-pong ($c) could not run: $(tail -n 2 "$OUT/$c.log")"; exit 1; }
done
mn=$(median "$OUT/none") mg=$(median "$OUT/group") mf=$(median "$OUT/fleet")

say "bench fleet: accuracy, 2 hosts x 200/s offered for 5 s, 100/s for the fleet"
DB=$(port)
cat >"$OUT/policy-acc.yaml" <<EOF
version: 1
state: { share: fleet, redis: "redis://127.0.0.1:$RPORT/0", hosts: 2, key_prefix: "bench:" }
rules:
  - name: db
    match: { ops: [connect], dest: ["127.0.0.1:$DB"] }
    retry: off
    rate_limit: { rate: 100/s, burst: 10, on_limit: fail, errno: EAGAIN }
EOF
cat >"$OUT/client.py" <<'PYEOF'
import errno, socket, sys, time
port, start, end = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
while time.time() < start:
    time.sleep(0.005)
ok = 0
t = time.monotonic()
while time.time() < end:
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
    except OSError as e:
        ok += e.errno == errno.ECONNREFUSED
    s.close()
    t += 0.01
    time.sleep(max(0, t - time.monotonic()))
print(ok)
PYEOF
start=$("$PY" -c 'import time; print("%.3f" % (time.time() + 1.5))')
end=$("$PY" -c "print('%.3f' % ($start + 5))")
for h in a b; do
	mkdir -p "$OUT/$h" && chmod 700 "$OUT/$h"
	XDG_RUNTIME_DIR="$PWD/$OUT/$h" "$TOOL" run -q -c "$OUT/policy-acc.yaml" -- sh -c \
		"'$PY' $OUT/client.py $DB $start $end & '$PY' $OUT/client.py $DB $start $end & wait" \
		>"$OUT/$h.out" 2>&1 &
	eval "p_$h=\$!"
done
# shellcheck disable=SC2154
wait "$p_a" "$p_b"
a=$(awk '{ n += $1 } END { print n + 0 }' "$OUT/a.out")
b=$(awk '{ n += $1 } END { print n + 0 }' "$OUT/b.out")

echo
echo "fleet mode (redis-server on 127.0.0.1:$RPORT, $PAIRS interleaved ping-pong samples):"
awk -v n="$mn" -v g="$mg" -v f="$mf" 'BEGIN {
	printf "  pingpong, breaker + byte limit + recv timeout, share: group: %.3f of plain round trips/s\n", g / n
	printf "  pingpong, the same, share: fleet:                          %.3f (%.3f of share: group)\n", f / n, f / g }'
awk -v a="$a" -v b="$b" 'BEGIN {
	t = a + b
	printf "  fleet accuracy: %d admitted of 500 allowed in 5 s (%.3f; bound %.3f), hosts %d and %d (%.0f%% / %.0f%%)\n",
		t, t / 500, 520 / 500, a, b, t ? 100 * a / t : 0, t ? 100 * b / t : 0 }'
