/* Finding the real SQLite functions, and the address range of the library that holds them
 * (to tell its internal calls from the program's). Runs once under a mutex: SQLite is not
 * called from signal handlers, and the lookup may allocate. */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "guard.h"
#include "sqlite_real.h"

struct bw_sq_real bw_sq;

#define MAX_RANGES 8
static struct { uintptr_t lo, hi; } ranges[MAX_RANGES];
static int n_ranges;
static int state;                /* 0 not yet, 1 ready, -1 no SQLite */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static const struct {
	const char *name;
	size_t off;
	int optional;
} names[] = {
	{ "sqlite3_open", offsetof(struct bw_sq_real, open), 0 },
	{ "sqlite3_open_v2", offsetof(struct bw_sq_real, open_v2), 0 },
	{ "sqlite3_prepare_v2", offsetof(struct bw_sq_real, prepare_v2), 0 },
	{ "sqlite3_prepare_v3", offsetof(struct bw_sq_real, prepare_v3), 1 },
	{ "sqlite3_step", offsetof(struct bw_sq_real, step), 0 },
	{ "sqlite3_exec", offsetof(struct bw_sq_real, exec), 0 },
	{ "sqlite3_db_handle", offsetof(struct bw_sq_real, db_handle), 0 },
	{ "sqlite3_extended_errcode", offsetof(struct bw_sq_real, extended_errcode), 0 },
	{ "sqlite3_get_autocommit", offsetof(struct bw_sq_real, get_autocommit), 0 },
	{ "sqlite3_txn_state", offsetof(struct bw_sq_real, txn_state), 1 },
	{ "sqlite3_stmt_busy", offsetof(struct bw_sq_real, stmt_busy), 0 },
	{ "sqlite3_sql", offsetof(struct bw_sq_real, sql), 0 },
	{ "sqlite3_db_filename", offsetof(struct bw_sq_real, db_filename), 0 },
	{ "sqlite3_vfs_find", offsetof(struct bw_sq_real, vfs_find), 0 },
	{ "sqlite3_vfs_register", offsetof(struct bw_sq_real, vfs_register), 0 },
};

/* Where the real sqlite3_step lives: RTLD_NEXT; the usual soname already loaded; or the
 * caller's own object and its dependencies (a module loaded RTLD_LOCAL). */
static void *find_step(const void *caller)
{
	void *p = dlsym(RTLD_NEXT, "sqlite3_step");
	if (p)
		return p;
	void *h = dlopen("libsqlite3.so.0", RTLD_NOLOAD | RTLD_LAZY);
	if (h && (p = dlsym(h, "sqlite3_step")))
		return p;
	Dl_info info;
	if (caller && dladdr(caller, &info) && info.dli_fname &&
	    (h = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY)))
		p = dlsym(h, "sqlite3_step");
	return p;
}

static int note_ranges(struct dl_phdr_info *info, size_t size, void *base)
{
	(void)size;
	if ((void *)info->dlpi_addr != base)
		return 0;
	for (int i = 0; i < info->dlpi_phnum && n_ranges < MAX_RANGES; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		ranges[n_ranges].lo = info->dlpi_addr + ph->p_vaddr;
		ranges[n_ranges].hi = ranges[n_ranges].lo + ph->p_memsz;
		n_ranges++;
	}
	return 1;
}

static int resolve(const void *caller)
{
	void *step = find_step(caller);
	Dl_info info;
	if (!step || !dladdr(step, &info) || !info.dli_fname)
		return -1;
	/* every other name from the very library that holds this sqlite3_step */
	void *h = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
	if (!h)
		return -1;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		void *p = dlsym(h, names[i].name);
		if (!p && !names[i].optional)
			return -1;
		*(void **)((char *)&bw_sq + names[i].off) = p;
	}
	bw_sq.step = (int (*)(sqlite3_stmt *))step;
	dl_iterate_phdr(note_ranges, info.dli_fbase);
	return 0;
}

int bw_sq_resolve(const void *caller)
{
	int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
	if (s)
		return s > 0 ? 0 : -1;
	bw_guard_enter();
	pthread_mutex_lock(&lock);
	if (!state)
		__atomic_store_n(&state, resolve(caller) == 0 ? 1 : -1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
	bw_guard_leave();
	return state > 0 ? 0 : -1;
}

int bw_sq_internal(const void *caller)
{
	uintptr_t a = (uintptr_t)caller;
	for (int i = 0; i < n_ranges; i++)
		if (a >= ranges[i].lo && a < ranges[i].hi)
			return 1;
	return 0;
}
