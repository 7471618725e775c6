/* What we know about each descriptor: whether it is a socket, of which family and type,
 * and, once worked out under the loaded policy, which rules govern its send, recv and
 * accept calls. Lock-free and allocation-free on lookup, so the read/write hooks learn
 * that a descriptor is not a socket, or that no rule applies to it, with a few loads and
 * no call (design.md §3).
 *
 * Two paged arrays indexed by descriptor: one hot word per descriptor, which is all the
 * pass-through test reads, and a cold entry with the destination key, the peer kept for
 * events and the connect rule a breaker watch reports to. */
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
	unsigned gen;            /* policy generation the rules were worked out under */
	uint64_t key;            /* destination key (peer; for a listener, its address) */
};

/* Entries beyond this many descriptors are not tracked (they stay UNKNOWN). */
#define BW_FD_MAX (1 << 20)
#define BW_FD_PAGE_BITS 10
#define BW_FD_PAGE_MASK ((1u << BW_FD_PAGE_BITS) - 1)

struct bw_fd_cold {
	uint64_t key;
	uint16_t watch_rule;     /* connect rule + 1 whose breaker waits on this connection */
	/* The peer, for events: AF_INET or AF_INET6 when known. Threads may race on a
	 * descriptor number (one closes it, another's socket() gets it): written and read
	 * word by word, atomically, with the family written last and read around the rest,
	 * so that a reader sees a whole peer or none (one rewritten in between with the same
	 * family could mix two; it names an event's destination, nothing more). */
	uint16_t peer_family;
	uint16_t peer_port;      /* network order */
	uint16_t watch_slow;     /* BW_WATCH_SLOW | BW_WATCH_SENT */
	uint32_t peer_addr[4];
	void *pin[2][3];         /* per direction: a store cell held on to (store.h bw_pin) */
	/* The bulkhead slot the socket's connection holds (hold.h): 0 none. Its duplicates
	 * in this process share it; the last of them to close gives it back. */
	uint32_t hold;
	/* For trip.slow: when the connection's wait for its answer began (the engine's
	 * monotonic clock): the connect's start, then its first send. */
	int64_t watch_t0;
};

#define BW_WATCH_SLOW 1          /* the connect itself was slow */
#define BW_WATCH_SENT 2          /* the program sent on it: watch_t0 is that send */

extern uint64_t *bw_fd_words[BW_FD_MAX >> BW_FD_PAGE_BITS];
extern struct bw_fd_cold *bw_fd_colds[BW_FD_MAX >> BW_FD_PAGE_BITS];

/* Layout of the hot word:
 *   kind 2 | family 6 | type 4 | io_known 1 | send rule 12 | recv rule 12 |
 *   accept rule 12 | timeouts 1 | app_rcvtimeo 1 | app_sndtimeo 1 | watch 1 | gen 11 */
#define BW_FDW_KIND 0
#define BW_FDW_KIND_BITS 2
#define BW_FDW_FAMILY 2
#define BW_FDW_FAMILY_BITS 6
#define BW_FDW_TYPE 8
#define BW_FDW_TYPE_BITS 4
#define BW_FDW_IO_KNOWN 12
#define BW_FDW_SEND 13
#define BW_FDW_RECV 25
#define BW_FDW_RULE_BITS 12
#define BW_FDW_ACCEPT 37
#define BW_FDW_TIMEOUTS 49
#define BW_FDW_APP_RCVTIMEO 50
#define BW_FDW_APP_SNDTIMEO 51
#define BW_FDW_WATCH 52
#define BW_FDW_GEN 53
#define BW_FDW_GEN_BITS 11

#define BW_FDW_BIT(shift) (1ull << (shift))
#define BW_FDW_FIELD(shift) ((((uint64_t)1 << BW_FDW_RULE_BITS) - 1) << (shift))
#define BW_FDW_GEN_MASK ((((uint64_t)1 << BW_FDW_GEN_BITS) - 1) << BW_FDW_GEN)
#define BW_FDW_GET(w, shift, bits) ((int)(((w) >> (shift)) & ((1ull << (bits)) - 1)))

/* The generation is the word's top field: hot >> BW_FDW_GEN is it, with no mask. */
_Static_assert(BW_FDW_GEN + BW_FDW_GEN_BITS == 64, "the generation ends the word");
#define BW_GENS (1u << BW_FDW_GEN_BITS)

/* A policy generation as the words hold it: its low bits, so it wraps every BW_GENS
 * loads (bw_fd_expire_gen keeps a wrapped one from passing for current). */
static inline unsigned bw_fd_gen(unsigned gen)
{
	return gen & (BW_GENS - 1);
}

enum bw_fd_dir { BW_FD_RECV = 0, BW_FD_SEND = 1 };

/* What the hot path reads before anything else: the ops that have rules in this process
 * (all of them until the library is ready, so that the first call initializes it; none
 * in pass-through), BW_HOT_READY, and the loaded policy's generation in the bits the
 * descriptor words use. */
