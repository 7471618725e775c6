/* The descriptor table: 1024 pages of 1024 packed words, each page mapped on first write.
 * mmap rather than malloc: a hook may be the first to touch a page from a signal handler. */
#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include "fdtable.h"
#include "real.h"

#define PAGE_BITS 10
#define PAGE_SIZE_FDS (1u << PAGE_BITS)
#define NPAGES (BW_FD_MAX / PAGE_SIZE_FDS)

/* word layout: kind 2 bits | family 8 bits | type 8 bits */
static uint32_t *pages[NPAGES];

static uint32_t pack(const struct bw_fdinfo *i)
{
	return (uint32_t)i->kind | (uint32_t)(i->family & 0xff) << 2 |
	       (uint32_t)(i->type & 0xff) << 10;
}

static void unpack(uint32_t w, struct bw_fdinfo *i)
{
	i->kind = (enum bw_fd_kind)(w & 3);
	i->family = (int)(w >> 2 & 0xff);
	i->type = (int)(w >> 10 & 0xff);
}

static uint32_t *slot(int fd, int create)
{
	if (fd < 0 || fd >= BW_FD_MAX)
		return NULL;
	uint32_t **pp = &pages[(unsigned)fd >> PAGE_BITS];
	uint32_t *p = __atomic_load_n(pp, __ATOMIC_ACQUIRE);
	if (!p && create) {
		int saved = errno;
		void *m = mmap(NULL, PAGE_SIZE_FDS * sizeof(uint32_t), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		errno = saved;
		if (m == MAP_FAILED)
			return NULL;
		uint32_t *expect = NULL;
		if (__atomic_compare_exchange_n(pp, &expect, (uint32_t *)m, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			p = m;
		} else {
			munmap(m, PAGE_SIZE_FDS * sizeof(uint32_t));
			p = expect;
		}
	}
	return p ? &p[(unsigned)fd & (PAGE_SIZE_FDS - 1)] : NULL;
}

void bw_fd_get(int fd, struct bw_fdinfo *out)
{
	uint32_t *s = slot(fd, 0);
	unpack(s ? __atomic_load_n(s, __ATOMIC_ACQUIRE) : 0, out);
}

static void store(int fd, uint32_t w, int create)
{
	uint32_t *s = slot(fd, create);
	if (s)
		__atomic_store_n(s, w, __ATOMIC_RELEASE);
}

void bw_fd_set_socket(int fd, int family, int type)
{
	struct bw_fdinfo i = { BW_FD_SOCKET, family, type };
	store(fd, pack(&i), 1);
}

void bw_fd_set_other(int fd)
{
	store(fd, BW_FD_OTHER, 1);
}

/* Forgetting never maps a page: an absent page already reads as UNKNOWN. */
void bw_fd_forget(int fd)
{
	store(fd, 0, 0);
}

void bw_fd_forget_range(unsigned lo, unsigned hi)
{
	if (hi >= BW_FD_MAX)
		hi = BW_FD_MAX - 1;
	for (unsigned fd = lo; fd <= hi && lo < BW_FD_MAX; fd++) {
		if ((fd & (PAGE_SIZE_FDS - 1)) == 0 && !__atomic_load_n(&pages[fd >> PAGE_BITS],
									 __ATOMIC_ACQUIRE)) {
			fd += PAGE_SIZE_FDS - 1;
			continue;
		}
		bw_fd_forget((int)fd);
	}
}

void bw_fd_copy(int from, int to)
{
	uint32_t *s = slot(from, 0);
	uint32_t w = s ? __atomic_load_n(s, __ATOMIC_ACQUIRE) : 0;
	store(to, w, w != 0);
}

enum bw_fd_kind bw_fd_classify(int fd, struct bw_fdinfo *out)
{
	bw_fd_get(fd, out);
	if (out->kind != BW_FD_UNKNOWN)
		return out->kind;
	int saved = errno, family = 0, type = 0;
	socklen_t len = sizeof family;
	if (BW_REAL(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) == 0) {
		len = sizeof type;
		BW_REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &len);
		bw_fd_set_socket(fd, family, type);
	} else if (errno == ENOTSOCK) {
		bw_fd_set_other(fd);
	}
	errno = saved;
	bw_fd_get(fd, out);
	return out->kind;
}
