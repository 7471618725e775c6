#!/bin/sh
# Instructions the shim adds to one send or recv, counted by callgrind: a count, not a
# time, so it is the same on a quiet machine and a loaded one, and can guard the hot path
# against regressions where timings cannot.
#
# The ping-pong of pingpong.c (both ends in one process, every round trip two sends and
# two recvs through the hooks) runs twice per configuration, with N1 and N2 rounds; the
# difference cancels start-up, policy loading and exit. The added cost of one call is
#
#     ((shim(N2) - shim(N1)) - (bare(N2) - bare(N1))) / calls(N2 - N1)
#
# where the number of covered calls comes from the library's own `exit` event, so a
# policy that matched nothing cannot pass for a cheap one.
#
# usage: tests/bench/instr.sh [--check]   (--check: exit 1 when a count is over its bound)
# Knobs: BENCH_LIB (the library to measure), INSTR_N1, INSTR_N2 (rounds).
set -u
cd "$(dirname "$0")/../.." || exit 1
unset LD_PRELOAD BULWARK_CONFIG BULWARK_LOG BULWARK_LEVEL BULWARK_MODE BULWARK_SEED BULWARK_DISABLE

CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
OUT=build/bench-instr
LIB=${BENCH_LIB:-build/libbulwark.so}
N1=${INSTR_N1:-1000}
N2=${INSTR_N2:-3000}

say() { printf '%s\n' "$*" >&2; }

command -v valgrind >/dev/null 2>&1 || { say "bench-instr: valgrind is not installed"; exit 1; }
[ -f "$LIB" ] || { say "bench-instr: $LIB is missing; run make first"; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT/state" && chmod 700 "$OUT/state" || exit 1
${CC:-cc} -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Itests/bench \
	-o "$OUT/pingpong" tests/bench/pingpong.c -lpthread || exit 1
cp "$LIB" "$OUT/libbulwark.so" || exit 1

policy() {   # NAME DEST TOP-LEVEL RULE-BODY
	cat >"$OUT/$1.yaml" <<EOF
version: 1
log: { sink: "file:$PWD/$OUT/$1.log", level: info }
${3:-}
rules:
  - name: bench
    match: { ops: [connect, send, recv], dest: ["$2"] }
$(printf '%b' "${4:-}")
EOF
}
FULL='    breaker: { trip: { consecutive: 5 } }\n    rate_limit: { rate: 1000MiB/s }\n    timeout: { recv: 30s }\n'
policy nomatch "10.255.255.1:1" "" ""
policy breaker "127.0.0.1:*" "" '    breaker: { trip: { consecutive: 5 } }\n'
policy full "127.0.0.1:*" "" "$FULL"
policy group "127.0.0.1:*" "state: { share: group, dir: $PWD/$OUT/state }" "$FULL"
GROUP="state: { share: group, dir: $PWD/$OUT/state }"
BRK='    breaker: { trip: { consecutive: 5 } }\n'
policy bulkhead "127.0.0.1:*" "$GROUP" "$BRK"'    concurrency: { max: 100, max_wait: 1s }\n'
policy throttle "127.0.0.1:*" "$GROUP" "$BRK"'    throttle: { k: 2, window: 1m, max_reject: 80% }\n'


# Total instructions of one run (all threads), and the covered calls its exit event counts.
measure() {   # CONFIG ROUNDS -> "instructions calls"
	cfg=$1 n=$2
	rm -f "$OUT/$cfg.log" "$OUT/cg.out"
	if [ "$cfg" = bare ]; then
		valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
			"$OUT/pingpong" "$n" >/dev/null 2>"$OUT/vg.err" || return 1
	else
		env LD_PRELOAD="$PWD/$OUT/libbulwark.so" BULWARK_CONFIG="$PWD/$OUT/$cfg.yaml" \
			valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
			"$OUT/pingpong" "$n" >/dev/null 2>"$OUT/vg.err" || return 1
	fi
	ins=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$OUT/cg.out")
	calls=0
	if [ "$cfg" != bare ]; then
		grep -q '"event":"start"' "$OUT/$cfg.log" 2>/dev/null || return 1
		calls=$(sed -n 's/.*"event":"exit".*"calls":\([0-9]*\).*/\1/p' "$OUT/$cfg.log" |
			awk '{ s += $1 } END { print s + 0 }')
	fi
	echo "$ins $calls"
}

set -- $(measure bare "$N1") $(measure bare "$N2")
[ $# -eq 4 ] || { say "bench-instr: the plain run failed"; cat "$OUT/vg.err" >&2; exit 1; }
bare=$(( $3 - $1 ))
# One round trip is two sends and two recvs through the hooks.
ref_calls=$(( 4 * (N2 - N1) ))

rc=0
printf '%-9s %10s  %s\n' config "instr/call" "bound (marginal user-space instructions a send or recv adds)"
for row in "nomatch 30 no rule matches the call" "breaker 120 a breaker" \
	"full 250 a breaker, a byte limit and a recv timeout" \
	"group 250 the same, state shared by a process tree" \
	"bulkhead 120 a breaker and a bulkhead (connect slots), shared" \
	"throttle 120 a breaker and adaptive throttling, shared"; do
	set -- $row
	cfg=$1 bound=$2
	shift 2
	what=$*
	set -- $(measure "$cfg" "$N1") $(measure "$cfg" "$N2")
	if [ $# -ne 4 ]; then
		say "bench-instr: $cfg did not run under the shim"
		cat "$OUT/vg.err" >&2
		rc=1
		continue
	fi
	calls=$(( $4 - $2 ))
	[ "$cfg" = nomatch ] && calls=$ref_calls
	if [ "$calls" -le 0 ]; then
		say "bench-instr: $cfg: the policy saw no calls"
		rc=1
		continue
	fi
	per=$(( ($3 - $1 - bare + calls / 2) / calls ))
	verdict=ok
	[ "$per" -le "$bound" ] || verdict="OVER"
	printf '%-9s %10d  <= %d %s: %s\n' "$cfg" "$per" "$bound" "$what" "$verdict"
	[ "$verdict" = ok ] || [ $CHECK -eq 0 ] || rc=1
done
exit $rc
