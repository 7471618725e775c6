"""The files the library creates or opens on its own: the group state file
(`state: { share: group }`), its directory and the event log (`log: { sink: file:... }`).

A group's state lives exactly as long as the group: a process that leaves without running
exit handlers (_exit, as dash does) must not hand its open breakers to a later, unrelated
run. Every path is opened without following links or blocking, and is refused unless it
is a regular file (or directory) of the user's: someone else who can create the path must
not make a root-run program write anywhere, or hang it. A path too long is refused, never
cut to another directory, and a state file whose offsets point outside it is refused,
never mapped and followed."""
import json
import os
import pwd
import stat
import struct
import subprocess
import time
import unittest

from harness import (PYTHON, PY_CLIENT, TOOL, ShimTest, describe, events_in_text, events_of,
                     free_port, read_events, rule, run, shim_env)

# Connects n times to 127.0.0.1:port and prints what each returned (ok or the errno),
# in one write; then leaves with _exit when asked: no exit handler, no destructor.
CLIENT = PY_CLIENT + """
import os, sys
port, n, how = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = [str(connect_once(port)) for _ in range(n)]
os.write(1, (" ".join(out) + "\\n").encode())
if how == "_exit":
    os._exit(0)
"""

# Joins the group (by loading the library), says so, and stays until told to go.
MEMBER = """
import os, sys, time
wd, name = sys.argv[1], sys.argv[2]
open(os.path.join(wd, name + ".ready"), "w").close()
t = time.monotonic() + 30
while not os.path.exists(os.path.join(wd, "go")) and time.monotonic() < t:
    time.sleep(0.02)
"""

# struct bw_shm_header, as tests/integration/test_status.py mirrors it (and checks it
# against the C layout there): magic, version, size, n_rules, n_procs, created_us,
# group, policy, lock, entry_size, procs_off, rules_off; the reload count that ends it is
# not read here.
HDR = struct.Struct("<IIQIIq64s256siIQQ")
RULE_HEAD = struct.Struct("<64siiQQ")        # name, lock, sets, dests_off, locks_off
RULE_SIZE = 360                              # sizeof(struct bw_shm_rule)


def state_files(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".state")) if os.path.isdir(d) else []


class StateTest(ShimTest):

    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.state = self.wd.file("state")
        os.mkdir(self.state, 0o700)

    def policy(self, state_dir=None, consecutive=2):
        d = self.state if state_dir is None else state_dir
        return self.wd.policy(
            rule("db", ["connect"], ["127.0.0.1:%d" % self.port],
                 "retry: off\nbreaker: { trip: { consecutive: %d }, open_for: 60s }" % consecutive),
            extra="state: { share: group, dir: %s }\n" % d)

    def client(self, pol, n=3, how="exit", env=None):
        r = run([PYTHON, "-c", CLIENT, str(self.port), str(n), how], shim=True, policy=pol,
                env=env, timeout=30)
        self.assertEqual(r.rc, 0, r)
        return r.stdout.split()


