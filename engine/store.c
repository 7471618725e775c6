/* The memory store: cells in a bounded table per rule (scope dest) or one per rule, each
 * behind a short spin lock that is never held across a system call or a sleep. The same
 * code serves private memory and a group's mapped file; only where the cells are and the
 * lock identity differ. */
#include <stdlib.h>
#include <string.h>
#include "shared.h"
#include "store.h"

static int keyed_rule(const struct bw_rule *r)
{
	return (r->breaker.enabled && r->breaker.scope == BW_SCOPE_DEST) ||
	       (r->rate_limit.enabled && r->rate_limit.scope == BW_SCOPE_DEST);
}

/* The cell of ref, locked; NULL if the lock cannot be had (a hook in a signal handler that
 * interrupted the holder, a holder in another process stopped for long): the call then
 * goes unguarded. *set says how to unlock: a table's set, or -1 for the rule's own. */
static struct bw_dest_state *lock_cell(struct bw_store *s, const struct bw_ref *ref,
				       int64_t now, int *set)
{
	struct bw_rule_cells *rc = &s->rules[ref->slot];
	if (ref->scope == BW_SCOPE_DEST && rc->dests.mem)
		return bw_keyed_lock(&rc->dests, ref->key, now, set);
	if (bw_spin_lock(rc->lock, s->self, s->alive) < 0)
		return NULL;
	*set = -1;
	return rc->whole;
}

/* Name a new destination for `bulwark status`. Outside the lock, since the name may take a
 * system call; "?" when it has none (an unconnected datagram socket), so that it is asked
 * once per entry, not on every call. */
static __attribute__((noinline, cold)) void name_cell(struct bw_store *s,
						      const struct bw_ref *ref, int64_t now)
{
	char buf[BW_LABEL_MAX];
	buf[0] = '\0';
	if (ref->label)
		ref->label(ref->label_arg, buf, sizeof buf);
	const char *name = buf[0] ? buf : "?";
	int set;
	struct bw_rule_cells *rc = &s->rules[ref->slot];
	struct bw_dest_state *st = bw_keyed_lock(&rc->dests, ref->key, now, &set);
	if (!st)
		return;
	if (!st->label[0]) {
		size_t n = strnlen(name, BW_LABEL_MAX - 1);
		memcpy(st->label, name, n);
		st->label[n] = '\0';
	}
	bw_keyed_unlock(&rc->dests, set);
}

static inline __attribute__((always_inline)) void
unlock_cell(struct bw_store *s, const struct bw_ref *ref, int set,
	    const struct bw_dest_state *st, int64_t now)
{
	struct bw_rule_cells *rc = &s->rules[ref->slot];
	if (set < 0) {
		bw_spin_unlock(rc->lock);
		return;
	}
	int unnamed = !st->label[0];
	bw_keyed_unlock(&rc->dests, set);
	if (unnamed)
		name_cell(s, ref, now);
}

static int mem_admit(struct bw_store *s, const struct bw_ref *ref, const struct bw_breaker *b,
		     int64_t now, struct bw_brk_move *mv)
{
	int set;
	mv->from = mv->to = 0;
	struct bw_dest_state *st = lock_cell(s, ref, now, &set);
	if (!st)
		return 1;
	int ok = bw_breaker_allow(b, &st->brk, now, mv);
	unlock_cell(s, ref, set, st, now);
	return ok;
}

static void mem_record(struct bw_store *s, const struct bw_ref *ref, const struct bw_breaker *b,
		       int64_t now, enum bw_outcome out, struct bw_brk_move *mv)
{
	int set;
	mv->from = mv->to = 0;
	struct bw_dest_state *st = lock_cell(s, ref, now, &set);
	if (!st)
		return;
	switch (out) {
	case BW_OUT_NONE:
		bw_breaker_release(&st->brk);
		break;
	case BW_OUT_CONNECTED:
		/* a closed breaker's count of failures in a row waits for the first byte */
		if (st->brk.pos == BW_BRK_HALF_OPEN)
			bw_breaker_record(b, &st->brk, now, 0, mv);
		break;
	default:
		bw_breaker_record(b, &st->brk, now, out == BW_OUT_FAILED, mv);
	}
	unlock_cell(s, ref, set, st, now);
}

