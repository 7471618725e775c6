/* Observe mode's measurements (tally.h). */
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "keyed.h"

const int64_t bw_tally_bounds_us[BW_TALLY_BUCKETS - 1] = {
	100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000,
	1000000, 2000000, 5000000, 10000000,
};

__thread struct bw_tally_mark bw_tally_cur __attribute__((tls_model("initial-exec")));

struct bw_tally *bw_tally_new(void)
{
	return calloc(1, sizeof(struct bw_tally));
}

void bw_tally_free(struct bw_tally *t)
{
	free(t);
}

/* The name the call's events give its destination, and which field it goes in. */
static char name_of(const struct bw_call *c, char *buf, size_t cap)
{
	const char *s = NULL;
	char what = 'd';
	buf[0] = '\0';
	if (c->dest)
		s = c->dest;
	else if (c->dest_of && c->fd >= 0)
		c->dest_of(c, buf, cap);
	else if (c->host)
		s = c->host, what = 'h';
	else if (c->db)
		s = c->db, what = 'b';
	if (s) {
		size_t n = strlen(s);
		if (n >= cap)
			n = cap - 1;
		memcpy(buf, s, n);
		buf[n] = '\0';
	}
	return what;
}

/* A key being claimed: its fields are not written yet. A thread that claims an entry
 * publishes its key only once rule, op and name are there, so a thread that finds the key
 * reads them whole (another thread's bw_tally_end compares them). */
#define CLAIMING UINT64_MAX

/* The key of en once no claim is under way: the claimer writes three fields, so a short
 * wait; bounded, as a signal handler may interrupt the claimer on its own thread. */
static uint64_t settled(struct bw_tally_ent *en)
{
	uint64_t k = __atomic_load_n(&en->key, __ATOMIC_ACQUIRE);
	for (int spin = 0; k == CLAIMING && spin < 4096; spin++)
		k = __atomic_load_n(&en->key, __ATOMIC_ACQUIRE);
	return k;
}

/* The entry of (rule, op, destination), claimed if new; NULL when none is to be had. */
static struct bw_tally_ent *entry(struct bw_engine *e, const struct bw_call *c)
{
	struct bw_tally *t = e->tally;
	int rule = bw_engine_rule_no(e, c->rule);
	uint64_t dk = c->key;
	if (!dk) {
		const char *s = c->dest ? c->dest : c->host ? c->host : c->db ? c->db : "";
		dk = bw_key_bytes(s, strlen(s), 3);
	}
	uint64_t key = bw_mix(bw_mix(dk, (uint64_t)rule), (uint64_t)c->op + 1);
	if (!key || key == CLAIMING)
		key = 1;
	for (unsigned i = 0; i < BW_TALLY_PROBES; i++) {
		struct bw_tally_ent *en = &t->ent[(key + i) % BW_TALLY_SLOTS];
		uint64_t k = settled(en);
		if (k == CLAIMING)
			return NULL;
		if (k == key)
			return en;
		if (k)
			continue;
		if (!__atomic_compare_exchange_n(&en->key, &k, CLAIMING, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE)) {
			k = settled(en);
			if (k == key)
				return en;
			if (k == CLAIMING)
				return NULL;
			continue;
		}
		/* the name is read only by the calls event at exit */
		en->rule = rule - 1;
		en->op = c->op;
		en->what = name_of(c, en->name, sizeof en->name);
		__atomic_store_n(&en->key, key, __ATOMIC_RELEASE);
		return en;
	}
	return NULL;
}

