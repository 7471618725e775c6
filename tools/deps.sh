#!/bin/sh
# Install the Debian packages bulwark needs, or say which are missing.
# Usage: deps.sh build|test|fuzz
set -u
build="gcc make libc6-dev libyaml-dev libsqlite3-dev libjansson-dev"
test="$build libcmocka-dev sqlite3 libsqlite3-dev curl strace python3 nodejs procps default-jdk-headless wget git redis-server redis-tools postgresql"
fuzz="clang libclang-rt-14-dev"
# Debian's python3 keeps CPython's own test suite (tests/cpython) in a package apart; a
# python3 from elsewhere (pyenv) brings its own.
if [ "$(command -v python3 || echo /usr/bin/python3)" = /usr/bin/python3 ]; then
	v=$(readlink -f /usr/bin/python3 2>/dev/null | sed -n 's|.*/python\(3\.[0-9]*\)$|\1|p')
	test="$test libpython${v:-3.11}-testsuite"
fi
case "${1:-build}" in
	build) want=$build ;;
	fuzz) want="$build $fuzz" ;;
	*) want=$test ;;
esac
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
# node may come from elsewhere than Debian's package; any node on PATH will do.
if [ "$missing" = " nodejs" ] && command -v node >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
	echo "bulwark needs these Debian packages:$missing" >&2
	echo "install them as root: apt-get install$missing" >&2
	exit 1
fi
echo "installing Debian packages:$missing" >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; }; then
	echo "could not install:$missing (is apt reachable?)" >&2
	exit 1
fi
