/* What we know about each descriptor: whether it is a socket, of which family and type,
 * and, once worked out, which rules govern its send, recv and accept calls. Lock-free and
 * allocation-free on lookup, so the read/write hooks learn that a descriptor is not a
 * socket, or that no rule applies to it, without a system call or a lock. */
#ifndef BW_FDTABLE_H
#define BW_FDTABLE_H

#include <stdint.h>
#include <sys/socket.h>

enum bw_fd_kind {
	BW_FD_UNKNOWN = 0,       /* never seen, or closed since: classify on demand */
	BW_FD_OTHER = 1,         /* known not to be a socket */
	BW_FD_SOCKET = 2
};

struct bw_fdinfo {
	enum bw_fd_kind kind;
	int family;              /* AF_* for sockets */
	int type;                /* SOCK_STREAM, SOCK_DGRAM, ... */
	int io_known;            /* the rule fields below have been worked out */
	int send_rule, recv_rule, accept_rule;   /* rule index + 1, 0: none */
	int timeouts;            /* we set SO_RCVTIMEO/SO_SNDTIMEO for the policy */
	int app_rcvtimeo, app_sndtimeo;          /* the program set its own */
	int watch;               /* a breaker waits for this connection's first byte */
	uint64_t key;            /* destination key (peer; for a listener, its address) */
};

/* Entries beyond this many descriptors are not tracked (they stay UNKNOWN). */
#define BW_FD_MAX (1 << 20)
#define BW_FD_PAGE_BITS 10

struct bw_fd_entry {
	uint64_t word;           /* packed bw_fdinfo; low 2 bits: kind */
	uint64_t key;
	uint16_t watch_rule;     /* connect rule + 1 whose breaker waits on this connection */
	uint16_t peer_family;    /* AF_INET or AF_INET6 when the peer below is known */
	uint16_t peer_port;      /* network order */
	uint16_t pad;
	unsigned char peer_addr[16];
};

extern struct bw_fd_entry *bw_fd_pages[BW_FD_MAX >> BW_FD_PAGE_BITS];

/* Layout of bw_fd_entry.word: kind 2 | family 8 | type 8 | io_known 1 | send rule 12 |
 * recv rule 12 | accept rule 12 | flags. fdtable.c packs and unpacks it. */
#define BW_FDW_IO_KNOWN 18
#define BW_FDW_SEND 19
#define BW_FDW_RECV 31
#define BW_FDW_RULE_BITS 12
#define BW_FDW_ACCEPT 43
#define BW_FDW_TIMEOUTS 55
#define BW_FDW_APP_RCVTIMEO 56
#define BW_FDW_APP_SNDTIMEO 57
#define BW_FDW_WATCH 58

#define BW_FDW_BIT(shift) (1ull << (shift))
#define BW_FDW_FIELD(shift) ((((uint64_t)1 << BW_FDW_RULE_BITS) - 1) << (shift))

enum bw_fd_dir { BW_FD_RECV = 0, BW_FD_SEND = 1 };
/* What an UNKNOWN descriptor means to a hook: send/recv and friends only ever see
 * sockets, so they ask; read and write see files mostly, and a socket they have never
 * seen made (created by a path we do not hook) is left alone. */
enum bw_fd_unknown { BW_FD_ASK = 0, BW_FD_PASS = 1 };

/* The hot path of every send and receive hook: can this call go straight to libc? Yes for
 * a descriptor known not to be a socket, and for a socket whose rules are known to leave
 * this direction alone and whose connection no breaker is watching. Two loads, no call,
 * no lock. */
static inline int bw_fd_untouched(int fd, enum bw_fd_dir dir, enum bw_fd_unknown unknown)
{
	if ((unsigned)fd >= BW_FD_MAX)
		return unknown;
	struct bw_fd_entry *p = __atomic_load_n(&bw_fd_pages[(unsigned)fd >> BW_FD_PAGE_BITS],
						__ATOMIC_ACQUIRE);
	uint64_t w = p ? __atomic_load_n(&p[(unsigned)fd & ((1u << BW_FD_PAGE_BITS) - 1)].word,
					 __ATOMIC_RELAXED) : 0;
	switch (w & 3) {
	case BW_FD_OTHER:
		return 1;
	case BW_FD_UNKNOWN:
		return unknown;
	}
	uint64_t busy = BW_FDW_FIELD(dir == BW_FD_SEND ? BW_FDW_SEND : BW_FDW_RECV) |
			BW_FDW_BIT(BW_FDW_WATCH);
	return (w & BW_FDW_BIT(BW_FDW_IO_KNOWN)) && !(w & busy);
}

