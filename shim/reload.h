/* Live reload (design.md §2.2): a running process reads its policy file again when the
 * file changes, or when `bulwark reload` asks its group, and puts the new policy in place
 * (bw_shim_swap). The check is a stat() at most once a second, made from the slow paths
 * of the hooks (never from the pass-through or the plain send/recv path); reading and
 * compiling a file is done only where it cannot deadlock the program. */
#ifndef BW_RELOAD_H
#define BW_RELOAD_H

#include <stdint.h>
#include <time.h>
#include "clock.h"

/* Monotonic microseconds of the next check; INT64_MAX: never (no policy file, or the
 * library is not in use). */
extern int64_t bw_reload_due;

/* The policy file named by BULWARK_CONFIG (NULL or empty: the built-in default, which is
 * never read again), noted as it is before the library reads it. */
void bw_reload_remember(const char *given);
/* The policy is in force: checks may start. */
void bw_reload_arm(void);
/* In a forked child (one thread): no check can be under way. */
void bw_reload_after_fork(void);

/* The check, when due. Keeps errno. */
__attribute__((cold, noinline)) void bw_reload_poll(void);

/* From a hook's slow path (connect, accept, name lookups, SQLite, a send or recv that
 * goes the long way): a load, and a read of the coarse clock when a file is watched. */
static inline void bw_reload_tick(void)
{
	int64_t due = __atomic_load_n(&bw_reload_due, __ATOMIC_RELAXED);
	if (__builtin_expect(due != INT64_MAX, 0) && bw_clock_us(CLOCK_MONOTONIC_COARSE) >= due)
		bw_reload_poll();
}

/* The same where the hook has read the monotonic clock already (a paced transfer). */
static inline void bw_reload_tick_at(int64_t now_us)
{
	if (__builtin_expect(now_us >= __atomic_load_n(&bw_reload_due, __ATOMIC_RELAXED), 0))
		bw_reload_poll();
}

#endif