long bw_tally_begin(struct bw_engine *e, const struct bw_call *c)
{
	bw_tally_cur.slot = -1;
	if (!e->tally || !c->rule)
		return 0;
	struct bw_tally_ent *en = entry(e, c);
	if (!en)
		return 0;
	int64_t now = e->env.mono_us();
	long n = __atomic_add_fetch(&en->seq, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&en->calls, 1, __ATOMIC_RELAXED);
	int64_t zero = 0;
	__atomic_compare_exchange_n(&en->first, &zero, now, 0, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
	__atomic_store_n(&en->last, now, __ATOMIC_RELAXED);
	/* the busiest second: approximate when threads race at a second's turn, which is all
	 * a rate suggestion needs */
	int64_t sec = now / 1000000;
	if (__atomic_exchange_n(&en->sec, sec, __ATOMIC_RELAXED) != sec) {
		__atomic_store_n(&en->in_sec, 0, __ATOMIC_RELAXED);
		__atomic_add_fetch(&en->active, 1, __ATOMIC_RELAXED);
	}
	long in = __atomic_add_fetch(&en->in_sec, 1, __ATOMIC_RELAXED);
	if (in > __atomic_load_n(&en->peak, __ATOMIC_RELAXED))
		__atomic_store_n(&en->peak, in, __ATOMIC_RELAXED);
	bw_tally_cur = (struct bw_tally_mark){ e->tally, (int)(en - e->tally->ent), 0, now, 0 };
	return n;
}

static void outage_event(struct bw_engine *e, const struct bw_call *c, long failures,
			 int64_t elapsed_us)
{
	char extra[64];
	size_t n = 0;
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"failures\":");
	bw_json_int(extra, sizeof extra, &n, failures);
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_OUTAGE, BW_LVL_INFO);
	ev.elapsed_ms = (double)elapsed_us / 1000.0;
	ev.extra = extra;
	bw_engine_emit(e, c, &ev);
}

void bw_tally_end(struct bw_engine *e, const struct bw_call *c, int err)
{
	struct bw_tally_mark m = bw_tally_cur;
	bw_tally_cur.slot = -1;
	if (!e->tally || m.t != e->tally || m.slot < 0)
		return;
	struct bw_tally_ent *en = &e->tally->ent[m.slot];
	/* a mark left by another call (one that ended without telling): not this one's */
	if (en->rule != bw_engine_rule_no(e, c->rule) - 1 || en->op != c->op)
		return;
	int64_t now = e->env.mono_us();
	if (!m.skip) {
		int64_t us = now - (m.since ? m.since : m.t0);
		if (us < 0)
			us = 0;
		int b = 0;
		while (b < BW_TALLY_BUCKETS - 1 && us > bw_tally_bounds_us[b])
			b++;
		__atomic_add_fetch(&en->hist[b], 1, __ATOMIC_RELAXED);
		if (us > __atomic_load_n(&en->max_us, __ATOMIC_RELAXED))
			__atomic_store_n(&en->max_us, us, __ATOMIC_RELAXED);
	}
	if (err) {
		__atomic_add_fetch(&en->fails, 1, __ATOMIC_RELAXED);
		if (__atomic_fetch_add(&en->streak, 1, __ATOMIC_RELAXED) == 0)
			__atomic_store_n(&en->streak_t0, m.t0, __ATOMIC_RELAXED);
		return;
	}
	long k = __atomic_exchange_n(&en->streak, 0, __ATOMIC_RELAXED);
	if (k > 0)
		outage_event(e, c, k, now - __atomic_load_n(&en->streak_t0, __ATOMIC_RELAXED));
}

void bw_tally_sent(struct bw_engine *e, int fd)
{
	if (e->tally && fd >= 0 && fd < BW_TALLY_FDS)
		__atomic_store_n(&e->tally->sent[fd], e->env.mono_us(), __ATOMIC_RELAXED);
}

void bw_tally_replied(struct bw_engine *e, int fd)
{
	if (!e->tally || fd < 0 || fd >= BW_TALLY_FDS || bw_tally_cur.t != e->tally)
		return;
	/* only the first receive after a send waited for the reply; the rest of it streams */
	int64_t at = __atomic_exchange_n(&e->tally->sent[fd], 0, __ATOMIC_RELAXED);
	if (at && at < bw_tally_cur.t0)
		bw_tally_cur.since = at;
}