class DeadGroup(StateTest):
    """Processes under plain LD_PRELOAD sharing a policy form a group named after it. When
    its last process leaves with _exit, the file stays behind; the next process of that
    policy must see that no process of the group is alive and start afresh."""

    def test_open_breaker_of_a_group_that_ended_with__exit_is_not_inherited(self):
        pol, log = self.policy()
        # the breaker opens (2 refusals) and the process leaves without exit handlers
        self.assertEqual(self.client(pol, 3, "_exit"), ["111"] * 3)
        self.assertEqual(len(state_files(self.state)), 1)         # left behind
        self.assertEqual(len(events_of(read_events(log), "breaker")), 1)
        os.unlink(log)
        # later, another run of the same policy against a healthy server
        self.server(delay_s=0, port=self.port).wait_listening()
        self.assertEqual(self.client(pol, 3), ["ok"] * 3)
        evs = read_events(log)
        self.assertEqual(events_of(evs, "rejected"), [], describe(evs))
        self.assertEqual(events_of(evs, "warning"), [], describe(evs))
        # and that one left normally, last of its group: the file went with it
        self.assertEqual(state_files(self.state), [])

    def test_live_group_keeps_its_state(self):
        # the same, but a process of the group is still running: it is the same group
        pol, log = self.policy()
        env = shim_env(pol)
        holder = subprocess.Popen([PYTHON, "-c", MEMBER, self.wd.path, "holder"], env=env)
        try:
            self.wait_ready(["holder"])
            self.assertEqual(self.client(pol, 3, "_exit"), ["111"] * 3)
            # the server is up, but the breaker the group opened is open for 60 s
            self.server(delay_s=0, port=self.port).wait_listening()
            self.assertEqual(self.client(pol, 2), ["111"] * 2)
            self.assertEqual(len(events_of(read_events(log), "rejected")), 3)
        finally:
            open(self.wd.file("go"), "w").close()
            holder.wait(timeout=30)

    def wait_ready(self, names, procs=()):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(os.path.exists(self.wd.file(n + ".ready")) for n in names):
                return
            for p in procs:
                if p.poll() is not None:
                    self.fail("a member ended early: %s" % p.returncode)
            time.sleep(0.02)
        self.fail("members not ready after 30 s")

    def created(self, name):
        """When the file was laid out (its inode number may well be reused)."""
        with open(os.path.join(self.state, name), "rb") as f:
            return HDR.unpack(f.read(HDR.size))[5]

    def test_processes_starting_together_replace_a_dead_file_once(self):
        """Several processes find the same dead group's file at once: exactly one
        replaces it, and all of them end up in that one file."""
        pol, log = self.policy()
        for rnd in range(3):
            self.assertEqual(self.client(pol, 3, "_exit"), ["111"] * 3)
            before = self.created(state_files(self.state)[0])
            env = shim_env(pol)
            names = ["m%d-%d" % (rnd, i) for i in range(6)]
            procs = [subprocess.Popen([PYTHON, "-c", MEMBER, self.wd.path, n], env=env)
                     for n in names]
            try:
                self.wait_ready(names, procs)
                files = state_files(self.state)
                self.assertEqual(len(files), 1, files)
                path = os.path.join(self.state, files[0])
                self.assertNotEqual(self.created(files[0]), before)   # replaced
                r = run([TOOL, "status", "--dir", self.state, "--format", "json"])
                doc = json.loads(r.stdout)
                self.assertEqual(doc["live_groups"], 1, r)
                pids = sorted(p["pid"] for p in doc["groups"][0]["processes"]
                              if p["alive"])
                self.assertEqual(pids, sorted(p.pid for p in procs), r)
            finally:
                open(self.wd.file("go"), "w").close()
                for p in procs:
                    p.wait(timeout=30)
                os.unlink(self.wd.file("go"))
            self.assertEqual([p.returncode for p in procs], [0] * 6)
            self.assertEqual(state_files(self.state), [])   # the last one out removed it
        self.assertEqual(events_of(read_events(log), "warning"), [])


