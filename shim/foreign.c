/* Finding a client library's real functions, and the address ranges of the object that
 * holds them.
 *
 * No lock is held across the lookup: dlopen, dlsym and dladdr take the loader's lock, and
 * a thread inside dlopen holds that lock while it runs the constructors of what it
 * loads. A constructor that makes the library's first call, while another thread held a
 * lock of ours across its own lookup, would deadlock the two. So every thread that finds
 * the library unresolved looks it up by itself into its own stack, and the first to
 * finish publishes: it claims the descriptor (state 0 -> 2), copies its findings in and
 * marks them ready. A thread that loses the claim waits only for that copy, which takes
 * no lock and calls nothing. The first finder decides, as the first caller would under a
 * lock: a process with two copies of a library gets one consistent table, never a mix. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <string.h>
#include "foreign.h"
#include "guard.h"

struct found {
	void *fn[BW_FOREIGN_MAX_SYMS];
	int n_ranges;
	struct { uintptr_t lo, hi; } ranges[BW_FOREIGN_MAX_RANGES];
};

/* The anchor: RTLD_NEXT, the global scope after us; one of the library's sonames already
 * loaded; or the caller's own object and its dependencies, where a library loaded
 * RTLD_LOCAL (Python's SQLite module) is found. */
static void *find_anchor(const struct bw_foreign *lib, const void *caller)
{
	const char *name = lib->syms[0].name;
	void *p = dlsym(RTLD_NEXT, name);
	if (p)
		return p;
	for (const char *const *so = lib->sonames; so && *so; so++) {
		void *h = dlopen(*so, RTLD_NOLOAD | RTLD_LAZY);
		if (h && (p = dlsym(h, name)))
			return p;
	}
	Dl_info info;
	void *h;
	if (caller && dladdr(caller, &info) && info.dli_fname &&
	    (h = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY)))
		p = dlsym(h, name);
	return p;
}

struct base_ranges {
	void *base;
	struct found *f;
};

static int note_ranges(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct base_ranges *b = arg;
	(void)size;
	if ((void *)info->dlpi_addr != b->base)
		return 0;
	for (int i = 0; i < info->dlpi_phnum && b->f->n_ranges < BW_FOREIGN_MAX_RANGES; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		b->f->ranges[b->f->n_ranges].lo = info->dlpi_addr + ph->p_vaddr;
		b->f->ranges[b->f->n_ranges].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		b->f->n_ranges++;
	}
	return 1;
}

/* Every name from the very object that defines the anchor. The handle stays open for
 * good: the pointers kept must outlive any dlclose of the program's. */
static int look_up(const struct bw_foreign *lib, const void *caller, struct found *f)
{
	if (!lib->n_syms || lib->n_syms > BW_FOREIGN_MAX_SYMS || lib->syms[0].optional)
		return -1;
	void *anchor = find_anchor(lib, caller);
	Dl_info info;
	if (!anchor || !dladdr(anchor, &info) || !info.dli_fname)
		return -1;
	void *h = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
	if (!h)
		return -1;
	f->fn[0] = anchor;
	for (size_t i = 1; i < lib->n_syms; i++) {
		f->fn[i] = dlsym(h, lib->syms[i].name);
		if (!f->fn[i] && !lib->syms[i].optional)
			return -1;
	}
	struct base_ranges b = { info.dli_fbase, f };
	f->n_ranges = 0;
	dl_iterate_phdr(note_ranges, &b);
	return 0;
}

static void publish(struct bw_foreign *lib, const struct found *f)
{
	for (size_t i = 0; i < lib->n_syms; i++)
		memcpy((char *)lib->fns + lib->syms[i].off, &f->fn[i], sizeof(void *));
	lib->n_ranges = f->n_ranges;
	memcpy(lib->ranges, f->ranges, sizeof lib->ranges);
}

int bw_foreign_resolve_slow(struct bw_foreign *lib, const void *caller)
{
	int s = __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE);
	if (s == 0) {
		struct found f;
		int saved = errno;
		bw_guard_enter();
		int rc = look_up(lib, caller, &f);
		bw_guard_leave();
		errno = saved;
		int expect = 0;
		if (__atomic_compare_exchange_n(&lib->state, &expect, 2, 0, __ATOMIC_ACQUIRE,
						__ATOMIC_ACQUIRE)) {
			if (rc == 0)
				publish(lib, &f);
			__atomic_store_n(&lib->state, rc == 0 ? 1 : -1, __ATOMIC_RELEASE);
			return rc;
		}
	}
	/* another thread is copying its findings in: a few stores, no lock, no call */
	while ((s = __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE)) == 2)
		sched_yield();
	return s == 1 ? 0 : -1;
}

__thread int bw_foreign_ruled __attribute__((tls_model("initial-exec")));

int bw_foreign_internal(const struct bw_foreign *lib, const void *caller)
{
	uintptr_t a = (uintptr_t)caller;
	for (int i = 0; i < lib->n_ranges; i++)
		if (a >= lib->ranges[i].lo && a < lib->ranges[i].hi)
			return 1;
	return 0;
}