void bw_tally_after_fork(struct bw_tally *t)
{
	if (!t)
		return;
	for (int i = 0; i < BW_TALLY_SLOTS; i++) {
		struct bw_tally_ent *en = &t->ent[i];
		if (en->key == CLAIMING)
			en->key = 0;         /* another thread was claiming it: it is not here */
		if (!en->key)
			continue;
		en->calls = en->fails = en->streak = 0;
		en->first = en->last = en->sec = en->max_us = 0;
		en->in_sec = en->peak = en->active = 0;
		memset(en->hist, 0, sizeof en->hist);
	}
	memset(t->sent, 0, sizeof t->sent);
}

static void report_one(struct bw_engine *cur, const struct bw_engine *g,
		       const struct bw_tally_ent *en, int64_t mono, int64_t wall)
{
	char extra[1024];
	size_t n = 0;
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"calls\":");
	bw_json_int(extra, sizeof extra, &n, en->calls);
	bw_json_raw(extra, sizeof extra, &n, ",\"failures\":");
	bw_json_int(extra, sizeof extra, &n, en->fails);
	bw_json_raw(extra, sizeof extra, &n, ",\"first\":");
	bw_json_ts(extra, sizeof extra, &n, wall - (mono - en->first));
	bw_json_raw(extra, sizeof extra, &n, ",\"last\":");
	bw_json_ts(extra, sizeof extra, &n, wall - (mono - en->last));
	bw_json_raw(extra, sizeof extra, &n, ",\"peak_1s\":");
	bw_json_int(extra, sizeof extra, &n, en->peak);
	bw_json_raw(extra, sizeof extra, &n, ",\"active_s\":");
	bw_json_int(extra, sizeof extra, &n, en->active);
	bw_json_raw(extra, sizeof extra, &n, ",\"max_ms\":");
	bw_json_ms(extra, sizeof extra, &n, (double)en->max_us / 1000.0);
	bw_json_raw(extra, sizeof extra, &n, ",\"hist\":[");
	for (int b = 0; b < BW_TALLY_BUCKETS; b++) {
		if (b)
			bw_json_raw(extra, sizeof extra, &n, ",");
		bw_json_int(extra, sizeof extra, &n, en->hist[b]);
	}
	bw_json_raw(extra, sizeof extra, &n, "],\"le_ms\":[");
	for (int b = 0; b < BW_TALLY_BUCKETS - 1; b++) {
		if (b)
			bw_json_raw(extra, sizeof extra, &n, ",");
		bw_json_ms(extra, sizeof extra, &n, (double)bw_tally_bounds_us[b] / 1000.0);
	}
	bw_json_raw(extra, sizeof extra, &n, "]");
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_CALLS, BW_LVL_INFO);
	ev.rule = g->cfg->rules[en->rule].name;
	ev.op = en->op;
	if (en->name[0]) {
		if (en->what == 'h')
			ev.host = en->name;
		else if (en->what == 'b')
			ev.db = en->name;
		else
			ev.dest = en->name;
	}
	ev.extra = extra;
	bw_engine_emit(cur, NULL, &ev);
}

void bw_tally_report(struct bw_engine *e)
{
	int64_t mono = e->env.mono_us(), wall = e->env.wall_us ? e->env.wall_us() : 0;
	for (const struct bw_engine *g = e; g; g = g->prev) {
		if (!g->tally)
			continue;
		for (int i = 0; i < BW_TALLY_SLOTS; i++) {
			const struct bw_tally_ent *en = &g->tally->ent[i];
			uint64_t k = __atomic_load_n(&en->key, __ATOMIC_ACQUIRE);
			if (k && k != CLAIMING &&
			    __atomic_load_n(&en->calls, __ATOMIC_RELAXED) > 0 &&
			    en->rule >= 0 && en->rule < g->cfg->n_rules)
				report_one(e, g, en, mono, wall);
		}
	}
}
