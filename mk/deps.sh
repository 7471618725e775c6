#!/bin/sh
# What bulwark needs, found by probing the system (a test compile, a command on PATH), not
# by asking a package manager: a build must work wherever the libraries are, dpkg or not.
# What is missing is named with the Debian package that brings it.
#
# usage: deps.sh check SET...     say what is missing (exit 1), never install
#        deps.sh install SET...   as root with apt-get: install what is missing;
#                                 otherwise the same as check
# SET: build (make), demo (make demo), unit (cmocka tests), test (make test/check),
#      fuzz (make fuzz), deb (make deb), fresh (make test-fresh)
set -u
CC=${CC:-cc}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# Probes: each prints nothing and succeeds when the piece is there.
compiles() { # HEADER... -- LINKFLAGS...
	src=$tmp/probe.c; : >"$src"
	while [ $# -gt 0 ] && [ "$1" != -- ]; do echo "#include <$1>" >>"$src"; shift; done
	[ $# -gt 0 ] && shift
	echo 'int main(void) { return 0; }' >>"$src"
	$CC -o "$tmp/probe" "$src" "$@" >/dev/null 2>&1
}
static_lib() { case $($CC -print-file-name="$1" 2>/dev/null) in /*) return 0 ;; esac; return 1; }
have() { command -v "$1" >/dev/null 2>&1; }
# a server the tests make and restart themselves (initdb, pg_ctl) and pgbench to load it
have_postgres() {
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/pgbench" ] && return 0
	done
	have initdb && have pg_ctl && have pgbench
}
# a MariaDB server the tests make (mariadb-install-db) and start themselves; Debian puts
# mariadbd in /usr/sbin, off a user's PATH
have_mariadb() {
	{ have mariadbd || [ -x /usr/sbin/mariadbd ]; } && have mariadb-install-db
}
# Debian's python3 keeps CPython's test suite in a package apart; a python3 from elsewhere
# (pyenv) brings its own, and tests/cpython skips cleanly where there is none.
have_cpython_tests() {
	[ "$(command -v python3)" != /usr/bin/python3 ] ||
		python3 -c 'import test.test_socket' >/dev/null 2>&1
}
# bulwark report --format html is loaded in a headless browser (Debian names it chromium)
have_chromium() { have chromium || have chromium-browser; }
have_fuzzer() {
	echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n > 9; }' \
		>"$tmp/fuzz.c"
	clang -fsanitize=fuzzer,address,undefined -o "$tmp/fuzz" "$tmp/fuzz.c" >/dev/null 2>&1
}

# One line per piece: SET|PROBE|WHAT IS MISSING|DEBIAN PACKAGE
needs() {
	cat <<-'EOF'
	build|have $CC|a C compiler ($CC)|gcc
	build|compiles stdio.h|the C library's headers|libc6-dev
	build|compiles yaml.h -- -lyaml|libyaml (yaml.h, -lyaml)|libyaml-dev
	build|static_lib libyaml.a|libyaml.a (libyaml built as a static archive)|libyaml-dev
	build|compiles jansson.h -- -ljansson|jansson (jansson.h, -ljansson)|libjansson-dev
	build|compiles sqlite3.h|sqlite3.h|libsqlite3-dev
	demo|have curl|curl|curl
	demo|have python3|python3|python3
	unit|compiles stdarg.h stddef.h setjmp.h stdint.h cmocka.h -- -lcmocka|cmocka (cmocka.h, -lcmocka)|libcmocka-dev
	test|have sqlite3|the sqlite3 shell|sqlite3
	test|have strace|strace|strace
	test|have ps|ps|procps
	test|have node|node|nodejs
	test|have javac|a JDK (javac)|default-jdk-headless
	test|have wget|wget|wget
	test|have git|git|git
	test|have redis-server|redis-server|redis-server
	test|have redis-cli|redis-cli|redis-tools
	test|compiles hiredis/hiredis.h -- -lhiredis|hiredis (hiredis.h, -lhiredis)|libhiredis-dev
	test|have_mariadb|MariaDB's server (mariadbd, mariadb-install-db)|mariadb-server
	test|have mariadb|the mariadb client|mariadb-client
	test|compiles mariadb/mysql.h -- -lmariadb|libmariadb (mysql.h, -lmariadb)|libmariadb-dev
	test|have_postgres|PostgreSQL (initdb, pg_ctl, pgbench)|postgresql
	test|have psql|psql|postgresql-client
	test|have valgrind|valgrind (make bench-instr)|valgrind
	test|have_cpython_tests|CPython's own test suite (tests/cpython)|libpython3.11-testsuite
	test|have_chromium|headless Chromium (to load bulwark report --format html)|chromium
	test|have zsh|zsh (to test the zsh completion)|zsh
	test|have systemd-analyze|systemd-analyze (to check the systemd example)|systemd
	fuzz|have clang|clang|clang
	fuzz|have_fuzzer|clang's libFuzzer and sanitizer runtimes|libclang-rt-14-dev
	deb|have dpkg-buildpackage|dpkg-buildpackage|dpkg-dev
	deb|have dh|debhelper|debhelper
	deb|have lintian|lintian|lintian
	fresh|have mmdebstrap|mmdebstrap|mmdebstrap
	fresh|test -f /usr/share/keyrings/debian-archive-keyring.gpg|Debian's archive keyring|debian-archive-keyring
	EOF
}

# A set includes the sets it builds on.
expand() {
	for s in "$@"; do
		case $s in
		build) echo build ;;
		demo) echo build demo ;;
		unit) echo build unit ;;
		test) echo build demo unit test ;;
		fuzz) echo build fuzz ;;
		deb) echo build unit deb ;;
		fresh) echo fresh ;;
		*) echo "deps.sh: unknown set '$s'" >&2; exit 2 ;;
		esac
	done | tr ' ' '\n' | sort -u
}

action=${1:-check}; [ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- build
sets=$(expand "$@") || exit 2

# Sets $missing (what, for a person) and $packages (Debian names) of what is not there.
probe_all() {
	missing=""; packages=""
	while IFS='|' read -r set probe what pkg; do
		echo "$sets" | grep -qx "$set" || continue
		eval "$probe" </dev/null && continue
		what=$(eval "echo \"$what\"")
		missing="$missing${missing:+, }$what"
		case " $packages " in *" $pkg "*) ;; *) packages="$packages${packages:+ }$pkg" ;; esac
	done <<-EOF
	$(needs)
	EOF
}

probe_all
[ -z "$missing" ] && exit 0

if [ "$action" = install ] && [ "$(id -u)" = 0 ] && have apt-get; then
	echo "installing Debian packages: $packages" >&2
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $packages >/dev/null; }; then
		echo "could not install: $packages (is apt reachable?)" >&2
		exit 1
	fi
	probe_all
	[ -z "$missing" ] && exit 0
	echo "bulwark: still missing after installing them: $missing" >&2
	exit 1
fi

target=deps; case " $* " in *" build "*) ;; *) target="deps-$1" ;; esac
echo "bulwark: missing: $missing" >&2
if have apt-get; then
	echo "  install it as root: make $target   (apt-get install $packages)" >&2
else
	echo "  install it with your system's packages (Debian names: $packages)" >&2
fi
exit 1
