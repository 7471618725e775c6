#!/bin/sh
# Packages: a plain `make` never runs apt-get, even as root, and says what is missing and
# how to install it; an explicit `make deps` does install; what is there is found by
# probing, so dpkg is not needed. apt-get, dpkg and dpkg-query are stand-ins on PATH that
# record their calls; a missing library is simulated with a compiler that is not there.
# Closing line "deps: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
unset MAKEFLAGS MAKELEVEL MFLAGS
pass=0 fail=0
check() { # NAME COMMAND...
	name=$1; shift
	if "$@" >"$tmp/out" 2>&1; then pass=$((pass + 1)); echo "  ok      $name"
	else fail=$((fail + 1)); echo "  FAILED  $name"; echo "deps: failed $name"; sed 's/^/    /' "$tmp/out" | head -20; fi
}
mkdir "$tmp/bin"
for t in apt-get dpkg dpkg-query; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\nexit 0\n' "$t" "$tmp" >"$tmp/bin/$t"
	chmod +x "$tmp/bin/$t"
done
fake() { PATH="$tmp/bin:$PATH" "$@"; }
nocc=/nonexistent/cc

fake make -s BUILD="$tmp/b1" CC=$nocc >"$tmp/make.out" 2>&1; rc=$?
check "a plain make fails when something is missing" [ $rc -ne 0 ]
check "and names what is missing" grep -q "missing: a C compiler ($nocc).*" "$tmp/make.out"
check "and says to run make deps" grep -q "make deps" "$tmp/make.out"
check "and never ran apt-get or dpkg" [ ! -e "$tmp/calls" ]
fake make -s BUILD="$tmp/b2" CC=$nocc install DESTDIR="$tmp/d" >/dev/null 2>&1
check "make install does not run apt-get either" [ ! -e "$tmp/calls" ]

fake make -s BUILD="$tmp/b3" CC=$nocc deps >"$tmp/deps.out" 2>&1; rc=$?
if [ "$(id -u)" = 0 ]; then
	check "make deps runs apt-get install as root" grep -q "^apt-get install .*gcc" "$tmp/calls"
	check "and fails when the packages did not bring it" [ $rc -ne 0 ]
else
	check "make deps names the packages when not root" grep -q "apt-get install" "$tmp/deps.out"
fi
rm -f "$tmp/calls"
# the libraries this machine has are found with dpkg and apt-get out of the picture
check "what is installed is found without dpkg" fake sh mk/deps.sh check build
check "without calling dpkg" [ ! -e "$tmp/calls" ]

echo "deps: $pass passed, $fail failed"
[ $fail -eq 0 ]