static double mem_take(struct bw_store *s, const struct bw_ref *ref,
		       const struct bw_rate_limit *rl, int64_t now, double want, double least,
		       int64_t *wait)
{
	int set;
	struct bw_dest_state *st = lock_cell(s, ref, now, &set);
	if (!st) {
		*wait = 0;
		return want;
	}
	double got = bw_bucket_take(rl, &st->bucket, now, want, least, wait);
	unlock_cell(s, ref, set, st, now);
	return got;
}

static void mem_give(struct bw_store *s, const struct bw_ref *ref, const struct bw_rate_limit *rl,
		     double n)
{
	int set;
	struct bw_dest_state *st = lock_cell(s, ref, 0, &set);
	if (!st)
		return;
	st->bucket.tokens += n;
	if (st->bucket.tokens > rl->burst)
		st->bucket.tokens = rl->burst;
	unlock_cell(s, ref, set, st, 0);
}

struct each_ctx {
	struct bw_cell_view v;
	void (*fn)(const struct bw_cell_view *v, void *arg);
	void *arg;
};

static void each_cell(const void *value, void *arg)
{
	struct each_ctx *c = arg;
	c->v.st = value;
	c->fn(&c->v, c->arg);
}

static int zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* No locks: a reader's moment. The rule's own cell only when it was ever used. */
static void mem_snapshot(struct bw_store *s, void (*fn)(const struct bw_cell_view *v, void *arg),
			 void *arg)
{
	for (int i = 0; i < s->n_rules; i++) {
		struct bw_rule_cells *rc = &s->rules[i];
		struct each_ctx c = { { i, rc->name, 1, rc->whole }, fn, arg };
		if (!zero(&rc->whole->brk, sizeof rc->whole->brk) ||
		    !zero(&rc->whole->bucket, sizeof rc->whole->bucket))
			fn(&c.v, arg);
		c.v.whole = 0;
		bw_keyed_each(&rc->dests, each_cell, &c);
	}
}

static void mem_after_fork(struct bw_store *s, long pid)
{
	/* a private store was copied with locks other threads held; a shared one is still
	 * shared with the parent, whose threads will release what they hold */
	for (int i = 0; i < s->n_rules; i++) {
		bw_keyed_after_fork(&s->rules[i].dests, (int)pid);
		/* a rule's own cell is private unless it lives in the file (a rule a reload
		 * added keeps a private one even in a group's store) */
		if (s->rules[i].lock == &s->rules[i].own_lock)
			s->rules[i].own_lock = 0;
	}
	if (s->file)
		s->self = (int)pid;
}

static int mem_pin(struct bw_store *s, const struct bw_ref *ref, int64_t now, struct bw_pin *out)
{
	int set;
	struct bw_dest_state *st = lock_cell(s, ref, now, &set);
	if (!st)
		return -1;
	struct bw_rule_cells *rc = &s->rules[ref->slot];
	if (set < 0) {
		*out = (struct bw_pin){ rc->lock, st, NULL };
	} else {
		*out = (struct bw_pin){ &rc->dests.locks[set], st, bw_keyed_key_of(st) };
	}
	unlock_cell(s, ref, set, st, now);
	return 0;
}

static const struct bw_store_ops mem_ops = {
	"process", mem_admit, mem_record, mem_take, mem_give, mem_snapshot, mem_after_fork,
	mem_pin,
};

static const struct bw_store_ops group_ops = {
	"group", mem_admit, mem_record, mem_take, mem_give, mem_snapshot, mem_after_fork,
	mem_pin,
};

int bw_store_init(struct bw_store *s, const struct bw_config *cfg)
{
	memset(s, 0, sizeof *s);
	s->ops = &mem_ops;
	s->self = 1;
	/* calloc'd slots cost nothing until they are touched */
	s->cap = BW_STORE_SLOTS;
	s->rules = calloc((size_t)s->cap, sizeof *s->rules);
	if (!s->rules)
		return -1;
	for (int i = 0; i < cfg->n_rules; i++) {
		if (bw_store_adopt(s, &cfg->rules[i]) != i) {
			bw_store_fini(s);
			return -1;
		}
	}
	return 0;
}

