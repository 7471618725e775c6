#!/bin/sh
# What the shim costs, as ratios against the same work without it, all measured in this
# one run: timings differ between machines and from one minute to the next, so only a
# ratio taken side by side means anything. Samples are interleaved (plain, shim, plain,
# shim ...) so that a burst of background load hits both sides alike, and each side is
# summarized by its median, which one disturbed sample cannot move.
#
# Prints a table and a summary. Never judges a timing: exit 0 when every measurement was
# made, 1 when something could not run (build failure, shim not loading, policy refused,
# a program failing or hanging).
#
# Knobs (environment): BENCH_PAIRS (samples per configuration, default 15, at least 7;
# pingpong takes BENCH_PINGPONG_PAIRS, default 101, at least BENCH_PAIRS),
# BENCH_PINGPONG_ROUNDS (20000), BENCH_LIMITER_CONNECTS (per thread, 1000).
set -u
cd "$(dirname "$0")/../.." || exit 1

# The baseline must be the plain program, whatever the caller's environment holds.
unset LD_PRELOAD BULWARK_CONFIG BULWARK_LOG BULWARK_LEVEL BULWARK_MODE BULWARK_SEED BULWARK_DISABLE

OUT=build/bench
S=$OUT/samples
LIB=${BENCH_LIB:-build/libbulwark.so}   # another build can be compared by hand
SNAP=$PWD/$OUT/libbulwark.so
PAIRS=${BENCH_PAIRS:-15}
# A ping-pong sample swings by +-10% with where the scheduler puts its two threads: many
# short samples pin its median down to about 1%, a few long ones do not.
PP_PAIRS=${BENCH_PINGPONG_PAIRS:-101}
PP_ROUNDS=${BENCH_PINGPONG_ROUNDS:-10000}
LIM_THREADS=16
LIM_CONNECTS=${BENCH_LIMITER_CONNECTS:-1000}
DD_COUNT=2000000
STARTS=200
# A watchdog against a hung hook, not a performance bound: a run takes about a second.
WATCHDOG=60

[ "$PAIRS" -ge 7 ] 2>/dev/null || PAIRS=7
[ "$PP_PAIRS" -ge "$PAIRS" ] 2>/dev/null || PP_PAIRS=$PAIRS
rm -rf "$S"
mkdir -p "$S" || exit 1
NOTES=$S/notes
: >"$NOTES"

say() { printf '%s\n' "$*" >&2; }
note() { printf '  %s\n' "$*" >>"$NOTES"; }

if [ ! -f "$LIB" ]; then
	say "bench: $LIB is missing; run make first"
	exit 1
fi

for prog in pingpong limiter16 spawnloop; do
	if ! ${CC:-cc} -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Itests/bench \
		-o "$OUT/$prog" "tests/bench/$prog.c" -lpthread; then
		say "bench: cannot build tests/bench/$prog.c"
		exit 1
	fi
done

# The library is being rebuilt by others while we measure: every run uses this one copy.
cp -p "$LIB" "$SNAP.tmp" && mv "$SNAP.tmp" "$SNAP" || exit 1

# --- policies -----------------------------------------------------------------------------
# Level info: the start event proves the shim loaded the policy, and the exit event's
# counters say which calls the rules saw. Both are written outside the timed loops.

# Rules for a destination the programs never use: the price of asking and being told no.
cat >"$OUT/policy-nomatch.yaml" <<'EOF'
version: 1
log: { sink: stderr, level: info }
rules:
  - name: bench-elsewhere
    match: { ops: [connect, send, recv], dest: ["10.255.255.1:1"] }
EOF

# Everything on loopback is matched, with limits far above what the programs do: the
# price of the bookkeeping alone, never of a wait or a refusal.
cat >"$OUT/policy-match.yaml" <<'EOF'
version: 1
log: { sink: stderr, level: info }
rules:
  - name: bench-loopback
    match: { ops: [connect, send, recv], dest: ["127.0.0.1:*"] }
    breaker: { trip: { consecutive: 5 } }
    rate_limit: { rate: 1000MiB/s }
    timeout: { recv: 30s }
EOF

# The same, with breakers and buckets in a file shared by a process tree (bulwark.yaml(5), STATE).
mkdir -p "$OUT/state" && chmod 700 "$OUT/state"
cat >"$OUT/policy-match-group.yaml" <<EOF
version: 1
log: { sink: stderr, level: info }
state: { share: group, dir: $PWD/$OUT/state }
rules:
  - name: bench-loopback
    match: { ops: [connect, send, recv], dest: ["127.0.0.1:*"] }
    breaker: { trip: { consecutive: 5 } }
    rate_limit: { rate: 1000MiB/s }
    timeout: { recv: 30s }
