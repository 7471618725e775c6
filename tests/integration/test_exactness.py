"""Where no policy acts, a call means what the kernel says.

Each test runs one scenario of progs/exact.c bare and under policies that match the call
but must not act (or act only where a failure really happens), and compares what the
program saw: return values, errno, option values, timing class. Each one is a defect the
shim once had (docs/design.md, "Exactness"); the comment says what it did.
"""

import socket
import struct
import time
import unittest

import harness
from harness import (LateServer, Server, ShimTest, describe, events_of, free_port, prog,
                     read_events, run, shim_env)


def reset_handler(c):
    """A Server handler that resets each connection at once (SO_LINGER 0), as a server
    that is up but broken does."""
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def rule(ops, body="", dest=("127.0.0.1:*",)):
    """A rule named "all" for ops on dest (every port of 127.0.0.1)."""
    return harness.rule("all", ops, list(dest), body)


LIMIT_NEVER = "    rate_limit: { rate: 100000/s, burst: 10000 }\n"
NEVER = ("    breaker: { trip: { consecutive: 100 }, open_for: 1s }\n"
         "    rate_limit: { rate: 100000/s, burst: 10000 }\n")


class Exactness(ShimTest):

    def setUp(self):
        super().setUp()
        self.exact = prog("exact")

    def echo(self):
        s = LateServer(delay_s=0, kind="echo")
        s.wait_listening()
        self._servers.append(s)
        return s

    def run_both(self, args, policies, expect=None):
        """Bare and under each policy; every output equals the bare one (or expect)."""
        bare = run([self.exact] + [str(a) for a in args])
        self.assertEqual(bare.rc, 0, repr(bare))
        if expect is not None:
            self.assertEqual(bare.stdout, expect, repr(bare))
        outs = {}
        for i, rules in enumerate(policies):
            pol, log = self.wd.policy(rules, name="p%d.yaml" % i, log="e%d.log" % i,
                                      level="debug")
            r = run([self.exact] + [str(a) for a in args], shim=True, policy=pol)
            self.assertEqual(r.stdout, bare.stdout,
                             "policy %d differs from bare\n%s\n--- bare\n%s\n--- events\n%s"
                             % (i, rules, bare.stdout, describe(read_events(log))))
            self.assertEqual(r.rc, 0, repr(r))
            outs[i] = read_events(log)
            self.assertTrue(events_of(outs[i], "start"), "the library did not load")
        return bare, outs

    def test_accept_bad_pointers_get_efault(self):
        """The hook accepted into its own buffer: accept(fd, addr, NULL) returned a
        connected descriptor, accept(fd, (void *)8, &len) crashed in the hook."""
        self.run_both(["accept-efault"], [rule(["accept"], LIMIT_NEVER), rule(["recv"], NEVER)],
                      expect="accept(addr, NULL) = -1 EFAULT\n"
                             "accept((void *)8, &len) = -1 EFAULT\n"
                             "accept(&ss, &len) ok = 0 \nlen = 16\n")

    def test_refused_connect_leaves_the_socket_usable(self):
        """The shim read SO_ERROR itself and left the socket half-way: the program's
        second connect, once the server was up, got ECONNABORTED."""
        port = free_port()
        retry = "    retry: { attempts: 2, backoff: { base: 10ms, max: 20ms } }\n"
        self.run_both(["refused-reuse", port],
                      [rule(["connect"], retry), rule(["connect"], "    timeout: { connect: 2s }\n"),
                       rule(["connect"], NEVER)],
                      expect="connect (nobody listens) = -1 ECONNREFUSED\n"
                             "connect (listening now) = 0 \nsend = 1 \n")

    def test_listener_gets_no_recv_timeout(self):
        """A recv timeout was set on the listening socket: a blocking accept() failed
        with EAGAIN once the timeout passed."""
        bare, _ = self.run_both(["listener-timeout"],
                                [rule(["send", "recv", "accept"],
                                      "    timeout: { recv: 500ms, send: 500ms }\n")])
        self.assertIn("accept = 0", bare.stdout)

    def test_accepted_socket_keeps_its_inherited_timeout(self):
        """The accepted socket's SO_RCVTIMEO, inherited from the listener the program
        set it on, was overwritten by the policy's."""
        self.run_both(["accept-inherits"],
                      [rule(["recv"], "    timeout: { recv: 5s }\n"),
                       rule(["send", "recv"], "    timeout: { recv: 100ms, send: 5s }\n")],
                      expect="accepted SO_RCVTIMEO = 0.300\nrecv = -1 EAGAIN\nrecv took fast\n")

    def test_vfork_child_leaves_the_parents_table_alone(self):
        """A vfork child's close_range ran our close hook in the parent's memory and
        wiped its descriptor table: the policy's timeout then showed through getsockopt
        as if the program had set it, and ended recv with EAGAIN instead of ETIMEDOUT."""
        srv = self.echo()
        bare = run([self.exact, "vfork-close", str(srv.port)], timeout=10)
        self.assertIn("recv on b = -1 EAGAIN", bare.stdout, repr(bare))
        pol, log = self.wd.policy(rule(["recv"], "    timeout: { recv: 400ms }\n"))
        r = run([self.exact, "vfork-close", str(srv.port)], shim=True, policy=pol, timeout=10)
        self.assertEqual(r.stdout.splitlines()[:3], bare.stdout.splitlines()[:3],
                         "getsockopt differs\n%r\n--- bare\n%s" % (r, bare.stdout))
        self.assertIn("recv on b = -1 EAGAIN", r.stdout, repr(r))

    def test_nonblocking_connect_stays_nonblocking(self):
        """Any connect rule, even a timeout or breaker alone, carried a non-blocking
        connect to its end inside connect(): 0 where the kernel says EINPROGRESS, and an
        event loop held for the whole timeout."""
        hole = self.blackhole()
        self.run_both(["nb-connect", hole.port],
                      [rule(["connect"], "    timeout: { connect: 5s }\n"),
                       rule(["connect"], NEVER)],
                      expect="connect = -1 EINPROGRESS\nconnect took fast\n")

    def test_signal_interrupts_connect(self):
        """A SIGALRM handler without SA_RESTART at 1 s: bare, a connect to a silent peer
        returns EINTR then; under the built-in default policy it went on to its 15 s
        deadline. The attempt goes on after EINTR, as the kernel's does."""
        hole = self.blackhole()
        expect = ("connect = -1 EINTR\nconnect took 1s\nconnect again = -1 EALREADY\n")
        bare = run([self.exact, "alarm-connect", str(hole.port)])
        self.assertEqual(bare.stdout, expect, repr(bare))
        r = run([self.exact, "alarm-connect", str(hole.port)], shim=True)   # built-in default
        self.assertEqual(r.stdout, expect, repr(r))
        self.run_both(["alarm-connect", hole.port],
                      [rule(["connect"], "    retry: { attempts: 5 }\n"
                                         "    timeout: { connect: 10s }\n")])

    def test_signal_interrupts_recv(self):
        """The same for a blocking recv under a rule that retries: EINTR was in the
        default retry list, so the handler's interruption was swallowed."""
        srv = self.echo()
        self.run_both(["alarm-recv", srv.port],
                      [rule(["recv"], "    retry: { attempts: 3 }\n"),
                       rule(["recv"], "    retry: { attempts: 3 }\n    timeout: { recv: 10s }\n")],
                      expect="recv = -1 EINTR\nrecv took 1s\n")

    def test_connect_on_a_connected_socket_is_the_programs(self):
        """EISCONN counted as a breaker failure of a healthy destination and, with a
        fallback, reset the live connection and reconnected it to the fallback."""
        srv, other = self.echo(), self.echo()
        body = ("    retry: { attempts: 2, backoff: { base: 10ms, max: 20ms } }\n"
                "    breaker: { trip: { consecutive: 1 }, open_for: 10s }\n"
                "    fallback: [\"127.0.0.1:%d\"]\n" % other.port)
        _, evs = self.run_both(["eisconn", srv.port], [rule(["connect"], body,
                                                           dest=["127.0.0.1:%d" % srv.port])],
                               expect="connect again = -1 EISCONN\n" * 3 +
                                      "peer is the server: yes\nconnect a new socket = 0 \n")
        self.assertFalse(events_of(evs[0], "fail") + events_of(evs[0], "failover"),
                         describe(evs[0]))

    def test_byte_limit_never_splits_a_datagram_or_record(self):
        """send() and write() on connected UDP and SOCK_SEQPACKET sockets were cut to
        the bucket's tokens, splitting datagrams."""
        path = self.wd.file("seq.sock")
        self.run_both(["whole-records", path],
                      [rule(["send"], "    rate_limit: { rate: 100B/s }\n",
                            dest=["127.0.0.1:*", "unix:" + path]),
                       rule(["send"], "    rate_limit: { rate: 100KiB/s }\n",
                            dest=["127.0.0.1:*", "unix:" + path])],
                      expect="udp send 1000 = 1000 \nudp write 1200 = 1200 \n"
                             "udp recv = 1000 \nudp recv = 1200 \n"
                             "seqpacket send 1000 = 1000 \nseqpacket write 1500 = 1500 \n"
                             "seqpacket recv = 1000 \nseqpacket recv = 1500 \n")

    def test_freopen_replaces_what_the_table_knew(self):
        """After dup2(sock, 1) and freopen(file, "w", stdout), writes to the file got
        the socket rule's faults."""
        srv = self.echo()
        out = self.wd.file("out.txt")
        pol, log = self.wd.policy(rule(["send"], "    inject: [{ errno: EPIPE }]\n"))
        r = run([self.exact, "freopen-socket", str(srv.port), out], shim=True, policy=pol)
        self.assertEqual(r.rc, 0, repr(r))
        with open(out) as f:
            self.assertEqual(f.read(), "hello\n" * 100)
        self.assertFalse(events_of(read_events(log), "injected"), describe(read_events(log)))

    def test_recv_error_on_an_accepted_socket_names_the_peer(self):
        """A real ECONNRESET on an accepted socket was logged without dest."""
        pol, log = self.wd.policy(rule(["recv"], NEVER), level="info")
        import subprocess
        env = shim_env(pol)
        p = subprocess.Popen([self.exact, "serve-one"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            port = int(p.stdout.readline().split()[1])
            c = socket.create_connection(("127.0.0.1", port))
            local = "127.0.0.1:%d" % c.getsockname()[1]
            time.sleep(0.2)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            out, _ = p.communicate(timeout=10)
        finally:
            p.kill()
            p.wait()
        self.assertIn(b"recv = -1 ECONNRESET", out)
        fails = events_of(read_events(log), "fail", op="recv", err="ECONNRESET")
        self.assertEqual(len(fails), 1, describe(read_events(log)))
        self.assertEqual(fails[0].get("dest"), local, fails[0])

    def test_breaker_trips_on_a_server_that_accepts_and_resets(self):
        """Each successful connect reset the count of failures in a row, so a server that
        always accepts and then resets never opened the breaker."""
        srv = self.track(Server(reset_handler))
        bare = run([self.exact, "reset-loop", str(srv.port)])
        self.assertEqual(bare.stdout, "connect = 0 \nrecv = -1 ECONNRESET\n" * 5, repr(bare))
        pol, log = self.wd.policy(rule(["connect", "recv"],
                                       "    breaker: { trip: { consecutive: 2 }, open_for: 30s }\n",
                                       dest=["127.0.0.1:%d" % srv.port]), level="info")
        r = run([self.exact, "reset-loop", str(srv.port)], shim=True, policy=pol)
        self.assertEqual(r.stdout, "connect = 0 \nrecv = -1 ECONNRESET\n" * 2 +
                         "connect = -1 ECONNREFUSED\n" * 3, repr(r))
        evs = read_events(log)
        self.assertTrue(events_of(evs, "breaker", to="open"), describe(evs))
        self.assertEqual(len(events_of(evs, "rejected")), 3, describe(evs))

    def test_connect_breaker_alone_judges_the_connection(self):
        """The same with a rule for connect only: the breaker must still hear that each
        connection broke before its first byte. The watch set by connect was dropped when
        the socket was learned, and no send/recv hook looked at the socket at all."""
        srv = self.track(Server(reset_handler))
        pol, log = self.wd.policy(rule(["connect"],
                                       "    breaker: { trip: { consecutive: 2 }, open_for: 30s }\n",
                                       dest=["127.0.0.1:%d" % srv.port]), level="info")
        r = run([self.exact, "reset-loop", str(srv.port)], shim=True, policy=pol)
        self.assertEqual(r.stdout, "connect = 0 \nrecv = -1 ECONNRESET\n" * 2 +
                         "connect = -1 ECONNREFUSED\n" * 3, repr(r))
        evs = read_events(log)
        self.assertTrue(events_of(evs, "breaker", to="open"), describe(evs))


if __name__ == "__main__":
    unittest.main()
