#!/usr/bin/env python3
"""The test suite of a client of service.py. It starts the service, talks to it over
127.0.0.1, and fails now and then: about one run in two, one of its tests dies with
ConnectionRefusedError.

    python3 test_suite.py            # FLAKY_PORT=N to put the service on a given port
"""
import os
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = None
_service = None


def setUpModule():
    global PORT, _service
    _service = subprocess.Popen([sys.executable, os.path.join(HERE, "service.py"),
                                 os.environ.get("FLAKY_PORT", "0")],
                                stdout=subprocess.PIPE, text=True)
    line = _service.stdout.readline().split()
    if len(line) != 2 or line[0] != "ready":
        raise RuntimeError("the service did not start: %r" % line)
    PORT = int(line[1])


def tearDownModule():
    _service.terminate()
    _service.wait(5)
    _service.stdout.close()


def request(line):
    """One request on a connection of its own, as the client library under test does."""
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as s:
        s.sendall((line + "\n").encode())
        return s.makefile().readline().strip()


def work():
    time.sleep(0.05)    # what the client does between two requests


class KeyValueClient(unittest.TestCase):

    def test_a_put_then_get(self):
        self.assertEqual(request("PUT colour blue"), "OK")
        work()
        self.assertEqual(request("GET colour"), "blue")

    def test_b_delete(self):
        self.assertEqual(request("PUT tmp 1"), "OK")
        work()
        self.assertEqual(request("DEL tmp"), "OK")
        work()
        self.assertEqual(request("GET tmp"), "NOTFOUND")

    def test_c_missing_key(self):
        self.assertEqual(request("GET nothing-here"), "NOTFOUND")
        work()

    def test_d_overwrite(self):
        self.assertEqual(request("PUT n 1"), "OK")
        work()
        self.assertEqual(request("PUT n 2"), "OK")
        work()
        self.assertEqual(request("GET n"), "2")


if __name__ == "__main__":
    unittest.main()
