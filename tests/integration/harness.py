"""Shared pieces of the integration tests: late servers, policies, runs and event logs.

Every test drives real programs (curl, python3, node, small C clients) against servers
that come up late, once without the shim to show the failure and once with it to show
the recovery. Everything here is bounded in time and cleans up after itself.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("BULWARK_BUILD") or os.path.join(ROOT, "build"))
LIB = os.path.join(BUILD, "libbulwark.so")
TOOL = os.path.join(BUILD, "bulwark")
ITEST = os.path.join(BUILD, "itest")

# The real interpreter, not a pyenv wrapper script: the shim should see python3 itself,
# and argv[0]'s basename is what `prog` matches.
PYTHON = os.path.realpath(sys.executable)
CURL = shutil.which("curl")
NODE = shutil.which("node")

# No single program run may take longer than this; a hang is a failure, not a stall.
RUN_TIMEOUT = 30

# Variables that would leak the caller's own bulwark setup into a test.
_SCRUB = ("LD_PRELOAD", "BULWARK_CONFIG", "BULWARK_LOG", "BULWARK_LEVEL", "BULWARK_MODE",
          "BULWARK_SEED", "BULWARK_DISABLE", "LD_DEBUG", "FLAKYDNS_FAILS", "FLAKYDNS_LOG",
          "FLAKYDNS_HOST", "FLAKYDNS_ERR", "http_proxy", "https_proxy", "HTTP_PROXY",
          "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def localhost_addrs():
    """The addresses `localhost` resolves to here (some hosts give ::1 first)."""
    seen = []
    for fam, _, _, _, sa in socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM):
        if sa[0] not in seen:
            seen.append(sa[0])
    return seen


HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class LateServer:
    """A server that starts listening only after delay_s.

    kind 'http' answers any request with 200 "ok"; 'echo' sends back what it reads until
    EOF; 'unix' is an echo server on the AF_UNIX path `path`, whose socket file does not
    exist until the delay has passed. It runs in threads of the test process, which is
    never preloaded, so the server itself is not affected by the shim.
    """

    def __init__(self, port=None, delay_s=1.0, kind="http", path=None, hosts=("127.0.0.1",)):
        if kind == "unix" and not path:
            raise ValueError("a unix LateServer needs a path")
        self.port = port if port is not None else (None if kind == "unix" else free_port())
        self.delay_s = delay_s
        self.kind = kind
        self.path = path
        self.hosts = hosts
        self.connections = 0        # accepted so far
        self.listening_at = None    # time.monotonic() when listen() happened
        self.error = None
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._socks = []
        self._threads = []
        self.started_at = time.monotonic()
        t = threading.Thread(target=self._main, name="LateServer", daemon=True)
        t.start()
        self._threads.append(t)

    @property
    def addr(self):
        return "unix:" + self.path if self.kind == "unix" else "127.0.0.1:%d" % self.port

    def _listen(self):
        if self.kind == "unix":
            # A stale socket file (a server that died) is replaced, as servers do.
            if os.path.exists(self.path):
                os.unlink(self.path)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(self.path)
            s.listen(64)
            return [s]
        socks = []
        for host in self.hosts:
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, self.port))
            s.listen(64)
            socks.append(s)
        return socks

    def _main(self):
        if self._stop.wait(self.delay_s):
            return
        try:
            self._socks = self._listen()
        except OSError as e:
            self.error = e
            return
        self.listening_at = time.monotonic()
        self._listening.set()
        for s in self._socks:
            s.settimeout(0.1)   # so that stop() is noticed promptly
        while not self._stop.is_set():
            for s in self._socks:
                try:
                    conn, _ = s.accept()
                except (socket.timeout, BlockingIOError):
                    continue
                except OSError:
                    return
                self.connections += 1
                t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                t.start()
                self._threads.append(t)

    def _serve(self, conn):
        conn.settimeout(5)
        try:
            if self.kind == "http":
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                conn.sendall(HTTP_OK)
            else:
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    conn.sendall(chunk)
        except OSError:
            pass
        finally:
            conn.close()

    def wait_listening(self, timeout=10):
        if not self._listening.wait(timeout):
            raise AssertionError("LateServer did not start listening (%r)" % (self.error,))

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for s in self._socks:
            s.close()
        if self.kind == "unix" and self.path and os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Blackhole:
    """A TCP port that drops SYNs: a listener with a backlog of 0 whose accept queue is
    already full, so a connect to it neither succeeds nor is refused, as with a host
    behind a firewall that drops packets. For connect timeouts."""

    def __init__(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self._fill = []
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self._fill.append(c)
        time.sleep(0.1)   # let the handshakes that fit complete

    def stop(self):
        for c in self._fill:
            c.close()
        self._listener.close()


class Result:
    """What a program run produced, and how long it took."""

    def __init__(self, cmd, rc, stdout, stderr, elapsed):
        self.cmd, self.rc, self.stdout, self.stderr, self.elapsed = cmd, rc, stdout, stderr, elapsed

    def __repr__(self):
        return "cmd=%r rc=%r elapsed=%.2fs\n--- stdout\n%s\n--- stderr\n%s" % (
            self.cmd, self.rc, self.elapsed, self.stdout[-2000:], self.stderr[-3000:])


def base_env(**extra):
    """The caller's environment without any bulwark or proxy setting, plus extra
    (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run(cmd, shim=False, policy=None, env=None, preload=None, timeout=RUN_TIMEOUT, cwd=None,
        stdin=subprocess.DEVNULL):
    """Run cmd and return a Result.

    shim=True preloads the library (plain LD_PRELOAD, as a user would without
    `bulwark run`); preload, when given, is the full LD_PRELOAD value instead. policy is a
    policy file path put in BULWARK_CONFIG. A run that outlives timeout is killed and
    reported as a failure of the test.
    """
    e = base_env(**(env or {}))
    if preload is not None:
        e["LD_PRELOAD"] = preload
    elif shim:
        e["LD_PRELOAD"] = LIB
    if policy is not None:
        e["BULWARK_CONFIG"] = policy
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=e, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as te:
        out = (te.stdout or b"").decode("utf-8", "replace")
        err = (te.stderr or b"").decode("utf-8", "replace")
        raise AssertionError("timed out after %ss: %r\n--- stdout\n%s\n--- stderr\n%s"
                             % (timeout, cmd, out, err))
    return Result(cmd, p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"), time.monotonic() - t0)


def bulwark_run(args, cmd, **kw):
    """`bulwark run ARGS -- CMD`, through the real front end."""
    return run([TOOL, "run"] + list(args) + ["--"] + list(cmd), **kw)


def py(code, *args):
    """argv for running a python snippet with the real interpreter."""
    return [PYTHON, "-c", code] + [str(a) for a in args]


def read_events(path):
    """The events of a JSON Lines log as dicts, in file order; [] if there is no file.
    A line that is not one JSON object fails the calling test."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, "rb") as f:
        data = f.read()
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw:
            continue
        line = raw.decode("utf-8")
        try:
            ev = json.loads(line)
        except ValueError as e:
            raise AssertionError("%s:%d: not JSON (%s): %r" % (path, n, e, line))
        if not isinstance(ev, dict):
            raise AssertionError("%s:%d: not a JSON object: %r" % (path, n, line))
        out.append(ev)
    return out


def events_in_text(text):
    """Events mixed into a program's stderr: every line that starts with '{'."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict) and "event" in ev:
                out.append(ev)
    return out


def events_of(events, name, **fields):
    """The events named name whose fields equal the given values."""
    return [e for e in events if e.get("event") == name
            and all(e.get(k) == v for k, v in fields.items())]


def describe(events):
    return "\n".join(json.dumps(e) for e in events) or "(no events)"


def retry_yaml(attempts=40, base="50ms", max_="100ms", jitter="equal", deadline="10s"):
    """A retry section that keeps trying for about 2 s at least.

    Equal jitter makes each wait at least half its cap, so 40 attempts with a 100ms cap
    span at least ~2 s: a server 1.5 s late is always reached, whatever the draw.
    """
    return ("{ attempts: %d, backoff: { base: %s, max: %s, jitter: %s }, deadline: %s }"
            % (attempts, base, max_, jitter, deadline))


class Workdir:
    """A temporary directory for one test: policies, logs, sockets; removed at the end."""

    def __init__(self):
        # Short base: AF_UNIX paths are limited to 107 bytes.
        self.path = tempfile.mkdtemp(prefix="bw-it-", dir="/tmp")

    def file(self, name):
        return os.path.join(self.path, name)

    def write(self, name, text):
        p = self.file(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def policy(self, rules, log="events.log", level="debug", name="policy.yaml", extra="",
               log_extra=""):
        """Write a policy whose events go to a file in this directory; returns
        (policy path, log path). rules is the YAML text of the `rules:` list, indented
        by two spaces; extra goes at the top level, log_extra under log:."""
        logp = self.file(log)
        text = ("version: 1\n%slog:\n  sink: \"file:%s\"\n  level: %s\n%srules:\n%s"
                % (extra, logp, level, log_extra, rules))
        return self.write(name, text), logp

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def built(path):
    """Build one helper program through the Makefile when it is missing (running
    run.py by hand after a plain `make`)."""
    if not os.path.exists(path):
        rel = os.path.relpath(path, ROOT)
        subprocess.run(["make", "-s", rel], cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)
    if not os.path.exists(path):
        raise AssertionError("%s is missing and `make %s` did not build it" % (path, path))
    return path


def prog(name):
    return built(os.path.join(ITEST, name))


class ShimTest(unittest.TestCase):
    """Base class: a work directory, servers stopped at the end, and the build checked."""

    def setUp(self):
        for p in (LIB, TOOL):
            if not os.path.exists(p):
                self.fail("%s is not built: run `make`" % p)
        self.wd = Workdir()
        self.addCleanup(self.wd.remove)
        self._servers = []

    def tearDown(self):
        for s in self._servers:
            s.stop()

    def server(self, delay_s=1.5, kind="http", **kw):
        s = LateServer(delay_s=delay_s, kind=kind, **kw)
        self._servers.append(s)
        return s

    def blackhole(self):
        b = Blackhole()
        self._servers.append(b)
        return b

    # -- assertions over runs and events ---------------------------------------------

    def assertOk(self, r, msg=""):
        if r.rc != 0:
            self.fail("%sexpected exit 0\n%r" % (msg and msg + ": ", r))

    def assertFailed(self, r, msg=""):
        if r.rc == 0:
            self.fail("%sexpected a failure\n%r" % (msg and msg + ": ", r))

    def assertRecovered(self, events, dest=None, rule=None, op="connect", err="ECONNREFUSED"):
        """The retry story of one call: fail events with err, retry events with a delay,
        and a recovered event after more than one attempt."""
        ctx = describe(events)
        sel = {"op": op}
        if dest is not None:
            sel["dest"] = dest
        if rule is not None:
            sel["rule"] = rule
        rec = events_of(events, "recovered", **sel)
        self.assertTrue(rec, "no recovered event matching %r in:\n%s" % (sel, ctx))
        self.assertGreater(rec[0].get("attempts", 0), 1, ctx)
        self.assertIsInstance(rec[0].get("elapsed_ms"), (int, float), ctx)
        retries = events_of(events, "retry", **sel)
        self.assertTrue(retries, "no retry event in:\n" + ctx)
        for ev in retries:
            self.assertIsInstance(ev.get("delay_ms"), (int, float), ctx)
            self.assertGreaterEqual(ev["delay_ms"], 0, ctx)
            self.assertEqual(ev.get("err"), err, ctx)
        fails = events_of(events, "fail", **sel)
        self.assertTrue(fails, "no fail event in:\n" + ctx)
        self.assertTrue(all(ev.get("err") == err for ev in fails), ctx)
        self.assertFalse(events_of(events, "gave_up"), ctx)
        return rec[0]

    def assertNoCallEvents(self, events, started=True):
        """No event about a call: only start/exit bookkeeping may be there. With
        started, the start event must be there, so that "nothing happened" cannot pass
        just because the library never loaded (the test policies log at debug)."""
        if started:
            self.assertTrue(events_of(events, "start"), "the library did not start:\n"
                            + describe(events))
        calls = [e for e in events if e.get("event") not in ("start", "exit")]
        self.assertEqual(calls, [], describe(calls))


# Client snippets shared by several test files. Each exits 0 only when the server's
# answer came back, and prints the exception otherwise.

PY_BLOCKING = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\\r\\n\\r\\n", 1)[-1].decode())
sys.exit(0 if data.endswith(b"ok") else 1)
"""

PY_TIMEOUT = PY_BLOCKING.replace("int(sys.argv[2]))", "int(sys.argv[2])), timeout=5")

PY_ASYNCIO = """
import asyncio, sys
async def main():
    r, w = await asyncio.open_connection(sys.argv[1], int(sys.argv[2]))
    w.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
    await w.drain()
    data = await r.read()
    w.close()
    print(data.split(b"\\r\\n\\r\\n", 1)[-1].decode())
    return 0 if data.endswith(b"ok") else 1
sys.exit(asyncio.run(main()))
"""

NODE_HTTP = """
// With `node -e CODE A B`, process.argv is [node, A, B].
const http = require('http');
const req = http.get({host: process.argv[1], port: +process.argv[2], path: '/', agent: false},
  (res) => {
    let body = '';
    res.on('data', (c) => body += c);
    res.on('end', () => { console.log(body); process.exit(body === 'ok' ? 0 : 1); });
  });
req.on('error', (e) => { console.error(e.code || e.message); process.exit(3); });
setTimeout(() => { console.error('node: timeout'); process.exit(4); }, 20000).unref();
"""

PY_UNIX = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"ping")
print(s.recv(16).decode())
"""

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