class LogSink(ShimTest):
    """`log: { sink: file:PATH }` is opened without following a symbolic link or waiting
    for a FIFO's reader, and only a regular file of the user's (or root's) is written."""

    def policy_to(self, path):
        return self.wd.write("p.yaml", "version: 1\nlog: { sink: \"file:%s\", level: debug }\n"
                             "rules:\n  - name: r\n    match: { ops: [connect] }\n" % path)

    def refused(self, path, reason, timeout=20):
        """A run with the sink at path: it ends at once, and says on stderr, once, why the
        file was refused."""
        pol = self.policy_to(path)
        t = time.monotonic()
        r = run([PYTHON, "-c", "print('ran')"], shim=True, policy=pol, timeout=timeout)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stdout, "ran\n", r)
        self.assertLess(time.monotonic() - t, timeout)
        evs = events_in_text(r.stderr)
        errs = events_of(evs, "config_error")
        self.assertEqual(len(errs), 1, r)
        self.assertEqual(errs[0]["file"], path, r)
        self.assertIn(reason, errs[0]["msg"], r)
        return r, evs

    def test_symlink_is_not_followed(self):
        target = self.wd.write("precious", "precious\n")
        link = self.wd.file("bulwark.log")
        os.symlink(target, link)
        r, evs = self.refused(link, "symbolic link")
        with open(target) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertTrue(os.path.islink(link))
        # the events go where they would by default: standard error
        self.assertEqual(len(events_of(evs, "start")), 1, r)

    def test_dangling_symlink_creates_nothing(self):
        target = self.wd.file("made")
        link = self.wd.file("bulwark.log")
        os.symlink(target, link)
        self.refused(link, "symbolic link")
        self.assertFalse(os.path.exists(target))

    def test_fifo_without_a_reader_does_not_hang(self):
        fifo = self.wd.file("bulwark.log")
        os.mkfifo(fifo, 0o600)
        self.refused(fifo, "not a regular file")

    def test_fifo_with_a_reader_gets_nothing(self):
        fifo = self.wd.file("bulwark.log")
        os.mkfifo(fifo, 0o600)
        rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            self.refused(fifo, "not a regular file")
            try:
                got = os.read(rd, 65536)
            except BlockingIOError:
                got = b""
            self.assertEqual(got, b"")
        finally:
            os.close(rd)

    def test_hard_link_is_refused(self):
        other = self.wd.write("other", "other\n")
        link = self.wd.file("bulwark.log")
        os.link(other, link)
        self.refused(link, "hard link")
        with open(other) as f:
            self.assertEqual(f.read(), "other\n")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to give a file to another user")
    def test_file_of_another_user_is_refused(self):
        nobody = pwd.getpwnam("nobody")
        path = self.wd.write("bulwark.log", "theirs\n")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
        self.refused(path, "belongs to another user")
        with open(path) as f:
            self.assertEqual(f.read(), "theirs\n")

    def test_own_file_is_written(self):
        path = self.wd.file("bulwark.log")
        pol = self.policy_to(path)
        r = run([PYTHON, "-c", "print('ran')"], shim=True, policy=pol)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(events_in_text(r.stderr), [], r)
        self.assertEqual(len(events_of(read_events(path), "start")), 1)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_sink_opened_twice_keeps_one_descriptor(self):
        # a bad environment setting is reported through the sink before the policy's
        # own sink is opened: the same file, opened again, must not leave the first open
        path = self.wd.file("bulwark.log")
        pol = self.policy_to(path)
        code = ("import os\n"
                "print(sum(os.path.realpath('/proc/self/fd/' + f) == %r\n"
                "          for f in os.listdir('/proc/self/fd')))\n" % path)
        r = run([PYTHON, "-c", code], shim=True, policy=pol,
                env={"BULWARK_LOG": "file:" + path, "BULWARK_LEVEL": "bogus"})
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stdout, "1\n", r)
        self.assertEqual(len(events_of(read_events(path), "config_error")), 1)

    def test_missing_directory_is_said(self):
        path = self.wd.file("no/such/dir/bulwark.log")
        self.refused(path, "No such file or directory")


class StateDirSafety(StateTest):
    """The state directory and files: never through a symbolic link, only the user's,
    and the directory not open to others. Each refusal is one warning, and the process
    keeps its own state."""

    def private_state(self, pol, log, why):
        # works, with state of its own: each of two processes learns alone
        self.assertEqual(self.client(pol, 3), ["111"] * 3)
        self.assertEqual(self.client(pol, 3), ["111"] * 3)
        evs = read_events(log)
        self.assertEqual(len(events_of(evs, "fail")), 4, describe(evs))
        warned = events_of(evs, "warning")
        self.assertEqual(len(warned), 2, describe(evs))          # one per process
        self.assertIn(why, warned[0]["msg"])
        self.assertIn("each process keeps its own state", warned[0]["msg"])
        return warned

    def test_directory_that_is_a_symlink(self):
        real = self.wd.file("real")
        os.mkdir(real, 0o700)
        link = self.wd.file("link")
        os.symlink(real, link)
        pol, log = self.policy(state_dir=link)
        self.private_state(pol, log, "symbolic link")
        self.assertEqual(os.listdir(real), [])

    def test_directory_open_to_others(self):
        os.chmod(self.state, 0o777)
        pol, log = self.policy()
        self.private_state(pol, log, "other users")
        self.assertEqual(os.listdir(self.state), [])

    @unittest.skipUnless(os.geteuid() == 0, "needs root to give a directory to another user")
    def test_directory_of_another_user(self):
        os.chown(self.state, pwd.getpwnam("nobody").pw_uid, -1)
        pol, log = self.policy()
        self.private_state(pol, log, "another user")
        self.assertEqual(os.listdir(self.state), [])

    def named_file(self, pol, log):
        """The path of the file the library makes for pol (it is left behind by _exit),
        removed, and the log with it."""
        self.client(pol, 1, "_exit")
        files = state_files(self.state)
        self.assertEqual(len(files), 1)
        path = os.path.join(self.state, files[0])
        os.unlink(path)
        os.unlink(log)
        return path

    def test_state_file_that_is_a_symlink(self):
        pol, log = self.policy()
        path = self.named_file(pol, log)
        target = self.wd.write("precious", "precious\n")
        os.symlink(target, path)
        self.private_state(pol, log, "symbolic link")
        with open(target) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertTrue(os.path.islink(path))

    def test_state_file_that_is_a_fifo(self):
        pol, log = self.policy()
        path = self.named_file(pol, log)
        os.mkfifo(path, 0o600)
        self.private_state(pol, log, "not a regular file")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to give a file to another user")
    def test_state_file_of_another_user(self):
        pol, log = self.policy()
        path = self.named_file(pol, log)
        with open(path, "w"):
            pass
        os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
        self.private_state(pol, log, "another user")
        self.assertEqual(os.path.getsize(path), 0)


