#!/bin/sh
# `make demo`: a server that comes up 1.2 s late; curl alone fails, under bulwark's
# built-in default policy it waits for it.
set -u
cd "$(dirname "$0")/.."
BULWARK=${BULWARK:-$PWD/build/bulwark}
# installed copies of the examples use the installed tool
[ -x "$BULWARK" ] || BULWARK=$(command -v bulwark || echo "$BULWARK")
[ -x "$BULWARK" ] || { echo "demo.sh: $BULWARK is not built: run make" >&2; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

late_server() {
	# bounded: the server lives 6 s at most
	(sleep 1.2; cd "$dir" && exec timeout 6 python3 -m http.server --bind 127.0.0.1 "$port") \
		>/dev/null 2>&1 &
	echo $!
}

echo "== without bulwark: curl against a server that starts 1.2 s late"
pid=$(late_server)
curl -sS -o /dev/null -w "HTTP %{http_code}\n" "http://127.0.0.1:$port/" && echo "(unexpected: reached it)"
kill "$pid" 2>/dev/null; wait 2>/dev/null

echo
echo "== with bulwark (built-in default policy; events on stderr at level warn)"
pid=$(late_server)
# no policy file of the user's either: the built-in default, which bulwark names
(cd "$dir" && env -u BULWARK_CONFIG XDG_CONFIG_HOME="$dir" "$BULWARK" run -- \
	curl -sS -o /dev/null -w "HTTP %{http_code}\n" "http://127.0.0.1:$port/")
rc=$?
kill "$pid" 2>/dev/null; wait 2>/dev/null
echo
[ $rc -eq 0 ] && echo "recovered: curl reached the late server (see the retry and recovered events)"
exit $rc