extern uint64_t bw_hot;
#define BW_HOT_OPS 0xffffu
#define BW_HOT_READY (1u << 16)
_Static_assert(BW_HOT_READY < ((uint64_t)1 << BW_FDW_GEN), "bw_hot's fields do not overlap");

/* The word of fd; 0 for a descriptor never seen. */
static inline uint64_t bw_fd_word(int fd)
{
	if ((unsigned)fd >= BW_FD_MAX)
		return 0;
	uint64_t *p = __atomic_load_n(&bw_fd_words[(unsigned)fd >> BW_FD_PAGE_BITS],
				      __ATOMIC_ACQUIRE);
	return p ? __atomic_load_n(&p[(unsigned)fd & BW_FD_PAGE_MASK], __ATOMIC_ACQUIRE) : 0;
}

/* The hot path of every send and receive hook: can this call go straight to libc? Yes
 * (0) when no rule covers the op in this process, for a descriptor known not to be a
 * socket, and for a socket whose rules, worked out under the policy now loaded, leave
 * this direction alone and whose connection no breaker is watching. Else the
 * descriptor's word, for the hook's slow path to go on from without looking again
 * (BW_FDW_ASK for a descriptor never seen). `unseen` is the answer for a descriptor never
 * seen: send/recv ask, read/write, which see files mostly, pass. A few loads, no call, no
 * lock. */
enum bw_fd_unseen { BW_UNSEEN_ASK, BW_UNSEEN_PASS };
#define BW_FDW_ASK BW_FDW_BIT(BW_FDW_WATCH)   /* nonzero, and not a learned socket's word */
static inline uint64_t bw_fd_look(int fd, unsigned opbit, enum bw_fd_dir dir,
				  enum bw_fd_unseen unseen)
{
	uint64_t hot = __atomic_load_n(&bw_hot, __ATOMIC_RELAXED);
	if (!(hot & opbit))
		return 0;
	if ((unsigned)fd >= BW_FD_MAX)
		return unseen == BW_UNSEEN_PASS ? 0 : BW_FDW_ASK;
	uint64_t *p = __atomic_load_n(&bw_fd_words[(unsigned)fd >> BW_FD_PAGE_BITS],
				      __ATOMIC_ACQUIRE);
	uint64_t w = p ? __atomic_load_n(&p[(unsigned)fd & BW_FD_PAGE_MASK], __ATOMIC_ACQUIRE)
		       : 0;
	switch (BW_FDW_GET(w, BW_FDW_KIND, BW_FDW_KIND_BITS)) {
	case BW_FD_OTHER:
		return 0;
	case BW_FD_UNKNOWN:
		return unseen == BW_UNSEEN_PASS ? 0 : w ? w : BW_FDW_ASK;
	}
	uint64_t look = BW_FDW_BIT(BW_FDW_IO_KNOWN) | BW_FDW_BIT(BW_FDW_WATCH) | BW_FDW_GEN_MASK |
			BW_FDW_FIELD(dir == BW_FD_SEND ? BW_FDW_SEND : BW_FDW_RECV);
	return (w & look) == (BW_FDW_BIT(BW_FDW_IO_KNOWN) | (hot & BW_FDW_GEN_MASK)) ? 0 : w;
}

/* The rules of w are those of the policy generation in hot. */
static inline int bw_fd_current(uint64_t w, uint64_t hot)
{
	return (w & BW_FDW_BIT(BW_FDW_IO_KNOWN)) && !((w ^ hot) & BW_FDW_GEN_MASK);
}

/* The rules of w were worked out under generation gen: a word is read with the engine
 * of its own generation, never with one loaded since (its rule numbers are another
 * policy's). */
static inline int bw_fd_current_gen(uint64_t w, unsigned gen)
{
	return bw_fd_current(w, (uint64_t)bw_fd_gen(gen) << BW_FDW_GEN);
}

static inline void bw_fd_unpack(uint64_t w, struct bw_fdinfo *i)
{
	i->kind = (enum bw_fd_kind)BW_FDW_GET(w, BW_FDW_KIND, BW_FDW_KIND_BITS);
	i->family = BW_FDW_GET(w, BW_FDW_FAMILY, BW_FDW_FAMILY_BITS);
	i->type = BW_FDW_GET(w, BW_FDW_TYPE, BW_FDW_TYPE_BITS);
	i->io_known = BW_FDW_GET(w, BW_FDW_IO_KNOWN, 1);
	i->send_rule = BW_FDW_GET(w, BW_FDW_SEND, BW_FDW_RULE_BITS);
	i->recv_rule = BW_FDW_GET(w, BW_FDW_RECV, BW_FDW_RULE_BITS);
	i->accept_rule = BW_FDW_GET(w, BW_FDW_ACCEPT, BW_FDW_RULE_BITS);
	i->timeouts = BW_FDW_GET(w, BW_FDW_TIMEOUTS, 1);
	i->app_rcvtimeo = BW_FDW_GET(w, BW_FDW_APP_RCVTIMEO, 1);
	i->app_sndtimeo = BW_FDW_GET(w, BW_FDW_APP_SNDTIMEO, 1);
	i->watch = BW_FDW_GET(w, BW_FDW_WATCH, 1);
	i->gen = (unsigned)BW_FDW_GET(w, BW_FDW_GEN, BW_FDW_GEN_BITS);
}

