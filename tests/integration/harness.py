"""Shared pieces of the integration tests: servers (late, healthy, silent), rules and
policies, client snippets, programs run in the foreground or the background, SQLite
databases, and event logs.

Every test drives real programs (curl, python3, node, small C clients) against servers
that come up late, once without the shim to show the failure and once with it to show
the recovery. Everything here is bounded in time and cleans up after itself.
"""

import glob
import json
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
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


def accept_loop(socks, stop, on_conn):
    """Accept on the listening sockets socks until the event stop is set (or a socket is
    closed), handing each connection to on_conn. Runs in a thread of its own."""
    for s in socks:
        s.settimeout(0.1)   # so that stop is noticed promptly
    while not stop.is_set():
        for s in socks:
            try:
                conn, _ = s.accept()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            on_conn(conn)


HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class LateServer:
    """A server that starts listening only after delay_s.

    kind 'http' answers any request with 200 "ok"; 'echo' sends back what it reads until
    EOF; 'unix' is an echo server on the AF_UNIX path `path`, whose socket file does not
    exist until the delay has passed. It runs in threads of the test process, which is
    never preloaded, so the server itself is not affected by the shim.
    """

    def __init__(self, port=None, delay_s=1.0, kind="http", path=None, hosts=("127.0.0.1",),
                 when=None):
        if kind == "unix" and not path:
            raise ValueError("a unix LateServer needs a path")
        self.port = port if port is not None else (None if kind == "unix" else free_port())
        self.delay_s = delay_s
        self.kind = kind
        self.path = path
        self.hosts = hosts
        # when: a callable; past the delay the server waits (20 s at most) until it says
        # True, so "late" can mean "after the client failed once" on a loaded machine
        self.when = when
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
        if self.when is not None:
            deadline = time.monotonic() + 20
            while not self.when() and time.monotonic() < deadline:
                if self._stop.wait(0.02):
                    return
        try:
            self._socks = self._listen()
        except OSError as e:
            self.error = e
            return
        self.listening_at = time.monotonic()
        self._listening.set()
        accept_loop(self._socks, self._stop, self._accepted)

    def _accepted(self, conn):
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


class Server:
    """A TCP server listening at once on host (127.0.0.1) in threads of this unpreloaded
    process. Each accepted connection is handed to handler(conn) in a thread of its own,
    with a timeout of conn_timeout seconds, and closed when it returns; what the handler
    returns (or the exception it raised) is appended to results. handler None: the
    connection is held, never read or written, until stop()."""

    def __init__(self, handler, host="127.0.0.1", conn_timeout=10):
        self.handler = handler
        self.conn_timeout = conn_timeout
        self.results = []
        self.connections = 0
        self._held = []
        self._done = threading.Condition()
        self._l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._l.bind((host, 0))
        self._l.listen(64)
        self.port = self._l.getsockname()[1]
        self.dest = "%s:%d" % (host, self.port)
        self._stop = threading.Event()
        self._threads = []
        t = threading.Thread(target=accept_loop, args=([self._l], self._stop, self._accepted),
                             daemon=True)
        t.start()
        self._threads.append(t)

    def _accepted(self, c):
        self.connections += 1
        if self.handler is None:
            self._held.append(c)
            return
        t = threading.Thread(target=self._serve, args=(c,), daemon=True)
        t.start()
        self._threads.append(t)

    def _serve(self, c):
        c.settimeout(self.conn_timeout)
        try:
            res = self.handler(c)
        except Exception as e:          # the test reads it, whatever it was
            res = e
        finally:
            c.close()
        with self._done:
            self.results.append(res)
            self._done.notify_all()

    def wait_results(self, n, timeout=10):
        """The first n handler results, waiting for them to be there."""
        end = time.monotonic() + timeout
        with self._done:
            while len(self.results) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("the server finished %d connection(s), not %d: %r"
                                         % (len(self.results), n, self.results))
                self._done.wait(left)
            return list(self.results[:n])

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for c in self._held:
            c.close()
        self._l.close()


