#!/bin/sh
# A "test suite" that starts before its service: fails alone, passes under bulwark.
#   sh examples/ci-startup-race/race.sh            # without bulwark: fails
#   build/bulwark run -c examples/ci-startup-race/bulwark.yaml -- \
#       sh examples/ci-startup-race/race.sh        # with bulwark: passes
set -u
port=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
# the service takes 2 s to start; it is not run under the policy's retry (it listens)
(sleep 2; exec timeout 8 python3 -m http.server --bind 127.0.0.1 "$port") >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
python3 - "$port" <<'PY'
import sys, urllib.request
port = int(sys.argv[1])
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
print("test suite: service answered,", len(body), "bytes: PASS")
PY