/* The entry of fd (key included); a descriptor never seen reads as UNKNOWN. */
void bw_fd_get(int fd, struct bw_fdinfo *out);
static inline uint64_t bw_fd_key(int fd)
{
	if ((unsigned)fd >= BW_FD_MAX)
		return 0;
	struct bw_fd_cold *p = __atomic_load_n(&bw_fd_colds[(unsigned)fd >> BW_FD_PAGE_BITS],
					       __ATOMIC_ACQUIRE);
	return p ? __atomic_load_n(&p[(unsigned)fd & BW_FD_PAGE_MASK].key, __ATOMIC_RELAXED) : 0;
}
uint64_t bw_fd_pack(const struct bw_fdinfo *in);
void bw_fd_put(int fd, const struct bw_fdinfo *in);
void bw_fd_set_socket(int fd, int family, int type);
void bw_fd_set_other(int fd);
/* -> UNKNOWN: the descriptor was closed, or its number reused behind our back; its share
 * of a bulkhead slot goes with it. */
void bw_fd_forget(int fd);
void bw_fd_forget_range(unsigned lo, unsigned hi);
/* Before generation bits g are published anew (BW_GENS loads after they last were): a
 * socket still learned under them forgets its rules, which belong to a policy long gone,
 * and learns them again at its next call. */
void bw_fd_expire_gen(unsigned g);
/* dup: `to` is what `from` is, and shares its bulkhead slot; what `to` was is gone,
 * and its share of a slot with it (bw_fd_forget). */
void bw_fd_copy(int from, int to);

/* A breaker waits for this connection's first byte before it counts the connect as a
 * success (rule: connect rule index + 1; slow: the connect was slow), or stops waiting
 * (0). */
void bw_fd_watch(int fd, int rule, int slow, int64_t t0);
/* The watch's start (0: none) and BW_WATCH_* flags, read without clearing it. */
int64_t bw_fd_watch_t0(int fd, int *flags);
/* The program sends on a watched connection: the first send starts the wait for the
 * answer anew (a pooled connection may sit idle long before its first request). */
void bw_fd_watch_sent(int fd, int64_t now);
/* The connect rule + 1 a watched connection reports to, clearing the watch; 0 if none.
 * Only one caller ever gets it, so a connection is judged once. *slow (may be NULL): its
 * connect was slow. */
int bw_fd_unwatch(int fd, int *slow);

/* The bulkhead slot fd holds (a hold.h number, 0 none). bw_fd_hold_set replaces it and
 * returns what it held, for the caller to let go of. */
uint32_t bw_fd_hold(int fd);
uint32_t bw_fd_hold_set(int fd, uint32_t hold);
/* In a forked child whose slots are its parent's (a group's file): every descriptor
 * forgets the slot it held, without giving it back. */
void bw_fd_forget_holds(void);

/* The peer a socket's rules were matched against, kept for events: after a reset the
 * kernel no longer names it. Only IPv4 and IPv6 are kept. */
void bw_fd_set_peer(int fd, const struct sockaddr *sa, socklen_t len);
/* The kept peer into ss; its length, 0 if none. */
socklen_t bw_fd_peer(int fd, struct sockaddr_storage *ss);

/* The store cell a direction of the socket holds on to (three pointers, opaque here);
 * all NULL when none. Cleared whenever the socket's rules are worked out anew. */
/* The cold entry of fd, NULL when its page was never written. */
static inline struct bw_fd_cold *bw_fd_cold_of(int fd)
{
	struct bw_fd_cold *p = (unsigned)fd < BW_FD_MAX ?
		__atomic_load_n(&bw_fd_colds[(unsigned)fd >> BW_FD_PAGE_BITS], __ATOMIC_ACQUIRE) :
		NULL;
	return p ? &p[(unsigned)fd & BW_FD_PAGE_MASK] : NULL;
}

static inline void bw_fd_pin_of(const struct bw_fd_cold *c, enum bw_fd_dir dir, void *out[3])
{
	void *const *pin = c ? c->pin[dir] : NULL;
	out[0] = pin ? __atomic_load_n(&pin[0], __ATOMIC_ACQUIRE) : NULL;
	out[1] = out[0] ? __atomic_load_n(&pin[1], __ATOMIC_RELAXED) : NULL;
	out[2] = out[0] ? __atomic_load_n(&pin[2], __ATOMIC_RELAXED) : NULL;
}

static inline void bw_fd_pin_get(int fd, enum bw_fd_dir dir, void *out[3])
{
	bw_fd_pin_of(bw_fd_cold_of(fd), dir, out);
}
void bw_fd_pin_set(int fd, enum bw_fd_dir dir, void *const in[3]);

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
