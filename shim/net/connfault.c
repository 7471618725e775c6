/* The per-descriptor state of injected connection faults (connfault.h). Mapped with
 * mmap, never malloc: a hook may run in a signal handler, or in a child between fork and
 * exec. A lock that stays taken (its thread gone with a fork) is given up on after a
 * bounded spin: the fault is then not applied, which is always safe. */
#include <errno.h>
#include <stddef.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include "connfault.h"

static struct bw_connfault *table;

static struct bw_connfault *table_of(int create)
{
	struct bw_connfault *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
	if (t || !create)
		return t;
	int saved = errno;
	void *p = mmap(NULL, BW_CONNFAULT_FDS * sizeof *t, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	errno = saved;
	if (p == MAP_FAILED)
		return NULL;
	struct bw_connfault *none = NULL;
	if (!__atomic_compare_exchange_n(&table, &none, (struct bw_connfault *)p, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		munmap(p, BW_CONNFAULT_FDS * sizeof *t);
		errno = saved;
		return none;
	}
	return p;
}

static int lock(struct bw_connfault *cf)
{
	for (int i = 0; i < 100000; i++) {
		if (!__atomic_exchange_n(&cf->lock, 1, __ATOMIC_ACQUIRE))
			return 0;
		if (i > 100)
			sched_yield();
	}
	return -1;
}

void bw_connfault_put(struct bw_connfault *cf)
{
	__atomic_store_n(&cf->lock, 0, __ATOMIC_RELEASE);
}

struct bw_connfault *bw_connfault_get(int fd, int create)
{
	if (fd < 0 || fd >= BW_CONNFAULT_FDS)
		return NULL;
	struct bw_connfault *t = table_of(create);
	if (!t)
		return NULL;
	struct bw_connfault *cf = &t[fd];
	if (!create && !__atomic_load_n(&cf->used, __ATOMIC_ACQUIRE))
		return NULL;
	if (lock(cf) < 0)
		return NULL;
	cf->used = 1;
	return cf;
}

void bw_connfault_forget(int fd)
{
	if (fd < 0 || fd >= BW_CONNFAULT_FDS || !__atomic_load_n(&table, __ATOMIC_ACQUIRE))
		return;
	struct bw_connfault *cf = bw_connfault_get(fd, 0);
	if (!cf)
		return;
	unsigned char *held = cf->held;
	size_t keep = offsetof(struct bw_connfault, used);
	memset((char *)cf + keep, 0, sizeof *cf - keep);
	bw_connfault_put(cf);
	if (held) {
		int saved = errno;
		munmap(held, BW_CONNFAULT_HOLD);
		errno = saved;
	}
}
