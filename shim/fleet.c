/* Fleet mode's syncer (fleet.h, docs/design.md §6.1).
 *
 * Every process of a group under `share: fleet` runs one thread that waits, blocked in
 * flock, for the lock on <group>.fleet.lock beside the group's state file. The kernel
 * gives the lock to one of them at a time and takes it back when its holder dies, so
 * exactly one process per group (per host) talks to Redis, and the leadership moves on by
 * itself. The leader, every `sync` interval, asks Redis in one script call for the tokens
 * each fleet bucket of the group lacks (its lease), and puts what it is granted into the
 * bucket in the group's file under the bucket's own lock. The program's calls take from
 * those buckets as from any group's, and never wait for the network.
 *
 * When Redis cannot be reached in time (refused, silent, restarted), the leader fills the
 * buckets as on_unreachable says, from the first failed exchange on; after BW_LINK_FAILS
 * failures in a row it says so in one `fleet` event, and once more when an exchange works
 * again. The thread blocks every signal: no handler of the program runs on it, and its
 * waits are poll with deadlines, so nothing it does can hold up the program. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "events.h"
#include "fleet.h"
#include "group.h"
#include "lease.h"
#include "real.h"
#include "redis_url.h"
#include "resp.h"
#include "state.h"
#include "store.h"
#include "vocab.h"

/* One exchange carries at most this many buckets; more take turns. */
#define MAX_CELLS 48
/* While Redis cannot be reached, a new connection is tried this often at most. */
#define RECONNECT_US 500000
#define STATUS_EVERY_US 500000

/* KEYS[1]: the hosts seen (a sorted set, scored by the time each was last heard of);
 * KEYS[2..]: one hash per bucket {t: tokens, ts: when counted}. ARGV: host, window (us),
 * then rate, burst, want per bucket. A bucket refills by Redis's own clock (TIME), so the
 * hosts' clocks do not matter, and starts empty: the fleet's first tokens come at its
 * rate. Returns {hosts seen, granted tokens per bucket}. */
static const char script[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local win = tonumber(ARGV[2])\n"
	"redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)\n"
	"redis.call('PEXPIRE', KEYS[1], math.floor(win / 1000) + 1000)\n"
	"local out = { redis.call('ZCARD', KEYS[1]) }\n"
	"for i = 2, #KEYS do\n"
	"  local j = 3 + (i - 2) * 3\n"
	"  local rate, burst, want = tonumber(ARGV[j]), tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2])\n"
	"  local b = redis.call('HMGET', KEYS[i], 't', 'ts')\n"
	"  local tokens, ts = tonumber(b[1]) or 0, tonumber(b[2]) or now\n"
	"  if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000000) end\n"
	"  local grant = math.min(want, math.floor(tokens))\n"
	"  if grant < 0 then grant = 0 end\n"
	"  tokens = tokens - grant\n"
	"  redis.call('HSET', KEYS[i], 't', string.format('%.6f', tokens), 'ts', string.format('%.0f', now))\n"
	"  redis.call('PEXPIRE', KEYS[i], math.floor(burst / rate * 1000) + 60000)\n"
	"  out[#out + 1] = grant\n"
	"end\n"
	"return out\n";

/* Breakers. Per breaker, KEYS: the hosts that saw it open by their own calls (a sorted
 * set scored by when each said so last), the fleet's probe (SET NX PX), and when a probe
 * last closed it; the last key lists every breaker some host reported, for the hosts that
 * have not met it yet. ARGV: host, window (us), then per breaker what this host says
 * (0 closed, 1 open by its own calls, 2 closed again by a probe), whether it wants the
 * probe and for how long (ms), and its name in the list. Returns per breaker {hosts with it
 * open, 1 when this host holds the probe, microseconds since a probe closed it or -1},
 * then the names in the list. */
static const char brk_script[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local host, win = ARGV[1], tonumber(ARGV[2])\n"
	"local list = KEYS[#KEYS]\n"
	"local out = {}\n"
	"for i = 0, (#KEYS - 1) / 3 - 1 do\n"
	"  local ks, kp, ko = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]\n"
	"  local say, want, px, name = tonumber(ARGV[3 + 4 * i]), tonumber(ARGV[4 + 4 * i]), tonumber(ARGV[5 + 4 * i]), ARGV[6 + 4 * i]\n"
	"  if say == 1 then\n"
	"    redis.call('ZADD', ks, now, host)\n"
	"    redis.call('ZADD', list, now, name)\n"
	"  else\n"
	"    redis.call('ZREM', ks, host)\n"
	"  end\n"
	"  if say == 2 then\n"
	"    redis.call('SET', ko, string.format('%.0f', now), 'PX', math.floor(win / 1000))\n"
	"    if redis.call('GET', kp) == host then redis.call('DEL', kp) end\n"
	"  end\n"
	"  redis.call('ZREMRANGEBYSCORE', ks, '-inf', now - win)\n"
	"  redis.call('PEXPIRE', ks, math.floor(win / 1000) + 1000)\n"
	"  local got = 0\n"
	"  if want == 1 then\n"
	"    if redis.call('SET', kp, host, 'NX', 'PX', px) or redis.call('GET', kp) == host then got = 1 end\n"
	"  end\n"
	"  local ok = tonumber(redis.call('GET', ko) or '')\n"
	"  out[#out + 1] = redis.call('ZCARD', ks)\n"
	"  out[#out + 1] = got\n"
	"  out[#out + 1] = ok and (now - ok) or -1\n"
	"end\n"
	"redis.call('ZREMRANGEBYSCORE', list, '-inf', now - win)\n"
	"redis.call('PEXPIRE', list, math.floor(win / 1000) + 1000)\n"
	"local names = redis.call('ZRANGE', list, 0, 63)\n"
	"for _, n in ipairs(names) do out[#out + 1] = n end\n"
	"return out\n";

/* Marks the syncer keeps in a breaker's spare word (bw_breaker_state.pad): the fleet
 * opened it (this host's own calls did not: it is no vote), and the syncer saw it open
 * (its closing is a recovery to tell the fleet). In the group's file, so a new leader
 * knows them. The engine's own transitions leave the word alone; a reset clears it. */
#define BRK_IMPOSED 1
#define BRK_SEEN_OPEN 2
#define MAX_BRK 32

struct bcell {
	int slot, whole, rule;
	uint64_t key;
	int say, want_probe, px_ms;
	long n_open, got_probe, ok_age;
	char label[BW_LABEL_MAX];
	char name[BW_NAME_MAX + BW_LABEL_MAX + 24];
	char keys[3][BW_FLEET_PREFIX_MAX + BW_NAME_MAX + 48];
};

struct cell {
	int slot, whole, rule;
	uint64_t key;
	double held, want, lease, granted;
	char label[BW_LABEL_MAX];
	char rkey[BW_FLEET_PREFIX_MAX + BW_NAME_MAX + BW_LABEL_MAX + 24];
};

static struct {
	long pid;                        /* the process whose thread this is */
	int want_thread;                 /* a forked child stands for election */
	int started;
	int lock_fd;
	dev_t lock_dev;
	ino_t lock_ino;
	int leader;
	char lock_path[PATH_MAX + 32];
	char status_path[PATH_MAX + 32];
	char host[192];
	char sha[48];
	struct bw_link link;
	int tried;                       /* an exchange has been tried since leading */
	int last_ok;
	int hosts_seen;
	int64_t next_connect, last_fill, next_status, since_wall;
	uint64_t syncs, failures, loads, granted;
	char last_error[160];
	struct cell cells[MAX_CELLS];
	int n_cells, turn;
	struct bcell brks[MAX_BRK];
	int n_brks;
	char brk_sha[48];
	char known[64][BW_NAME_MAX + BW_LABEL_MAX + 24];        /* breakers the fleet reported */
	int n_known;
} fl = { .lock_fd = -1 };

static struct bw_resp conn = { .fd = -1 };

static int64_t mono(void)
{
	return bw_clock_us(CLOCK_MONOTONIC);
}

/* The fleet's settings: those the process started with (state keeps its settings until
 * the program restarts, bulwark.yaml(5) RELOAD), while the policy in force still says
 * share: fleet. */
static const struct bw_fleet *fleet_of(const struct bw_engine *e)
{
	const struct bw_config *first = bw_shim.first.cfg;
	if (e->cfg->state.share != BW_SHARE_FLEET)
		return NULL;
	return first && first->state.share == BW_SHARE_FLEET ? &first->state.fleet
							     : &e->cfg->state.fleet;
}

static const char *prefix_of(const struct bw_fleet *f)
{
	return f->key_prefix ? f->key_prefix : BW_FLEET_PREFIX;
}

static const char *mode_name(const struct bw_fleet *f, int mode)
{
	return mode == BW_LINK_FLEET ? "fleet" : bw_unreachable_names[f->on_unreachable];
}

static void fleet_event(struct bw_engine *e, const struct bw_fleet *f, int from, int to)
{
	char msg[320], extra[512];
	size_t n = 0;
	if (to == BW_LINK_FLEET)
		snprintf(msg, sizeof msg, "Redis answers again: the fleet's limits hold");
	else
		snprintf(msg, sizeof msg, "Redis cannot be reached: %s",
			 f->on_unreachable == BW_UNREACH_LOCAL ? "each host takes rate / hosts" :
			 f->on_unreachable == BW_UNREACH_OPEN ? "each host takes the whole rate" :
								 "fleet limits refuse every call");
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"redis\":");
	bw_json_str(extra, sizeof extra, &n, f->redis);
	bw_json_raw(extra, sizeof extra, &n, ",\"fleet_host\":");
	bw_json_str(extra, sizeof extra, &n, fl.host);
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_FLEET, BW_LVL_WARN);
	ev.from = mode_name(f, from);
	ev.to = mode_name(f, to);
	ev.reason = to == BW_LINK_FLEET ? NULL : fl.last_error;
	ev.msg = msg;
	ev.extra = extra;
	bw_engine_emit(e, NULL, &ev);
}

