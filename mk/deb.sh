#!/bin/sh
# `make deb`: build the Debian package from a copy of this tree (dpkg-buildpackage puts its
# files beside the source, so the tree itself stays clean), then run lintian on it.
# usage: deb.sh OUTDIR     -> OUTDIR/bulwark_VERSION_ARCH.deb, OUTDIR/lintian.txt
set -u
out=$1
cd "$(dirname "$0")/.." || exit 1
version=$(dpkg-parsechangelog -S Version) || exit 1
src=$out/bulwark-$version
rm -rf "$out"; mkdir -p "$src" || exit 1
# what git tracks, plus new files not ignored (the work in progress); else all but builds
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c \
		'[ -e "$1" ] || exit 0; mkdir -p "$2/$(dirname "$1")" && cp -p "$1" "$2/$1"' sh {} "$src"
else
	tar --exclude=./build --exclude='./build-*' -cf - . | tar -xf - -C "$src"
fi
echo "  DEB     $src (log in $out/build.log)"
start=$(date +%s)
if ! (cd "$src" && unset MAKEFLAGS MAKELEVEL MFLAGS && dpkg-buildpackage -us -uc -b) \
		>"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log"
	echo "deb: dpkg-buildpackage failed (log in $out/build.log)"
	exit 1
fi
echo "  built in $(($(date +%s) - start))s:"
ls "$out"/*.deb | sed 's/^/    /'
changes=$(ls "$out"/*.changes)
if command -v lintian >/dev/null 2>&1; then
	lintian --info --display-info "$changes" >"$out/lintian.txt" 2>&1
	errors=$(grep -c '^E: ' "$out/lintian.txt")
	warnings=$(grep -c '^W: ' "$out/lintian.txt")
	echo "  lintian: $errors errors, $warnings warnings (all of it in $out/lintian.txt)"
	grep -E '^(E|W): ' "$out/lintian.txt" | sed 's/^/    /'
	[ "$errors" -eq 0 ] || exit 1
else
	echo "  lintian is not installed: the package is not checked (apt-get install lintian)"
fi
