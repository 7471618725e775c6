/* The shared path of every send and receive hook: find the descriptor's rule (worked out
 * once per socket and cached in the fd table), then run the transfer through the engine:
 * byte limits, retries of safe errors, timeouts, breaker accounting. */
#ifndef BW_SOCKIO_H
#define BW_SOCKIO_H

#include <sys/socket.h>
#include <stdint.h>
#include <sys/types.h>
#include "clock.h"
#include "engine.h"
#include "store.h"
#include "fdtable.h"
#include "reload.h"
#include "state.h"

/* A length not worked out yet: it lies in a scatter list, read only when a byte limit or
 * a partial transfer needs it (and then through the kernel: the program's pointers may
 * be bad, and the real call's EFAULT is the answer to that). */
#define BW_LEN_ASK SIZE_MAX

struct bw_xfer {
	int op;                  /* BW_OP_SEND or BW_OP_RECV */
	const char *call;
	int fd;
	uint64_t word;           /* fd's table word as the hook looked it up (bw_fd_look) */
	size_t len;              /* bytes asked for; 0 when not known; BW_LEN_ASK: measure */
	size_t (*measure)(struct bw_xfer *x);   /* the length, or BW_LEN_ASK if unreadable */
	int shorten;             /* a send whose length may be cut (plain buffer, stream) */
	int dontwait;            /* MSG_DONTWAIT: EAGAIN is the program's own */
	int nosignal;            /* MSG_NOSIGNAL: an EPIPE raises no SIGPIPE */
	int empty;               /* this call receives with no room (an injected end of file) */
	/* A send from one plain buffer (send, sendto, write): its bytes and address, for a
	 * datagram an injected reorder holds back; data NULL for any other call. */
	const void *data;
	const struct sockaddr *to;
	socklen_t tolen;
	/* The real call with at most `len` bytes; returns its result, errno as it left it. */
	ssize_t (*fn)(struct bw_xfer *x, size_t len);
	ssize_t result;
};

enum bw_peer {
	BW_PEER_ASK,             /* sa is NULL: ask the kernel for the peer, else own address */
	BW_PEER_ACCEPTED,        /* sa is NULL: a socket just accepted; ask for its peer */
	BW_PEER_CONNECTED        /* sa is the peer the socket is connected (or connecting) to */
};

/* Rules, peer and timeouts for a socket whose peer (or, for a listener, own address) is
 * sa. Timeouts go on connected sockets only. Updates *fi and the table. */
void bw_sock_learn(struct bw_engine *e, int fd, struct bw_fdinfo *fi, const struct sockaddr *sa,
		   socklen_t len, enum bw_peer how);

/* Run one transfer; the hook returns this. */
ssize_t bw_xfer_run(struct bw_engine *e, struct bw_xfer *x);
/* The real call of a plain transfer failed with err: what the transfer ends with. */
ssize_t bw_xfer_failed(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int i, int err);
/* A transfer whose rule has only a byte bucket to apply before its one attempt, in full
 * (bw_xfer_paced below is its usual case, inline). */
ssize_t bw_xfer_paced_slow(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int i);
/* Give back n tokens of rule i's byte bucket that a send took and did not use. */
void bw_xfer_give(struct bw_engine *e, struct bw_xfer *x, int i, uint64_t key, double n);
/* What a receive brought in and its pinned cell could not pay for waits its tokens. */
void bw_xfer_pace_after(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int i, size_t got);

/* The rest of a transfer's description, which only calls that fail or have more to do
 * than count themselves read. */
static inline void bw_xfer_more(struct bw_xfer *x, int shorten, int flags)
{
	x->shorten = shorten;
	x->dontwait = (flags & MSG_DONTWAIT) != 0;
	x->nosignal = (flags & MSG_NOSIGNAL) != 0;
	x->empty = 0;
}

/* The usual case of a paced transfer, inline in each hook, whose op is then a constant:
 * its direction holds a pinned store cell (store.h) whose bucket has the bytes. The
 * engine's clock (bw_env) is the machine's monotonic one in the library, read here
 * without the indirect call. Anything else goes to bw_xfer_paced_slow. */
