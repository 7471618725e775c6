#!/usr/bin/env python3
"""A tiny key-value service on 127.0.0.1 with a habit: it hot-reloads.

Every PERIOD seconds it closes its listening socket and opens a new one on the same port
(as a server does that re-reads its configuration by re-binding), and for GAP seconds
in between nobody listens: a connect that lands there is refused. Established
connections are not touched; connections already queued are accepted before the old
socket is closed.

Protocol, one line per request and one line back: `PUT key value` -> OK,
`GET key` -> value or NOTFOUND, `DEL key` -> OK or NOTFOUND.

usage: service.py [PORT]    (0 or none: a free port). Prints "ready PORT" once it
listens. It exits by itself after LIFETIME seconds, so a leftover never lingers.
"""
import os
import random
import signal
import socket
import sys
import threading
import time

PERIOD = 0.30     # seconds between reloads
GAP = 0.03        # seconds without a listener at each reload
LIFETIME = 60
# FLAKY_RELOADS=0: a service that never reloads, as on a laptop where the suite always
# passes (where a replay policy brings the CI failure back)
RELOADS = os.environ.get("FLAKY_RELOADS", "1") != "0"

store = {}
lock = threading.Lock()


def listen(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    return s


def answer(line):
    cmd, _, rest = line.strip().partition(" ")
    with lock:
        if cmd == "PUT":
            key, _, value = rest.partition(" ")
            store[key] = value
            return "OK"
        if cmd == "GET":
            return store.get(rest, "NOTFOUND")
        if cmd == "DEL":
            return "OK" if store.pop(rest, None) is not None else "NOTFOUND"
    return "ERR unknown command"


def serve(conn):
    conn.settimeout(10)
    try:
        with conn, conn.makefile("rwb") as f:
            for raw in f:
                f.write((answer(raw.decode("utf-8", "replace")) + "\n").encode())
                f.flush()
    except OSError:
        pass


def accept_until(l, until):
    """Accept connections until the monotonic time `until`, then drain the queue."""
    while True:
        left = until - time.monotonic()
        l.settimeout(max(left, 0) or None)
        if left <= 0:
            l.setblocking(False)
        try:
            conn, _ = l.accept()
        except (socket.timeout, BlockingIOError):
            if left <= 0:
                return
            continue
        conn.setblocking(True)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def main():
    # stopped as servers are, with SIGTERM: it exits properly (under bulwark, its exit
    # event is logged like any process's)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    l = listen(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    port = l.getsockname()[1]
    print("ready", port, flush=True)
    end = time.monotonic() + LIFETIME
    reload_at = time.monotonic() + random.uniform(0.05, PERIOD)
    if not RELOADS:
        accept_until(l, end)
        return
    while time.monotonic() < end:
        accept_until(l, reload_at)
        l.close()                       # the reload: nobody listens for GAP seconds
        time.sleep(GAP)
        l = listen(port)
        reload_at = time.monotonic() + PERIOD


if __name__ == "__main__":
    main()