/* The entry's word and key; 0 for a descriptor never seen. */
static inline uint64_t bw_fd_word(int fd, uint64_t *key)
{
	if ((unsigned)fd >= BW_FD_MAX)
		return *key = 0;
	struct bw_fd_entry *p = __atomic_load_n(&bw_fd_pages[(unsigned)fd >> BW_FD_PAGE_BITS],
						__ATOMIC_ACQUIRE);
	if (!p)
		return *key = 0;
	struct bw_fd_entry *s = &p[(unsigned)fd & ((1u << BW_FD_PAGE_BITS) - 1)];
	uint64_t w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
	*key = __atomic_load_n(&s->key, __ATOMIC_RELAXED);
	return w;
}

#define BW_FDW_GET(w, shift, bits) ((int)(((w) >> (shift)) & ((1ull << (bits)) - 1)))

static inline void bw_fd_unpack(uint64_t w, uint64_t key, struct bw_fdinfo *i)
{
	i->kind = (enum bw_fd_kind)BW_FDW_GET(w, 0, 2);
	i->family = BW_FDW_GET(w, 2, 8);
	i->type = BW_FDW_GET(w, 10, 8);
	i->io_known = BW_FDW_GET(w, BW_FDW_IO_KNOWN, 1);
	i->send_rule = BW_FDW_GET(w, BW_FDW_SEND, BW_FDW_RULE_BITS);
	i->recv_rule = BW_FDW_GET(w, BW_FDW_RECV, BW_FDW_RULE_BITS);
	i->accept_rule = BW_FDW_GET(w, BW_FDW_ACCEPT, BW_FDW_RULE_BITS);
	i->timeouts = BW_FDW_GET(w, BW_FDW_TIMEOUTS, 1);
	i->app_rcvtimeo = BW_FDW_GET(w, BW_FDW_APP_RCVTIMEO, 1);
	i->app_sndtimeo = BW_FDW_GET(w, BW_FDW_APP_SNDTIMEO, 1);
	i->watch = BW_FDW_GET(w, BW_FDW_WATCH, 1);
	i->key = key;
}

static inline void bw_fd_get(int fd, struct bw_fdinfo *out)
{
	uint64_t key;
	uint64_t w = bw_fd_word(fd, &key);
	bw_fd_unpack(w, key, out);
}
void bw_fd_put(int fd, const struct bw_fdinfo *in);
void bw_fd_set_socket(int fd, int family, int type);
void bw_fd_set_other(int fd);
void bw_fd_forget(int fd);                         /* -> UNKNOWN */
void bw_fd_forget_range(unsigned lo, unsigned hi);
void bw_fd_copy(int from, int to);                 /* dup: `to` is what `from` is */

/* A breaker waits for this connection's first byte before it counts the connect as a
 * success (rule: connect rule index + 1), or stops waiting (0). */
void bw_fd_watch(int fd, int rule);
/* The connect rule + 1 a watched connection reports to, clearing the watch; 0 if none. */
int bw_fd_unwatch(int fd);

/* The peer a socket's rules were matched against, kept for events: after a reset the
 * kernel no longer names it. Only IPv4 and IPv6 are kept. */
void bw_fd_set_peer(int fd, const struct sockaddr *sa, socklen_t len);
/* The kept peer into ss; its length, 0 if none. */
socklen_t bw_fd_peer(int fd, struct sockaddr_storage *ss);

/* Classify the descriptors the process already has (inherited across exec): afterwards
 * a descriptor the table does not know is not a socket. */
void bw_fd_scan_inherited(void);
/* Known facts, else ask the kernel (keeps errno). Returns the kind. */
enum bw_fd_kind bw_fd_classify_slow(int fd, struct bw_fdinfo *out);
static inline enum bw_fd_kind bw_fd_classify(int fd, struct bw_fdinfo *out)
{
	bw_fd_get(fd, out);
	return out->kind != BW_FD_UNKNOWN ? out->kind : bw_fd_classify_slow(fd, out);
}

#endif