static inline __attribute__((always_inline)) ssize_t bw_xfer_paced(int op, struct bw_engine *e,
								   struct bw_xfer *x,
								   uint64_t w, int i)
{
	size_t want = x->len;
	const struct bw_fd_cold *cold = bw_fd_cold_of(x->fd);
	void *p[3];
	bw_fd_pin_of(cold, op == BW_OP_SEND ? BW_FD_SEND : BW_FD_RECV, p);
	/* (want - 1) wraps for 0 and stops short of BW_LEN_ASK: one test for both */
	if (__builtin_expect(!p[0] || want - 1 >= BW_LEN_ASK - 1, 0))
		return bw_xfer_paced_slow(e, x, w, i);
	const struct bw_rate_limit *rl = e->rt[i].rate_limit;
	struct bw_pin pin = { p[0], p[1], p[2] };
	uint64_t key = __atomic_load_n(&cold->key, __ATOMIC_RELAXED);
	ssize_t got;
	/* the clock read for the bucket also says when the policy file is due a look */
	if (op == BW_OP_SEND) {
		int64_t now = bw_clock_us(CLOCK_MONOTONIC);
		if (bw_pin_take_all(e->store, &pin, key, rl, now, (double)want) < 0)
			return bw_xfer_paced_slow(e, x, w, i);
		bw_engine_count_call(e, i);
		got = x->fn(x, want);
		if (__builtin_expect(got < (ssize_t)want, 0)) {
			double back = (double)(want - (got > 0 ? (size_t)got : 0));
			if (bw_pin_give(e->store, &pin, key, rl, back) < 0)
				bw_xfer_give(e, x, i, key, back);
		}
		bw_reload_tick_at(now);
	} else {
		bw_engine_count_call(e, i);
		got = x->fn(x, want);
		if (got > 0) {
			int64_t now = bw_clock_us(CLOCK_MONOTONIC);
			if (bw_pin_take_all(e->store, &pin, key, rl, now, (double)got) < 0)
				bw_xfer_pace_after(e, x, w, i, (size_t)got);
			bw_reload_tick_at(now);
		}
	}
	if (__builtin_expect(got >= 0, 1))
		return got;
	return bw_xfer_failed(e, x, w, i, errno);
}

/* A transfer, from the hook: the common covered call (a rule with nothing to decide
 * before its one attempt and no byte bucket, on a socket learned under the loaded policy
 * and no breaker watching it) is counted and made here; everything else goes to
 * bw_xfer_run. `shorten`: a send that a byte limit may cut; flags: the call's MSG_*. */
static inline __attribute__((always_inline)) ssize_t bw_xfer(int op, struct bw_xfer *x,
							    int shorten, int flags)
{
	uint64_t hot = __atomic_load_n(&bw_hot, __ATOMIC_ACQUIRE);
	uint64_t w = x->word;
	if (__builtin_expect((hot & BW_HOT_READY) && !bw_guarded() && bw_fd_current(w, hot) &&
			     !(w & BW_FDW_BIT(BW_FDW_WATCH)), 1)) {
		struct bw_engine *e = bw_engine_of_hot(hot);
		int no = BW_FDW_GET(w, op == BW_OP_SEND ? BW_FDW_SEND : BW_FDW_RECV,
				    BW_FDW_RULE_BITS);
		if (no && (e->rt[no - 1].plain_ops & BW_OPBIT(op))) {
			bw_engine_count_call(e, no - 1);
			ssize_t got = x->fn(x, x->len);
			if (__builtin_expect(got >= 0, 1))
				return got;
			int err = errno;
			bw_xfer_more(x, shorten, flags);
			return bw_xfer_failed(e, x, w, no - 1, err);
		}
		if (no && (e->rt[no - 1].paced_ops & BW_OPBIT(op))) {
			bw_xfer_more(x, shorten, flags);
			return bw_xfer_paced(op, e, x, w, no - 1);
		}
	}
	bw_xfer_more(x, shorten, flags);
	struct bw_engine *e = bw_engine_for(op);
	return e ? bw_xfer_run(e, x) : x->fn(x, x->len);
}

/* Event dest of a connected socket, looked up only when an event is logged. */
void bw_sock_peer_name(const struct bw_call *c, char *buf, size_t cap);
/* connect(AF_UNSPEC): a failed connect's socket made ready for a new attempt (its bound
 * address kept), an established TCP connection reset (a RST to the peer). errno kept. */
void bw_sock_unconnect(int fd);

#endif
