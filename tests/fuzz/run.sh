#!/bin/sh
# `make fuzz`: run each libFuzzer target for SECONDS over a scratch copy of its seed corpus
# (what it finds stays out of git). Any crash, leak, timeout or failed check fails the run,
# its input saved in DIR/crashes/ with the command that reproduces it.
# usage: run.sh DIR SECONDS TARGET...     (DIR holds fuzz_TARGET, built by make fuzz-build)
set -u
dir=$1 seconds=$2; shift 2
cd "$(dirname "$0")/../.." || exit 1
for t in "$@"; do
	mkdir -p "$dir/corpus/$t" "$dir/crashes" || exit 1
	cp tests/fuzz/corpus/"$t"/* "$dir/corpus/$t/" || exit 1
	dict=; [ -f "tests/fuzz/$t.dict" ] && dict=-dict=tests/fuzz/$t.dict
	echo "  FUZZ    $t: $seconds s, log in $dir/$t.log"
	if ! "$dir/fuzz_$t" $dict -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
			-artifact_prefix="$dir/crashes/$t-" "$dir/corpus/$t" >"$dir/$t.log" 2>&1; then
		tail -n 60 "$dir/$t.log"
		a=$(sed -n 's/.*Test unit written to //p' "$dir/$t.log" | tail -n 1)
		echo "fuzz: $t FAILED; reproduce with $dir/fuzz_$t $a"
		exit 1
	fi
	grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/$t.log" | sed "s/^/  $t: /"
	grep -E 'stat::(number_of_executed_units|average_exec_per_sec)' "$dir/$t.log" | sed "s/^/  $t: /"
done
echo "fuzz: no crash in $*"
