/* The descriptor table: 1024 pages of 1024 entries, each page mapped on first write. mmap
 * rather than malloc: a hook may be the first to touch a page from a signal handler. The
 * hot words and the cold entries live in pages of their own, so that the pass-through
 * test indexes an array of words. */
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
#include "hold.h"
#include "real.h"

#define PAGE_BITS BW_FD_PAGE_BITS
#define PAGE_FDS (1u << PAGE_BITS)

uint64_t *bw_fd_words[BW_FD_MAX >> BW_FD_PAGE_BITS];
struct bw_fd_cold *bw_fd_colds[BW_FD_MAX >> BW_FD_PAGE_BITS];

#define F(v, shift, bits) (((uint64_t)(v) & ((1ull << (bits)) - 1)) << (shift))

uint64_t bw_fd_pack(const struct bw_fdinfo *i)
{
	return F(i->kind, BW_FDW_KIND, BW_FDW_KIND_BITS) |
	       F(i->family, BW_FDW_FAMILY, BW_FDW_FAMILY_BITS) |
	       F(i->type, BW_FDW_TYPE, BW_FDW_TYPE_BITS) |
	       F(i->io_known, BW_FDW_IO_KNOWN, 1) | F(i->send_rule, BW_FDW_SEND, BW_FDW_RULE_BITS) |
	       F(i->recv_rule, BW_FDW_RECV, BW_FDW_RULE_BITS) |
	       F(i->accept_rule, BW_FDW_ACCEPT, BW_FDW_RULE_BITS) |
	       F(i->timeouts, BW_FDW_TIMEOUTS, 1) | F(i->app_rcvtimeo, BW_FDW_APP_RCVTIMEO, 1) |
	       F(i->app_sndtimeo, BW_FDW_APP_SNDTIMEO, 1) | F(i->watch, BW_FDW_WATCH, 1) |
	       F(i->gen, BW_FDW_GEN, BW_FDW_GEN_BITS);
}

