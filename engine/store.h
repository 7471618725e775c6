/* Where breakers, buckets, bulkheads and throttles live (design.md §2, §6). The engine
 * never holds a raw state struct: it asks the store to admit a call, record an outcome,
 * take or give back tokens or bulkhead slots, count a request for throttling, and
 * `bulwark status` asks it for a snapshot. Two backends share one memory layout:
 * "process" (private memory) and "group" (a file a process tree maps, laid out by
 * shared.c); a networked one would keep leases behind the same calls.
 *
 * Cells are found by rule and destination key. A rule's cells are bound to the rule by
 * name when a policy is loaded, so a policy loaded anew finds its rules' state again
 * whatever their position. */
#ifndef BW_STORE_H
#define BW_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "breaker.h"
#include "bucket.h"
#include "config.h"
#include "keyed.h"
#include "throttle.h"

/* A bulkhead's count (bulwark.yaml(5), CONCURRENCY): the connections open, or the calls
 * in flight, that hold a slot of it. A cell with slots taken is never given to another
 * destination by its table. */
struct bw_bulk_state {
	int32_t in_use;
	int32_t max;             /* the max its last slot was taken under, for status */
};

/* Breaker, bucket, bulkhead and throttle of one destination, or of a whole rule. `label`
 * names the destination for `bulwark status` (set when the entry is first used). */
#define BW_LABEL_MAX 48
struct bw_dest_state {
	struct bw_breaker_state brk;
	struct bw_bucket bucket;
	struct bw_bulk_state bulk;
	struct bw_throttle_state thr;
	char label[BW_LABEL_MAX];
};

struct bw_shm_met;

/* One rule's cells: those kept per destination (a bounded table) and the rule's own (for
 * scope rule and process), each behind a spin lock. */
struct bw_rule_cells {
	char name[BW_NAME_MAX];
	struct bw_keyed dests;
	int *lock;                       /* guards *whole; a pid while held */
	struct bw_dest_state *whole;
	int own_lock;                    /* where lock and whole point unless the store */
	struct bw_dest_state own_whole;  /* is a file */
	struct bw_shm_met *met;          /* the rule's metrics in a group's file, else NULL */
};

/* Which cell an operation is about. */
struct bw_ref {
	int slot;                        /* the rule's cells (bw_store_bind) */
	int scope;                       /* BW_SCOPE_* of the section asking */
	uint64_t key;                    /* destination key, for scope dest */
	/* Names a new destination for status, outside any lock; may be NULL. */
	void (*label)(const void *arg, char *buf, size_t cap);
	const void *label_arg;
};

/* What a breaker outcome says. */
enum bw_outcome {
	BW_OUT_OK,                       /* the call worked */
	BW_OUT_FAILED,                   /* the destination failed it */
	BW_OUT_CONNECTED,                /* a connection was made: closes a half-open breaker;
					  * a closed one waits for its first byte */
	BW_OUT_NONE,                     /* no outcome will come: a probe is free again */
	BW_OUT_SLOW = 0x10               /* or'ed in: the call took longer than trip.slow.over */
};

/* A cell as `bulwark status` and `exit` see it. */
struct bw_cell_view {
	int slot;
	const char *rule;
	int whole;                       /* the rule's own cell */
	const struct bw_dest_state *st;
};

/* A cell held on to between calls (a socket keeps one per direction): its lock, its
 * state, and, for a cell of a destination table, where its key is, which says whether the
 * table has since given the cell to another destination. */
struct bw_pin {
	int *lock;
	struct bw_dest_state *st;
	const uint64_t *key;             /* NULL: the rule's own cell */
};

struct bw_store;

