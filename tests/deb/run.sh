#!/bin/sh
# `make test-deb`: the Debian package that `make deb` built, extracted with dpkg -x into a
# scratch root, holds what it should and runs the demo from its installed files (the
# installed bulwark preloading the installed library). Needs curl and python3 (the demo's).
# usage: run.sh DIR    (DIR holds bulwark_*.deb)  -> closing line "deb: N passed, N failed"
set -u
deb=$(ls "$1"/bulwark_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || { echo "deb: no bulwark_*.deb in $1: run make deb"; echo "deb: 0 passed, 1 failed"; exit 1; }
root=$(mktemp -d) || exit 1
trap 'rm -rf "$root"' EXIT
pass=0 fail=0
check() { # NAME COMMAND...
	name=$1; shift
	if "$@" >"$root.out" 2>&1; then
		pass=$((pass + 1)); echo "  ok      $name"
	else
		fail=$((fail + 1)); echo "  FAILED  $name"; echo "deb: failed $name"
		sed 's/^/    /' "$root.out" | tail -n 30
	fi
	rm -f "$root.out"
}

echo "  package: $deb"
dpkg-deb -f "$deb" Package Version Depends Built-Using | sed 's/^/  /'
dpkg -x "$deb" "$root" || exit 1
for f in usr/bin/bulwark usr/lib/bulwark/libbulwark.so usr/share/man/man1/bulwark.1.gz \
	usr/share/man/man5/bulwark.yaml.5.gz usr/share/bash-completion/completions/bulwark \
	usr/share/zsh/vendor-completions/_bulwark usr/share/doc/bulwark/copyright \
	usr/share/doc/bulwark/examples/demo.sh usr/share/doc/bulwark/examples/systemd/bulwark.conf; do
	check "holds /$f" test -f "$root/$f"
done
check "/usr/lib/libbulwark.so leads to the library" test "$(readlink -f "$root/usr/lib/libbulwark.so")" = "$root/usr/lib/bulwark/libbulwark.so"
# the path the systemd example preloads is the one the package installs
pre=$(sed -n 's/^Environment=LD_PRELOAD=//p' "$root/usr/share/doc/bulwark/examples/systemd/bulwark.conf")
check "the systemd drop-in preloads a file of the package ($pre)" test -f "$root$pre"
check "the manual pages format without a warning" sh -c '
	for m in "$1"/usr/share/man/man1/bulwark.1.gz "$1"/usr/share/man/man5/bulwark.yaml.5.gz; do
		w=$(zcat "$m" | groff -man -Tutf8 -ww -z 2>&1) || exit 1
		[ -z "$w" ] || { echo "$m: $w"; exit 1; }
	done' sh "$root"

bw=$root/usr/bin/bulwark
check "the installed bulwark runs" "$bw" version
lib=$(env -u BULWARK_LIB -u LD_PRELOAD -u BULWARK_CONFIG "$bw" run -- sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
check "it preloads the installed library" test "$lib" = "$root/usr/lib/bulwark/libbulwark.so"
check "it checks the installed example policies" sh -c '
	for p in "$1"/usr/share/doc/bulwark/examples/*/*.yaml; do "$2" check "$p" >/dev/null || exit 1; done' \
	sh "$root" "$bw"
# the installed demo, run by the installed command: a late server reached under bulwark
check "the installed demo recovers" sh -c 'BULWARK="$1" sh "$2" >"$3" 2>&1; rc=$?; cat "$3";
	[ $rc -eq 0 ] && grep -q "^recovered" "$3"' sh "$bw" "$root/usr/share/doc/bulwark/examples/demo.sh" "$root/demo.log"

echo "deb: $pass passed, $fail failed"
[ $fail -eq 0 ]