/* ---- the group's fleet buckets ---- */

static struct bw_dest_state *lock_at(struct bw_store *s, int slot, int whole, uint64_t key,
				     int64_t now, int *set)
{
	struct bw_rule_cells *rc = &s->rules[slot];
	if (!whole && rc->dests.mem)
		return bw_keyed_lock(&rc->dests, key, now, set);
	if (bw_spin_lock(rc->lock, s->self, s->alive) < 0)
		return NULL;
	*set = -1;
	return rc->whole;
}

static void unlock_at(struct bw_store *s, int slot, int set)
{
	struct bw_rule_cells *rc = &s->rules[slot];
	if (set >= 0)
		bw_keyed_unlock(&rc->dests, set);
	else
		bw_spin_unlock(rc->lock);
}

static struct bw_dest_state *lock_cell(struct bw_store *s, const struct cell *c, int64_t now,
				       int *set)
{
	return lock_at(s, c->slot, c->whole, c->key, now, set);
}

static void unlock_cell(struct bw_store *s, const struct cell *c, int set)
{
	unlock_at(s, c->slot, set);
}

struct collect {
	struct cell *out;
	int n, cap, slot, rule;
	int skip;                        /* cells passed over: taking turns */
};

static void collect_one(const void *value, void *arg)
{
	struct collect *c = arg;
	const struct bw_dest_state *st = value;
	if (!__atomic_load_n(&st->bucket.last, __ATOMIC_RELAXED))
		return;                  /* never used: no one asks for its tokens */
	if (c->skip > 0) {
		c->skip--;
		return;
	}
	if (c->n >= c->cap)
		return;
	struct cell *x = &c->out[c->n++];
	memset(x, 0, sizeof *x);
	x->slot = c->slot;
	x->rule = c->rule;
	x->key = __atomic_load_n(bw_keyed_key_of(st), __ATOMIC_RELAXED);
	memcpy(x->label, st->label, sizeof x->label);
	x->label[sizeof x->label - 1] = '\0';
}

/* The fleet buckets in use, at most MAX_CELLS of them, a turn further each time when
 * there are more. */