EOF

# The same protection for a library that refuses a byte rate on a rule that also matches
# connect: the byte limit moves to a rule of its own, each rule keeps the breaker.
cat >"$OUT/policy-match-split.yaml" <<'EOF'
version: 1
log: { sink: stderr, level: info }
rules:
  - name: bench-connect
    match: { ops: [connect], dest: ["127.0.0.1:*"] }
    breaker: { trip: { consecutive: 5 } }
  - name: bench-stream
    match: { ops: [send, recv], dest: ["127.0.0.1:*"] }
    breaker: { trip: { consecutive: 5 } }
    rate_limit: { rate: 1000MiB/s }
    timeout: { recv: 30s }
EOF

# A bulkhead and adaptive throttling on the loopback rule, shared by a process tree:
# neither ever refuses here (one connection, every call answered); their price is the
# slot taken at the connect and the request counted, and nothing more on send and recv.
for kind in bulkhead throttle; do
	case $kind in
	bulkhead) body='concurrency: { max: 100, max_wait: 1s }' ;;
	throttle) body='throttle: { k: 2, window: 1m, max_reject: 80% }' ;;
	esac
	cat >"$OUT/policy-$kind.yaml" <<EOF
version: 1
log: { sink: stderr, level: info }
state: { share: group, dir: $PWD/$OUT/state }
rules:
  - name: bench-loopback
    match: { ops: [connect, send, recv], dest: ["127.0.0.1:*"] }
    breaker: { trip: { consecutive: 5 } }
    $body
EOF
done

# One bucket for all threads (scope: rule), deep and fast enough never to make one wait.
cat >"$OUT/policy-limiter.yaml" <<'EOF'
version: 1
log: { sink: stderr, level: info }
rules:
  - name: bench-limiter
    match: { ops: [connect] }
    rate_limit: { scope: rule, rate: 100000/s, burst: 1000 }
EOF

# Whether the shim loads POLICY (empty: the built-in default) into a plain program. Prints
# "ok", or why not: ld.so only warns and runs the program without a preload it cannot
# open, and a refused policy leaves the shim in pass-through, so without this check a
# broken setup would be measured as a shim that costs nothing.
probe() {
	out=$(env LD_PRELOAD="$SNAP" BULWARK_LEVEL=info ${1:+BULWARK_CONFIG="$PWD/$1"} \
		timeout "$WATCHDOG" /bin/true 2>&1)
	rc=$?
	case $out in
	*'"event":"start"'*) echo ok ;;
	*'"event":"config_error"'*)
		printf 'policy refused: %s\n' "$(printf '%s\n' "$out" |
			sed -n 's/.*"msg":"\(\([^"\\]\|\\.\)*\)".*/\1/p' | head -n 1)" ;;
	*) printf 'shim did not start (/bin/true: exit %s) %s\n' "$rc" \
		"$(printf '%s\n' "$out" | head -n 1)" ;;
	esac
}

# sample FILE CMD...: run CMD once and append the number it prints to FILE. On failure,
# FILE.failed says why and later samples of that configuration are skipped. The
# programs' stderr (the shim's events among it) accumulates in FILE.log.
sample() {
	f=$1; shift
	[ -e "$f.failed" ] && return 1
	out=$(timeout -k 5 "$WATCHDOG" "$@" 2>>"$f.log")
	rc=$?
	v=$(printf '%s\n' "$out" | awk 'NF == 2 && $2 + 0 > 0 { v = $2 } END { print v }')
	if [ $rc -eq 0 ] && [ -n "$v" ]; then
		echo "$v" >>"$f"
		return 0
	fi
	why=$(grep -v '"event":' "$f.log" 2>/dev/null | tail -n 1)
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		why="no result within ${WATCHDOG}s (hung?)"
	elif [ $rc -gt 128 ]; then
		why="killed by signal $((rc - 128))${why:+; $why}"
	fi
	echo "${why:-exit status $rc}" >"$f.failed"
	return 1
}

# fail_config FILE REASON: a configuration that cannot be measured at all.
fail_config() { echo "$2" >"$1.failed"; }

