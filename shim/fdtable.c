/* The descriptor table: 1024 pages of 1024 entries, each page mapped on first write. mmap
 * rather than malloc: a hook may be the first to touch a page from a signal handler. An
 * entry is one packed word plus a key; the word is what lookups test. */
#include <errno.h>
#include <sys/mman.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "fdtable.h"
#include "real.h"

#define PAGE_BITS BW_FD_PAGE_BITS
#define PAGE_FDS (1u << PAGE_BITS)

struct bw_fd_entry *bw_fd_pages[BW_FD_MAX >> BW_FD_PAGE_BITS];

/* word: kind 2 | family 8 | type 8 | io_known 1 | send 12 | recv 12 | accept 12 |
 * timeouts 1 | app_rcvtimeo 1 | app_sndtimeo 1 */
#define F(v, shift, bits) (((uint64_t)(v) & ((1ull << (bits)) - 1)) << (shift))

static uint64_t pack(const struct bw_fdinfo *i)
{
	return F(i->kind, 0, 2) | F(i->family, 2, 8) | F(i->type, 10, 8) |
	       F(i->io_known, BW_FDW_IO_KNOWN, 1) | F(i->send_rule, BW_FDW_SEND, BW_FDW_RULE_BITS) |
	       F(i->recv_rule, BW_FDW_RECV, BW_FDW_RULE_BITS) |
	       F(i->accept_rule, BW_FDW_ACCEPT, BW_FDW_RULE_BITS) | F(i->timeouts, 55, 1) |
	       F(i->app_rcvtimeo, 56, 1) | F(i->app_sndtimeo, 57, 1);
}

static struct bw_fd_entry *slot(int fd, int create)
{
	if (fd < 0 || fd >= BW_FD_MAX)
		return NULL;
	struct bw_fd_entry **pp = &bw_fd_pages[(unsigned)fd >> PAGE_BITS];
	struct bw_fd_entry *p = __atomic_load_n(pp, __ATOMIC_ACQUIRE);
	if (!p && create) {
		int saved = errno;
		void *m = mmap(NULL, PAGE_FDS * sizeof(struct bw_fd_entry), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		errno = saved;
		if (m == MAP_FAILED)
			return NULL;
		struct bw_fd_entry *expect = NULL;
		if (__atomic_compare_exchange_n(pp, &expect, (struct bw_fd_entry *)m, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			p = m;
		} else {
			munmap(m, PAGE_FDS * sizeof(struct bw_fd_entry));
			p = expect;
		}
	}
	return p ? &p[(unsigned)fd & (PAGE_FDS - 1)] : NULL;
}

/* The key is stored first: a reader that sees the new word sees its key. */
static void store(int fd, uint64_t w, uint64_t key, int create)
{
	struct bw_fd_entry *s = slot(fd, create);
	if (!s)
		return;
	__atomic_store_n(&s->key, key, __ATOMIC_RELAXED);
	__atomic_store_n(&s->word, w, __ATOMIC_RELEASE);
}

void bw_fd_put(int fd, const struct bw_fdinfo *in)
{
	store(fd, pack(in), in->key, 1);
}

void bw_fd_set_socket(int fd, int family, int type)
{
	struct bw_fdinfo i = { .kind = BW_FD_SOCKET, .family = family, .type = type };
	bw_fd_put(fd, &i);
}

void bw_fd_set_other(int fd)
{
	struct bw_fdinfo i = { .kind = BW_FD_OTHER };
	bw_fd_put(fd, &i);
}

/* Forgetting never maps a page: an absent page already reads as UNKNOWN. */
void bw_fd_forget(int fd)
{
	store(fd, 0, 0, 0);
}

void bw_fd_forget_range(unsigned lo, unsigned hi)
{
	if (hi >= BW_FD_MAX)
		hi = BW_FD_MAX - 1;
	for (unsigned fd = lo; fd <= hi && lo < BW_FD_MAX; fd++) {
		if ((fd & (PAGE_FDS - 1)) == 0 &&
		    !__atomic_load_n(&bw_fd_pages[fd >> PAGE_BITS], __ATOMIC_ACQUIRE)) {
			fd += PAGE_FDS - 1;
			continue;
		}
		bw_fd_forget((int)fd);
	}
}

void bw_fd_copy(int from, int to)
{
	struct bw_fdinfo i;
	bw_fd_get(from, &i);
	if (i.kind == BW_FD_UNKNOWN)
		bw_fd_forget(to);
	else
		bw_fd_put(to, &i);
}

enum bw_fd_kind bw_fd_classify_slow(int fd, struct bw_fdinfo *out)
{
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

/* getdents64 into a stack buffer: opendir would allocate, and this runs in a constructor
 * that may come before the program's allocator is ready. */
void bw_fd_scan_inherited(void)
{
	int saved = errno;
	int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		errno = saved;
		return;
	}
	char buf[4096];
	long n;
	while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			int fd = atoi(d->d_name);
			struct bw_fdinfo fi;
			char link[32];
			bw_fd_get(fd, &fi);
			if (fd == dir || fi.kind != BW_FD_UNKNOWN)
				continue;
			/* the link names a socket as "socket:[inode]": only sockets are asked
			 * more, and the program's other descriptors are not touched at all */
			ssize_t len = readlinkat(dir, d->d_name, link, sizeof link - 1);
			if (len >= 7 && memcmp(link, "socket:", 7) == 0)
				bw_fd_classify(fd, &fi);
			else if (len > 0)
				bw_fd_set_other(fd);
		}
	}
	BW_REAL(close)(dir);
	errno = saved;
}