static void collect(struct bw_engine *e, const struct bw_fleet *f)
{
	struct bw_store *s = e->store;
	const struct bw_config *cfg = e->cfg;
	struct collect c = { fl.cells, 0, MAX_CELLS, 0, 0, fl.turn };
	for (int i = 0; i < cfg->n_rules; i++) {
		const struct bw_rule *r = &cfg->rules[i];
		if (!r->rate_limit.fleet)
			continue;
		int slot = e->rt[i].slot;
		if (slot < 0 || slot >= s->n_rules)
			continue;
		struct bw_rule_cells *rc = &s->rules[slot];
		c.slot = slot;
		c.rule = i;
		if (r->rate_limit.scope == BW_SCOPE_DEST && rc->dests.mem) {
			int before = c.n;
			bw_keyed_each(&rc->dests, collect_one, &c);
			for (int k = before; k < c.n; k++)
				snprintf(fl.cells[k].rkey, sizeof fl.cells[k].rkey,
					 "%srl:%s:%016llx", prefix_of(f), r->name,
					 (unsigned long long)fl.cells[k].key);
		} else if (__atomic_load_n(&rc->whole->bucket.last, __ATOMIC_RELAXED)) {
			if (c.skip > 0) {
				c.skip--;
				continue;
			}
			if (c.n >= c.cap)
				continue;
			struct cell *x = &fl.cells[c.n++];
			memset(x, 0, sizeof *x);
			x->slot = slot;
			x->rule = i;
			x->whole = 1;
			snprintf(x->label, sizeof x->label, "(rule)");
			snprintf(x->rkey, sizeof x->rkey, "%srl:%s", prefix_of(f), r->name);
		}
	}
	fl.n_cells = c.n;
	/* a full exchange leaves the rest for the next one */
	fl.turn = c.n == MAX_CELLS ? fl.turn + MAX_CELLS : 0;
	int64_t now = mono();
	int hosts = fl.hosts_seen > 0 ? fl.hosts_seen : f->hosts;
	for (int k = 0; k < fl.n_cells; k++) {
		struct cell *x = &fl.cells[k];
		const struct bw_rate_limit *rl = &cfg->rules[x->rule].rate_limit;
		int set;
		struct bw_dest_state *st = lock_cell(s, x, now, &set);
		x->held = st ? st->bucket.tokens : rl->burst;
		if (st)
			unlock_cell(s, x, set);
		x->lease = bw_lease_size(rl->rate, rl->burst, f->sync, hosts);
		x->want = bw_lease_want(x->lease, x->held);
	}
}

/* Put n tokens into the bucket of x, never past the most it may hold. */
static void deposit(struct bw_engine *e, const struct cell *x, double n, double most)
{
	const struct bw_rate_limit *rl = &e->cfg->rules[x->rule].rate_limit;
	int set;
	if (most > rl->burst)
		most = rl->burst;
	struct bw_dest_state *st = lock_cell(e->store, x, mono(), &set);
	if (!st)
		return;
	/* a cell that is new again (its key given to another destination, then back) starts
	 * empty at its first take: nothing to fill yet */
	if (st->bucket.last && st->bucket.burst == rl->burst && st->bucket.tokens < most) {
		double t = st->bucket.tokens + n;
		st->bucket.tokens = t > most ? most : t;
	}
	unlock_cell(e->store, x, set);
}

/* Without Redis: what on_unreachable says, for `elapsed` microseconds. */
static void fill_alone(struct bw_engine *e, const struct bw_fleet *f, int64_t elapsed)
{
	for (int k = 0; k < fl.n_cells; k++) {
		const struct cell *x = &fl.cells[k];
		const struct bw_rate_limit *rl = &e->cfg->rules[x->rule].rate_limit;
		/* open: the limit as each host would hold it alone, the fleet's no longer */
		if (f->on_unreachable == BW_UNREACH_OPEN)
			deposit(e, x, bw_local_share(rl->rate, 1, elapsed), rl->burst);
		else if (f->on_unreachable == BW_UNREACH_LOCAL)
			deposit(e, x, bw_local_share(rl->rate, f->hosts, elapsed),
				bw_local_cap(rl->burst, f->hosts));
	}
}

/* ---- Redis ---- */

/* Two sync intervals, from 100 ms to 1 s: a loaded machine or network answers late now
 * and then, and a wait here holds up only the syncer, never a call of the program. */
static int64_t io_deadline(const struct bw_fleet *f)
{
	bw_usec d = 2 * f->sync;
	if (d < 100 * BW_MS)
		d = 100 * BW_MS;
	if (d > BW_SEC)
		d = BW_SEC;
	return mono() + d;
}

static int fail(const char *why)
{
	snprintf(fl.last_error, sizeof fl.last_error, "%s", why);
	return -1;
}

static int call(const struct bw_fleet *f, int argc, const char *const *argv,
		const size_t *lens)
{
	char why[160];
	if (bw_resp_call(&conn, argc, argv, lens, io_deadline(f), why, sizeof why) < 0)
		return fail(why);
	return 0;
}

static int is_error(const char *code)
{
	size_t n = strlen(code);
	return conn.v[0].type == '-' && conn.v[0].n >= n && memcmp(conn.v[0].s, code, n) == 0;
}

/* One exchange: the hosts seen and a grant per bucket. 0, or -1 (fl.last_error says
 * why). */