median() {
	sort -g "$1" | awk '{ v[NR] = $1 }
		END { if (NR == 0) exit 1; m = int((NR + 1) / 2)
		      print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'
}

# counter LOG NAME: NAME summed over the rules in the last exit event of LOG. "calls" is
# how many calls the policy actually saw, which tells whether this build hooks the calls
# being measured; "throttled", whether the limiter made anyone wait.
counter() {
	grep '"event":"exit"' "$1" 2>/dev/null | tail -n 1 |
		grep -o "\"$2\":[0-9]*" | awk -F: '{ s += $2 } END { print s + 0 }'
}

head_commit() {
	h=$(cat .git/HEAD 2>/dev/null) || { echo unknown; return; }
	case $h in
	"ref: "*)
		r=${h#ref: }
		if [ -f ".git/$r" ]; then
			h=$(cat ".git/$r")
		else
			h=$(awk -v r="$r" '$2 == r { print $1 }' .git/packed-refs 2>/dev/null)
		fi ;;
	esac
	echo "${h:-unknown}" | cut -c1-7
}

# --- header -------------------------------------------------------------------------------
# Which of the calls these programs make the library interposes: a ratio near 1.0 means
# little when the hook it should measure has not landed yet.
exports=$(nm -D --defined-only "$SNAP" 2>/dev/null | awk '{ sub(/@.*/, "", $3); print $3 }')
hooks=
for h in connect accept send recv read write; do
	if printf '%s\n' "$exports" | grep -qx "$h"; then hooks="$hooks $h"; else hooks="$hooks !$h"; fi
done
[ -n "$exports" ] || hooks=" (nm unavailable)"
echo "bulwark bench $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit $(head_commit) (working tree may differ)"
echo "library: $LIB built $(date -u -r "$SNAP" +%Y-%m-%dT%H:%M:%SZ)," \
	"sha256 $(sha256sum "$SNAP" | cut -c1-12)"
echo "hooks used here (! = not interposed):$hooks"
# `make bench` builds first; run by hand, or while a build is broken, the library can lag.
newer=$(find shim config engine -newer "$SNAP" -name '*.[ch]' 2>/dev/null | head -n 3 | tr '\n' ' ')
[ -n "$newer" ] && note "library: older than ${newer}(stale or failed build):" \
	"the figures are those of the library, not of the sources"
echo "machine: $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg) at start;" \
	"$PAIRS interleaved samples per configuration ($PP_PAIRS for pingpong)"

# --- probes -------------------------------------------------------------------------------
MATCH=$OUT/policy-match.yaml
st_nomatch=$(probe "$OUT/policy-nomatch.yaml")
st_match=$(probe "$MATCH")
if [ "$st_match" != ok ]; then
	st_split=$(probe "$OUT/policy-match-split.yaml")
	if [ "$st_split" = ok ]; then
		note "match: the single-rule policy was refused ($st_match);" \
			"measured $OUT/policy-match-split.yaml, the same limits in two rules"
		MATCH=$OUT/policy-match-split.yaml
		st_match=ok
	fi
fi
st_limiter=$(probe "$OUT/policy-limiter.yaml")
st_bulkhead=$(probe "$OUT/policy-bulkhead.yaml")
st_throttle=$(probe "$OUT/policy-throttle.yaml")
st_default=$(probe "")

# --- 1. pingpong --------------------------------------------------------------------------
say "pingpong: $PP_ROUNDS round trips x 6 configurations x $PP_PAIRS"
[ "$st_nomatch" = ok ] || fail_config "$S/pp.nomatch" "$st_nomatch"
[ "$st_match" = ok ] || fail_config "$S/pp.match" "$st_match"
[ "$st_bulkhead" = ok ] || fail_config "$S/pp.bulkhead" "$st_bulkhead"
[ "$st_throttle" = ok ] || fail_config "$S/pp.throttle" "$st_throttle"
i=0
while [ $i -lt "$PP_PAIRS" ]; do
	sample "$S/pp.none" "$OUT/pingpong" "$PP_ROUNDS"
	sample "$S/pp.nomatch" env "LD_PRELOAD=$SNAP" "BULWARK_CONFIG=$PWD/$OUT/policy-nomatch.yaml" \
		"$OUT/pingpong" "$PP_ROUNDS"
	sample "$S/pp.match" env "LD_PRELOAD=$SNAP" "BULWARK_CONFIG=$PWD/$MATCH" \
		"$OUT/pingpong" "$PP_ROUNDS"
	sample "$S/pp.group" env "LD_PRELOAD=$SNAP" \
		"BULWARK_CONFIG=$PWD/$OUT/policy-match-group.yaml" "$OUT/pingpong" "$PP_ROUNDS"
	sample "$S/pp.bulkhead" env "LD_PRELOAD=$SNAP" \
		"BULWARK_CONFIG=$PWD/$OUT/policy-bulkhead.yaml" "$OUT/pingpong" "$PP_ROUNDS"
	sample "$S/pp.throttle" env "LD_PRELOAD=$SNAP" \
		"BULWARK_CONFIG=$PWD/$OUT/policy-throttle.yaml" "$OUT/pingpong" "$PP_ROUNDS"
	i=$((i + 1))
done
if [ -e "$S/pp.match.log" ] && [ ! -e "$S/pp.match.failed" ]; then
	# warm-up included: about 2 sends and 2 recvs per round trip, on each end
	calls=$(counter "$S/pp.match.log" calls)
	if [ "$calls" -lt "$PP_ROUNDS" ]; then
		note "pingpong/match: the rules saw $calls calls in the last run: this build does" \
			"not hook send/recv, so only connect is matched"
	else
		note "pingpong/match: the rules saw $calls calls in the last run (send/recv hooked)"
	fi
fi

# --- 2. dd --------------------------------------------------------------------------------
DD=$(command -v dd)
say "dd: bs=1 count=$DD_COUNT x 2 configurations x $PAIRS"
[ "$st_match" = ok ] || fail_config "$S/dd.match" "$st_match"
i=0
while [ $i -lt "$PAIRS" ]; do
	sample "$S/dd.none" "$OUT/spawnloop" 1 -- "$DD" if=/dev/zero of=/dev/null bs=1 count=$DD_COUNT
	sample "$S/dd.match" "$OUT/spawnloop" 1 -e "LD_PRELOAD=$SNAP" -e "BULWARK_CONFIG=$PWD/$MATCH" \
		-- "$DD" if=/dev/zero of=/dev/null bs=1 count=$DD_COUNT
	i=$((i + 1))
done

# --- 3. startup ---------------------------------------------------------------------------
say "startup: $STARTS x /bin/true x 2 configurations x $PAIRS"
[ "$st_default" = ok ] || fail_config "$S/st.default" "$st_default"
i=0
while [ $i -lt "$PAIRS" ]; do
	sample "$S/st.none" "$OUT/spawnloop" $STARTS -- /bin/true
	sample "$S/st.default" "$OUT/spawnloop" $STARTS -e "LD_PRELOAD=$SNAP" -- /bin/true
	i=$((i + 1))
done

# --- 4. limiter16 -------------------------------------------------------------------------
say "limiter16: $LIM_THREADS threads x $LIM_CONNECTS connects x 2 configurations x $PAIRS"
[ "$st_limiter" = ok ] || fail_config "$S/lim.shim" "$st_limiter"
i=0
while [ $i -lt "$PAIRS" ]; do
	sample "$S/lim.none" "$OUT/limiter16" $LIM_THREADS "$LIM_CONNECTS"
	sample "$S/lim.shim" env "LD_PRELOAD=$SNAP" "BULWARK_CONFIG=$PWD/$OUT/policy-limiter.yaml" \
		"$OUT/limiter16" $LIM_THREADS "$LIM_CONNECTS"
	i=$((i + 1))
done
if [ -e "$S/lim.shim.log" ] && [ ! -e "$S/lim.shim.failed" ]; then
	t=$(counter "$S/lim.shim.log" throttled)
	c=$(counter "$S/lim.shim.log" calls)
	if [ "$c" -eq 0 ]; then
		note "limiter16: the rule saw no connect: the limiter was not exercised"
	elif [ "$t" -gt 0 ]; then
		note "limiter16: $t of $c connects were throttled in the last run: the ratio" \
			"includes rate-limit waits, not only contention"
	fi
fi

# --- table --------------------------------------------------------------------------------
echo "machine: load $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo
failed=0
measured=0
fmt='%-17s %-13s %10s %10s %6s  %-11s %s\n'
printf "$fmt" benchmark metric without with ratio "pair IQR" runs
# Middle half of the ratios of runs taken side by side (run i plain, run i with the shim):
# how far apart the samples were, so that a ratio of 1.03 is not read as a speed-up.
pair_iqr() {
	paste "$1" "$2" | awk -v k="$3" 'NF == 2 { print (k == "rate") ? $2 / $1 : $1 / $2 }' |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit
			q1 = int((NR + 3) / 4); q3 = int((3 * NR + 3) / 4)
			printf "%.2f-%.2f", v[q1], v[q3] }'
}

