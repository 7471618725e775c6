/* Names this process resolved, by address. Writers (getaddrinfo hooks) serialize on a
 * spin flag; readers (connect hooks, possibly in a signal handler) never wait: each slot
 * has a sequence number and a torn read is simply retried a few times, then ignored. */
#include <string.h>
#include <netinet/in.h>
#include <sys/un.h>
#include "names.h"

struct slot {
	unsigned seq;            /* odd while being written */
	int family;
	unsigned char addr[16];
	char name[BW_NAME_LEN];
};

static struct slot slots[BW_NAMES_SLOTS];
static unsigned next_slot;
static int writer;

static int addr_of(const struct sockaddr *sa, socklen_t len, int *family, unsigned char *addr)
{
	if (!sa)
		return -1;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memset(addr, 0, 16);
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		return -1;
	}
	*family = sa->sa_family;
	return 0;
}

static struct slot *find_slot(int family, const unsigned char *addr)
{
	for (unsigned i = 0; i < BW_NAMES_SLOTS; i++) {
		struct slot *s = &slots[i];
		if (s->family == family && memcmp(s->addr, addr, 16) == 0)
			return s;
	}
	return NULL;
}

/* Slot contents are written and read with byte-wise atomics: a reader racing a writer
 * sees a torn copy, which the sequence check then throws away. */
static void put_bytes(unsigned char *dst, const void *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		__atomic_store_n(&dst[i], ((const unsigned char *)src)[i], __ATOMIC_RELAXED);
}

static void get_bytes(void *dst, const unsigned char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((unsigned char *)dst)[i] = __atomic_load_n(&src[i], __ATOMIC_ACQUIRE);
}

void bw_names_remember(const char *name, const struct sockaddr *sa, socklen_t len)
{
	int family;
	unsigned char addr[16];
	if (!name || addr_of(sa, len, &family, addr) < 0)
		return;
	char copy[BW_NAME_LEN] = { 0 };
	strncpy(copy, name, BW_NAME_LEN - 1);
	while (__atomic_exchange_n(&writer, 1, __ATOMIC_ACQUIRE))
		;
	struct slot *s = find_slot(family, addr);
	if (!s)
		s = &slots[next_slot++ % BW_NAMES_SLOTS];
	__atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&s->family, family, __ATOMIC_RELAXED);
	put_bytes(s->addr, addr, 16);
	put_bytes((unsigned char *)s->name, copy, BW_NAME_LEN);
	__atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&writer, 0, __ATOMIC_RELEASE);
}

int bw_names_lookup(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap)
{
	int family;
	unsigned char addr[16];
	if (cap == 0 || addr_of(sa, len, &family, addr) < 0)
		return -1;
	for (unsigned i = 0; i < BW_NAMES_SLOTS; i++) {
		struct slot *s = &slots[i];
		for (int tries = 0; tries < 4; tries++) {
			unsigned seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
			if (seq & 1)
				continue;
			unsigned char a[16];
			char name[BW_NAME_LEN];
			int fam = __atomic_load_n(&s->family, __ATOMIC_ACQUIRE);
			get_bytes(a, s->addr, 16);
			int hit = fam == family && memcmp(a, addr, 16) == 0;
			if (hit)
				get_bytes(name, (unsigned char *)s->name, BW_NAME_LEN);
			if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != seq)
				continue;
			if (!hit)
				break;
			size_t n = strnlen(name, BW_NAME_LEN - 1);
			if (n >= cap)
				n = cap - 1;
			memcpy(buf, name, n);
			buf[n] = '\0';
			return 0;
		}
	}
	return -1;
}

void bw_names_reset(void)
{
	memset(slots, 0, sizeof slots);
	next_slot = 0;
	writer = 0;
}

void bw_names_after_fork(void)
{
	__atomic_store_n(&writer, 0, __ATOMIC_RELEASE);
}
