#!/bin/sh
# A long-running service changes policy while it runs, and Prometheus sees it: the
# service sends 3 requests at a time to a backend that takes 0.3 s each, under a
# bulkhead of 2 connections (the third is refused after waiting 100 ms). The policy file
# is then replaced (as an editor or a ConfigMap does: a new file renamed over it) with a
# bulkhead of 4: within about a second the service takes the new policy, with no signal
# and no restart, and all 3 go through. `bulwark metrics` shows the counters of the
# group, which grow as the service runs, and the bulkhead's size.
set -u
cd "$(dirname "$0")/../.."
BULWARK=${BULWARK:-build/bulwark}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
backend=$(free_port)
dir=$(mktemp -d)
mkdir -m 700 "$dir/state"
timeout 60 python3 -c "
import http.server, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.3)
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(('127.0.0.1', $backend), H).serve_forever()
" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$dir"' EXIT
policy() {   # MAX: the policy with a bulkhead of MAX, written whole then renamed in place
	cat >"$dir/new.yaml" <<YAML
version: 1
log: { sink: stderr, level: warn }
state: { share: group, dir: $dir/state }
rules:
  - name: backend
    match: { ops: [connect], dest: ["127.0.0.1:$backend"] }
    concurrency: { max: $1, max_wait: 100ms }
YAML
	mv "$dir/new.yaml" "$dir/policy.yaml"
}
policy 2
sleep 0.5
echo "== the service: 3 requests at a time, concurrency max 2"
"$BULWARK" run -c "$dir/policy.yaml" -- python3 -c "
import os, sys, threading, time, urllib.request
def ask(out, i):
    try:
        out[i] = urllib.request.urlopen('http://127.0.0.1:$backend/', timeout=10).read().decode()
    except OSError:
        out[i] = 'refused'
ok_rounds = 0
for r in range(40):
    out = [None] * 3
    ts = [threading.Thread(target=ask, args=(out, i)) for i in range(3)]
    for t in ts: t.start()
    for t in ts: t.join()
    print('round %d:' % (r + 1), ' '.join(out), flush=True)
    if r == 2:
        open('$dir/edit', 'w').close()        # the script edits the policy now
    ok_rounds = ok_rounds + 1 if out == ['ok'] * 3 and r > 2 else 0
    if ok_rounds == 2:
        break
    time.sleep(0.2)
open('$dir/ready', 'w').close()               # scrape me now, while the group lives
for _ in range(200):
    if os.path.exists('$dir/scraped'):
        break
    time.sleep(0.05)
" &
service=$!
i=0
while [ ! -e "$dir/edit" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
echo "== policy edited while it runs: concurrency max 4"
policy 4
i=0
while [ ! -e "$dir/ready" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
echo "== bulwark metrics, while the service runs (a few of its lines)"
"$BULWARK" metrics --dir "$dir/state" >"$dir/metrics.txt"
grep -E '^bulwark_(rule_(calls|bulkhead_full)_total|bulkhead_max|call_duration_seconds_count)' \
	"$dir/metrics.txt"
touch "$dir/scraped"
wait $service