static int exchange(struct bw_engine *e, const struct bw_fleet *f)
{
	static const char *argv[3 + 1 + MAX_CELLS + 2 + 3 * MAX_CELLS];
	static size_t lens[sizeof argv / sizeof argv[0]];
	static char nums[MAX_CELLS][3][32];
	char hosts_key[BW_FLEET_PREFIX_MAX + 8], nkeys[16], win[32];
	char why[160];
	int64_t now = mono();
	if (conn.fd < 0) {
		if (now < fl.next_connect)
			return fail(fl.last_error[0] ? fl.last_error : "not connected");
		fl.next_connect = now + RECONNECT_US;
		if (bw_resp_connect(&conn, f, io_deadline(f), why, sizeof why) < 0)
			return fail(why);
	}
	int argc = 0;
	snprintf(hosts_key, sizeof hosts_key, "%shosts", prefix_of(f));
	snprintf(nkeys, sizeof nkeys, "%d", 1 + fl.n_cells);
	bw_usec window = 5 * f->sync > BW_SEC ? 5 * f->sync : BW_SEC;
	snprintf(win, sizeof win, "%lld", (long long)window);
	argv[argc++] = fl.sha[0] ? "EVALSHA" : "EVAL";
	argv[argc++] = fl.sha[0] ? fl.sha : script;
	argv[argc++] = nkeys;
	argv[argc++] = hosts_key;
	for (int k = 0; k < fl.n_cells; k++)
		argv[argc++] = fl.cells[k].rkey;
	argv[argc++] = fl.host;
	argv[argc++] = win;
	for (int k = 0; k < fl.n_cells; k++) {
		const struct bw_rate_limit *rl = &e->cfg->rules[fl.cells[k].rule].rate_limit;
		snprintf(nums[k][0], sizeof nums[k][0], "%.6f", rl->rate);
		snprintf(nums[k][1], sizeof nums[k][1], "%.6f", rl->burst);
		snprintf(nums[k][2], sizeof nums[k][2], "%.0f", fl.cells[k].want);
		for (int j = 0; j < 3; j++)
			argv[argc++] = nums[k][j];
	}
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	if (call(f, argc, argv, lens) < 0)
		return -1;
	if (is_error("NOSCRIPT")) {
		/* a restarted or flushed Redis forgot the script: send it whole, which also
		 * caches it again */
		argv[0] = "EVAL";
		argv[1] = script;
		lens[0] = 4;
		lens[1] = strlen(script);
		fl.loads++;
		if (call(f, argc, argv, lens) < 0)
			return -1;
	}
	const struct bw_resp_val *v = conn.v;
	if (v[0].type == '-') {
		snprintf(why, sizeof why, "Redis: %.*s", (int)(v[0].n > 120 ? 120 : v[0].n),
			 v[0].s);
		return fail(why);
	}
	if (v[0].type != '*' || v[0].i != 1 + fl.n_cells || conn.nv != 2 + fl.n_cells)
		return fail("the script's reply is not what it returns");
	for (int k = 0; k <= fl.n_cells; k++)
		if (v[1 + k].type != ':' || v[1 + k].i < 0)
			return fail("the script's reply is not what it returns");
	if (!fl.sha[0]) {
		/* the script is cached now: its name for the next exchanges */
		const char *load[] = { "SCRIPT", "LOAD", script };
		size_t ll[] = { 6, 4, strlen(script) };
		long granted[MAX_CELLS + 1];
		for (int k = 0; k <= fl.n_cells; k++)
			granted[k] = (long)v[1 + k].i;
		if (call(f, 3, load, ll) < 0)
			return -1;
		if (conn.v[0].type == '$' && conn.v[0].n < sizeof fl.sha) {
			memcpy(fl.sha, conn.v[0].s, conn.v[0].n);
			fl.sha[conn.v[0].n] = '\0';
		}
		fl.loads++;
		fl.hosts_seen = (int)granted[0];
		for (int k = 0; k < fl.n_cells; k++)
			fl.cells[k].granted = (double)granted[1 + k];
		return 0;
	}
	fl.hosts_seen = (int)v[1].i;
	for (int k = 0; k < fl.n_cells; k++)
		fl.cells[k].granted = (double)v[2 + k].i;
	return 0;
}

/* ---- breakers ---- */

static int fleet_breaker(const struct bw_rule *r)
{
	return r->breaker.enabled && r->breaker.scope != BW_SCOPE_PROCESS;
}

static struct bcell *add_brk(struct bw_engine *e, const struct bw_fleet *f, int rule, int whole,
			     uint64_t key, const char *label)
{
	int slot = e->rt[rule].slot;
	if (fl.n_brks >= MAX_BRK || slot < 0 || slot >= e->store->n_rules)
		return NULL;
	const struct bw_rule *r = &e->cfg->rules[rule];
	for (int k = 0; k < fl.n_brks; k++)
		if (fl.brks[k].rule == rule && fl.brks[k].whole == whole && fl.brks[k].key == key)
			return NULL;
	struct bcell *b = &fl.brks[fl.n_brks++];
	memset(b, 0, sizeof *b);
	b->slot = slot;
	b->rule = rule;
	b->whole = whole;
	b->key = key;
	char lab[BW_LABEL_MAX];
	snprintf(lab, sizeof lab, "%s", label && *label ? label : whole ? "(rule)" : "?");
	memcpy(b->label, lab, sizeof lab);
	if (whole)
		snprintf(b->name, sizeof b->name, "%s\t-\t%s", r->name, lab);
	else
		snprintf(b->name, sizeof b->name, "%s\t%016llx\t%s", r->name,
			 (unsigned long long)key, lab);
	const char *suffix[3] = { "open", "probe", "ok" };
	for (int j = 0; j < 3; j++) {
		if (whole)
			snprintf(b->keys[j], sizeof b->keys[j], "%sbrk:%s:%s", prefix_of(f), r->name,
				 suffix[j]);
		else
			snprintf(b->keys[j], sizeof b->keys[j], "%sbrk:%s:%016llx:%s", prefix_of(f),
				 r->name, (unsigned long long)key, suffix[j]);
	}
	return b;
}

static int any_fleet_breaker(const struct bw_engine *e)
{
	for (int i = 0; i < e->cfg->n_rules; i++)
		if (fleet_breaker(&e->cfg->rules[i]))
			return 1;
	return 0;
}

struct brk_collect {
	struct bw_engine *e;
	const struct bw_fleet *f;
	int rule;
};

static void collect_brk_one(const void *value, void *arg)
{
	struct brk_collect *c = arg;
	const struct bw_dest_state *st = value;
	if (!__atomic_load_n(&st->brk.stamp, __ATOMIC_RELAXED))
		return;                  /* never used */
	char label[BW_LABEL_MAX];
	memcpy(label, st->label, sizeof label);
	label[sizeof label - 1] = '\0';
	add_brk(c->e, c->f, c->rule, 0, __atomic_load_n(bw_keyed_key_of(st), __ATOMIC_RELAXED),
		label);
}

