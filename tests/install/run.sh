#!/bin/sh
# `make install` into a scratch DESTDIR: the installed command finds the installed library,
# the bash and zsh completions complete subcommands, options and policy targets and know
# every option `bulwark --help` names, and `make uninstall` removes every file install put
# there. Closing line "install: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$(mktemp -d) || exit 1
trap 'rm -rf "$root"' EXIT
# a make of our own, not a job of the make that runs this suite
unset MAKEFLAGS MAKELEVEL MFLAGS
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "  ok      $1"; }
bad() { fail=$((fail + 1)); echo "  FAILED  $1"; echo "install: failed $1"; }
check() { # NAME COMMAND...: passes when COMMAND succeeds
	name=$1; shift
	if "$@" >"$root/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    /' "$root/out" | head -20; fi
}

d=$root/dest p=/opt/bw
make -s install DESTDIR="$d" PREFIX=$p >"$root/make.log" 2>&1 || { cat "$root/make.log"; bad "make install"; }
for f in bin/bulwark lib/libbulwark.so share/man/man1/bulwark.1 share/man/man5/bulwark.yaml.5 \
	share/bash-completion/completions/bulwark share/zsh/site-functions/_bulwark \
	share/doc/bulwark/README.md share/doc/bulwark/runbook.md \
	share/doc/bulwark/examples/demo.sh share/doc/bulwark/examples/systemd/README.md; do
	check "installed $f" test -f "$d$p/$f"
done
bw=$d$p/bin/bulwark
check "installed bulwark runs" "$bw" version
# the command preloads the library beside it in ../lib, not the one in build/
preload=$(env -u BULWARK_LIB -u LD_PRELOAD -u BULWARK_CONFIG "$bw" run -- sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
check "installed bulwark preloads the installed library" [ "$preload" = "$d$p/lib/libbulwark.so" ]

# bash: the completion function called as bash calls it
bash_complete() { # LINE: the words offered there, one line
	PATH="$d$p/bin:$PATH" bash -c '
		. "$1"; COMP_LINE=$2; COMP_POINT=${#2}
		read -ra COMP_WORDS <<<"$2"; [[ $2 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _bulwark; echo "${COMPREPLY[*]}"' \
		sh "$d$p/share/bash-completion/completions/bulwark" "$1"
}
offers() { # SHELL LINE WORD...: completing LINE offers every WORD
	sh=$1 line=$2; shift 2
	got=" $($sh "$line" | tr '\n' ' ') "
	for w in "$@"; do
		case $got in *" $w "*) ;; *) echo "completing '$line' in ${sh%_complete}: no '$w' in:$got"; return 1 ;; esac
	done
}
policy=examples/legacy-service/bulwark.yaml
check "bash: subcommands" offers bash_complete "bulwark " run check explain report suggest status reload metrics version -V --version
check "bash: run options" offers bash_complete "bulwark run -" -c --config -o --log -l --level --observe --seed -q
check "bash: levels" offers bash_complete "bulwark run -l " error warn info debug
check "bash: sinks" offers bash_complete "bulwark run -o " stderr syslog file:
check "bash: check options" offers bash_complete "bulwark check -" -c --config --default -q
check "bash: explain ops" offers bash_complete "bulwark explain " connect accept send recv resolve sqlite
check "bash: explain targets from the policy" \
	offers bash_complete "bulwark explain -c $policy connect " db.internal:5432 127.0.0.1:5432
check "bash: report formats" offers bash_complete "bulwark report --format " table json prometheus html
check "bash: report options" offers bash_complete "bulwark report -" --format --wide -w --replay --config --pid
check "bash: status options" offers bash_complete "bulwark status -" --group --dir --format --wide --prune
check "bash: explain options" offers bash_complete "bulwark explain -" -c --config --prog --resolve
check "bash: reload options" offers bash_complete "bulwark reload -" --group --dir
check "bash: metrics options" offers bash_complete "bulwark metrics -" --listen --textfile --group --dir
check "bash: the command after run" offers bash_complete "bulwark run -l info -- ech" echo

# zsh: a real interactive zsh in a pseudo-terminal
if command -v zsh >/dev/null 2>&1; then
	zout=$root/zsh.out
	timeout 120 zsh -f tests/install/zsh_complete.zsh "$d$p/share/zsh/site-functions" "$d$p/bin" \
		"bulwark " "bulwark run --" "bulwark run -l " "bulwark explain " \
		"bulwark explain -c $policy connect " "bulwark status --format " "bulwark status --" \
		"bulwark check --" "bulwark report --" >"$zout" 2>&1
	zsh_complete() { grep -F "[$1]" "$zout" | head -1; }
	check "zsh: subcommands" offers zsh_complete "bulwark " run check explain report suggest status reload metrics version
	check "zsh: run options" offers zsh_complete "bulwark run --" --config --log --level --observe --seed --quiet
	check "zsh: levels" offers zsh_complete "bulwark run -l " error warn info debug
	check "zsh: explain ops" offers zsh_complete "bulwark explain " connect accept send recv resolve sqlite
	check "zsh: explain targets from the policy" \
		offers zsh_complete "bulwark explain -c $policy connect " db.internal:5432 127.0.0.1:5432
	check "zsh: status formats" offers zsh_complete "bulwark status --format " table json prometheus
	check "zsh: status options" offers zsh_complete "bulwark status --" --prune --wide --group --dir
	check "zsh: check options" offers zsh_complete "bulwark check --" --config --default --quiet
	check "zsh: report options" offers zsh_complete "bulwark report --" --format --wide --replay --config --pid
else
	echo "  skip    zsh completion: zsh is not installed"
fi

# every long option the command documents is completed, in both shells
opts=$("$bw" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
missing=""
for o in $opts; do
	for f in "$d$p/share/bash-completion/completions/bulwark" "$d$p/share/zsh/site-functions/_bulwark"; do
		grep -q -- "$o" "$f" || missing="$missing ${f##*/}:$o"
	done
done
check "completions know every option of bulwark --help" [ -z "$missing" ]
[ -n "$missing" ] && echo "    missing:$missing"

# the systemd example: its policy loads, and systemd reads the drop-in without a complaint
check "systemd example: the policy loads" "$bw" check examples/systemd/legacyd.yaml
if command -v systemd-analyze >/dev/null 2>&1; then
	u=$root/units
	mkdir -p "$u/legacyd.service.d"
	cp examples/systemd/bulwark.conf "$u/legacyd.service.d/"
	printf '[Unit]\nDescription=a legacy service\n[Service]\nExecStart=/bin/true\n' \
		>"$u/legacyd.service"
	# it exits 0 on an unknown key too, and names the file: a word from it is a complaint
	said=$(SYSTEMD_UNIT_PATH="$u:" systemd-analyze verify "$u/legacyd.service" 2>&1 | grep bulwark.conf)
	check "systemd example: systemd-analyze reads the drop-in cleanly" [ -z "$said" ]
	[ -n "$said" ] && echo "    $said"
else
	echo "  skip    systemd drop-in: systemd-analyze is not installed"
fi

make -s uninstall DESTDIR="$d" PREFIX=$p >"$root/make.log" 2>&1 || { cat "$root/make.log"; bad "make uninstall"; }
left=$(cd "$d" && find . ! -type d)
check "make uninstall removes every installed file" [ -z "$left" ]
[ -n "$left" ] && echo "    left:" $left

echo "install: $pass passed, $fail failed"
[ $fail -eq 0 ]
