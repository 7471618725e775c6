/* The memory store: cells in a bounded table per rule (scope dest) or one per rule, each
 * behind a short spin lock that is never held across a system call or a sleep. The same
 * code serves private memory and a group's mapped file; only where the cells are and the
 * lock identity differ. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "shared.h"
#include "store.h"

int bw_rule_keyed(const struct bw_rule *r)
{
	return (r->breaker.enabled && r->breaker.scope == BW_SCOPE_DEST) ||
	       (r->rate_limit.enabled && r->rate_limit.scope == BW_SCOPE_DEST) ||
	       (r->concurrency.enabled && r->concurrency.scope == BW_SCOPE_DEST) ||
	       (r->throttle.enabled && r->throttle.scope == BW_SCOPE_DEST);
}

/* A destination whose bulkhead has slots taken keeps its entry: the slots come back to
 * it by its key. */
static int cell_busy(const void *v)
{
	return __atomic_load_n(&((const struct bw_dest_state *)v)->bulk.in_use,
			       __ATOMIC_RELAXED) > 0;
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
	int slow = (out & BW_OUT_SLOW) != 0;
	switch (out & ~BW_OUT_SLOW) {
	case BW_OUT_NONE:
		bw_breaker_release(&st->brk);
		break;
	case BW_OUT_CONNECTED:
		/* a closed breaker's count of failures in a row waits for the first byte */
		if (st->brk.pos == BW_BRK_HALF_OPEN)
			bw_breaker_record_call(b, &st->brk, now, 0, slow, mv);
		break;
	default:
		bw_breaker_record_call(b, &st->brk, now, (out & ~BW_OUT_SLOW) == BW_OUT_FAILED,
				       slow, mv);
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
		    !zero(&rc->whole->bucket, sizeof rc->whole->bucket) ||
		    !zero(&rc->whole->bulk, sizeof rc->whole->bulk) ||
		    !zero(&rc->whole->thr, sizeof rc->whole->thr))
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

static int mem_throttle(struct bw_store *s, const struct bw_ref *ref, const struct bw_throttle *t,
			int64_t now, double draw, double *p)
{
	int set;
	*p = 0;
	struct bw_dest_state *st = lock_cell(s, ref, now, &set);
	if (!st)
		return 0;
	*p = bw_throttle_p(t, &st->thr, now);
	unlock_cell(s, ref, set, st, now);
	return draw < *p;
}

static void mem_thr_outcome(struct bw_store *s, const struct bw_ref *ref,
			    const struct bw_throttle *t, int64_t now, int answered)
{
	int set;
	struct bw_dest_state *st = lock_cell(s, ref, now, &set);
	if (!st)
		return;
	bw_throttle_request(t, &st->thr, now);
	if (answered)
		bw_throttle_accept(t, &st->thr, now);
	unlock_cell(s, ref, set, st, now);
}

/* ---- bulkhead slots, and the ledger that makes them exact in a group (design.md §6) ---- */

/* Where the cell st lies in the group's file, or 0 when it is not in it (a private store,
 * or a rule a reload added, whose cells stay in the process). */
static uint32_t file_cell(const struct bw_store *s, const struct bw_dest_state *st)
{
	if (!s->file)
		return 0;
	const char *base = s->file;
	uint64_t size = ((const struct bw_shm_header *)s->file)->size;
	if ((const char *)st <= base || (const char *)st >= base + size)
		return 0;
	return (uint32_t)((const char *)st - base);
}

/* n slots more (or fewer, n < 0) of cell in the ledger of process table entry proc;
 * under the cell's lock. -1 when an entry would be needed and none is free. */
static int ledger_add(struct bw_store *s, int proc, uint32_t cell, int n)
{
	struct bw_shm_held *h = bw_shm_procs(s->file)[proc].held;
	for (int i = 0; i < BW_SHM_HELD; i++) {
		if (__atomic_load_n(&h[i].cell, __ATOMIC_ACQUIRE) != cell)
			continue;
		h[i].n += n;
		if (h[i].n <= 0) {
			h[i].n = 0;
			__atomic_store_n(&h[i].cell, 0, __ATOMIC_RELEASE);
		}
		return 0;
	}
	if (n <= 0)
		return 0;
	/* another thread of this process may be claiming an entry under another cell's
	 * lock: an entry is claimed by compare-and-swap */
	for (int i = 0; i < BW_SHM_HELD; i++) {
		uint32_t none = 0;
		if (__atomic_compare_exchange_n(&h[i].cell, &none, cell, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			h[i].n = n;
			return 0;
		}
	}
	return -1;
}

/* The slots of cell that process table entry p holds, by its ledger. */
static long held_by(const struct bw_shm_proc *p, uint32_t cell)
{
	long n = 0;
	for (int i = 0; i < BW_SHM_HELD; i++)
		if (__atomic_load_n(&p->held[i].cell, __ATOMIC_ACQUIRE) == cell)
			n += p->held[i].n > 0 ? p->held[i].n : 0;
	return n;
}

/* A process found dead, as it was found: its entry is reclaimed only if it still is. */
struct dead { int proc; int32_t pid; uint32_t start_ticks; };

/* The cell's count made again from the ledgers of the processes alive: a process that
 * died holding slots (SIGKILL, a crash: no exit handler ran) gives them back here. Which
 * processes are dead is asked outside the lock (it takes system calls); under it, only
 * a table entry still held by the same process is taken as dead. */
static __attribute__((noinline, cold)) void recount(struct bw_store *s, const struct bw_ref *ref,
						     int64_t now)
{
	struct bw_shm_proc *procs = bw_shm_procs(s->file);
	struct dead dead[16];
	int n_dead = 0;
	int set;
	struct bw_dest_state *st = lock_cell(s, ref, now, &set);
	if (!st)
		return;
	uint32_t cell = file_cell(s, st);
	unlock_cell(s, ref, set, st, now);
	if (!cell || !s->member_alive)
		return;
	for (int p = 0; p < BW_SHM_PROCS && n_dead < (int)(sizeof dead / sizeof dead[0]); p++) {
		if (p == s->proc || !held_by(&procs[p], cell))
			continue;
		int32_t pid = __atomic_load_n(&procs[p].pid, __ATOMIC_ACQUIRE);
		uint32_t ticks = procs[p].start_ticks;
		if (pid == 0 || !s->member_alive(&procs[p]))
			dead[n_dead++] = (struct dead){ p, pid, ticks };
	}
	if (!n_dead)
		return;
	st = lock_cell(s, ref, now, &set);
	if (!st)
		return;
	if (file_cell(s, st) == cell) {
		for (int i = 0; i < n_dead; i++) {
			struct bw_shm_proc *p = &procs[dead[i].proc];
			if (__atomic_load_n(&p->pid, __ATOMIC_ACQUIRE) != dead[i].pid ||
			    p->start_ticks != dead[i].start_ticks)
				continue;
			for (int j = 0; j < BW_SHM_HELD; j++) {
				if (__atomic_load_n(&p->held[j].cell, __ATOMIC_ACQUIRE) != cell)
					continue;
				p->held[j].n = 0;
				__atomic_store_n(&p->held[j].cell, 0, __ATOMIC_RELEASE);
			}
		}
		long total = 0;
		for (int p = 0; p < BW_SHM_PROCS; p++)
			total += held_by(&procs[p], cell);
		st->bulk.in_use = (int32_t)total;
	}
	unlock_cell(s, ref, set, st, now);
}

static int mem_take_slot(struct bw_store *s, const struct bw_ref *ref,
			 const struct bw_concurrency *cc, int64_t now, int force, int reclaim)
{
	int set;
	for (int round = 0; round < 2; round++) {
		struct bw_dest_state *st = lock_cell(s, ref, now, &set);
		if (!st)
			return -1;
		int got = st->bulk.in_use < cc->max ? 1 : force ? 2 : 0;
		uint32_t cell = got ? file_cell(s, st) : 0;
		if (cell && (s->proc < 0 || ledger_add(s, s->proc, cell, 1) < 0))
			got = -1;     /* no record of it to give it back by: uncounted */
		if (got > 0) {
			__atomic_store_n(&st->bulk.in_use, st->bulk.in_use + 1, __ATOMIC_RELAXED);
			st->bulk.max = cc->max;
		}
		int full = !got && reclaim && round == 0 && file_cell(s, st);
		unlock_cell(s, ref, set, st, now);
		if (!full)
			return got;
		recount(s, ref, now);
	}
	return 0;
}

/* In a group's file the ledger says what this process holds: a slot it no longer has
 * there (given back already, with the whole ledger, by an exit that other threads
 * outlive) is not given back twice. */
static void mem_give_slot(struct bw_store *s, const struct bw_ref *ref)
{
	int set;
	struct bw_dest_state *st = lock_cell(s, ref, 0, &set);
	if (!st)
		return;
	uint32_t cell = file_cell(s, st);
	int mine = !cell || (s->proc >= 0 && held_by(&bw_shm_procs(s->file)[s->proc], cell) > 0);
	if (mine && st->bulk.in_use > 0)
		__atomic_store_n(&st->bulk.in_use, st->bulk.in_use - 1, __ATOMIC_RELAXED);
	if (mine && cell)
		ledger_add(s, s->proc, cell, -1);
	unlock_cell(s, ref, set, st, 0);
}

/* The lock that guards the cell at offset `cell` of the file: the rule's own, or its
 * table's set. NULL when no cell lies there. */
static int *lock_of_cell(void *file, uint32_t cell)
{
	const struct bw_shm_header *h = file;
	struct bw_shm_rule *rules = bw_shm_rules(file);
	for (uint32_t j = 0; j < h->n_rules; j++) {
		if ((char *)&rules[j].whole - (char *)file == (ptrdiff_t)cell)
			return &rules[j].lock;
		uint64_t span = (uint64_t)rules[j].sets * BW_KEYED_WAYS * h->entry_size;
		if (rules[j].sets && cell > rules[j].dests_off && cell < rules[j].dests_off + span)
			return (int *)((char *)file + rules[j].locks_off) +
			       (cell - rules[j].dests_off) / (BW_KEYED_WAYS * h->entry_size);
	}
	return NULL;
}

void bw_store_give_ledger(struct bw_store *s, int proc)
{
	if (!s->file || proc < 0 || proc >= BW_SHM_PROCS)
		return;
	struct bw_shm_held *h = bw_shm_procs(s->file)[proc].held;
	for (int i = 0; i < BW_SHM_HELD; i++) {
		uint32_t cell = __atomic_load_n(&h[i].cell, __ATOMIC_ACQUIRE);
		int *lock = cell ? lock_of_cell(s->file, cell) : NULL;
		if (!lock) {
			h[i].n = 0;
			__atomic_store_n(&h[i].cell, 0, __ATOMIC_RELEASE);
			continue;
		}
		if (bw_spin_lock(lock, s->self, s->alive) < 0)
			continue;
		struct bw_dest_state *st = (struct bw_dest_state *)((char *)s->file + cell);
		if (__atomic_load_n(&h[i].cell, __ATOMIC_ACQUIRE) == cell) {
			int32_t left = st->bulk.in_use - (h[i].n > 0 ? h[i].n : 0);
			__atomic_store_n(&st->bulk.in_use, left > 0 ? left : 0, __ATOMIC_RELAXED);
			h[i].n = 0;
			__atomic_store_n(&h[i].cell, 0, __ATOMIC_RELEASE);
		}
		bw_spin_unlock(lock);
	}
}

static const struct bw_store_ops mem_ops = {
	"process", mem_admit, mem_record, mem_take, mem_give, mem_snapshot, mem_after_fork,
	mem_pin, mem_throttle, mem_thr_outcome, mem_take_slot, mem_give_slot,
};

static const struct bw_store_ops group_ops = {
	"group", mem_admit, mem_record, mem_take, mem_give, mem_snapshot, mem_after_fork,
	mem_pin, mem_throttle, mem_thr_outcome, mem_take_slot, mem_give_slot,
};

int bw_store_init(struct bw_store *s, const struct bw_config *cfg)
{
	memset(s, 0, sizeof *s);
	s->ops = &mem_ops;
	s->self = 1;
	s->proc = -1;
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
		if (bw_rule_keyed(r) && !rc->dests.mem && !s->file) {
			if (bw_keyed_init(&rc->dests, r->max_keys, sizeof(struct bw_dest_state)) < 0)
				return -1;
			rc->dests.self = s->self;
			rc->dests.alive = s->alive;
			rc->dests.busy = cell_busy;
		}
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
	if (bw_rule_keyed(r) &&
	    bw_keyed_init(&rc->dests, r->max_keys, sizeof(struct bw_dest_state)) < 0)
		return -1;
	rc->dests.self = s->self;
	rc->dests.alive = s->alive;
	rc->dests.busy = cell_busy;
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
			__atomic_store_n(&rc->met, &rules[j].met, __ATOMIC_RELEASE);
			rc->dests.self = s->self;
			rc->dests.alive = s->alive;
			rc->dests.busy = cell_busy;
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
	s->proc = -1;
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