/* The page holding fd in one of the two arrays, mapped on first write. */
static void *page(void **pages, int fd, size_t entry, int create)
{
	if (fd < 0 || fd >= BW_FD_MAX)
		return NULL;
	void **pp = &pages[(unsigned)fd >> PAGE_BITS];
	void *p = __atomic_load_n(pp, __ATOMIC_ACQUIRE);
	if (!p && create) {
		int saved = errno;
		void *m = mmap(NULL, PAGE_FDS * entry, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		errno = saved;
		if (m == MAP_FAILED)
			return NULL;
		void *expect = NULL;
		if (__atomic_compare_exchange_n(pp, &expect, m, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			p = m;
		} else {
			munmap(m, PAGE_FDS * entry);
			p = expect;
		}
	}
	return p;
}

static uint64_t *word_at(int fd, int create)
{
	uint64_t *p = page((void **)bw_fd_words, fd, sizeof(uint64_t), create);
	return p ? &p[(unsigned)fd & (PAGE_FDS - 1)] : NULL;
}

static struct bw_fd_cold *cold_at(int fd, int create)
{
	struct bw_fd_cold *p = page((void **)bw_fd_colds, fd, sizeof(struct bw_fd_cold), create);
	return p ? &p[(unsigned)fd & (PAGE_FDS - 1)] : NULL;
}


void bw_fd_get(int fd, struct bw_fdinfo *out)
{
	bw_fd_unpack(bw_fd_word(fd), out);
	out->key = bw_fd_key(fd);
}

/* The key is stored first: a reader that sees the new word sees its key. */
void bw_fd_put(int fd, const struct bw_fdinfo *in)
{
	struct bw_fd_cold *c = cold_at(fd, 1);
	uint64_t *w = word_at(fd, 1);
	if (!c || !w)
		return;
	__atomic_store_n(&c->key, in->key, __ATOMIC_RELAXED);
	__atomic_store_n(w, bw_fd_pack(in), __ATOMIC_RELEASE);
}

/* A new descriptor: nothing of what the number held before survives. */
static void fresh(int fd, const struct bw_fdinfo *i)
{
	bw_fd_forget(fd);
	bw_fd_put(fd, i);
}

void bw_fd_set_socket(int fd, int family, int type)
{
	struct bw_fdinfo i = { .kind = BW_FD_SOCKET, .family = family, .type = type };
	fresh(fd, &i);
}

void bw_fd_set_other(int fd)
{
	struct bw_fdinfo i = { .kind = BW_FD_OTHER };
	fresh(fd, &i);
}

/* Forgetting never maps a page: an absent page already reads as UNKNOWN. */
void bw_fd_forget(int fd)
{
	uint64_t *w = word_at(fd, 0);
	if (w)
		__atomic_store_n(w, 0, __ATOMIC_RELEASE);
	struct bw_fd_cold *c = cold_at(fd, 0);
	if (!c)
		return;
	__atomic_store_n(&c->key, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->watch_rule, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->peer_family, 0, __ATOMIC_RELAXED);
	void *none[3] = { NULL, NULL, NULL };
	bw_fd_pin_set(fd, BW_FD_RECV, none);
	bw_fd_pin_set(fd, BW_FD_SEND, none);
	if (__atomic_load_n(&c->hold, __ATOMIC_RELAXED))
		bw_hold_unref(__atomic_exchange_n(&c->hold, 0, __ATOMIC_ACQ_REL));
}

uint32_t bw_fd_hold(int fd)
{
	struct bw_fd_cold *c = cold_at(fd, 0);
	return c ? __atomic_load_n(&c->hold, __ATOMIC_ACQUIRE) : 0;
}

uint32_t bw_fd_hold_set(int fd, uint32_t hold)
{
	struct bw_fd_cold *c = cold_at(fd, hold != 0);
	return c ? __atomic_exchange_n(&c->hold, hold, __ATOMIC_ACQ_REL) : 0;
}

void bw_fd_forget_holds(void)
{
	for (unsigned pg = 0; pg < (BW_FD_MAX >> PAGE_BITS); pg++) {
		struct bw_fd_cold *p = __atomic_load_n(&bw_fd_colds[pg], __ATOMIC_ACQUIRE);
		for (unsigned i = 0; p && i < PAGE_FDS; i++)
			__atomic_store_n(&p[i].hold, 0, __ATOMIC_RELAXED);
	}
}

/* The lock pointer goes last, and is what readers test: a pin with a lock is whole. */
void bw_fd_pin_set(int fd, enum bw_fd_dir dir, void *const in[3])
{
	struct bw_fd_cold *c = cold_at(fd, in[0] != NULL);
	if (!c)
		return;
	__atomic_store_n(&c->pin[dir][0], NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&c->pin[dir][1], in[1], __ATOMIC_RELAXED);
	__atomic_store_n(&c->pin[dir][2], in[2], __ATOMIC_RELAXED);
	__atomic_store_n(&c->pin[dir][0], in[0], __ATOMIC_RELEASE);
}

void bw_fd_forget_range(unsigned lo, unsigned hi)
{
	if (hi >= BW_FD_MAX)
		hi = BW_FD_MAX - 1;
	for (unsigned fd = lo; fd <= hi && lo < BW_FD_MAX; fd++) {
		if ((fd & (PAGE_FDS - 1)) == 0 &&
		    !__atomic_load_n(&bw_fd_words[fd >> PAGE_BITS], __ATOMIC_ACQUIRE) &&
		    !__atomic_load_n(&bw_fd_colds[fd >> PAGE_BITS], __ATOMIC_ACQUIRE)) {
			fd += PAGE_FDS - 1;
			continue;
		}
		bw_fd_forget((int)fd);
	}
}

void bw_fd_expire_gen(unsigned g)
{
	uint64_t known = BW_FDW_BIT(BW_FDW_IO_KNOWN);
	uint64_t stale = known | (uint64_t)bw_fd_gen(g) << BW_FDW_GEN;
	for (unsigned pg = 0; pg < (BW_FD_MAX >> PAGE_BITS); pg++) {
		uint64_t *p = __atomic_load_n(&bw_fd_words[pg], __ATOMIC_ACQUIRE);
		for (unsigned i = 0; p && i < PAGE_FDS; i++) {
			uint64_t w = __atomic_load_n(&p[i], __ATOMIC_RELAXED);
			/* a word rewritten meanwhile was learned afresh: left as it is */
			while ((w & (known | BW_FDW_GEN_MASK)) == stale &&
			       !__atomic_compare_exchange_n(&p[i], &w, w & ~known, 0,
							   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
				;
		}
	}
}

/* A duplicate is the same socket: same rules, same peer, same watch, same slot. The
 * share of `to` is taken before what `to` was lets go of its own: dup2 of a descriptor
 * onto a copy of itself gives nothing back. */
void bw_fd_copy(int from, int to)
{
	uint64_t w = bw_fd_word(from);
	struct bw_fd_cold *f = cold_at(from, 0);
	if (!w || !f) {
		bw_fd_forget(to);
		return;
	}
	struct bw_fd_cold *t = cold_at(to, 1);
	uint64_t *tw = word_at(to, 1);
	if (!t || !tw)
		return;
	uint32_t hold = __atomic_load_n(&f->hold, __ATOMIC_ACQUIRE);
	if (hold)
		bw_hold_ref(hold);
	uint32_t was = __atomic_exchange_n(&t->hold, hold, __ATOMIC_ACQ_REL);
	if (was)
		bw_hold_unref(was);
	__atomic_store_n(tw, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->key, __atomic_load_n(&f->key, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	__atomic_store_n(&t->watch_rule, __atomic_load_n(&f->watch_rule, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	t->watch_slow = f->watch_slow;
	t->watch_t0 = f->watch_t0;
	t->peer_family = f->peer_family;
	t->peer_port = f->peer_port;
	memcpy(t->peer_addr, f->peer_addr, sizeof t->peer_addr);
	__atomic_store_n(tw, w, __ATOMIC_RELEASE);
}

int64_t bw_fd_watch_t0(int fd, int *flags)
{
	struct bw_fd_cold *c = cold_at(fd, 0);
	if (flags)
		*flags = c ? __atomic_load_n(&c->watch_slow, __ATOMIC_RELAXED) : 0;
	return c ? __atomic_load_n(&c->watch_t0, __ATOMIC_RELAXED) : 0;
}

void bw_fd_watch_sent(int fd, int64_t now)
{
	struct bw_fd_cold *c = cold_at(fd, 0);
	if (!c || (__atomic_load_n(&c->watch_slow, __ATOMIC_RELAXED) & BW_WATCH_SENT))
		return;
	__atomic_store_n(&c->watch_t0, now, __ATOMIC_RELAXED);
	__atomic_or_fetch(&c->watch_slow, (uint16_t)BW_WATCH_SENT, __ATOMIC_RELEASE);
}

void bw_fd_watch(int fd, int rule, int slow, int64_t t0)
{
	struct bw_fd_cold *c = cold_at(fd, rule != 0);
	uint64_t *w = word_at(fd, rule != 0);
	if (!c || !w)
		return;
	uint64_t bit = BW_FDW_BIT(BW_FDW_WATCH);
	__atomic_store_n(&c->watch_rule, (uint16_t)rule, __ATOMIC_RELAXED);
	__atomic_store_n(&c->watch_slow, (uint16_t)(slow ? BW_WATCH_SLOW : 0), __ATOMIC_RELAXED);
	__atomic_store_n(&c->watch_t0, t0, __ATOMIC_RELAXED);
	if (rule)
		__atomic_or_fetch(w, bit, __ATOMIC_RELEASE);
	else
		__atomic_and_fetch(w, ~bit, __ATOMIC_RELEASE);
}

int bw_fd_unwatch(int fd, int *slow)
{
	uint64_t *w = word_at(fd, 0);
	struct bw_fd_cold *c = cold_at(fd, 0);
	uint64_t bit = BW_FDW_BIT(BW_FDW_WATCH);
	if (slow)
		*slow = 0;
	if (!w || !c || !(__atomic_fetch_and(w, ~bit, __ATOMIC_ACQ_REL) & bit))
		return 0;
	if (slow)
		*slow = __atomic_load_n(&c->watch_slow, __ATOMIC_RELAXED) & BW_WATCH_SLOW;
	return __atomic_load_n(&c->watch_rule, __ATOMIC_RELAXED);
}

void bw_fd_set_peer(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct bw_fd_cold *s = cold_at(fd, 1);
	if (!s)
		return;
	__atomic_store_n(&s->peer_family, 0, __ATOMIC_RELEASE);
	uint32_t a[4];
	uint16_t port, family;
	if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		port = in->sin_port;
		memcpy(a, &in->sin_addr, 4);
		family = AF_INET;
	} else if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		port = in6->sin6_port;
		memcpy(a, &in6->sin6_addr, 16);
		family = AF_INET6;
	} else {
		return;
	}
	__atomic_store_n(&s->peer_port, port, __ATOMIC_RELAXED);
	for (int i = 0; i < (family == AF_INET ? 1 : 4); i++)
		__atomic_store_n(&s->peer_addr[i], a[i], __ATOMIC_RELAXED);
	__atomic_store_n(&s->peer_family, family, __ATOMIC_RELEASE);
}

socklen_t bw_fd_peer(int fd, struct sockaddr_storage *ss)
{
	struct bw_fd_cold *s = cold_at(fd, 0);
	memset(ss, 0, sizeof *ss);
	if (!s)
		return 0;
	uint16_t family = __atomic_load_n(&s->peer_family, __ATOMIC_ACQUIRE);
	uint32_t a[4];
	/* acquire loads: the family's second reading cannot move before them */
	uint16_t port = __atomic_load_n(&s->peer_port, __ATOMIC_ACQUIRE);
	for (int i = 0; i < 4; i++)
		a[i] = __atomic_load_n(&s->peer_addr[i], __ATOMIC_ACQUIRE);
	/* rewritten meanwhile: no peer rather than a mixed one */
	if (__atomic_load_n(&s->peer_family, __ATOMIC_RELAXED) != family)
		return 0;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = port;
		memcpy(&in->sin_addr, a, 4);
		return sizeof *in;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = port;
		memcpy(&in6->sin6_addr, a, 16);
		return sizeof *in6;
	}
	return 0;
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