/* The breakers this host uses, and those the fleet reported that it has not met yet (it
 * may be told to open them before its first call). */
static void collect_brk(struct bw_engine *e, const struct bw_fleet *f)
{
	const struct bw_config *cfg = e->cfg;
	struct bw_store *s = e->store;
	fl.n_brks = 0;
	for (int i = 0; i < cfg->n_rules; i++) {
		const struct bw_rule *r = &cfg->rules[i];
		int slot = e->rt[i].slot;
		if (!fleet_breaker(r) || slot < 0 || slot >= s->n_rules)
			continue;
		if (r->breaker.scope == BW_SCOPE_DEST && s->rules[slot].dests.mem) {
			struct brk_collect c = { e, f, i };
			bw_keyed_each(&s->rules[slot].dests, collect_brk_one, &c);
		} else {
			add_brk(e, f, i, 1, 0, NULL);
		}
	}
	for (int k = 0; k < fl.n_known; k++) {
		char name[BW_NAME_MAX + BW_LABEL_MAX + 24], *key, *label;
		snprintf(name, sizeof name, "%s", fl.known[k]);
		if (!(key = strchr(name, '\t')) || !(label = strchr(key + 1, '\t')))
			continue;
		*key++ = '\0';
		*label++ = '\0';
		for (int i = 0; i < cfg->n_rules; i++) {
			const struct bw_rule *r = &cfg->rules[i];
			if (!fleet_breaker(r) || strcmp(r->name, name) != 0)
				continue;
			if (strcmp(key, "-") == 0)
				add_brk(e, f, i, 1, 0, label);
			else if (r->breaker.scope == BW_SCOPE_DEST)
				add_brk(e, f, i, 0, strtoull(key, NULL, 16), label);
			break;
		}
	}
	int64_t now = mono();
	bw_usec sync = f->sync;
	for (int k = 0; k < fl.n_brks; k++) {
		struct bcell *b = &fl.brks[k];
		const struct bw_breaker *c = &cfg->rules[b->rule].breaker;
		int set;
		struct bw_dest_state *st = lock_at(s, b->slot, b->whole, b->key, now, &set);
		if (!st)
			continue;
		struct bw_breaker_state *bs = &st->brk;
		if (bs->pos != BW_BRK_CLOSED)
			bs->pad |= BRK_SEEN_OPEN;
		if (bs->pos == BW_BRK_CLOSED && (bs->pad & BRK_SEEN_OPEN)) {
			/* closed since it was seen open: by a probe of this host's, unless the
			 * fleet's recovery closed it (then BRK_IMPOSED is clear and no one
			 * needs telling twice) */
			b->say = 2;
			bs->pad = 0;
		} else {
			b->say = bs->pos != BW_BRK_CLOSED && !(bs->pad & BRK_IMPOSED);
		}
		b->want_probe = bs->pos == BW_BRK_OPEN && now - bs->opened_at >= bs->open_for - 2 * sync;
		int64_t px = (bs->open_for > 2 * sync ? bs->open_for : 2 * sync) / 1000;
		b->px_ms = (int)(px < 1 ? 1 : px);
		if (!st->label[0] && b->label[0] && strcmp(b->label, "?") != 0)
			snprintf(st->label, sizeof st->label, "%s", b->label);
		if (!bs->stamp)
			bs->stamp = bw_breaker_stamp(c);  /* a cell made here, for the fleet */
		unlock_at(s, b->slot, set);
	}
}

static int brk_exchange(const struct bw_fleet *f, bw_usec window)
{
	static const char *argv[3 + 3 * MAX_BRK + 1 + 2 + 4 * MAX_BRK];
	static size_t lens[sizeof argv / sizeof argv[0]];
	static char nums[MAX_BRK][3][24];
	char nkeys[16], win[32], list[BW_FLEET_PREFIX_MAX + 16], why[160];
	int argc = 0;
	snprintf(nkeys, sizeof nkeys, "%d", 3 * fl.n_brks + 1);
	snprintf(win, sizeof win, "%lld", (long long)window);
	snprintf(list, sizeof list, "%sbrk-list", prefix_of(f));
	argv[argc++] = fl.brk_sha[0] ? "EVALSHA" : "EVAL";
	argv[argc++] = fl.brk_sha[0] ? fl.brk_sha : brk_script;
	argv[argc++] = nkeys;
	for (int k = 0; k < fl.n_brks; k++)
		for (int j = 0; j < 3; j++)
			argv[argc++] = fl.brks[k].keys[j];
	argv[argc++] = list;
	argv[argc++] = fl.host;
	argv[argc++] = win;
	for (int k = 0; k < fl.n_brks; k++) {
		const struct bcell *b = &fl.brks[k];
		snprintf(nums[k][0], sizeof nums[k][0], "%d", b->say);
		snprintf(nums[k][1], sizeof nums[k][1], "%d", b->want_probe);
		snprintf(nums[k][2], sizeof nums[k][2], "%d", b->px_ms);
		argv[argc++] = nums[k][0];
		argv[argc++] = nums[k][1];
		argv[argc++] = nums[k][2];
		argv[argc++] = b->name;
	}
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	if (call(f, argc, argv, lens) < 0)
		return -1;
	if (is_error("NOSCRIPT")) {
		argv[0] = "EVAL";
		argv[1] = brk_script;
		lens[0] = 4;
		lens[1] = strlen(brk_script);
		fl.loads++;
		if (call(f, argc, argv, lens) < 0)
			return -1;
	}
	const struct bw_resp_val *v = conn.v;
	if (v[0].type == '-') {
		snprintf(why, sizeof why, "Redis: %.*s", (int)(v[0].n > 120 ? 120 : v[0].n), v[0].s);
		return fail(why);
	}
	if (v[0].type != '*' || v[0].i < 3 * fl.n_brks || conn.nv != 1 + v[0].i)
		return fail("the breaker script's reply is not what it returns");
	for (int k = 0; k < fl.n_brks; k++) {
		for (int j = 0; j < 3; j++)
			if (v[1 + 3 * k + j].type != ':')
				return fail("the breaker script's reply is not what it returns");
		fl.brks[k].n_open = (long)v[1 + 3 * k].i;
		fl.brks[k].got_probe = (long)v[2 + 3 * k].i;
		fl.brks[k].ok_age = (long)v[3 + 3 * k].i;
	}
	fl.n_known = 0;
	for (int64_t i = 3 * fl.n_brks; i < v[0].i && fl.n_known < 64; i++) {
		const struct bw_resp_val *x = &v[1 + i];
		if (x->type == '$' && x->n < sizeof fl.known[0]) {
			memcpy(fl.known[fl.n_known], x->s, x->n);
			fl.known[fl.n_known++][x->n] = '\0';
		}
	}
	if (!fl.brk_sha[0]) {
		const char *load[] = { "SCRIPT", "LOAD", brk_script };
		size_t ll[] = { 6, 4, strlen(brk_script) };
		/* what the reply said is kept in fl already */
		if (call(f, 3, load, ll) < 0)
			return -1;
		if (conn.v[0].type == '$' && conn.v[0].n < sizeof fl.brk_sha) {
			memcpy(fl.brk_sha, conn.v[0].s, conn.v[0].n);
			fl.brk_sha[conn.v[0].n] = '\0';
		}
		fl.loads++;
	}
	return 0;
}

