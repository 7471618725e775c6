"""`bulwark status` (bulwark(1), STATUS): the breakers and buckets a process tree shares, read from
the group state files in the state directory, with health as the exit status (0 healthy,
1 degraded, 2 unhealthy, 3 unknown) in three formats.

The state files are written here by hand with the struct module, so that every figure is
known in advance. The Python mirror of engine/shared.h is kept honest by a small C
program compiled against config/ and engine/ (LAYOUT_C): it prints the sizes and field offsets of
the structures, and the layout bw_shm_format gives a policy's file, and Layout below must
agree with both before any file is written.

Layout of a state file as mirrored here (all little-endian, natural alignment, x86-64):

  struct bw_shm_header (384 bytes) at 0:
      0 magic u32 | 4 version u32 | 8 size u64 | 16 n_rules u32 | 20 n_procs u32 |
     24 created_us i64 | 32 group[64] | 96 policy[256] | 352 lock i32 |
    356 entry_size u32 | 360 procs_off u64 | 368 rules_off u64 | 376 reloads u64
  struct bw_shm_proc (560): 0 pid i32 | 4 start_ticks u32 | 8 started_us i64 | 16 prog[32] |
    48 held[64] of {cell u32, n i32} (the bulkhead slots it holds)
  struct bw_shm_rule (3832): 0 name[64] | 64 lock i32 | 68 sets i32 | 72 dests_off u64 |
    80 locks_off u64 | 88 whole (struct bw_dest_state) | 616 met (struct bw_shm_met:
    stats u64[11], then 17 rows of {key u64, label[48], calls u64, failed u64,
    le u64[13], sum_us u64}; left zero here)
  struct bw_dest_state (528): 0 brk (struct bw_breaker_state, 280) | 280 bucket (24) |
    304 bulk {in_use i32, max i32} | 312 thr (168: win[10] of {slot i64, requests u32,
    accepts u32}, len i64) | 480 label[48]
  struct bw_breaker_state (280): 0 pos i32 | 4 consecutive i32 | 8 opened_at i64 |
    16 open_for i64 | 24 probes_out i32 | 28 probes_ok i32 | 32 win[10] of
    {slot i64, calls i32, fails i32, slows i32, pad i32} (24 each) | 272 stamp u32 |
    276 pad i32
  struct bw_bucket (24): 0 tokens double | 8 last i64 | 16 burst double
  keyed entry (entry_size 288): key u64 (0: empty), used i64, then the bw_dest_state;
    rule i's entries at dests_off + (set * 8 + way) * 288, set = (key >> 17) % sets.
  File order: header, procs at align64(384) (256 of them), rules at the next 64-byte
  boundary, then per rule with dest-scoped state its entries and its set locks (int32),
  each block starting on a 64-byte boundary. Times: created_us and started_us wall
  clock, opened_at and bucket.last CLOCK_MONOTONIC (time.monotonic here), microseconds.
"""

import atexit
import fcntl
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, PYTHON, ROOT, TOOL, ShimTest, base_env, free_port, kill_group, run
from harness import rule as harness_rule

MAGIC = 0x6277736b
VERSION = 3
NPROCS = 256
WAYS = 8
SLOTS = 10
CLOSED, OPEN, HALF_OPEN = 0, 1, 2

HDR = struct.Struct("<IIQIIq64s256siIQQQ")
PROC = struct.Struct("<iIq32s")
HELD = 64                                # bulkhead ledger entries per process
PROC_SIZE = PROC.size + HELD * 8
RULE_HEAD = struct.Struct("<64siiQQ")
BRK_HEAD = struct.Struct("<iiqqii")
SLOT = struct.Struct("<qiiii")
BRK_TAIL = struct.Struct("<Ii")
BUCKET = struct.Struct("<dqd")
BULK = struct.Struct("<ii")
THR_SIZE = 10 * 16 + 8
LABEL_MAX = 48
BRK_SIZE = BRK_HEAD.size + SLOTS * SLOT.size + BRK_TAIL.size
DEST_SIZE = BRK_SIZE + BUCKET.size + BULK.size + THR_SIZE + LABEL_MAX
ENTRY_HDR = struct.Struct("<Qq")
ENTRY_SIZE = ENTRY_HDR.size + ((DEST_SIZE + 7) & ~7)
STATS = 11                               # enum bw_stat
MET_BUCKETS = 12
MET_DEST_SIZE = 8 + LABEL_MAX + 8 + 8 + (MET_BUCKETS + 1) * 8 + 8
MET_SIZE = STATS * 8 + (16 + 1) * MET_DEST_SIZE
RULE_SIZE = RULE_HEAD.size + DEST_SIZE + MET_SIZE

# Prints the C side of the mirror as JSON; with a policy file, also the layout of its
# state file as bw_shm_format lays it out.
LAYOUT_C = r"""
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include "shared.h"

#define SZ(t) printf("\"sizeof %s\": %zu,\n", #t, sizeof(struct t))
#define OFF(t, f) printf("\"%s.%s\": %zu,\n", #t, #f, offsetof(struct t, f))

int main(int argc, char **argv)
{
	printf("{\n");
	SZ(bw_shm_header); SZ(bw_shm_proc); SZ(bw_shm_rule); SZ(bw_dest_state);
	SZ(bw_breaker_state); SZ(bw_bucket);
	OFF(bw_shm_header, magic); OFF(bw_shm_header, version); OFF(bw_shm_header, size);
	OFF(bw_shm_header, n_rules); OFF(bw_shm_header, n_procs);
	OFF(bw_shm_header, created_us); OFF(bw_shm_header, group);
	OFF(bw_shm_header, policy); OFF(bw_shm_header, lock);
	OFF(bw_shm_header, entry_size); OFF(bw_shm_header, procs_off);
	OFF(bw_shm_header, rules_off); OFF(bw_shm_header, reloads);
	OFF(bw_shm_proc, pid); OFF(bw_shm_proc, started_us); OFF(bw_shm_proc, prog);
	OFF(bw_shm_rule, name); OFF(bw_shm_rule, lock); OFF(bw_shm_rule, sets);
	OFF(bw_shm_rule, dests_off); OFF(bw_shm_rule, locks_off); OFF(bw_shm_rule, whole);
	OFF(bw_dest_state, brk); OFF(bw_dest_state, bucket); OFF(bw_dest_state, bulk);
	OFF(bw_dest_state, thr); OFF(bw_dest_state, label);
	OFF(bw_breaker_state, pos); OFF(bw_breaker_state, consecutive);
	OFF(bw_breaker_state, opened_at); OFF(bw_breaker_state, open_for);
	OFF(bw_breaker_state, probes_out); OFF(bw_breaker_state, probes_ok);
	OFF(bw_breaker_state, win); OFF(bw_breaker_state, stamp);
	printf("\"sizeof win\": %zu,\n", sizeof(((struct bw_breaker_state *)0)->win[0]));
	OFF(bw_bucket, tokens); OFF(bw_bucket, last); OFF(bw_bucket, burst);
	printf("\"BW_SHM_MAGIC\": %u, \"BW_SHM_VERSION\": %d, \"BW_SHM_PROCS\": %d,\n",
	       BW_SHM_MAGIC, BW_SHM_VERSION, BW_SHM_PROCS);
	printf("\"BW_KEYED_WAYS\": %d, \"BW_BRK_SLOTS\": %d, \"BW_LABEL_MAX\": %d,\n",
	       BW_KEYED_WAYS, BW_BRK_SLOTS, BW_LABEL_MAX);
	printf("\"entry_size\": %zu", bw_keyed_entry_size(sizeof(struct bw_dest_state)));
	if (argc > 1) {
		struct bw_diags d = { .n = 0 };
		struct bw_config *cfg = bw_config_load_file(argv[1], &d);
		if (!cfg) {
			fprintf(stderr, "%s: does not load\n", argv[1]);
			return 1;
		}
		size_t size = bw_shm_size(cfg);
		void *mem = calloc(1, size);
		bw_shm_format(mem, size, cfg, "g", argv[1], 1);
		struct bw_shm_header *h = mem;
		printf(",\n\"size\": %zu, \"procs_off\": %llu, \"rules_off\": %llu, \"rules\": [",
		       size, (unsigned long long)h->procs_off, (unsigned long long)h->rules_off);
		for (int i = 0; i < cfg->n_rules; i++) {
			struct bw_shm_rule *r = &bw_shm_rules(mem)[i];
			printf("%s[\"%s\", %d, %llu, %llu]", i ? ", " : "", r->name, r->sets,
			       (unsigned long long)r->dests_off, (unsigned long long)r->locks_off);
		}
		printf("]");
	}
	printf("\n}\n");
	return 0;
}
"""

