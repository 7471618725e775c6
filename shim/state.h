/* Process-wide state of the library: the loaded policy's engine, reached through one
 * pointer. A policy loaded anew is a new engine (a generation) that takes its place with
 * one store: calls under way finish under the engine they began with, which is kept,
 * never freed (hooks may also run after our destructor); sockets learn their rules again
 * when they see the generation change (the generation is in bw_hot and in each
 * descriptor's word). */
#ifndef BW_STATE_H
#define BW_STATE_H

#include <unistd.h>
#include "engine.h"
#include "fdtable.h"
#include "guard.h"

enum bw_life { BW_LIFE_NEW, BW_LIFE_READY, BW_LIFE_OFF };

struct bw_shim {
	int life;                /* enum bw_life, atomic */
	struct bw_engine *cur;   /* the loaded policy's engine, atomic */
	long pid;                /* the process the state belongs to (a vfork child differs) */
	struct bw_engine first;  /* the engine of the policy loaded at start */
	/* The engine of each generation as the descriptor words number them (bw_fd_gen),
	 * set before the generation is published in bw_hot: a hook that found a word
	 * current by bw_hot reads it with the engine of that same generation, even while
	 * another thread loads a policy in between (cur may already be the next one). */
	struct bw_engine *gens[BW_GENS];
};

extern struct bw_shim bw_shim;

__attribute__((cold)) void bw_init(void);

/* Put the engine of a newly loaded policy in place of the current one (the seam for live
 * reload): its rules find their breakers and buckets by name, sockets learn their rules
 * anew. 0, or -1 (the current one stays) when it cannot be set up. */
int bw_shim_swap(const struct bw_config *cfg);

/* BULWARK_MODE, BULWARK_LEVEL, BULWARK_LOG and BULWARK_SEED over a policy's own settings,
 * at start and on every reload; a bad one is ignored, and reported when `report` (at
 * start: reporting opens a sink of its own, which a running process must not). */
void bw_apply_overrides(struct bw_config *cfg, int report);

/* Initialize if need be; the engine when it is ready, this thread is not inside the
 * library's own work, and an op in `ops` has a rule. Keeps errno. */
__attribute__((cold)) struct bw_engine *bw_engine_wake(unsigned ops);

/* The engine when any op in `ops` has a rule in this process, else NULL: the hook then
 * passes straight through. Initializes on first use (calls before our constructor). Keeps
 * errno. */
static inline struct bw_engine *bw_engine_for_ops(unsigned ops)
{
	uint64_t hot = __atomic_load_n(&bw_hot, __ATOMIC_ACQUIRE);
	if (__builtin_expect(!(hot & ops), 1))
		return 0;
	if (__builtin_expect((hot & BW_HOT_READY) && !bw_guarded(), 1))
		return __atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE);
	return bw_engine_wake(ops);
}

/* The engine of the generation hot names (hot loaded with acquire: the slot was set
 * before hot was published). */
static inline struct bw_engine *bw_engine_of_hot(uint64_t hot)
{
	return __atomic_load_n(&bw_shim.gens[hot >> BW_FDW_GEN], __ATOMIC_RELAXED);
}

static inline struct bw_engine *bw_engine_for(enum bw_op op)
{
	return bw_engine_for_ops(BW_OPBIT(op));
}

/* Library state may be touched (fd bookkeeping): not in secure mode or BULWARK_DISABLE. */
static inline int bw_tracking(void)
{
	return __atomic_load_n(&bw_shim.life, __ATOMIC_ACQUIRE) != BW_LIFE_OFF;
}

/* A child running in its parent's memory until it execs (vfork, posix_spawn, clone with
 * CLONE_VM): whatever it writes of our state, the parent finds changed, so its hooks must
 * write nothing. It shows itself by a pid that is not the one we follow (a forked child's
 * handler updates ours). A system call: asked only where a hook is about to write. */
static inline int bw_borrowed_memory(void)
{
	long pid = __atomic_load_n(&bw_shim.pid, __ATOMIC_RELAXED);
	return pid && getpid() != pid;
}

/* This thread's random source, reseeded after fork. */
struct bw_rng *bw_thread_rng(void);
int64_t bw_mono_us(void);

#endif