# row NAME METRIC KIND SCALE FORMAT BASE WITH: KIND rate (higher is faster) or time; SCALE
# and FORMAT show the stored rate or seconds in the metric's unit. Ratio: median with /
# median without for a rate, without / with for a time: 1.0 = no cost, higher is better.
row() {
	name=$1 metric=$2 kind=$3 scale=$4 nfmt=$5 base=$6 with=$7
	for f in "$base" "$with"; do
		if [ -e "$f.failed" ] || ! [ -s "$f" ]; then
			printf "$fmt" "$name" "$metric" - - - - "could not run: $(cat "$f.failed" 2>/dev/null)"
			failed=$((failed + 1))
			return
		fi
	done
	mb=$(median "$base") mw=$(median "$with")
	r=$(awk -v b="$mb" -v w="$mw" -v k="$kind" 'BEGIN {
		printf "%.3f", (k == "rate") ? w / b : b / w }')
	echo "$name $r $mb $mw" >>"$S/ratios"
	printf "$fmt" "$name" "$metric" \
		"$(awk -v x="$mb" -v s="$scale" -v f="$nfmt" 'BEGIN { printf f, x * s }')" \
		"$(awk -v x="$mw" -v s="$scale" -v f="$nfmt" 'BEGIN { printf f, x * s }')" \
		"$r" "$(pair_iqr "$base" "$with" "$kind")" "$(wc -l <"$base")+$(wc -l <"$with")"
	measured=$((measured + 1))
}
: >"$S/ratios"
row pingpong/nomatch "round trips/s" rate 1 %.0f "$S/pp.none" "$S/pp.nomatch"
row pingpong/match "round trips/s" rate 1 %.0f "$S/pp.none" "$S/pp.match"
row pingpong/group "round trips/s" rate 1 %.0f "$S/pp.none" "$S/pp.group"
row pingpong/bulkhead "round trips/s" rate 1 %.0f "$S/pp.none" "$S/pp.bulkhead"
row pingpong/throttle "round trips/s" rate 1 %.0f "$S/pp.none" "$S/pp.throttle"
row dd/match "s per run" time 1 %.3f "$S/dd.none" "$S/dd.match"
row startup/default "ms per start" time 1000 %.3f "$S/st.none" "$S/st.default"
row limiter16 "connects/s" rate 1 %.0f "$S/lim.none" "$S/lim.shim"
if [ -s "$NOTES" ]; then
	echo
	echo "notes:"
	cat "$NOTES"