def http_handler(c):
    """A Server handler: reads one request, answers 200 "ok"; returns "served"."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = c.recv(4096)
        if not chunk:
            return "no request"
        buf += chunk
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    return "served"


class Result:
    """What a program run produced, and how long it took."""

    def __init__(self, cmd, rc, stdout, stderr, elapsed):
        self.cmd, self.rc, self.stdout, self.stderr, self.elapsed = cmd, rc, stdout, stderr, elapsed

    def __repr__(self):
        return "cmd=%r rc=%r elapsed=%.2fs\n--- stdout\n%s\n--- stderr\n%s" % (
            self.cmd, self.rc, self.elapsed, self.stdout[-2000:], self.stderr[-3000:])


# `bulwark` looks for a policy in $XDG_CONFIG_HOME/bulwark: a tester's own must not apply.
NO_CONFIG_HOME = "/nonexistent/bulwark-tests-config"


def base_env(**extra):
    """The caller's environment without any bulwark or proxy setting, plus extra
    (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["XDG_CONFIG_HOME"] = NO_CONFIG_HOME
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def shim_env(policy=None, **extra):
    """base_env(**extra) with the library preloaded and, when given, the policy file."""
    env = base_env(**extra)
    env["LD_PRELOAD"] = LIB
    if policy is not None:
        env["BULWARK_CONFIG"] = policy
    return env


def kill_group(p):
    """SIGKILL the process group of p (a Popen started with start_new_session), its
    children included, while p runs."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


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


class Spawned:
    """A program run in the background, talked to through its stdin and stdout lines.
    Its output is drained by threads, so it never blocks on a full pipe; kill() ends its
    whole process group."""

    def __init__(self, cmd, env):
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        self.lines = queue.Queue()
        self.out = []
        self.err = []
        self._t = [threading.Thread(target=self._drain, args=(self.p.stdout, self.out, True),
                                    daemon=True),
                   threading.Thread(target=self._drain, args=(self.p.stderr, self.err, False),
                                    daemon=True)]
        for t in self._t:
            t.start()

    def _drain(self, f, sink, lines):
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace")
            sink.append(line)
            if lines:
                self.lines.put(line.rstrip("\n"))
        if lines:
            self.lines.put(None)

    def readline(self, timeout=10):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no line from %r within %ss\n%s" % (self.cmd, timeout,
                                                                    self.transcript()))
        if line is None:
            raise AssertionError("%r ended early\n%s" % (self.cmd, self.transcript()))
        return line

    def send(self, text):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()

    def finish(self, timeout=10):
        """Close stdin, wait for the end; returns the exit status."""
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%r did not end within %ss\n%s" % (self.cmd, timeout,
                                                                   self.transcript()))
        for t in self._t:
            t.join(5)
        self._close()
        return rc

    def _close(self):
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except OSError:
                pass

    def kill(self):
        if self.p.poll() is None:
            kill_group(self.p)
            self.p.wait(5)
            for t in self._t:
                t.join(5)
        self._close()

    def transcript(self):
        return "--- stdout\n%s--- stderr\n%s" % ("".join(self.out)[-2000:],
                                                 "".join(self.err)[-3000:])


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


def rule(name, ops, dest=None, body="", host=None, db=None, prog=None):
    """One rule of a `rules:` list, as YAML. ops: the ops it is for (none: any op); dest,
    host, db, prog: lists of patterns it matches; body: its sections as YAML text,
    indented alike at any depth (it is put under the rule)."""
    keys = ["ops: [%s]" % ", ".join(ops)] if ops else []
    for key, values in (("dest", dest), ("host", host), ("db", db), ("prog", prog)):
        if values:
            keys.append("%s: [%s]" % (key, ", ".join('"%s"' % v for v in values)))
    body = textwrap.dedent(body).strip("\n")
    return ("  - name: %s\n    match: { %s }\n" % (name, ", ".join(keys))
            + (textwrap.indent(body, "    ") + "\n" if body else ""))


def late_rule(port, name="late", extra="", host="127.0.0.1"):
    """A rule that retries connects to host:port long enough for a LateServer; extra:
    more sections, as YAML text at any indentation."""
    return rule(name, ["connect"], ["%s:%d" % (host, port)],
                "retry: %s\n" % retry_yaml() + textwrap.dedent(extra))


def url(port, host="127.0.0.1", path="/"):
    return "http://%s:%d%s" % (host, port, path)


def curl(target, max_time=20, *args):
    """curl quiet but for errors, bounded by --max-time (None: no bound of its own)."""
    bound = ["--max-time", str(max_time)] if max_time is not None else []
    return [CURL, "-sS"] + bound + list(args) + [target]


def hosts_file_name():
    """A name other than localhost that /etc/hosts maps to a 127/8 address, as
    (name, address), or None. curl resolves "localhost" itself (no getaddrinfo), so only
    such a name makes curl call getaddrinfo, in its resolver thread."""
    try:
        with open("/etc/hosts") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and re.match(r"^127\.\d+\.\d+\.\d+$", fields[0]):
            for name in fields[1:]:
                if "localhost" not in name:
                    return name, fields[0]
    return None


# -- PostgreSQL ------------------------------------------------------------------------

def system_user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


# PostgreSQL refuses to run as root: its servers run as `postgres` (else `nobody`) when the
# tests run as root, as the caller otherwise.
PG_USER = (system_user("postgres") or system_user("nobody")) if os.geteuid() == 0 else None


def _pg_bin():
    """The directory with initdb, pg_ctl, postgres, psql and pgbench: Debian keeps them
    off PATH, in /usr/lib/postgresql/VERSION/bin (newest first)."""
    def version(d):
        try:
            return int(d.split("/")[-2])
        except ValueError:
            return 0
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK) and \
                os.access(os.path.join(d, "postgres"), os.X_OK):
            return d
    initdb = shutil.which("initdb")
    return os.path.dirname(os.path.realpath(initdb)) if initdb else None


PG_BIN = _pg_bin()


def pg_tool(name):
    """A PostgreSQL program of PG_BIN (psql, pgbench, pg_ctl), else from PATH, or None.
    The real binary, not Debian's pg_wrapper script, so that its name is the program's."""
    if PG_BIN and os.access(os.path.join(PG_BIN, name), os.X_OK):
        return os.path.join(PG_BIN, name)
    return shutil.which(name)


def pg_missing():
    """Why PostgreSQL tests cannot run here, or None."""
    if not PG_BIN:
        return "PostgreSQL (initdb, postgres) is not installed"
    for tool in ("pg_ctl", "psql"):
        if not pg_tool(tool):
            return "PostgreSQL's %s is not installed" % tool
    if os.geteuid() == 0 and PG_USER is None:
        return "running as root, and no unprivileged user (postgres or nobody) for the server"
    return None


class PgCluster:
    """A PostgreSQL cluster made by initdb in a temporary directory (owned by PG_USER),
    serving 127.0.0.1:port and a unix socket in that directory, trusting every local
    user as `postgres`. pg_ctl starts, stops and restarts it, waiting for each step;
    remove() stops it at once and deletes it. Never preloaded."""

    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="bw-pg-", dir="/tmp")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = port or free_port()
        if PG_USER is not None:
            os.chown(self.dir, PG_USER.pw_uid, PG_USER.pw_gid)
        r = self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres",
                       "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"], timeout=120)
        if r.returncode != 0:
            self.remove()
            raise AssertionError("initdb failed:\n" + r.stdout.decode("utf-8", "replace"))

    def _run(self, argv, timeout=60):
        kw = {}
        if PG_USER is not None:
            kw = dict(user=PG_USER.pw_uid, group=PG_USER.pw_gid, extra_groups=[])
        return subprocess.run(argv, env=base_env(LANG="C", LC_ALL="C"), cwd=self.dir,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, **kw)

    def pg_ctl(self, *args, timeout=60):
        """pg_ctl ARGS on this cluster (waiting for the step to finish); fails the test
        when it fails."""
        opts = "-h 127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=40" % (self.port,
                                                                                self.dir)
        r = self._run([pg_tool("pg_ctl"), "-D", self.data, "-l", self.log, "-o", opts, "-w",
                       "-t", str(timeout)] + list(args), timeout=timeout + 10)
        if r.returncode != 0:
            raise AssertionError("pg_ctl %s failed:\n%s\n%s" % (
                " ".join(args), r.stdout.decode("utf-8", "replace"), self.log_tail()))
        return r

    def start(self):
        self.pg_ctl("start")

    def stop(self, mode="fast"):
        self.pg_ctl("stop", "-m", mode)

    def restart(self, mode="fast"):
        self.pg_ctl("restart", "-m", mode)

    def log_tail(self, n=3000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def conninfo(self, unix=False):
        """Arguments for psql and pgbench: this server by TCP, or by its unix socket."""
        return ["-h", self.dir if unix else "127.0.0.1", "-p", str(self.port), "-U",
                "postgres", "-d", "postgres"]

    def sql(self, query, timeout=30):
        """query run by a plain psql (never preloaded): its Result (tuples only,
        unaligned)."""
        return run([pg_tool("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
                   + self.conninfo() + ["-c", query], env=PG_ENV, timeout=timeout)

    def remove(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run([pg_tool("pg_ctl") or "pg_ctl", "-D", self.data, "-m", "immediate",
                       "-w", "stop"], timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


# libpq reads these: a caller's own would point the clients elsewhere.
PG_ENV = {"PGUSER": None, "PGHOST": None, "PGPORT": None, "PGDATABASE": None,
          "PGPASSWORD": None, "PGSERVICE": None, "PGSERVICEFILE": None, "PGOPTIONS": None,
          "PGAPPNAME": None, "PGCONNECT_TIMEOUT": None, "PGTARGETSESSIONATTRS": None,
          "PGSSLMODE": None, "PGPASSFILE": None, "LANG": "C", "LC_ALL": "C"}


# -- C client programs on a library the Makefile does not link ------------------------

def lib_prog(src, out_dir, pkg, libs, what):
    """src, a C program on a client library (pkg, its pkg-config name; libs, the linker
    flags when pkg-config does not know it), compiled into out_dir unless it is there
    already; its path. what names the Debian package, for the message."""
    path = os.path.join(out_dir, os.path.basename(src)[:-len(".c")])
    if os.path.exists(path):
        return path
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise AssertionError("no C compiler (cc) to build %s" % src)
    flags = list(libs)
    if shutil.which("pkg-config"):
        p = subprocess.run(["pkg-config", "--cflags", "--libs", pkg], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=30)
        if p.returncode == 0:
            flags = p.stdout.decode().split()
    p = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
                        "-O2", "-o", path, src] + flags,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if p.returncode != 0:
        raise AssertionError("cannot build %s (%s installed?):\n%s"
                             % (src, what, p.stdout.decode("utf-8", "replace")))
    return path


CLIENT_PROGS = os.path.join(HERE, "progs", "clients")


def wait_port(port, timeout=60, host="127.0.0.1", alive=None):
    """Wait until something accepts on host:port (alive, when given, is called between
    tries and stops the wait by raising); fails after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if alive:
            alive()
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on %s:%d after %ss" % (host, port, timeout))


class _Daemon:
    """A server process started in the foreground of its own session, stopped with
    SIGTERM (SIGKILL after a bound) and waited for."""

    proc = None
    name = "server"

    def _spawn(self, argv, log, **kw):
        self.logf = open(log, "ab")
        self.proc = subprocess.Popen(argv, env=base_env(LANG="C", LC_ALL="C"),
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True, **kw)

    def _alive(self):
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError("%s ended:\n%s" % (self.name, self.log_tail()))

    def log_tail(self, n=3000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self, timeout=60):
        """SIGTERM (a clean shutdown that closes every client's connection) and wait."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
                self.proc.wait(10)
        self.proc = None
        self.logf.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None


# -- MariaDB ---------------------------------------------------------------------------

MARIADBD = shutil.which("mariadbd") or shutil.which("mysqld") or next(
    (p for p in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld") if os.access(p, os.X_OK)), None)
MARIADB_INSTALL_DB = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
MARIADB_CLI = shutil.which("mariadb") or shutil.which("mysql")
# mariadbd refuses to run as root without being told a user: `mysql`, else `nobody`
MY_USER = (system_user("mysql") or system_user("nobody")) if os.geteuid() == 0 else None


def mariadb_missing():
    """Why MariaDB tests cannot run here, or None."""
    if not MARIADBD or not MARIADB_INSTALL_DB:
        return "MariaDB's server (mariadbd, mariadb-install-db: mariadb-server) is not installed"
    if not MARIADB_CLI:
        return "MariaDB's client (mariadb: mariadb-client) is not installed"
    if not os.path.exists("/usr/include/mariadb/mysql.h") and \
            not os.path.exists("/usr/include/mysql/mysql.h"):
        return "libmariadb's headers (mysql.h: libmariadb-dev) are not installed"
    if os.geteuid() == 0 and MY_USER is None:
        return "running as root, and no unprivileged user (mysql or nobody) for the server"
    return None


class MariaServer(_Daemon):
    """A MariaDB server on a data directory made by mariadb-install-db in a temporary
    directory, serving 127.0.0.1:port and a unix socket in that directory, with grant
    tables off (any user, no password). start() waits until it accepts connections;
    stop() is a clean shutdown; remove() stops it and deletes it. Never preloaded."""

    name = "mariadbd"

    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="bw-my-", dir="/tmp")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "mysqld.sock")
        self.log = os.path.join(self.dir, "mariadbd.log")
        self.port = port or free_port()
        user = ["--user=%s" % MY_USER.pw_name] if MY_USER else []
        if MY_USER is not None:
            os.chown(self.dir, MY_USER.pw_uid, MY_USER.pw_gid)
        r = subprocess.run([MARIADB_INSTALL_DB, "--no-defaults", "--datadir=" + self.data,
                            "--auth-root-authentication-method=normal", "--skip-test-db",
                            "--skip-name-resolve", "--innodb-log-file-size=8M"] + user,
                           env=base_env(LANG="C", LC_ALL="C"), cwd=self.dir,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=180)
        if r.returncode != 0:
            self.remove()
            raise AssertionError("mariadb-install-db failed:\n"
                                 + r.stdout.decode("utf-8", "replace")[-3000:])
        self.user = user

    def start(self, timeout=60):
        self._spawn([MARIADBD, "--no-defaults", "--datadir=" + self.data,
                     "--socket=" + self.sock, "--port=%d" % self.port,
                     "--bind-address=127.0.0.1", "--skip-grant-tables", "--skip-name-resolve",
                     "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
                     "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin",
                     "--pid-file=" + os.path.join(self.dir, "mariadbd.pid")] + self.user,
                    self.log)
        wait_port(self.port, timeout, alive=self._alive)

    def restart(self):
        self.stop()
        self.start()

    def sql(self, query, db="bw", timeout=30):
        """query run by the mariadb client (never preloaded): its Result (tab-separated,
        no column names)."""
        return run([MARIADB_CLI, "--no-defaults", "-h", "127.0.0.1", "-P", str(self.port),
                    "-u", "root", "-N", "-B", "-e", query] + ([db] if db else []),
                   timeout=timeout)

    def remove(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


# -- Redis -----------------------------------------------------------------------------

REDIS_SERVER = shutil.which("redis-server")


def hiredis_missing():
    if not os.path.exists("/usr/include/hiredis/hiredis.h"):
        return "hiredis's headers (hiredis.h: libhiredis-dev) are not installed"
    return None


def resp_command(*args):
    """args as one RESP command (a bulk string array)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class RedisServer(_Daemon):
    """redis-server on 127.0.0.1:port and a unix socket in a temporary directory, with
    nothing saved to disk. cmd() sends it one command from a fresh connection."""

    name = "redis-server"

    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="bw-rd-", dir="/tmp")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.log = os.path.join(self.dir, "redis.log")
        self.port = port or free_port()

    def start(self, timeout=30):
        self._spawn([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                     "--unixsocket", self.sock, "--save", "", "--appendonly", "no",
                     "--dir", self.dir, "--daemonize", "no"], self.log)
        wait_port(self.port, timeout, alive=self._alive)

    def cmd(self, *args, timeout=10):
        """The first line of the server's answer to one command ("+OK", ":3", "$1")."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(resp_command(*args))
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            head = buf.split(b"\r\n")[0].decode()
            if head.startswith("$") and head != "$-1":
                n = int(head[1:])
                while len(buf) < len(head) + 2 + n + 2:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                return buf[len(head) + 2:len(head) + 2 + n].decode()
            return head

    def remove(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class RespServer:
    """A small RESP server on a free loopback port that answers each command by a
    script: answer(n, command) -> bytes to send (None: close the connection without an
    answer), n counting commands from 1 over every connection. Commands are recorded
    in self.commands (lists of bytes), connections counted in self.connections."""

    def __init__(self, answer):
        self.answer = answer
        self.commands = []
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._t = threading.Thread(target=accept_loop, args=([self.sock], self._stop,
                                                             self._serve), daemon=True)
        self._t.start()

    @staticmethod
    def _parse(buf):
        """One command off the front of buf: (args, rest), or (None, buf) when it is not
        all there yet."""
        if not buf.startswith(b"*") or b"\r\n" not in buf:
            return None, buf
        head, rest = buf.split(b"\r\n", 1)
        args = []
        for _ in range(int(head[1:])):
            if b"\r\n" not in rest:
                return None, buf
            h, rest = rest.split(b"\r\n", 1)
            n = int(h[1:])
            if len(rest) < n + 2:
                return None, buf
            args.append(rest[:n])
            rest = rest[n + 2:]
        return args, rest

    def _serve(self, c):
        with self.lock:
            self.connections += 1
        buf = b""
        c.settimeout(30)
        try:
            while not self._stop.is_set():
                args, buf = self._parse(buf)
                if args is None:
                    chunk = c.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                    continue
                with self.lock:
                    self.commands.append(args)
                    n = len(self.commands)
                out = self.answer(n, args)
                if out is None:
                    return
                c.sendall(out)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        self._t.join(5)


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


# The table the SQLite tests write to; a row's note is unique, so a statement run twice
# shows as a duplicate.
LEDGER = "CREATE TABLE ledger(id INTEGER PRIMARY KEY, note TEXT NOT NULL)"


def ledger_db(path, wal=False):
    """A new SQLite database at path (whatever was there is removed) holding the empty
    ledger table, in WAL mode if wal; its real path, as events name it."""
    path = os.path.realpath(path)
    for suffix in ("", "-journal", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    c = sqlite3.connect(path, isolation_level=None)
    try:
        if wal:
            mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise AssertionError("%s: journal mode %r, not wal" % (path, mode))
        c.execute(LEDGER)
    finally:
        c.close()
    return path


def sqlite_prog(src, out_dir):
    """src, a C program on libsqlite3, compiled into out_dir unless it is there already
    (the Makefile builds progs/ without -lsqlite3); its path."""
    path = os.path.join(out_dir, os.path.basename(src)[:-len(".c")])
    if os.path.exists(path):
        return path
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise AssertionError("no C compiler (cc) to build %s" % src)
    p = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
                        "-O2", "-o", path, src, "-lsqlite3"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if p.returncode != 0:
        raise AssertionError("cannot build %s (libsqlite3-dev installed?):\n%s"
                             % (src, p.stdout.decode("utf-8", "replace")))
    return path


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

    def spawn(self, cmd, env):
        """cmd in the background (a Spawned), killed at the end of the test."""
        s = Spawned(cmd, env)
        self.addCleanup(s.kill)
        return s

    def track(self, obj):
        """Stop obj (a server, anything with stop()) at the end of the test."""
        self._servers.append(obj)
        return obj

    def events(self, log):
        """The events of log, which must show that the library started."""
        evs = read_events(log)
        self.assertTrue(events_of(evs, "start"), "the library did not start:\n" + describe(evs))
        return evs

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


class SqliteShimTest(ShimTest):
    """A ShimTest on SQLite: fresh ledger databases in the work directory, and C programs
    on libsqlite3 compiled once per class into a directory of the class's own."""

    prog_dir = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prog_dir = tempfile.mkdtemp(prefix="bw-sq-", dir="/tmp")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prog_dir, ignore_errors=True)
        super().tearDownClass()

    def sqlite_prog(self, src):
        return sqlite_prog(src, self.prog_dir)

    def make_db(self, name="app.db", wal=False):
        """A new database with the empty ledger table; its real path, as events name it."""
        return ledger_db(self.wd.file(name), wal)


# Functions for python client snippets: a snippet starts with PY_CLIENT + its own code.
#   recv_all(s, size): everything s receives until EOF, size bytes per recv at most.
#   http_get(s): GET / on the connected socket s; the whole response.
#   connect_once(port): one blocking connect to 127.0.0.1:port, closed at once; "ok" or
#   the errno it failed with.
PY_CLIENT = """
import socket

def recv_all(s, size=4096):
    data = b""
    while True:
        chunk = s.recv(size)
        if not chunk:
            return data
        data += chunk

def http_get(s):
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    return recv_all(s)

def connect_once(port):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        return "ok"
    except OSError as e:
        return e.errno
    finally:
        s.close()
"""

# Client snippets shared by several test files. Each exits 0 only when the server's
# answer came back, and prints the exception otherwise.

PY_BLOCKING = PY_CLIENT + """
import sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
data = http_get(s)
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
