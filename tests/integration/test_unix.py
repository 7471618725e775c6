"""AF_UNIX connect retry (bulwark.yaml(5) MATCH `unix:` dests, RETRY): a local server that creates its
socket late. ENOENT means "not created yet" for a unix path and is retried by default;
a stale socket file with nobody listening gives ECONNREFUSED, also retried."""

import socket
import unittest

from harness import PY_UNIX, ShimTest, describe, events_of, py, read_events, retry_yaml, rule, run


def unix_rule(glob, name="local"):
    return rule(name, ["connect"], ["unix:" + glob], "retry: %s" % retry_yaml())


class UnixRetry(ShimTest):

    def test_socket_created_late(self):
        path = self.wd.file("app.sock")
        self.server(delay_s=1.0, kind="unix", path=path)
        pol, log = self.wd.policy(unix_rule(self.wd.path + "/*.sock"))

        plain = run(py(PY_UNIX, path))
        self.assertFailed(plain)
        self.assertIn("FileNotFoundError", plain.stderr)

        r = run(py(PY_UNIX, path), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ping")
        events = read_events(log)
        rec = self.assertRecovered(events, dest="unix:" + path, rule="local", err="ENOENT")
        self.assertGreater(rec["elapsed_ms"], 500, describe(events))

    def test_path_with_quotes_and_utf8_is_escaped(self):
        """Event strings are JSON-escaped: the dest comes back byte for byte."""
        path = self.wd.file('odd "q" \\ \u00e9\t.sock')
        self.server(delay_s=0.5, kind="unix", path=path)
        pol, log = self.wd.policy(unix_rule(self.wd.path + "/*.sock"))
        r = run(py(PY_UNIX, path), shim=True, policy=pol)
        self.assertOk(r)
        self.assertRecovered(read_events(log), dest="unix:" + path, err="ENOENT")

    def test_stale_socket_file(self):
        """The socket file exists but nobody listens (a server that crashed): connect
        is refused until the new server has replaced it."""
        path = self.wd.file("stale.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()
        self.server(delay_s=1.0, kind="unix", path=path)
        pol, log = self.wd.policy(unix_rule(self.wd.path + "/*.sock"))

        plain = run(py(PY_UNIX, path))
        self.assertFailed(plain)
        self.assertIn("ConnectionRefusedError", plain.stderr)

        r = run(py(PY_UNIX, path), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "ping")
        self.assertRecovered(read_events(log), dest="unix:" + path, err="ECONNREFUSED")

    def test_other_path_not_matched(self):
        path = self.wd.file("app.sock")
        self.server(delay_s=1.0, kind="unix", path=path)
        pol, log = self.wd.policy(unix_rule("/nonexistent/*.sock"))
        r = run(py(PY_UNIX, path), shim=True, policy=pol)
        self.assertFailed(r)
        self.assertIn("FileNotFoundError", r.stderr)
        self.assertNoCallEvents(read_events(log))

    def test_datagram_unix_not_retried(self):
        """A datagram connect sends nothing: it is never retried (bulwark.yaml(5) RETRY)."""
        path = self.wd.file("dgram.sock")
        pol, log = self.wd.policy(unix_rule(self.wd.path + "/*.sock"))
        code = ("import socket, sys\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
                "try:\n    s.connect(sys.argv[1])\nexcept FileNotFoundError:\n    print('enoent')\n")
        r = run(py(code, path), shim=True, policy=pol)
        self.assertOk(r)
        self.assertEqual(r.stdout.strip(), "enoent")
        self.assertLess(r.elapsed, 1.9, "a datagram connect was retried")
        events = read_events(log)
        self.assertTrue(events_of(events, "start"), "the library did not start")
        self.assertFalse(events_of(events, "retry"), describe(events))


if __name__ == "__main__":
    unittest.main()