fi

# --- summary ------------------------------------------------------------------------------
echo
echo "summary (ratio 1.0 = no cost; 0.9 = 10% slower with the shim):"
ratio_of() { awk -v n="$1" '$1 == n { print $2 }' "$S/ratios"; }
r=$(ratio_of pingpong/nomatch)
[ -n "$r" ] && echo "  pingpong, rules that match nothing here: $r of plain round trips/s"
r=$(ratio_of pingpong/match)
[ -n "$r" ] && echo "  pingpong, breaker + byte limit + recv timeout on it: $r"
r=$(ratio_of pingpong/group)
[ -n "$r" ] && echo "  pingpong, the same with state shared by a process tree: $r"
r=$(ratio_of pingpong/bulkhead)
[ -n "$r" ] && echo "  pingpong, a breaker and a bulkhead shared by a process tree: $r"
r=$(ratio_of pingpong/throttle)
[ -n "$r" ] && echo "  pingpong, a breaker and adaptive throttling, shared: $r"
r=$(ratio_of dd/match)
[ -n "$r" ] && echo "  dd, read/write on files under socket rules: $r of plain speed"
r=$(ratio_of startup/default)
if [ -n "$r" ]; then
	x=$(awk -v r="$r" 'BEGIN { printf "%.2f", 1 / r }')
	verdict=$(awk -v x="$x" 'BEGIN { print (x <= 1.5) ? "within" : "over" }')
	echo "  startup, default policy: a start takes ${x}x as long as a plain one" \
		"($verdict the 1.5x target)"
fi
r=$(ratio_of limiter16)
[ -n "$r" ] && echo "  limiter16, $LIM_THREADS threads on one limiter: $r of plain connects/s"
echo "bench: $measured measured, $failed could not run (raw samples and logs: $S/)"
[ "$failed" -eq 0 ]