struct bw_store_ops {
	const char *name;
	/* 1: go ahead; 0: an open breaker refuses. Moves open -> half_open when due. */
	int (*admit)(struct bw_store *s, const struct bw_ref *ref, const struct bw_breaker *b,
		     int64_t now, struct bw_brk_move *mv);
	void (*record)(struct bw_store *s, const struct bw_ref *ref, const struct bw_breaker *b,
		       int64_t now, enum bw_outcome out, struct bw_brk_move *mv);
	/* Tokens taken (see bw_bucket_take); `want` when the cell cannot be had, as the
	 * call then goes unguarded. */
	double (*take)(struct bw_store *s, const struct bw_ref *ref,
		       const struct bw_rate_limit *rl, int64_t now, double want, double least,
		       int64_t *wait);
	void (*give)(struct bw_store *s, const struct bw_ref *ref, const struct bw_rate_limit *rl,
		     double n);
	void (*snapshot)(struct bw_store *s, void (*fn)(const struct bw_cell_view *v, void *arg),
			 void *arg);
	/* In a forked child: locks that threads absent there may hold, the lock identity. */
	void (*after_fork)(struct bw_store *s, long pid);
	/* The cell of ref, made if new, as a pin: 0, or -1 when this backend keeps no cell
	 * in memory to hold on to (every call then goes through take). */
	int (*pin)(struct bw_store *s, const struct bw_ref *ref, int64_t now, struct bw_pin *out);
	/* Adaptive throttling: to be rejected (1) when `draw` (uniform in [0, 1)) falls below
	 * the rejection probability the counts give, which *p gets; 0 to go ahead (also when
	 * the cell cannot be had: the call goes unguarded). Nothing is counted here: a call
	 * is a request once it ends (thr_outcome), rejected or answered or failed. Calls in
	 * flight are neither accepted nor refused yet, and counting them as requests before
	 * their answers would read a burst of concurrent calls, or a queue at a bulkhead, as
	 * a failing destination. */
	int (*throttle)(struct bw_store *s, const struct bw_ref *ref, const struct bw_throttle *t,
			int64_t now, double draw, double *p);
	/* A call ended: one request more, and an accept when the destination answered it (a
	 * call the throttle rejected is a request not answered). */
	void (*thr_outcome)(struct bw_store *s, const struct bw_ref *ref,
			    const struct bw_throttle *t, int64_t now, int answered);
	/* A bulkhead slot: 1 taken, 0 none free, -1 when the cell (or, in a group's file,
	 * room in this process's ledger) cannot be had, and the call goes uncounted. force:
	 * taken even beyond max. reclaim: when none is free, count again the slots of the
	 * group's processes that died holding some before saying so. */
	int (*take_slot)(struct bw_store *s, const struct bw_ref *ref,
			 const struct bw_concurrency *cc, int64_t now, int force, int reclaim);
	/* Give back a slot take_slot gave. */
	void (*give_slot)(struct bw_store *s, const struct bw_ref *ref);
};

/* At most this many rules' cells in one store, over all the policies a process loads:
 * slots are never moved or freed, so a call of an older policy finds its cells still. */
#define BW_STORE_SLOTS 4096

struct bw_store {
	const struct bw_store_ops *ops;
	struct bw_rule_cells *rules;     /* one per slot; room for `cap` */
	int n_rules, cap;
	int self;                        /* lock value: 1, or the pid in a shared file */
	int (*alive)(long pid);          /* may be NULL: a held lock is never taken over */
	void *file;                      /* the mapped file of a group, else NULL */
	/* In a group's file: this process's slot in the process table, whose ledger says
	 * which bulkhead slots it holds (-1: none, and its slots go uncounted); and whether
	 * the process of a slot still runs (a pid not reused, no zombie). */
	int proc;
	int (*member_alive)(const void *proc);
};

/* Whether rule r keeps any state per destination (a section of scope dest). */
int bw_rule_keyed(const struct bw_rule *r);

/* A private store with a slot for each rule of cfg (in rule order), bound by name. */
int bw_store_init(struct bw_store *s, const struct bw_config *cfg);
void bw_store_fini(struct bw_store *s);
/* The slot of the rule named `name`, or -1. */
int bw_store_bind(const struct bw_store *s, const char *name);
/* The slot for rule r: its name's cells when the store has them (a policy loaded anew
 * keeps its rules' breakers and buckets), else new ones. -1 when full or out of memory.
 * Not safe against a concurrent adopt: policies are loaded one at a time. */
int bw_store_adopt(struct bw_store *s, const struct bw_rule *r);
/* Move the store into a group's mapped file (laid out for the same rules, shared.c):
 * every process of the group then shares its cells. `self` is this process's pid. */