_layout_bin = None


def layout_bin():
    """The C printer, built once: against the build's policy objects when they are there
    (fast), else from the sources."""
    global _layout_bin
    if _layout_bin:
        return _layout_bin
    d = tempfile.mkdtemp(prefix="bw-layout-")
    atexit.register(shutil.rmtree, d, True)
    src = os.path.join(d, "layout.c")
    with open(src, "w") as f:
        f.write(LAYOUT_C)
    out = os.path.join(d, "layout")
    core = ("config", "engine")
    objs = sorted(o for d in core for o in glob.glob(os.path.join(BUILD, "obj", d, "*.o")))
    cc = os.environ.get("CC", "cc")
    base = [cc, "-std=c11", "-D_GNU_SOURCE"] + ["-I" + os.path.join(ROOT, d) for d in core] + [
            "-o", out, src]
    r = None
    if objs:
        r = subprocess.run(base + objs + ["-lyaml", "-lm"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
    if r is None or r.returncode != 0:
        srcs = sorted(c for d in core for c in glob.glob(os.path.join(ROOT, d, "*.c")))
        r = subprocess.run(base + srcs + ["-lyaml", "-lm"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300)
    if r.returncode != 0:
        raise AssertionError("cannot build the layout printer:\n" + r.stdout.decode())
    _layout_bin = out
    return out


def c_layout(policy=None):
    r = subprocess.run([layout_bin()] + ([policy] if policy else []), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise AssertionError("layout printer failed: " + r.stderr.decode())
    return json.loads(r.stdout.decode())


def align64(n):
    return (n + 63) & ~63


def sets_of(max_keys):
    return max(1, (max_keys + WAYS - 1) // WAYS)


class Layout:
    """Offsets of a state file for rules [(name, keyed, max_keys)], computed as
    engine/shared.c does."""

    def __init__(self, rules):
        self.names = [r[0] for r in rules]
        off = align64(HDR.size)
        self.procs_off = off
        off = align64(off + NPROCS * PROC_SIZE)
        self.rules_off = off
        off = align64(off + len(rules) * RULE_SIZE)
        self.rules = []                      # (name, sets, dests_off, locks_off)
        for name, keyed, max_keys in rules:
            sets = sets_of(max_keys) if keyed else 0
            dests = off
            off = align64(off + sets * WAYS * ENTRY_SIZE)
            locks = off
            off = align64(off + sets * 4)
            self.rules.append([name, sets, dests if sets else 0, locks if sets else 0])
        self.size = off


def brk_state(pos=CLOSED, consecutive=0, opened_at=0, open_for=0, probes_out=0,
              probes_ok=0, win=(), stamp=0):
    """struct bw_breaker_state; win: [(index, slot, calls, fails)]."""
    slots = [(0, 0, 0, 0, 0)] * SLOTS
    for i, slot, calls, fails in win:
        slots[i] = (slot, calls, fails, 0, 0)
    return (BRK_HEAD.pack(pos, consecutive, opened_at, open_for, probes_out, probes_ok)
            + b"".join(SLOT.pack(*s) for s in slots) + BRK_TAIL.pack(stamp, 0))


def dest_state(label=b"", tokens=0.0, last=0, burst=0.0, bulk=(0, 0), **brk):
    """struct bw_dest_state; brk: as brk_state, or brk=None for an unused breaker; bulk:
    the bulkhead's (slots in use, max)."""
    b = bytes(BRK_SIZE) if brk.pop("unused", False) else brk_state(**brk)
    if isinstance(label, str):
        label = label.encode()
    return (b + BUCKET.pack(tokens, last, burst) + BULK.pack(*bulk) + bytes(THR_SIZE)
            + label[:LABEL_MAX].ljust(LABEL_MAX, b"\0"))


def mono_us():
    return int(time.monotonic() * 1e6)


def wall_us():
    return int(time.time() * 1e6)


class StateFile:
    """One group's state file, built in memory and written whole."""

    def __init__(self, layout, group, policy=""):
        self.lay = layout
        self.buf = bytearray(layout.size)
        self.group = group
        self.policy = policy
        self.created_us = wall_us()
        self.n_procs = 0
        self.used = {}                       # (rule, set) -> ways taken
        for i, (name, sets, dests, locks) in enumerate(layout.rules):
            RULE_HEAD.pack_into(self.buf, layout.rules_off + i * RULE_SIZE,
                                name.encode(), 0, sets, dests, locks)

    def proc(self, pid, prog="app", started_us=None, start_ticks=0):
        off = self.lay.procs_off + self.n_procs * PROC_SIZE
        PROC.pack_into(self.buf, off, pid, start_ticks,
                       wall_us() if started_us is None else started_us,
                       prog.encode() if isinstance(prog, str) else prog)
        self.n_procs += 1

    def whole(self, rule, state):
        off = self.lay.rules_off + rule * RULE_SIZE + RULE_HEAD.size
        self.buf[off:off + DEST_SIZE] = state

    def dest(self, rule, key, state):
        name, sets, dests, locks = self.lay.rules[rule]
        assert sets, "rule %s has no dest-scoped state" % name
        s = (key >> 17) % sets
        way = self.used.get((rule, s), 0)
        assert way < WAYS
        self.used[(rule, s)] = way + 1
        off = dests + (s * WAYS + way) * ENTRY_SIZE
        ENTRY_HDR.pack_into(self.buf, off, key, mono_us())
        self.buf[off + ENTRY_HDR.size:off + ENTRY_HDR.size + DEST_SIZE] = state

    def write(self, path, magic=MAGIC, version=VERSION, truncate=None):
        HDR.pack_into(self.buf, 0, magic, version, self.lay.size, len(self.lay.rules),
                      NPROCS, self.created_us, self.group.encode(), self.policy.encode(), 0,
                      ENTRY_SIZE, self.lay.procs_off, self.lay.rules_off, 0)
        data = bytes(self.buf if truncate is None else self.buf[:truncate])
        with open(path, "wb") as f:
            f.write(data)
        return path


# The policy the hand-made groups were started with. Its state file: rule "pg" has
# dest-scoped breakers and buckets (2 sets of 8), "api" rule-scoped ones (no sets).
POLICY = """\
version: 1
log: { sink: stderr, level: error }
state: { share: group }
rules:
  - name: pg
    match: { ops: [connect], dest: ["127.0.0.1:5432", "10.0.0.0/8:5432"] }
    max_keys: 16
    breaker: { trip: { consecutive: 3, rate: 50%, window: 10s, min_calls: 4 }, open_for: 10s }
    rate_limit: { rate: 10/s, burst: 5 }
  - name: api
    match: { ops: [connect], dest: ["*:8080"] }
    max_keys: 8
    breaker: { scope: rule, trip: { consecutive: 2 }, open_for: 30s }
    rate_limit: { scope: rule, rate: 100/s, burst: 20 }
  - name: plain
    match: { ops: [resolve] }
"""
POLICY_RULES = [("pg", True, 16), ("api", False, 8), ("plain", False, 4096)]
PG, API, PLAIN = 0, 1, 2

STATUS_KEYS = ["health", "status", "dir", "live_groups", "stale_groups", "breakers", "time",
               "groups"]
GROUP_KEYS = ["group", "live", "health", "breakers", "file", "policy", "policy_loaded",
              "created", "processes", "destinations"]
PROC_KEYS = ["pid", "prog", "started", "alive"]
DEST_KEYS = ["rule", "dest", "scope", "health", "breaker", "bucket", "bulkhead"]
BREAKER_KEYS = ["state", "consecutive_failures", "window_failures", "window_calls",
                "window_known", "open_for_ms", "probe_in_ms"]
BUCKET_KEYS = ["tokens", "refilled", "burst", "rate_per_sec", "unit", "age_ms"]

PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="'
                       r'(?:[^"\\\n]|\\[\\"n])*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$')


def key_of(n):
    """A keyed-table key (never 0) whose set is n % 2 for the two-set rule."""
    return ((n * 2 + (n % 2)) << 17) | 0x5a5


class StatusTest(ShimTest):

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.wd.path, "state")
        os.mkdir(self.dir, 0o700)
        self.policy = self.wd.write("policy.yaml", POLICY)
        self.lay = Layout(POLICY_RULES)
        self.sleepers = []

    def tearDown(self):
        for p in self.sleepers:
            p.kill()
            p.wait()
        super().tearDown()

    # -- building groups

    def live_pid(self):
        """A process that exists while the test runs."""
        p = subprocess.Popen(["sleep", "60"])
        self.sleepers.append(p)
        return p.pid

    def dead_pid(self):
        p = subprocess.Popen(["true"])
        p.wait()
        return p.pid

    def group(self, name, procs=1, dead=0, policy=None):
        f = StateFile(self.lay, name, self.policy if policy is None else policy)
        for i in range(procs):
            f.proc(self.live_pid(), "worker%d" % i)
        for i in range(dead):
            f.proc(self.dead_pid(), "gone%d" % i)
        return f

    def status(self, *args, env=None):
        return run([TOOL, "status", "--dir", self.dir] + list(args), env=env)

    def json_status(self, *args):
        r = self.status("--format", "json", *args)
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            self.fail("not JSON: %r" % r)
        return r, doc

    def path(self, name):
        return os.path.join(self.dir, name + ".state")

    def assertFits(self, text):
        for line in text.splitlines():
            self.assertLessEqual(len(line), 79, "too wide: %r\n%s" % (line, text))

    def dests(self, doc, group):
        g = [x for x in doc["groups"] if x["group"] == group]
        self.assertEqual(len(g), 1, json.dumps(doc, indent=1))
        return {(d["rule"], d["dest"]): d for d in g[0]["destinations"]}

    # -- the Python mirror against the C structures

    def test_mirror_matches_the_c_layout(self):
        c = c_layout(self.policy)
        want = {
            "sizeof bw_shm_header": HDR.size, "sizeof bw_shm_proc": PROC_SIZE,
            "sizeof bw_shm_rule": RULE_SIZE, "sizeof bw_dest_state": DEST_SIZE,
            "sizeof bw_breaker_state": BRK_SIZE, "sizeof bw_bucket": BUCKET.size,
            "sizeof win": SLOT.size, "entry_size": ENTRY_SIZE,
            "bw_shm_header.magic": 0, "bw_shm_header.version": 4, "bw_shm_header.size": 8,
            "bw_shm_header.n_rules": 16, "bw_shm_header.n_procs": 20,
            "bw_shm_header.created_us": 24, "bw_shm_header.group": 32,
            "bw_shm_header.policy": 96, "bw_shm_header.lock": 352,
            "bw_shm_header.entry_size": 356, "bw_shm_header.procs_off": 360,
            "bw_shm_header.rules_off": 368, "bw_shm_header.reloads": 376,
            "bw_shm_proc.pid": 0, "bw_shm_proc.started_us": 8, "bw_shm_proc.prog": 16,
            "bw_shm_rule.name": 0, "bw_shm_rule.lock": 64, "bw_shm_rule.sets": 68,
            "bw_shm_rule.dests_off": 72, "bw_shm_rule.locks_off": 80,
            "bw_shm_rule.whole": RULE_HEAD.size,
            "bw_dest_state.brk": 0, "bw_dest_state.bucket": BRK_SIZE,
            "bw_dest_state.bulk": BRK_SIZE + BUCKET.size,
            "bw_dest_state.thr": BRK_SIZE + BUCKET.size + BULK.size,
            "bw_dest_state.label": BRK_SIZE + BUCKET.size + BULK.size + THR_SIZE,
            "bw_breaker_state.pos": 0, "bw_breaker_state.consecutive": 4,
            "bw_breaker_state.opened_at": 8, "bw_breaker_state.open_for": 16,
            "bw_breaker_state.probes_out": 24, "bw_breaker_state.probes_ok": 28,
            "bw_breaker_state.win": BRK_HEAD.size,
            "bw_breaker_state.stamp": BRK_HEAD.size + SLOTS * SLOT.size,
            "bw_bucket.tokens": 0, "bw_bucket.last": 8, "bw_bucket.burst": 16,
            "BW_SHM_MAGIC": MAGIC, "BW_SHM_VERSION": VERSION, "BW_SHM_PROCS": NPROCS,
            "BW_KEYED_WAYS": WAYS, "BW_BRK_SLOTS": SLOTS, "BW_LABEL_MAX": LABEL_MAX,
            "size": self.lay.size, "procs_off": self.lay.procs_off,
            "rules_off": self.lay.rules_off, "rules": self.lay.rules,
        }
        self.assertEqual({k: c[k] for k in want}, want)

    # -- health and exit status

    def test_no_directory_no_group_is_unknown(self):
        shutil.rmtree(self.dir)
        r = self.status()
        self.assertEqual(r.rc, 3, r)
        self.assertIn("does not exist", r.stdout)
        self.assertIn("health: unknown", r.stdout)
        os.mkdir(self.dir, 0o700)
        r = self.status()
        self.assertEqual(r.rc, 3, r)
        self.assertIn("no live group", r.stdout)
        self.assertEqual(r.stderr, "")
        # a --dir that is not a directory: said so, health unknown
        notdir = self.wd.write("plain-file", "")
        r = run([TOOL, "status", "--dir", notdir])
        self.assertEqual(r.rc, 3, r)
        self.assertIn("Not a directory", r.stderr)
        self.assertIn("cannot be read", r.stdout)

    def test_bad_files_are_skipped_with_a_note(self):
        with open(self.path("tiny"), "wb") as f:
            f.write(b"bwsk")
        g = self.group("ok")
        g.write(self.path("badmagic"), magic=0x12345678)
        g.write(self.path("notready"), magic=0)
        g.write(self.path("future"), version=99)
        g.write(self.path("cut"), truncate=self.lay.size // 2)
        with open(os.path.join(self.dir, "notes.txt"), "w") as f:
            f.write("not a state file, not even named like one\n")
        r = self.status()
        self.assertEqual(r.rc, 3, r)
        for name, why in (("tiny", "too small"), ("badmagic", "bad magic"),
                          ("notready", "not ready"), ("future", "version"),
                          ("cut", "shorter than its header")):
            self.assertRegex(r.stderr, r"(?m)^bulwark status: %s: skipped: .*%s"
                             % (re.escape(self.path(name)), why))
        self.assertNotIn("notes.txt", r.stderr)
        # the good one next to them is read
        g.write(self.path("ok"))
        r = self.status()
        self.assertEqual(r.rc, 0, r)
        self.assertIn("group ok: healthy", r.stdout)

    def test_all_closed_is_healthy(self):
        g = self.group("ci-1", procs=2)
        now = mono_us()
        slot = now // 1000000                 # window 10s: 1s slots
        g.dest(PG, key_of(1), dest_state("127.0.0.1:5432", consecutive=1, tokens=1.0,
                                         last=now, win=[(slot % 10, slot, 6, 1)]))
        g.dest(PG, key_of(2), dest_state("10.0.0.9:5432", tokens=2.0, last=now - 10000000,
                                         win=[(slot % 10, slot, 2, 0),
                                              ((slot - 15) % 10, slot - 15, 9, 9)]))
        g.write(self.path("ci-1"))
        r = self.status()
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.stderr, "")
        self.assertFits(r.stdout)
        self.assertIn("health: healthy (2 breakers: 2 closed, 0 half_open, 0 open)\n"
                      "1 live group\n", r.stdout)
        self.assertIn("group ci-1: healthy, 2 processes", r.stdout)
        self.assertIn("policy: " + self.policy, r.stdout)
        self.assertRegex(r.stdout, r"(?m)^pg +127\.0\.0\.1:5432 +closed +1 +1/6 +1\.\d/5 "
                         r"+healthy$")
        # the bucket refilled to now: 10/s for 10 s, capped at the burst
        self.assertRegex(r.stdout, r"(?m)^pg +10\.0\.0\.9:5432 +closed +0 +0/2 +5\.0/5 "
                         r"+healthy$")
        for i in range(2):
            self.assertRegex(r.stdout, r"(?m)^ *\d+ +worker%d +\d{4}-\d\d-\d\dT[0-9:]{8}Z "
                             % i)

        r, doc = self.json_status()
        self.assertEqual(r.rc, 0, r)
        d = self.dests(doc, "ci-1")
        near = d[("pg", "127.0.0.1:5432")]["bucket"]
        self.assertTrue(near["refilled"])
        self.assertGreaterEqual(near["tokens"], 1.0)
        self.assertLess(near["tokens"], 1.0 + 10 * (r.elapsed + 1))
        far = d[("pg", "10.0.0.9:5432")]
        self.assertEqual(far["bucket"]["tokens"], 5)
        # the slot 15 s old is out of the 10 s window
        self.assertEqual((far["breaker"]["window_failures"], far["breaker"]["window_calls"]),
                         (0, 2))
        self.assertTrue(far["breaker"]["window_known"])

    def test_one_half_open_is_degraded(self):
        g = self.group("ci-2")
        now = mono_us()
        g.dest(PG, key_of(1), dest_state("127.0.0.1:5432"))
        g.dest(PG, key_of(2), dest_state("10.0.0.9:5432", pos=HALF_OPEN, consecutive=3,
                                         opened_at=now - 11000000, open_for=10000000,
                                         probes_out=1))
        g.write(self.path("ci-2"))
        r = self.status()
        self.assertEqual(r.rc, 1, r)
        self.assertIn("health: degraded (2 breakers: 1 closed, 1 half_open, 0 open)", r.stdout)
        self.assertRegex(r.stdout, r"(?m)^pg +10\.0\.0\.9:5432 +half_open +3 .* degraded$")
        self.assertRegex(r.stdout, r"(?m)^pg +127\.0\.0\.1:5432 +closed .* healthy$")

    def test_all_open_is_unhealthy(self):
        g = self.group("ci-3")
        now = mono_us()
        g.dest(PG, key_of(1), dest_state("127.0.0.1:5432", pos=OPEN, consecutive=3,
                                         opened_at=now, open_for=10000000))
        # opened long ago: its probe is due, but it is open until a call probes it
        g.dest(PG, key_of(2), dest_state("10.0.0.9:5432", pos=OPEN, consecutive=5,
                                         opened_at=now - 60000000, open_for=20000000))
        g.whole(API, dest_state(pos=OPEN, consecutive=2, opened_at=now, open_for=30000000,
                                tokens=3.0, last=now))
        g.write(self.path("ci-3"))
        r = self.status()
        self.assertEqual(r.rc, 2, r)
        self.assertFits(r.stdout)
        self.assertIn("health: unhealthy (3 breakers: 0 closed, 0 half_open, 3 open)",
                      r.stdout)
        self.assertRegex(r.stdout, r"(?m)^pg +127\.0\.0\.1:5432 +open (9\.\d|10\.0)s +3 .* "
                         r"unhealthy$")
        self.assertRegex(r.stdout, r"(?m)^pg +10\.0\.0\.9:5432 +open, due +5 .* unhealthy$")
        self.assertRegex(r.stdout, r"(?m)^api +\(rule\) +open \d+\.\ds +2 +0/0 +\d+\.\d/20 "
                         r"+unhealthy$")
        r, doc = self.json_status()
        self.assertEqual(r.rc, 2)
        whole = self.dests(doc, "ci-3")[("api", "(rule)")]
        self.assertEqual(whole["scope"], "rule")
        self.assertEqual(whole["breaker"]["state"], "open")
        self.assertEqual(whole["breaker"]["open_for_ms"], 30000)
        self.assertLessEqual(whole["breaker"]["probe_in_ms"], 30000)
        self.assertGreater(whole["breaker"]["probe_in_ms"], 20000)
        self.assertEqual(whole["bucket"]["burst"], 20)
        self.assertEqual(whole["bucket"]["rate_per_sec"], 100)
        due = self.dests(doc, "ci-3")[("pg", "10.0.0.9:5432")]
        self.assertEqual(due["breaker"]["probe_in_ms"], 0)

    def test_no_breaker_used_is_healthy(self):
        # a group whose breakers and buckets were never used: nothing to show, healthy
        self.group("quiet").write(self.path("quiet"))
        r = self.status()
        self.assertEqual(r.rc, 0, r)
        self.assertIn("no breaker or limiter used yet", r.stdout)
        self.assertIn("health: healthy (no breaker)", r.stdout)
        # the rule-scoped state appears once used
        g = self.group("quiet")
        g.whole(API, dest_state(unused=True, tokens=7.5, last=mono_us()))
        g.write(self.path("quiet"))
        r, doc = self.json_status()
        self.assertEqual(r.rc, 0, r)
        d = self.dests(doc, "quiet")
        self.assertEqual(list(d), [("api", "(rule)")])
        # the policy gives rule "api" a rule-scoped breaker: it exists, closed
        self.assertEqual(d[("api", "(rule)")]["breaker"]["state"], "closed")
        self.assertEqual(d[("api", "(rule)")]["health"], "healthy")

    def test_stale_group_of_dead_processes(self):
        g = self.group("old", procs=0, dead=2)
        g.dest(PG, key_of(1), dest_state("127.0.0.1:5432", pos=OPEN, consecutive=3,
                                         opened_at=mono_us(), open_for=10000000))
        g.write(self.path("old"))
        r = self.status()
        self.assertEqual(r.rc, 3, r)
        self.assertIn("no live group", r.stdout)
        self.assertRegex(r.stdout, r"(?m)^STALE ")
        self.assertRegex(r.stdout, r"(?m)^old +2 +\d{4}-\d\d-\d\dT[0-9:]{8}Z +\S*old\.state$")
        self.assertNotIn("127.0.0.1:5432", r.stdout)
        # the notes about an unreadable policy are for live groups only
        self.assertEqual(r.stderr, "")

        # a live group beside it: the stale one's open breaker does not count
        h = self.group("new")
        h.dest(PG, key_of(1), dest_state("127.0.0.1:5432"))
        h.write(self.path("new"))
        r = self.status()
        self.assertEqual(r.rc, 0, r)
        self.assertIn("health: healthy (1 breaker: 1 closed, 0 half_open, 0 open)\n"
                      "1 live group, 1 stale\n", r.stdout)
        r, doc = self.json_status()
        self.assertEqual((doc["live_groups"], doc["stale_groups"]), (1, 1))
        old = [x for x in doc["groups"] if x["group"] == "old"][0]
        self.assertFalse(old["live"])
        self.assertEqual([p["alive"] for p in old["processes"]], [False, False])
        self.assertEqual(doc["breakers"], {"closed": 1, "half_open": 0, "open": 0})

    def test_reused_pid_is_not_alive(self):
        # our own pid, but the slot says the process started a day ago: the process
        # that wrote it is gone and the pid went to another one (us)
        g = StateFile(self.lay, "reused", self.policy)
        g.proc(os.getpid(), "ghost", started_us=wall_us() - 86400 * 1000000)
        g.write(self.path("reused"))
        r, doc = self.json_status()
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(doc["groups"][0]["processes"][0]["alive"], False)
        # and a process that exists and started before its slot was written is alive
        g = StateFile(self.lay, "reused", self.policy)
        g.proc(os.getpid(), "me")
        g.write(self.path("reused"))
        r = self.status()
        self.assertEqual(r.rc, 0, r)

    def test_start_tick_tells_a_reused_pid(self):
        # the library records the clock tick its process started at: a pid whose process
        # started at another tick was reused, whatever the wall clock says
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19]) & 0xffffffff
        g = StateFile(self.lay, "ticks", self.policy)
        g.proc(os.getpid(), "other", start_ticks=(ticks + 1) & 0xffffffff or 1)
        g.write(self.path("ticks"))
        r, doc = self.json_status()
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(doc["groups"][0]["processes"][0]["alive"], False)
        g = StateFile(self.lay, "ticks", self.policy)
        g.proc(os.getpid(), "me", started_us=wall_us() - 86400 * 1000000, start_ticks=ticks)
        g.write(self.path("ticks"))
        r, doc = self.json_status()
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(doc["groups"][0]["processes"][0]["alive"], True)

    def test_a_process_that_execed_is_one_process(self):
        # exec joins the group again under the new program; the old slot stays behind
        pid, now = self.live_pid(), wall_us()
        g = StateFile(self.lay, "exec", self.policy)
        g.proc(pid, "sh", started_us=now - 2000000)
        g.proc(pid, "env", started_us=now - 1000000)
        g.proc(pid, "python3", started_us=now)
        g.write(self.path("exec"))
        r, doc = self.json_status()
        self.assertEqual(r.rc, 0, r)
        procs = doc["groups"][0]["processes"]
        self.assertEqual([(p["pid"], p["prog"], p["alive"]) for p in procs],
                         [(pid, "python3", True)])
        r = self.status()
        self.assertIn("group exec: healthy, 1 process\n", r.stdout)
        self.assertNotIn("died", r.stdout)

    def test_zombie_is_not_alive(self):
        p = subprocess.Popen(["true"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:          # exited, not reaped: a zombie
            with open("/proc/%d/stat" % p.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        try:
            g = StateFile(self.lay, "z", self.policy)
            g.proc(p.pid, "zombie")
            g.write(self.path("z"))
            r = self.status()
            self.assertEqual(r.rc, 3, r)
            self.assertRegex(r.stdout, r"(?m)^STALE ")
        finally:
            p.wait()

    def test_group_filter(self):
        a = self.group("alpha")
        a.dest(PG, key_of(1), dest_state("127.0.0.1:5432"))
        a.write(self.path("alpha"))
        b = self.group("beta")
        b.dest(PG, key_of(1), dest_state("127.0.0.1:5432", pos=OPEN, consecutive=3,
                                         opened_at=mono_us(), open_for=10000000))
        b.write(self.path("beta"))
        c = self.group("gamma", procs=0, dead=1)
        c.write(self.path("gamma"))

        # together: one closed, one open -> degraded
        r = self.status()
        self.assertEqual(r.rc, 1, r)
        self.assertIn("group alpha:", r.stdout)
        self.assertIn("group beta:", r.stdout)
        self.assertLess(r.stdout.index("group alpha"), r.stdout.index("group beta"))

        r = self.status("--group", "alpha")
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("beta", r.stdout)
        r = self.status("-g", "beta")
        self.assertEqual(r.rc, 2, r)
        self.assertNotIn("alpha", r.stdout)
        r = self.status("--group", "nope")
        self.assertEqual(r.rc, 3, r)
        self.assertIn("no live group named nope", r.stdout)
        # a stale group asked for by name: shown, but no live group -> unknown
        r = self.status("--group", "gamma")
        self.assertEqual(r.rc, 3, r)
        self.assertIn("gamma", r.stdout)
        r, doc = self.json_status("--group", "beta")
        self.assertEqual([g["group"] for g in doc["groups"]], ["beta"])
        self.assertEqual(doc["status"], 2)

    def test_policy_unreadable_shows_tokens_as_stored(self):
        g = self.group("nopol", policy=self.wd.file("gone.yaml"))
        now = mono_us()
        g.dest(PG, key_of(1), dest_state("127.0.0.1:5432", tokens=2.5, last=now - 4000000,
                                         consecutive=1, win=[(0, 1, 3, 1), (5, 99, 2, 2)]))
        g.write(self.path("nopol"))
        r = self.status()
        self.assertEqual(r.rc, 0, r)
        self.assertIn("group nopol: %s cannot be read: tokens shown as stored"
                      % self.wd.file("gone.yaml"), r.stderr)
        self.assertRegex(r.stdout, r"(?m)^pg +127\.0\.0\.1:5432 +closed +1 +3/5 "
                         r"+2\.5 4\.\ds ago +healthy$")
        r, doc = self.json_status()
        d = self.dests(doc, "nopol")[("pg", "127.0.0.1:5432")]
        self.assertFalse(doc["groups"][0]["policy_loaded"])
        self.assertEqual(d["bucket"]["tokens"], 2.5)
        self.assertFalse(d["bucket"]["refilled"])
        self.assertIsNone(d["bucket"]["burst"])
        self.assertGreaterEqual(d["bucket"]["age_ms"], 4000)
        self.assertFalse(d["breaker"]["window_known"])

        # a policy that no longer lays out the same file (a rule added) is not used
        changed = self.wd.write("changed.yaml", POLICY.replace(
            "  - name: plain\n", "  - name: added\n    match: { ops: [sqlite] }\n"
            "  - name: plain\n"))
        g = self.group("changed", policy=changed)
        g.write(self.path("changed"))
        r = self.status("--group", "changed")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("no longer matches the state file", r.stderr)

    def test_names_are_cleaned_and_cut(self):
        long_dest = "unix:/run/a/very/long/directory/name/that/goes/on/and/on/s.sock"
        g = self.group("g" * 63)
        g.dest(PG, key_of(1), dest_state(long_dest[:LABEL_MAX - 1]))
        g.dest(PG, key_of(2), dest_state(b"bad\xff\x1b[31mutf8\xc3"))
        g.dest(PG, key_of(3), dest_state(b""))
        g.write(self.path("g" * 63))
        r = self.status()
        self.assertEqual(r.rc, 0, r)
        self.assertFits(r.stdout)
        self.assertNotIn("\x1b", r.stdout)
        self.assertIn("\u2026", r.stdout)
        r, doc = self.json_status()
        names = sorted(self.dests(doc, "g" * 63))
        self.assertIn(("pg", "bad??[31mutf8?"), names)
        self.assertIn(("pg", "?"), names)
        self.assertIn(("pg", long_dest[:LABEL_MAX - 1]), names)
        r = self.status("--format", "prometheus")
        self.assertEqual(r.rc, 0, r)
        self.assertPromValid(r.stdout)

    def test_damaged_figures_are_shown_not_trusted(self):
        # what a crash or another program may leave: nothing may overflow or break a
        # format (JSON takes no NaN)
        big, small = 2 ** 63 - 1, -2 ** 63
        g = self.group("damaged")
        g.dest(PG, key_of(1), dest_state("a", pos=OPEN, opened_at=big, open_for=big,
                                         tokens=float("nan"), last=small))
        g.dest(PG, key_of(2), dest_state("b", pos=7, consecutive=-5, opened_at=small,
                                         open_for=small, tokens=float("inf"), last=big,
                                         win=[(0, big, -3, -4), (1, small, 2 ** 31 - 1, 1)]))
        g.whole(API, dest_state(pos=-1, tokens=-1e300, last=1))
        g.write(self.path("damaged"))
        for fmt in ("table", "json", "prometheus"):
            r = self.status("--format", fmt)
            self.assertIn(r.rc, (0, 1, 2), r)
            self.assertNotIn("out of memory", r.stderr)
            if fmt == "json":
                doc = json.loads(r.stdout)
                self.assertEqual(len(doc["groups"][0]["destinations"]), 3)
            elif fmt == "prometheus":
                self.assertPromValid(r.stdout)
            else:
                self.assertFits(r.stdout)

    # -- formats

    def three_groups(self):
        now = mono_us()
        a = self.group("alpha", procs=2, dead=1)
        a.dest(PG, key_of(1), dest_state("127.0.0.1:5432", consecutive=2, tokens=4.0,
                                         last=now))
        a.dest(PG, key_of(2), dest_state("10.0.0.9:5432", pos=HALF_OPEN, consecutive=3,
                                         opened_at=now - 11000000, open_for=10000000))
        a.whole(API, dest_state(pos=OPEN, consecutive=2, opened_at=now, open_for=30000000,
                                tokens=1.0, last=now))
        a.write(self.path("alpha"))
        b = self.group('we"ird\\name')
        b.write(self.path("weird"))
        c = self.group("stale", procs=0, dead=1)
        c.dest(PG, key_of(1), dest_state("127.0.0.1:5432", pos=OPEN))
        c.write(self.path("stale"))

    def test_json_keys_are_stable(self):
        self.three_groups()
        r, doc = self.json_status()
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(list(doc), STATUS_KEYS)
        self.assertEqual(doc["health"], "degraded")
        self.assertEqual(doc["status"], 1)
        self.assertEqual(doc["dir"], self.dir)
        self.assertEqual(doc["breakers"], {"closed": 1, "half_open": 1, "open": 1})
        self.assertEqual([g["group"] for g in doc["groups"]],
                         ["alpha", "stale", 'we"ird\\name'])
        for g in doc["groups"]:
            self.assertEqual(list(g), GROUP_KEYS)
            self.assertEqual(list(g["breakers"]), ["closed", "half_open", "open"])
            for p in g["processes"]:
                self.assertEqual(list(p), PROC_KEYS)
                self.assertRegex(p["started"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
            for d in g["destinations"]:
                self.assertEqual(list(d), DEST_KEYS)
                if d["breaker"] is not None:
                    self.assertEqual(list(d["breaker"]), BREAKER_KEYS)
                if d["bucket"] is not None:
                    self.assertEqual(list(d["bucket"]), BUCKET_KEYS)
        alpha = doc["groups"][0]
        self.assertTrue(alpha["live"])
        self.assertEqual(alpha["policy"], self.policy)
        self.assertTrue(alpha["policy_loaded"])
        self.assertEqual([p["alive"] for p in alpha["processes"]].count(True), 2)
        self.assertEqual([p["alive"] for p in alpha["processes"]].count(False), 1)
        # rule order, then "(rule)" first, then by name
        self.assertEqual([(d["rule"], d["dest"]) for d in alpha["destinations"]],
                         [("pg", "10.0.0.9:5432"), ("pg", "127.0.0.1:5432"),
                          ("api", "(rule)")])
        near = alpha["destinations"][1]
        self.assertEqual(near["health"], "healthy")
        self.assertEqual(near["bucket"]["unit"], "calls")
        self.assertEqual(alpha["destinations"][0]["health"], "degraded")
        self.assertEqual(alpha["destinations"][2]["health"], "unhealthy")
        self.assertEqual(doc["groups"][1]["live"], False)

    def assertPromValid(self, text):
        """Every sample belongs to a family announced by # HELP and # TYPE before it,
        and each family's samples are together."""
        announced, done, current = set(), set(), None
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name = line.split()[2]
                self.assertNotIn(name, announced, "family %s twice" % name)
                announced.add(name)
                continue
            if line.startswith("# TYPE "):
                self.assertIn(line.split()[3], ("gauge", "counter"), line)
                continue
            m = PROM_LINE.match(line)
            self.assertTrue(m, "not a sample: %r" % line)
            name = m.group(1)
            self.assertIn(name, announced, line)
            if name != current:
                self.assertNotIn(name, done, "family %s split" % name)
                if current:
                    done.add(current)
                current = name

    def test_prometheus(self):
        self.three_groups()
        r = self.status("--format", "prometheus")
        self.assertEqual(r.rc, 1, r)
        self.assertPromValid(r.stdout)
        out = r.stdout
        self.assertIn("# TYPE bulwark_health gauge\nbulwark_health 1\n", out)
        self.assertIn('bulwark_groups{state="live"} 2\n', out)
        self.assertIn('bulwark_groups{state="stale"} 1\n', out)
        self.assertIn('bulwark_group_health{group="alpha"} 1\n', out)
        self.assertIn('bulwark_group_health{group="we\\"ird\\\\name"} 0\n', out)
        self.assertIn('bulwark_group_processes{group="alpha"} 2\n', out)
        lbl = 'group="alpha",rule="pg",dest="10.0.0.9:5432"'
        self.assertIn('bulwark_breaker_state{%s,state="half_open"} 1\n' % lbl, out)
        self.assertIn('bulwark_breaker_state{%s,state="open"} 0\n' % lbl, out)
        self.assertIn('bulwark_breaker_state{%s,state="closed"} 0\n' % lbl, out)
        self.assertIn('bulwark_dest_health{%s} 1\n' % lbl, out)
        self.assertIn('bulwark_breaker_consecutive_failures{%s} 3\n' % lbl, out)
        whole = 'group="alpha",rule="api",dest="(rule)"'
        self.assertIn('bulwark_breaker_state{%s,state="open"} 1\n' % whole, out)
        self.assertIn('bulwark_dest_health{%s} 2\n' % whole, out)
        self.assertIn('bulwark_tokens_burst{%s} 20\n' % whole, out)
        m = re.search(r'(?m)^bulwark_tokens\{group="alpha",rule="pg",dest="127\.0\.0\.1:5432"\} '
                      r'([0-9.]+)$', out)
        self.assertTrue(m, out)
        self.assertGreaterEqual(float(m.group(1)), 4.0)
        self.assertLessEqual(float(m.group(1)), 5.0)
        # a stale group's breakers are not in the per-destination figures
        self.assertNotIn('group="stale",rule', out)

        # no group at all: still a valid exposition, health unknown
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        r = self.status("--format", "prometheus")
        self.assertEqual(r.rc, 3, r)
        self.assertPromValid(r.stdout)
        self.assertIn("bulwark_health 3\n", r.stdout)

    def test_table_fits_80_columns(self):
        self.three_groups()
        r = self.status()
        self.assertEqual(r.rc, 1, r)
        self.assertFits(r.stdout)
        self.assertIn("(and 1 that died without leaving the group)", r.stdout)
        self.assertRegex(r.stdout, r"(?m)^group alpha: degraded, 2 processes$")
        self.assertRegex(r.stdout, r"(?m)^RULE +DEST +BREAKER +CONSEC +FAILS +TOKENS +HEALTH$")
        self.assertRegex(r.stdout, r"(?m)^ *PID +PROG +STARTED +UP$")

    def test_bulkhead_slots_in_use(self):
        g = self.group("bh")
        g.dest(PG, key_of(1), dest_state("127.0.0.1:5432", bulk=(2, 3)))
        g.dest(PG, key_of(2), dest_state("10.0.0.9:5432"))
        g.write(self.path("bh"))
        r = self.status()
        self.assertFits(r.stdout)
        self.assertRegex(r.stdout, r"(?m)^RULE +DEST +BREAKER +CONSEC +FAILS +TOKENS +SLOTS "
                                   r"+HEALTH$")
        self.assertRegex(r.stdout, r"(?m)^pg +127\.0\.0\.1:5432 .* 2/3 +healthy$")
        self.assertRegex(r.stdout, r"(?m)^pg +10\.0\.0\.9:5432 .* - +healthy$")
        r, doc = self.json_status()
        d = self.dests(doc, "bh")
        self.assertEqual(d[("pg", "127.0.0.1:5432")]["bulkhead"], {"in_use": 2, "max": 3})
        self.assertIsNone(d[("pg", "10.0.0.9:5432")]["bulkhead"])

    # -- the directory

    def test_auto_directory(self):
        xdg = os.path.join(self.wd.path, "xdg")
        os.makedirs(os.path.join(xdg, "bulwark"), 0o700)
        g = self.group("x")
        g.write(os.path.join(xdg, "bulwark", "x.state"))
        r = run([TOOL, "status"], env={"XDG_RUNTIME_DIR": xdg})
        self.assertEqual(r.rc, 0, r)
        self.assertIn("bulwark status: %s/bulwark" % xdg, r.stdout)
        self.assertIn("group x: healthy", r.stdout)
        # the auto directory is read only when it is ours, as the library uses it
        if os.geteuid() == 0:
            os.chown(os.path.join(xdg, "bulwark"), 65534, 65534)
            r = run([TOOL, "status"], env={"XDG_RUNTIME_DIR": xdg})
            self.assertEqual(r.rc, 3, r)
            self.assertIn("is not a directory of yours", r.stderr)
            # --dir names it outright: read
            r = run([TOOL, "status", "--dir", os.path.join(xdg, "bulwark")])
            self.assertEqual(r.rc, 0, r)
        # without XDG_RUNTIME_DIR: /tmp/bulwark-UID
        r = run([TOOL, "status", "--format", "json"], env={"XDG_RUNTIME_DIR": None})
        self.assertIn(r.rc, (0, 1, 2, 3), r)
        self.assertEqual(json.loads(r.stdout)["dir"], "/tmp/bulwark-%d" % os.getuid())

    # -- --prune

    def test_prune_removes_only_dead_groups_files(self):
        self.group("dead", procs=0, dead=2).write(self.path("dead"))
        self.group("gone", procs=0, dead=1).write(self.path("gone"))
        self.group("alive", procs=1, dead=1).write(self.path("alive"))
        # a `bulwark run` (here: this test) that named its group and still runs, though
        # no process is in the group now: it may start one that finds the group again
        now = wall_us()
        own = "run-%d-%d" % (os.getpid(), now)
        self.group(own, procs=0, dead=1).write(self.path(own))
        # the same name from a run that started after it: a pid reused, not the owner
        reused = "run-%d-%d" % (os.getpid(), now - 86400 * 1000000)
        self.group(reused, procs=0, dead=1).write(self.path(reused))
        # not state files, named like one or not: never removed
        self.group("x", procs=0, dead=1).write(self.path("badmagic"), magic=0x12345678)
        with open(self.path("tiny"), "wb") as f:
            f.write(b"bwsk")
        with open(os.path.join(self.dir, "notes.txt"), "w") as f:
            f.write("mine\n")
        os.symlink(self.path("dead"), self.path("link"))
        before = sorted(os.listdir(self.dir))

        r = self.status("--prune")
        self.assertEqual(r.rc, 0, r)
        for name in ("dead", "gone", reused):
            self.assertRegex(r.stdout, r"(?m)^removed %s \(group %s: \d process(es)?, all "
                             r"gone\)$" % (re.escape(self.path(name)), re.escape(name)))
        self.assertIn("kept %s (group %s: its bulwark run, pid %d, still runs)"
                      % (self.path(own), own, os.getpid()), r.stdout)
        self.assertTrue(r.stdout.endswith("3 removed, 1 kept, 1 live group left alone\n"), r)
        left = sorted(os.listdir(self.dir))
        self.assertEqual(left, sorted(set(before) - {"dead.state", "gone.state",
                                                     reused + ".state"}))
        # what is left: the live group, the stale one that is still owned; nothing to do
        r = self.status("--prune")
        self.assertEqual(r.rc, 0, r)
        self.assertNotRegex(r.stdout, r"(?m)^removed ")
        self.assertIn("0 removed, 1 kept", r.stdout)
        r = self.status()
        self.assertIn("group alive: healthy", r.stdout)

    def test_prune_one_group(self):
        self.group("a", procs=0, dead=1).write(self.path("a"))
        self.group("b", procs=0, dead=1).write(self.path("b"))
        r = self.status("--prune", "--group", "b")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(os.listdir(self.dir)), ["a.state"])
        r = run([TOOL, "status", "--prune", "--format", "json", "--dir", self.dir])
        self.assertEqual(r.rc, 3, r)

    def hold_dir_lock(self):
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def test_prune_checks_again_under_the_library_lock(self):
        # A process joins the stale group while prune waits for the directory lock (the
        # library joins under it): prune must see it and keep the file.
        self.group("late", procs=0, dead=1).write(self.path("late"))
        fd = self.hold_dir_lock()
        try:
            p = subprocess.Popen([TOOL, "status", "--prune", "--dir", self.dir],
                                 env=base_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            # wait until it sleeps between tries of the lock (it read the files first)
            seen, deadline = "", time.monotonic() + 1.5
            while time.monotonic() < deadline and p.poll() is None and "nanosleep" not in seen:
                try:
                    with open("/proc/%d/wchan" % p.pid) as f:
                        seen = f.read()
                except OSError:
                    break
                time.sleep(0.005)
            if "nanosleep" not in seen:
                p.kill()
                p.communicate()
                self.skipTest("cannot tell when prune waits for the lock (wchan: %r)" % seen)
            self.group("late", procs=1).write(self.path("late") + ".new")
            os.replace(self.path("late") + ".new", self.path("late"))
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, (out, err))
        self.assertTrue(os.path.exists(self.path("late")), (out, err))
        self.assertRegex(out, r"(?m)^kept .*late\.state \(group late: (a process joined it "
                         r"since|replaced meanwhile)\)$")

    def test_prune_waits_for_the_lock_a_bounded_time(self):
        self.group("stuck", procs=0, dead=1).write(self.path("stuck"))
        fd = self.hold_dir_lock()
        try:
            r = self.status("--prune")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("stayed locked", r.stderr)
        self.assertTrue(os.path.exists(self.path("stuck")))

    def test_wide_table_cuts_nothing(self):
        name = "a-group-with-a-name-far-too-long-for-eighty-columns-" + "x" * 12
        g = self.group(name)
        g.dest(PG, key_of(1), dest_state("127.0.0.1:5432"))
        g.write(self.path("wide"))
        r = self.status()
        self.assertIn("…", r.stdout)
        for flag in ("--wide", "-w"):
            r = self.status(flag)
            self.assertEqual(r.rc, 0, r)
            self.assertNotIn("…", r.stdout)
            self.assertIn("group %s: healthy" % name, r.stdout)

    def test_usage_errors_are_unknown(self):
        # 2 would read as "unhealthy" to a health check: usage errors are 3
        for args in (["--frobnicate"], ["--format", "xml"], ["extra"], ["--group"],
                     ["--group", ""]):
            r = run([TOOL, "status", "--dir", self.dir] + args)
            self.assertEqual(r.rc, 3, (args, r))
            self.assertTrue(r.stderr, r)
        r = run([TOOL, "status", "--help"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("bulwark status", r.stdout)


# -- end to end, once the library shares state (shim/group.c) ------------------------

def library_shares_state():
    for path in glob.glob(os.path.join(ROOT, "shim", "*.c")):
        with open(path, errors="replace") as f:
            if "bw_shm" in f.read():
                return True
    return False


# Opens the breaker (two refused connects), says so, waits for the test to bring the
# server up, then calls until a call gets through: after open_for the probe closes the
# breaker. Then waits to be told to end.
E2E_CLIENT = r"""
import os, socket, sys, time
port, wd = int(sys.argv[1]), sys.argv[2]
def one():
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
        return "ok"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
def mark(name, text=""):
    with open(os.path.join(wd, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(wd, name + ".tmp"), os.path.join(wd, name))
def wait(name):
    t = time.monotonic() + 25
    while not os.path.exists(os.path.join(wd, name)):
        if time.monotonic() > t:
            sys.exit("no %s" % name)
        time.sleep(0.05)
got = [one() for _ in range(3)]
mark("opened", " ".join(got))
wait("go")
t = time.monotonic() + 20
while one() != "ok":
    if time.monotonic() > t:
        sys.exit("never got through")
    time.sleep(0.1)
mark("closed")
wait("done")
"""


@unittest.skipUnless(library_shares_state(), "the library does not share state yet "
                     "(shim/group.c)")
class StatusEndToEnd(ShimTest):

    def wait_for(self, name, proc, timeout=20):
        path = self.wd.file(name)
        t = time.monotonic() + timeout
        while not os.path.exists(path):
            if proc.poll() is not None:
                out, err = proc.communicate()
                self.fail("client ended (%s) before %s:\n%s\n%s" % (proc.returncode, name,
                                                                   out, err))
            if time.monotonic() > t:
                self.fail("no %s after %ss" % (name, timeout))
            time.sleep(0.05)
        with open(path) as f:
            return f.read()

    def test_breaker_opens_then_closes_in_a_running_group(self):
        port = free_port()
        state = self.wd.file("state")
        pol, log = self.wd.policy(
            "  - name: svc\n"
            "    match: { ops: [connect], dest: [\"127.0.0.1:%d\"] }\n"
            "    retry: off\n"
            "    breaker: { trip: { consecutive: 2 }, open_for: 1s }\n" % port,
            extra="state: { share: group, dir: %s }\n" % state)
        client = self.wd.write("client.py", E2E_CLIENT)
        p = subprocess.Popen([TOOL, "run", "-c", pol, "--", PYTHON, client, str(port),
                              self.wd.path], env=base_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            got = self.wait_for("opened", p)
            self.assertEqual(got.split()[:2], ["ConnectionRefusedError"] * 2, got)
            r = run([TOOL, "status", "--dir", state])
            self.assertEqual(r.rc, 2, r)
            self.assertRegex(r.stdout, r"(?m)^svc +127\.0\.0\.1:%d +open" % port)
            self.assertIn("python3", r.stdout)
            r = run([TOOL, "status", "--dir", state, "--format", "json"])
            doc = json.loads(r.stdout)
            self.assertEqual(doc["health"], "unhealthy")
            self.assertEqual(doc["live_groups"], 1)

            # the destination comes up; after open_for the client's probe closes it
            self.server(delay_s=0, port=port).wait_listening()
            with open(self.wd.file("go"), "w"):
                pass
            self.wait_for("closed", p)
            r = run([TOOL, "status", "--dir", state])
            self.assertEqual(r.rc, 0, r)
            self.assertRegex(r.stdout, r"(?m)^svc +127\.0\.0\.1:%d +closed .* healthy$" % port)
            with open(self.wd.file("done"), "w"):
                pass
            out, err = p.communicate(timeout=20)
            self.assertEqual(p.returncode, 0, (out, err))
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        # the group has ended: its file is gone, no live group
        r = run([TOOL, "status", "--dir", state])
        self.assertEqual(r.rc, 3, r)

    def test_prune_after_a_killed_tree(self):
        # SIGKILL to the whole tree: `bulwark run` cannot remove the group's file, which
        # stays behind as a stale group until --prune removes it
        state = self.wd.file("state")
        pol, _ = self.wd.policy(harness_rule("svc", ["connect"], ["127.0.0.1:9"],
                                             "retry: off"),
                                extra="state: { share: group, dir: %s }\n" % state)
        code = "import time; print('ready', flush=True); time.sleep(30)"
        p = subprocess.Popen([TOOL, "run", "-q", "-c", pol, "--", PYTHON, "-c", code],
                             env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), b"ready")
            files = glob.glob(os.path.join(state, "run-*.state"))
            self.assertEqual(len(files), 1, os.listdir(state))
            r = run([TOOL, "status", "--prune", "--dir", state])
            self.assertEqual(r.rc, 0, r)
            self.assertIn("0 removed, 0 kept, 1 live group left alone", r.stdout)
        finally:
            kill_group(p)
            p.communicate()
        self.assertTrue(os.path.exists(files[0]))
        # SIGKILL is delivered, not done: the python grandchild may still be on its way
        # out (not yet a zombie) when the leader has been reaped, and a group whose
        # process still exits is live. Bounded wait for it to be gone.
        deadline = time.monotonic() + 20
        while True:
            r = run([TOOL, "status", "--dir", state])
            if re.search(r"(?m)^STALE ", r.stdout) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertRegex(r.stdout, r"(?m)^STALE ")
        r = run([TOOL, "status", "--prune", "--dir", state])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("removed %s" % files[0], r.stdout)
        self.assertEqual(os.listdir(state), [])


if __name__ == "__main__":
    unittest.main()
