#!/bin/sh
# `make test-fresh`: the README's first commands on a clean Debian 12 root. mmdebstrap (or
# debootstrap) makes a minimal bookworm root, `git archive` of the commit is unpacked in
# it, and in a chroot of its own (private mounts and process ids) it runs:
#   apt-get install make git   what the README says a minimal image lacks
#   make                       must not install anything, and must say what is missing
#   make demo                  the README's first command
#   make test                  the README's second (FRESH_STEPS=demo leaves it out)
# Each step is timed; closing line "fresh: N passed, N failed". Needs root and Debian's
# mirror; see tests/fresh/README.md.
#
# Knobs: FRESH_STEPS (default "demo test"; "demo unit" runs make unit instead of make
# test), FRESH_REV (the commit, default HEAD), FRESH_DIR (default build/fresh), FRESH_KEEP=1
# keeps the root afterwards, FRESH_MIRROR (default: the bootstrap tool's), FRESH_DEB=FILE
# also installs that package with apt in the root and runs its demo.
set -u
cd "$(dirname "$0")/../.." || exit 1
steps=${FRESH_STEPS:-demo test}
rev=${FRESH_REV:-HEAD}
dir=${FRESH_DIR:-build/fresh}
root=$(mkdir -p "$dir" && cd "$dir" && pwd)/root
pass=0 fail=0
say() { printf '%s\n' "$*"; }
result() { # NAME OK SECONDS
	if [ "$2" -eq 0 ]; then pass=$((pass + 1)); say "-- ok      $1 (${3}s)"
	else fail=$((fail + 1)); say "-- FAILED  $1 (${3}s)"; say "fresh: failed $1"; fi
}
finish() {
	say "fresh: $pass passed, $fail failed"
	[ $fail -eq 0 ]
	exit $?
}

[ "$(id -u)" = 0 ] || { say "fresh: needs root (a chroot)"; fail=1; finish; }
git rev-parse --verify -q "$rev^{commit}" >/dev/null || { say "fresh: $rev is not a commit of this repository"; fail=1; finish; }

# the root, made anew each time
cleanup() {
	# mounts live in the chroot's own mount namespace and end with it; this is a safety net
	grep -q " $root/" /proc/mounts && umount -R "$root/proc" "$root/dev" "$root/sys" 2>/dev/null
	[ "${FRESH_KEEP:-0}" = 1 ] || rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
cleanup
mkdir -p "$root"
say "== a minimal Debian 12 root in $root"
t=$(date +%s)
opt='Acquire::Check-Valid-Until "false"'   # a mirror that serves a snapshot
if command -v mmdebstrap >/dev/null 2>&1; then
	mmdebstrap --variant=minbase --aptopt="$opt" bookworm "$root" ${FRESH_MIRROR:-} \
		>"$dir/bootstrap.log" 2>&1
else
	debootstrap --variant=minbase bookworm "$root" ${FRESH_MIRROR:-} >"$dir/bootstrap.log" 2>&1 &&
		echo "$opt;" >"$root/etc/apt/apt.conf.d/99fresh"
fi
rc=$?
[ $rc -eq 0 ] || tail -n 20 "$dir/bootstrap.log"
result "bootstrap a minimal bookworm root ($(command -v mmdebstrap || command -v debootstrap))" $rc $(($(date +%s) - t))
[ $rc -eq 0 ] || finish
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
# What the installer (or a container runtime) writes on every Debian machine and a
# bootstrapped root lacks: without it localhost resolves differently.
echo fresh >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tfresh\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' \
	>"$root/etc/hosts"

# the commit, as a clone would have it
mkdir -p "$root/src/bulwark"
git archive --format=tar "$rev" | tar -x -C "$root/src/bulwark" || { fail=1; finish; }
say "   $(git rev-parse --short "$rev"): $(git log -1 --format=%s "$rev")"
if [ -n "${FRESH_DEB:-}" ]; then cp "$FRESH_DEB" "$root/src/" || { fail=1; finish; }; fi

# One command in the chroot, its output streamed: private mounts, its own process ids
# (whatever it leaves running ends with it), a clean environment.
in_root() {
	unshare --mount --pid --fork --kill-child sh -c '
		r=$1; shift
		mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" && mount -t sysfs sys "$r/sys" &&
		exec chroot "$r" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			DEBIAN_FRONTEND=noninteractive /bin/sh -c "$1"' sh "$root" "$1"
}
# A step: COMMAND in /src/bulwark, its output streamed, its status passed out in a file.
step() { # NAME COMMAND
	say
	say "== $1"
	say "   # $2"
	t=$(date +%s)
	rm -f "$root/.rc"
	in_root "cd /src/bulwark && { $2; }; echo \$? >/.rc" 2>&1 | sed -u 's/^/   /'
	rc=$(cat "$root/.rc" 2>/dev/null || echo 1)
	result "$1" "$rc" $(($(date +%s) - t))
}

step "the README's prerequisites: apt-get install make git" \
	"apt-get update -qq && apt-get install -y -qq make git >/dev/null && make --version | head -n 1"
before=$(in_root "dpkg-query -W -f='\${Package}\n' | sort" | md5sum)
step "a plain make installs nothing and names what is missing" \
	"make >/tmp/make.out 2>&1; rc=\$?; cat /tmp/make.out; [ \$rc -ne 0 ] && grep -q 'make deps' /tmp/make.out"
after=$(in_root "dpkg-query -W -f='\${Package}\n' | sort" | md5sum)
[ "$before" = "$after" ]; result "no package came with the plain make" $? 0
for s in $steps; do
	case $s in
	demo) step "make demo (the README's first command)" "make demo" ;;
	test) step "make test (the README's second command)" "make test" ;;
	*) step "make $s" "make $s" ;;
	esac
done
if [ -n "${FRESH_DEB:-}" ]; then
	deb=$(basename "$FRESH_DEB")
	step "apt-get install ./$deb, then its demo" \
		"apt-get install -y -qq /src/$deb curl python3 >/dev/null && sh /usr/share/doc/bulwark/examples/demo.sh"
fi
finish
