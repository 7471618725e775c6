#!/bin/sh
# The primary (a dead port) is down; the replica answers. A client alone fails; under the
# policy below it is moved to the replica after two refused attempts, and once the
# breaker has opened, its later requests go to the replica at once.
set -u
cd "$(dirname "$0")/../.."
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
primary=$(free_port) replica=$(free_port)
dir=$(mktemp -d)
(cd "$dir" && echo replica >index.html && exec timeout 20 python3 -m http.server --bind 127.0.0.1 "$replica") >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$dir"' EXIT
cat >"$dir/policy.yaml" <<YAML
version: 1
log: { sink: stderr, level: warn }
rules:
  - name: db
    match: { ops: [connect], dest: ["127.0.0.1:$primary"] }
    retry: { attempts: 2, backoff: { base: 50ms, max: 50ms } }
    breaker: { trip: { consecutive: 2 }, open_for: 30s }
    fallback: ["127.0.0.1:$replica"]
YAML
sleep 0.5
echo "== without bulwark"
curl -sS "http://127.0.0.1:$primary/"
echo "== with bulwark: one client process, three requests"
build/bulwark run -c "$dir/policy.yaml" -- python3 -c "
import urllib.request
for i in range(3):
    print('request', i + 1, urllib.request.urlopen('http://127.0.0.1:$primary/').read().decode().strip())
"