class LongStateDir(StateTest):
    """A state directory longer than a path can be is refused with a warning, never cut
    short to another directory."""

    def test_long_xdg_runtime_dir_is_refused_not_cut(self):
        pol, log = self.wd.policy(
            rule("db", ["connect"], ["127.0.0.1:%d" % self.port], "retry: off"),
            extra="state: { share: group }\n")
        # a path cut anywhere would name a directory that can be made: inside `first`
        base = self.wd.file("x")
        first = os.path.join(base, "d" * 200)
        os.makedirs(first, 0o700)
        xdg = first + ("/" + "e" * 200) * 20          # 4200 bytes and more
        self.assertGreater(len(xdg), 4096)
        r = run([PYTHON, "-c", CLIENT, str(self.port), "1", "exit"], shim=True, policy=pol,
                env={"XDG_RUNTIME_DIR": xdg})
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stdout.split(), ["111"])
        self.assertEqual(os.listdir(first), [])         # nothing made from a cut path
        evs = read_events(log)
        warned = events_of(evs, "warning")
        self.assertEqual(len(warned), 1, describe(evs))
        self.assertIn("too long", warned[0]["msg"])
        self.assertIn("each process keeps its own state", warned[0]["msg"])


class DamagedStateFile(StateTest):
    """A file that passes the magic, version, size and rule-name checks but whose offsets
    or counts point outside it (or anywhere its layout does not put them) is never
    followed. While a process of the group lives, the file is left to it: a newcomer keeps
    its own state and says so once. When none does, the file is replaced."""

    GROUP = {"BULWARK_GROUP": "g1"}

    def setUp(self):
        super().setUp()
        self.pol, self.log = self.policy()
        self.path = os.path.join(self.state, "g1.state")
        self.holder = None

    def tearDown(self):
        if self.holder:
            open(self.wd.file("go"), "w").close()
            self.holder.wait(timeout=30)
        super().tearDown()

    def made(self, live=True):
        """A finished file for the policy, made by a process of group g1 that stays
        (live) or has left."""
        if live:
            env = shim_env(self.pol, **self.GROUP)
            self.holder = subprocess.Popen([PYTHON, "-c", MEMBER, self.wd.path, "holder"],
                                           env=env)
            deadline = time.monotonic() + 30
            while not os.path.exists(self.wd.file("holder.ready")):
                self.assertIsNone(self.holder.poll())
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
        else:
            self.client(self.pol, 1, env=self.GROUP)
        self.assertTrue(os.path.exists(self.path))
        if os.path.exists(self.log):
            os.unlink(self.log)

    def patch_header(self, **fields):
        names = ("magic version size n_rules n_procs created_us group policy lock "
                 "entry_size procs_off rules_off").split()
        with open(self.path, "r+b") as f:
            h = dict(zip(names, HDR.unpack(f.read(HDR.size))))
            h.update(fields)
            f.seek(0)
            f.write(HDR.pack(*[h[n] for n in names]))
            return h

    def patch_rule(self, i, **fields):
        names = "name lock sets dests_off locks_off".split()
        with open(self.path, "r+b") as f:
            h = HDR.unpack(f.read(HDR.size))
            off = h[-1] + i * RULE_SIZE
            f.seek(off)
            r = dict(zip(names, RULE_HEAD.unpack(f.read(RULE_HEAD.size))))
            r.update(fields)
            f.seek(off)
            f.write(RULE_HEAD.pack(*[r[n] for n in names]))

    def run3(self):
        r = run([PYTHON, "-c", CLIENT, str(self.port), "3", "exit"], shim=True,
                policy=self.pol, env=self.GROUP)
        self.assertEqual(r.rc, 0, r)                     # not -11 (SIGSEGV) or -7 (SIGBUS)
        self.assertEqual(r.stdout.split(), ["111"] * 3, r)
        return read_events(self.log)

    def refused(self, why="damaged"):
        with open(self.path, "rb") as f:
            before = f.read()
        evs = self.run3()
        # its own breaker: 2 failures open it, the third call is refused by it
        self.assertEqual(len(events_of(evs, "fail")), 2, describe(evs))
        self.assertEqual(len(events_of(evs, "rejected")), 1, describe(evs))
        warned = events_of(evs, "warning")
        self.assertEqual(len(warned), 1, describe(evs))
        self.assertIn(why, warned[0]["msg"])
        self.assertIn("each process keeps its own state", warned[0]["msg"])
        self.assertEqual(warned[0].get("file"), self.path)
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), before)           # left to its group
        return warned[0]

    def test_rules_offset_far_past_the_end(self):
        self.made()
        self.patch_header(rules_off=1 << 40)
        w = self.refused()
        self.assertIn("rule table", w["msg"])

    def test_rules_offset_inside_but_misplaced(self):
        # the rule table moved inside the file, names and all: every bound holds, but it
        # is not where this policy's layout puts it
        self.made()
        h = self.patch_header()
        moved = (h["size"] - 2 * RULE_SIZE) & ~63
        with open(self.path, "r+b") as f:
            f.seek(h["rules_off"])
            rule = f.read(RULE_SIZE)
            f.seek(moved)
            f.write(rule)
        self.patch_header(rules_off=moved)
        self.refused()

    def test_dest_table_offset_past_the_end(self):
        self.made()
        self.patch_rule(0, dests_off=1 << 40)
        self.refused()

    def test_set_count_too_large(self):
        self.made()
        self.patch_rule(0, sets=1 << 30)
        self.refused()

    def test_entry_size_differs(self):
        self.made()
        self.patch_header(entry_size=8)
        self.refused()

    def test_size_past_the_end(self):
        self.made()
        h = self.patch_header()
        self.patch_header(size=h["size"] + (1 << 40))
        self.refused()

    def test_process_table_elsewhere_cannot_be_told_dead(self):
        # with no process table where it belongs, no one can tell whether the group
        # lives: the file is left alone even after its processes have gone
        self.made(live=False)
        self.patch_header(procs_off=1 << 40)
        self.refused()
        os.unlink(self.log)
        self.patch_header(procs_off=HDR.size + 8, n_procs=1 << 20)
        self.refused()

    def test_damaged_file_of_a_dead_group_is_replaced(self):
        self.made(live=False)
        self.patch_header(rules_off=1 << 40)
        evs = self.run3()
        self.assertEqual(events_of(evs, "warning"), [], describe(evs))
        # made again, whole, and shared: the next process finds the breaker open
        self.assertEqual(self.patch_header()["rules_off"] < os.path.getsize(self.path), True)
        evs = self.run3()
        self.assertEqual(len(events_of(evs, "fail")), 2, describe(evs))
        self.assertEqual(len(events_of(evs, "rejected")), 4, describe(evs))

    def test_status_says_the_same(self):
        self.made(live=False)
        self.patch_header(rules_off=1 << 40)
        r = run([TOOL, "status", "--dir", self.state])
        self.assertEqual(r.rc, 3, r)
        self.assertIn("g1.state: skipped: layout differs from this bulwark's (rule table)",
                      r.stderr)


if __name__ == "__main__":
    unittest.main()
