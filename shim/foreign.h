/* Client libraries the program loads itself (SQLite today; libpq, libmariadb, hiredis
 * next), found at run time: bulwark never links them, and a program without them is
 * untouched. A hook file describes its library once (the sonames it goes by, the
 * functions it needs and where their pointers go) and gets:
 *
 * - the real functions, from the very library the program uses, also when that library
 *   was loaded RTLD_LOCAL where dlsym(RTLD_NEXT) cannot see it (design.md H3);
 * - whether a call comes from inside that library (it calls its own API through the
 *   PLT, and those calls reach our hooks too);
 * - the rule that the policy acts on the program's outermost call only: the calls a
 *   library makes while the policy already acts on one of its calls on this thread are
 *   part of that call's work (retrying or refusing the outer call covers them). */
#ifndef BW_FOREIGN_H
#define BW_FOREIGN_H

#include <stddef.h>
#include <stdint.h>

struct bw_foreign_sym {
	const char *name;
	size_t off;              /* where its pointer goes in the library's struct */
	int optional;            /* absent from older versions: left NULL, not a failure */
};

#define BW_FOREIGN_MAX_SYMS 64
#define BW_FOREIGN_MAX_RANGES 8

struct bw_foreign {
	/* the description, written by the hook file */
	const char *const *sonames;   /* NULL-terminated, looked for among loaded objects */
	const struct bw_foreign_sym *syms;   /* syms[0] is the anchor: the library is the
					      * object that defines it, so it is not optional */
	size_t n_syms;
	void *fns;               /* the struct of pointers the table fills */
	/* what resolution found: written once, before state says ready */
	int state;               /* 0 not yet, 2 being published, 1 ready, -1 absent */
	int n_ranges;
	struct { uintptr_t lo, hi; } ranges[BW_FOREIGN_MAX_RANGES];
};

#define BW_FOREIGN_SYM(type, field, name, optional) \
	{ name, offsetof(type, field), optional }
#define BW_FOREIGN_COUNT(table) (sizeof(table) / sizeof((table)[0]))

int bw_foreign_resolve_slow(struct bw_foreign *lib, const void *caller);

/* Resolve lib once, from the library the caller uses: 0 when its functions are ready,
 * -1 when no copy of it could be found (the hook then fails the call the library's own
 * way rather than call through NULL). Any thread, any time, also before our constructor;
 * one load once resolved. */
static inline int bw_foreign_resolve(struct bw_foreign *lib, const void *caller)
{
	int s = __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE);
	if (__builtin_expect(s == 1, 1))
		return 0;
	return bw_foreign_resolve_slow(lib, caller);
}

/* The call comes from inside lib (it calls its own API). Only after a resolve that
 * returned 0 on this thread. */
int bw_foreign_internal(const struct bw_foreign *lib, const void *caller);

/* ---- the policy acts on the program's outermost call only ----
 *
 * Per library and per thread (BW_FOREIGN_DEPTH declares one in the hook file):
 * - acting: calls of the library the policy is acting on, on this thread;
 * - app_wrap, lib_wrap: wrappers in progress that the program called, and that the
 *   library called itself. A wrapper is a call that runs requests through the library's
 *   own API (sqlite3_exec steps each statement through sqlite3_step): those calls come
 *   from inside the library, yet they are the program's when the program called the
 *   wrapper and nothing of the library's own is in between.
 * A longjmp out of a callback leaves a count raised: the policy then stops acting on
 * that library on that thread, which is the pass-through behaviour, never a wrong one. */
struct bw_foreign_depth {
	int acting;
	int app_wrap;
	int lib_wrap;
};

#define BW_FOREIGN_DEPTH(name) \
	static __thread struct bw_foreign_depth name __attribute__((tls_model("initial-exec")))

/* A hooked call begins. 1 when the policy acts on it: the program made it (directly, or
 * through a wrapper it called) and no call of the library that the policy acts on is in
 * progress on this thread. Whatever it returns goes back to bw_foreign_leave. */
static inline int bw_foreign_enter(const struct bw_foreign *lib, struct bw_foreign_depth *d,
				   const void *caller)
{
	if (d->acting)
		return 0;
	if (bw_foreign_internal(lib, caller) && !(d->app_wrap > 0 && d->lib_wrap == 0))
		return 0;
	d->acting++;
	return 1;
}

static inline void bw_foreign_leave(struct bw_foreign_depth *d, int entered)
{
	d->acting -= entered;
}

/* Calls of client libraries that a rule of their op acts on, under way on this thread.
 * The connections such a call makes (libpq's connect(2)) are its work: the rule of the
 * library's op retries and judges them, so the connect op's rules leave them alone. A
 * connect retried inside a retried connection multiplies the attempts, and a breaker on
 * connect that a restarting database trips would refuse the very retries the database's
 * rule makes while it waits for the server. */
extern __thread int bw_foreign_ruled __attribute__((tls_model("initial-exec")));

/* A rule r acts on the program's call (NULL: none does): the connections the library makes
 * for it from here to bw_foreign_ruled_leave are its work. */
static inline void bw_foreign_ruled_enter(const void *r)
{
	if (r)
		bw_foreign_ruled++;
}

static inline void bw_foreign_ruled_leave(const void *r)
{
	if (r)
		bw_foreign_ruled--;
}

/* A wrapper begins: 1 when the library called it itself. Goes back to
 * bw_foreign_wrap_leave. */
static inline int bw_foreign_wrap_enter(const struct bw_foreign *lib,
					struct bw_foreign_depth *d, const void *caller)
{
	int inner = bw_foreign_internal(lib, caller);
	if (inner)
		d->lib_wrap++;
	else
		d->app_wrap++;
	return inner;
}

static inline void bw_foreign_wrap_leave(struct bw_foreign_depth *d, int inner)
{
	if (inner)
		d->lib_wrap--;
	else
		d->app_wrap--;
}

#endif