static void brk_event(struct bw_engine *e, const struct bcell *b, int from, int to,
		      const char *why, int quorum)
{
	char extra[128];
	size_t n = 0;
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"fleet_open\":");
	bw_json_int(extra, sizeof extra, &n, b->n_open);
	bw_json_raw(extra, sizeof extra, &n, ",\"quorum\":");
	bw_json_int(extra, sizeof extra, &n, quorum);
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_BREAKER, BW_LVL_WARN);
	ev.rule = e->cfg->rules[b->rule].name;
	ev.dest = b->whole ? NULL : b->label;
	ev.from = bw_brk_name(from);
	ev.to = bw_brk_name(to);
	ev.reason = why;
	ev.extra = extra;
	bw_engine_emit(e, NULL, &ev);
}

/* What the fleet said, carried out on this host's breakers. */
static void apply_brk(struct bw_engine *e, const struct bw_fleet *f)
{
	struct bw_store *s = e->store;
	int quorum = bw_fleet_quorum(f);
	int64_t now = mono();
	int64_t fresh = 3 * f->sync > 500 * BW_MS ? 3 * f->sync : 500 * BW_MS;
	for (int k = 0; k < fl.n_brks; k++) {
		struct bcell *b = &fl.brks[k];
		const struct bw_breaker *c = &e->cfg->rules[b->rule].breaker;
		int set, from = -1, to = -1;
		const char *why = NULL;
		struct bw_dest_state *st = lock_at(s, b->slot, b->whole, b->key, now, &set);
		if (!st)
			continue;
		struct bw_breaker_state *bs = &st->brk;
		if (b->ok_age >= 0 && b->ok_age < fresh && b->say != 2 && bs->pos == BW_BRK_OPEN) {
			/* a probe elsewhere found the destination back */
			from = bs->pos;
			to = BW_BRK_CLOSED;
			why = "fleet_recovered";
			bs->pos = BW_BRK_CLOSED;
			bs->consecutive = 0;
			bs->probes_out = bs->probes_ok = 0;
			bs->open_for = 0;
			memset(bs->win, 0, sizeof bs->win);
			bs->pad = 0;
		} else if (bw_quorum_reached(f, (int)b->n_open)) {
			if (bs->pos == BW_BRK_CLOSED) {
				from = bs->pos;
				to = BW_BRK_OPEN;
				why = "fleet_quorum";
				bs->pos = BW_BRK_OPEN;
				bs->opened_at = now;
				bs->open_for = c->open_for;
				bs->probes_out = bs->probes_ok = 0;
				bs->pad = BRK_IMPOSED | BRK_SEEN_OPEN;
			} else if (bs->pos == BW_BRK_OPEN && b->want_probe && !b->got_probe) {
				/* another host probes for the fleet: stay open a little longer */
				int64_t due = now + 2 * f->sync;
				if (bs->opened_at + bs->open_for < due)
					bs->opened_at = due - bs->open_for;
			}
		}
		unlock_at(s, b->slot, set);
		if (from >= 0)
			brk_event(e, b, from, to, why, quorum);
	}
}

/* ---- status ---- */