int bw_store_adopt(struct bw_store *s, const struct bw_rule *r)
{
	int slot = bw_store_bind(s, r->name);
	if (slot >= 0) {
		/* A rule that keeps its name keeps its cells. One that now keeps state per
		 * destination and had no table gets one (in a group's file there is no room
		 * for it: its destinations share the rule's cell until the group starts
		 * anew); a table of another size stays as it is. No call reads the table
		 * before the new policy is in place: the old rule's calls use the rule's
		 * own cell. */
		struct bw_rule_cells *rc = &s->rules[slot];
		if (keyed_rule(r) && !rc->dests.mem && !s->file &&
		    bw_keyed_init(&rc->dests, r->max_keys, sizeof(struct bw_dest_state)) < 0)
			return -1;
		return slot;
	}
	if (s->n_rules >= s->cap)
		return slot;
	struct bw_rule_cells *rc = &s->rules[s->n_rules];
	memcpy(rc->name, r->name, sizeof rc->name);
	rc->lock = &rc->own_lock;
	rc->whole = &rc->own_whole;
	rc->dests.self = s->self;
	rc->dests.alive = s->alive;
	if (keyed_rule(r) &&
	    bw_keyed_init(&rc->dests, r->max_keys, sizeof(struct bw_dest_state)) < 0)
		return -1;
	__atomic_store_n(&s->n_rules, s->n_rules + 1, __ATOMIC_RELEASE);
	return s->n_rules - 1;
}

void bw_store_fini(struct bw_store *s)
{
	for (int i = 0; s->rules && i < s->n_rules; i++)
		bw_keyed_free(&s->rules[i].dests);
	free(s->rules);
	s->rules = NULL;
	s->n_rules = 0;
}

int bw_store_bind(const struct bw_store *s, const char *name)
{
	for (int i = 0; i < s->n_rules; i++)
		if (strncmp(s->rules[i].name, name, sizeof s->rules[i].name) == 0)
			return i;
	return -1;
}

/* Point each slot at its rule's cells in the file, found by name. */
static void attach(struct bw_store *s, void *file)
{
	const struct bw_shm_header *h = file;
	struct bw_shm_rule *rules = bw_shm_rules(file);
	for (int i = 0; i < s->n_rules; i++) {
		struct bw_rule_cells *rc = &s->rules[i];
		for (uint32_t j = 0; j < h->n_rules; j++) {
			if (strncmp(rules[j].name, rc->name, sizeof rc->name) != 0)
				continue;
			rc->lock = &rules[j].lock;
			rc->whole = &rules[j].whole;
			rc->dests.self = s->self;
			rc->dests.alive = s->alive;
			if (rules[j].sets)
				bw_keyed_attach(&rc->dests, rules[j].sets,
						sizeof(struct bw_dest_state),
						(char *)file + rules[j].dests_off,
						(int *)((char *)file + rules[j].locks_off));
			break;
		}
	}
}

void bw_store_share(struct bw_store *s, void *file, long self, int (*alive)(long pid))
{
	s->ops = &group_ops;
	s->file = file;
	s->self = (int)self;
	s->alive = alive;
	attach(s, file);
}

void bw_store_view(struct bw_store *s, void *file)
{
	const struct bw_shm_header *h = file;
	struct bw_shm_rule *rules = bw_shm_rules(file);
	memset(s, 0, sizeof *s);
	s->ops = &group_ops;
	s->file = file;
	s->self = 1;
	s->rules = calloc(h->n_rules ? h->n_rules : 1, sizeof *s->rules);
	if (!s->rules)
		return;
	s->n_rules = s->cap = (int)h->n_rules;
	for (int i = 0; i < s->n_rules; i++) {
		memcpy(s->rules[i].name, rules[i].name, sizeof s->rules[i].name);
		s->rules[i].name[sizeof s->rules[i].name - 1] = '\0';
		s->rules[i].lock = &s->rules[i].own_lock;
		s->rules[i].whole = &s->rules[i].own_whole;
	}
	attach(s, file);
}