void bw_store_share(struct bw_store *s, void *file, long self, int (*alive)(long pid));
/* A read-only view of a group's file image, for a snapshot (bulwark status). */
void bw_store_view(struct bw_store *s, void *file);

static inline int bw_store_admit(struct bw_store *s, const struct bw_ref *ref,
				 const struct bw_breaker *b, int64_t now, struct bw_brk_move *mv)
{
	return s->ops->admit(s, ref, b, now, mv);
}

static inline void bw_store_record(struct bw_store *s, const struct bw_ref *ref,
				   const struct bw_breaker *b, int64_t now, enum bw_outcome out,
				   struct bw_brk_move *mv)
{
	s->ops->record(s, ref, b, now, out, mv);
}

static inline double bw_store_take(struct bw_store *s, const struct bw_ref *ref,
				   const struct bw_rate_limit *rl, int64_t now, double want,
				   double least, int64_t *wait)
{
	return s->ops->take(s, ref, rl, now, want, least, wait);
}

/* Take want tokens, all of them, through a pin: want, or -1 when the pin is stale, the
 * lock busy or the bucket short (the caller then goes the long way, bw_store_take). */
static inline double bw_pin_take_all(const struct bw_store *s, const struct bw_pin *p,
				     uint64_t key, const struct bw_rate_limit *rl, int64_t now,
				     double want)
{
	if (!p->lock || bw_spin_lock(p->lock, s->self, s->alive) < 0)
		return -1;
	double got = -1;
	if (!p->key || __atomic_load_n(p->key, __ATOMIC_RELAXED) == key)
		got = bw_bucket_take_all(rl, &p->st->bucket, now, want);
	bw_spin_unlock(p->lock);
	return got;
}

/* Give n tokens back through a pin (bytes a send took and did not move): 0, or -1 as
 * above. */
static inline int bw_pin_give(const struct bw_store *s, const struct bw_pin *p, uint64_t key,
			      const struct bw_rate_limit *rl, double n)
{
	if (!p->lock || bw_spin_lock(p->lock, s->self, s->alive) < 0)
		return -1;
	int ok = !p->key || __atomic_load_n(p->key, __ATOMIC_RELAXED) == key;
	if (ok) {
		p->st->bucket.tokens += n;
		if (p->st->bucket.tokens > rl->burst)
			p->st->bucket.tokens = rl->burst;
	}
	bw_spin_unlock(p->lock);
	return ok ? 0 : -1;
}

static inline int bw_store_pin(struct bw_store *s, const struct bw_ref *ref, int64_t now,
			       struct bw_pin *out)
{
	return s->ops->pin ? s->ops->pin(s, ref, now, out) : -1;
}

static inline void bw_store_give(struct bw_store *s, const struct bw_ref *ref,
				 const struct bw_rate_limit *rl, double n)
{
	s->ops->give(s, ref, rl, n);
}

static inline int bw_store_throttle(struct bw_store *s, const struct bw_ref *ref,
				    const struct bw_throttle *t, int64_t now, double draw,
				    double *p)
{
	return s->ops->throttle(s, ref, t, now, draw, p);
}

static inline void bw_store_thr_outcome(struct bw_store *s, const struct bw_ref *ref,
					const struct bw_throttle *t, int64_t now, int answered)
{
	s->ops->thr_outcome(s, ref, t, now, answered);
}

static inline int bw_store_take_slot(struct bw_store *s, const struct bw_ref *ref,
				     const struct bw_concurrency *cc, int64_t now, int force,
				     int reclaim)
{
	return s->ops->take_slot(s, ref, cc, now, force, reclaim);
}

static inline void bw_store_give_slot(struct bw_store *s, const struct bw_ref *ref)
{
	s->ops->give_slot(s, ref);
}

/* Every bulkhead slot the group's process at index `proc` of the table holds, given
 * back (the process is leaving: its exit, or the image an exec replaced). */
void bw_store_give_ledger(struct bw_store *s, int proc);

static inline void bw_store_snapshot(struct bw_store *s,
				     void (*fn)(const struct bw_cell_view *v, void *arg), void *arg)
{
	s->ops->snapshot(s, fn, arg);
}

#endif