static void write_status(struct bw_engine *e, const struct bw_fleet *f)
{
	char buf[32768], tmp[sizeof fl.status_path + 16];
	size_t n = 0;
	int64_t wall = bw_clock_us(CLOCK_REALTIME);
	bw_json_raw(buf, sizeof buf, &n, "{\"host\":");
	bw_json_str(buf, sizeof buf, &n, fl.host);
	bw_json_raw(buf, sizeof buf, &n, ",\"leader_pid\":");
	bw_json_int(buf, sizeof buf, &n, e->pid);
	bw_json_raw(buf, sizeof buf, &n, ",\"redis\":");
	bw_json_str(buf, sizeof buf, &n, f->redis);
	bw_json_raw(buf, sizeof buf, &n, ",\"key_prefix\":");
	bw_json_str(buf, sizeof buf, &n, prefix_of(f));
	bw_json_raw(buf, sizeof buf, &n, ",\"mode\":");
	bw_json_str(buf, sizeof buf, &n, mode_name(f, fl.link.mode));
	bw_json_raw(buf, sizeof buf, &n, ",\"on_unreachable\":");
	bw_json_str(buf, sizeof buf, &n, bw_unreachable_names[f->on_unreachable]);
	bw_json_raw(buf, sizeof buf, &n, ",\"hosts\":");
	bw_json_int(buf, sizeof buf, &n, f->hosts);
	bw_json_raw(buf, sizeof buf, &n, ",\"hosts_seen\":");
	bw_json_int(buf, sizeof buf, &n, fl.hosts_seen);
	bw_json_raw(buf, sizeof buf, &n, ",\"quorum\":");
	bw_json_int(buf, sizeof buf, &n, bw_fleet_quorum(f));
	bw_json_raw(buf, sizeof buf, &n, ",\"sync_ms\":");
	bw_json_int(buf, sizeof buf, &n, f->sync / BW_MS);
	bw_json_raw(buf, sizeof buf, &n, ",\"since_us\":");
	bw_json_int(buf, sizeof buf, &n, fl.since_wall);
	bw_json_raw(buf, sizeof buf, &n, ",\"updated_us\":");
	bw_json_int(buf, sizeof buf, &n, wall);
	bw_json_raw(buf, sizeof buf, &n, ",\"syncs\":");
	bw_json_uint(buf, sizeof buf, &n, fl.syncs);
	bw_json_raw(buf, sizeof buf, &n, ",\"failures\":");
	bw_json_uint(buf, sizeof buf, &n, fl.failures);
	bw_json_raw(buf, sizeof buf, &n, ",\"script_loads\":");
	bw_json_uint(buf, sizeof buf, &n, fl.loads);
	bw_json_raw(buf, sizeof buf, &n, ",\"granted\":");
	bw_json_uint(buf, sizeof buf, &n, fl.granted);
	bw_json_raw(buf, sizeof buf, &n, ",\"last_error\":");
	bw_json_str(buf, sizeof buf, &n, fl.last_error[0] ? fl.last_error : NULL);
	bw_json_raw(buf, sizeof buf, &n, ",\"buckets\":[");
	for (int k = 0; k < fl.n_cells; k++) {
		const struct cell *x = &fl.cells[k];
		bw_json_raw(buf, sizeof buf, &n, k ? ",{\"rule\":" : "{\"rule\":");
		bw_json_str(buf, sizeof buf, &n, e->cfg->rules[x->rule].name);
		bw_json_raw(buf, sizeof buf, &n, ",\"dest\":");
		bw_json_str(buf, sizeof buf, &n, x->label[0] ? x->label : "?");
		bw_json_raw(buf, sizeof buf, &n, ",\"lease\":");
		bw_json_int(buf, sizeof buf, &n, (int64_t)x->lease);
		bw_json_raw(buf, sizeof buf, &n, ",\"tokens\":");
		bw_json_int(buf, sizeof buf, &n, (int64_t)(x->held + x->granted));
		bw_json_raw(buf, sizeof buf, &n, "}");
	}
	bw_json_raw(buf, sizeof buf, &n, "],\"breakers\":[");
	for (int k = 0; k < fl.n_brks; k++) {
		const struct bcell *b = &fl.brks[k];
		int set;
		struct bw_dest_state *st = lock_at(e->store, b->slot, b->whole, b->key, mono(),
						   &set);
		int pos = -1, imposed = 0;
		if (st) {
			pos = st->brk.pos;
			imposed = (st->brk.pad & BRK_IMPOSED) != 0;
			unlock_at(e->store, b->slot, set);
		}
		bw_json_raw(buf, sizeof buf, &n, k ? ",{\"rule\":" : "{\"rule\":");
		bw_json_str(buf, sizeof buf, &n, e->cfg->rules[b->rule].name);
		bw_json_raw(buf, sizeof buf, &n, ",\"dest\":");
		bw_json_str(buf, sizeof buf, &n, b->label);
		bw_json_raw(buf, sizeof buf, &n, ",\"here\":");
		bw_json_str(buf, sizeof buf, &n, pos < 0 ? "?" : bw_brk_name(pos));
		bw_json_raw(buf, sizeof buf, &n, imposed ? ",\"by_fleet\":true" : ",\"by_fleet\":false");
		bw_json_raw(buf, sizeof buf, &n, ",\"hosts_open\":");
		bw_json_int(buf, sizeof buf, &n, b->n_open);
		bw_json_raw(buf, sizeof buf, &n, ",\"fleet\":");
		bw_json_str(buf, sizeof buf, &n,
			    bw_quorum_reached(f, (int)b->n_open) ? "open" : "closed");
		bw_json_raw(buf, sizeof buf, &n, b->got_probe ? ",\"probe\":true}" : ",\"probe\":false}");
	}
	bw_json_raw(buf, sizeof buf, &n, "]}\n");
	if (!fl.status_path[0])
		return;
	snprintf(tmp, sizeof tmp, "%s.%ld", fl.status_path, e->pid);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	int ok = BW_REAL(write)(fd, buf, n) == (ssize_t)n;
	BW_REAL(close)(fd);
	if (!ok || rename(tmp, fl.status_path) < 0)
		unlink(tmp);
}

/* ---- the leader ---- */

static void sync_once(struct bw_engine *e, const struct bw_fleet *f, int64_t now)
{
	collect(e, f);
	collect_brk(e, f);
	bw_usec window = 5 * f->sync > BW_SEC ? 5 * f->sync : BW_SEC;
	int ok = exchange(e, f) == 0, granted = ok;
	fl.syncs++;
	if (ok) {
		/* granted: Redis has counted them, whatever happens next */
		for (int k = 0; k < fl.n_cells; k++) {
			const struct cell *x = &fl.cells[k];
			fl.granted += (uint64_t)x->granted;
			if (x->granted > 0)
				deposit(e, x, x->granted, x->lease);
		}
	}
	if (ok && any_fleet_breaker(e)) {
		/* a host's word that its breaker is open lasts a while: it says it again
		 * every sync while it is, and a host that died stops counting after this */
		bw_usec bwin = 10 * window;
		if (brk_exchange(f, bwin) == 0)
			apply_brk(e, f);
		else
			ok = 0;
	}
	if (!ok)
		fl.failures++;
	if (!granted)
		fill_alone(e, f, fl.last_fill ? now - fl.last_fill : 0);
	fl.last_fill = now;
	int from = fl.link.mode;
	/* the first exchange decides the mode the leader starts in, without an event */
	if (!fl.tried) {
		fl.tried = 1;
		fl.link.mode = ok ? BW_LINK_FLEET : BW_LINK_UNREACHABLE;
		fl.link.fails = ok ? 0 : BW_LINK_FAILS;
		fl.since_wall = bw_clock_us(CLOCK_REALTIME);
		if (!ok)
			fleet_event(e, f, BW_LINK_FLEET, BW_LINK_UNREACHABLE);
	} else if (bw_link_result(&fl.link, ok, now)) {
		fl.since_wall = bw_clock_us(CLOCK_REALTIME);
		fleet_event(e, f, from, fl.link.mode);
		fl.next_status = 0;
	}
	if (now >= fl.next_status) {
		write_status(e, f);
		fl.next_status = now + STATUS_EVERY_US;
	}
}

static void sleep_until(int64_t t)
{
	for (int i = 0; i < 100; i++) {
		int64_t left = t - mono();
		if (left <= 0)
			return;
		struct timespec ts = { left / 1000000, (left % 1000000) * 1000 };
		if (nanosleep(&ts, NULL) == 0)
			return;
	}
}

/* The lock's descriptor is still the one we opened: a program that closes every
 * descriptor it did not open (closefrom, close_range) ends our lock with it, and then
 * another process leads. */
static int lock_ours(void)
{
	struct stat st;
	int fd = __atomic_load_n(&fl.lock_fd, __ATOMIC_ACQUIRE);
	return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == fl.lock_dev &&
	       st.st_ino == fl.lock_ino;
}

/* Sync until the lock is lost (never, unless the program closed its descriptor). */
static void lead(void)
{
	int64_t next = mono();
	fl.leader = 1;
	for (;;) {
		if (fl.lock_path[0] && !lock_ours())
			break;
		struct bw_engine *e = __atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE);
		const struct bw_fleet *f = e ? fleet_of(e) : NULL;
		/* no engine yet: the process is still starting */
		bw_usec period = f ? f->sync : e ? BW_SEC : 10 * BW_MS;
		if (f)
			sync_once(e, f, mono());
		next += period;
		int64_t now = mono();
		if (next < now)
			next = now + period;
		sleep_until(next);
	}
	fl.leader = 0;
	__atomic_store_n(&fl.lock_fd, -1, __ATOMIC_RELEASE);   /* not ours to close now */
	if (conn.fd >= 0 && bw_resp_ours(&conn))
		BW_REAL(close)(conn.fd);
	bw_resp_forget(&conn);
}

static void *candidate(void *arg)
{
	(void)arg;
	bw_guard_enter();               /* nothing this thread does is the program's */
	if (!fl.lock_path[0]) {
		lead();
		return NULL;
	}
	for (int round = 0; round < 100; round++) {
		int fd = open(fl.lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return NULL;
		/* high, out of the way of programs that use small numbers as they come */
		int hi = BW_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 100);
		if (hi >= 0) {
			BW_REAL(close)(fd);
			fd = hi;
		}
		struct stat st;
		if (fstat(fd, &st) < 0) {
			BW_REAL(close)(fd);
			return NULL;
		}
		fl.lock_dev = st.st_dev;
		fl.lock_ino = st.st_ino;
		__atomic_store_n(&fl.lock_fd, fd, __ATOMIC_RELEASE);
		while (flock(fd, LOCK_EX) < 0)
			if (errno != EINTR)
				return NULL;
		lead();
	}
	return NULL;
}

static void start_thread(void)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	if (pthread_attr_init(&attr) != 0)
		return;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* the thread inherits the mask: no signal of the program's is ever handled on it */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, &attr, candidate, NULL) == 0)
		fl.started = 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

void bw_fleet_start(struct bw_engine *e)
{
	char group[BW_GROUP_MAX + 1], name[128];
	if (!fleet_of(e))
		return;
	if (gethostname(name, sizeof name) < 0)
		snprintf(name, sizeof name, "localhost");
	name[sizeof name - 1] = '\0';
	if (bw_group_sibling(".fleet.lock", fl.lock_path, sizeof fl.lock_path, group,
			     sizeof group) < 0 ||
	    bw_group_sibling(".fleet", fl.status_path, sizeof fl.status_path, NULL, 0) < 0) {
		/* no group (a warning said why): the process is a host of its own, and its
		 * buckets are still filled, or they would never have a token */
		fl.lock_path[0] = fl.status_path[0] = '\0';
		snprintf(group, sizeof group, "pid-%ld", e->pid);
	}
	/* a host is a group: two trees on one machine are two hosts of the fleet */
	snprintf(fl.host, sizeof fl.host, "%s/%s", name, group);
	fl.pid = e->pid;
	start_thread();
}

void bw_fleet_after_fork(void)
{
	if (!fl.pid)
		return;
	/* the parent's: closed, never shut down or unlocked, which would end them for the
	 * parent too */
	if (lock_ours())
		BW_REAL(close)(fl.lock_fd);
	__atomic_store_n(&fl.lock_fd, -1, __ATOMIC_RELEASE);
	if (conn.fd >= 0 && bw_resp_ours(&conn))
		BW_REAL(close)(conn.fd);
	bw_resp_forget(&conn);
	fl.leader = fl.started = fl.tried = 0;
	fl.sha[0] = '\0';
	fl.link = (struct bw_link){ 0 };
	fl.pid = getpid();
	fl.want_thread = 1;
}

void bw_fleet_settle(struct bw_config *cfg)
{
	if (fl.started || __atomic_load_n(&fl.want_thread, __ATOMIC_RELAXED))
		return;
	/* no syncer in this process: a bucket no one refills would refuse for ever */
	for (int i = 0; i < cfg->n_rules; i++)
		cfg->rules[i].rate_limit.fleet = 0;
}

int bw_fleet_wants_thread(void)
{
	return __atomic_load_n(&fl.want_thread, __ATOMIC_RELAXED);
}

void bw_fleet_tick(void)
{
	if (__atomic_exchange_n(&fl.want_thread, 0, __ATOMIC_ACQ_REL))
		start_thread();
}
