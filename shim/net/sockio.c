/* Send and receive under a rule. A descriptor that is not a socket, or a socket no rule
 * covers, costs a table lookup and nothing else. Timeouts ride on SO_RCVTIMEO/SO_SNDTIMEO,
 * set once per connected socket, so a blocking call under a timeout rule costs no extra
 * system call: the kernel's EAGAIN on a blocking socket is then our timeout, reported as
 * ETIMEDOUT. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <string.h>
#include <sys/time.h>
#include "clock.h"
#include "match.h"
#include "real.h"
#include "sigrestart.h"
#include "sockio.h"
#include "state.h"

static void set_timeout(int fd, int name, bw_usec us)
{
	struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };
	BW_REAL(setsockopt)(fd, SOL_SOCKET, name, &tv, sizeof tv);
}

/* The socket has a timeout of its own for this direction: the program set it, or it came
 * with the socket (an accepted socket inherits the listener's). */
static int has_timeout(int fd, int name)
{
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof tv;
	return BW_REAL(getsockopt)(fd, SOL_SOCKET, name, &tv, &len) == 0 &&
	       (tv.tv_sec || tv.tv_usec);
}

/* The policy's timeouts on a connected socket, each where the program has none: a
 * timeout it set, or one the socket inherited (an accepted socket has its listener's),
 * keeps its meaning and is marked the program's, so getsockopt keeps showing it. */
static void apply_timeouts(int fd, struct bw_fdinfo *fi, bw_usec snd, bw_usec rcv)
{
	if (!snd && !rcv)
		return;
	if (!fi->timeouts) {
		fi->app_sndtimeo |= has_timeout(fd, SO_SNDTIMEO);
		fi->app_rcvtimeo |= has_timeout(fd, SO_RCVTIMEO);
	}
	if (snd && !fi->app_sndtimeo) {
		set_timeout(fd, SO_SNDTIMEO, snd);
		fi->timeouts = 1;
	}
	if (rcv && !fi->app_rcvtimeo) {
		set_timeout(fd, SO_RCVTIMEO, rcv);
		fi->timeouts = 1;
	}
}

void bw_sock_learn(struct bw_engine *e, int fd, struct bw_fdinfo *fi, const struct sockaddr *sa,
		   socklen_t len, enum bw_peer how)
{
	int saved = errno;
	struct sockaddr_storage ss;
	int connected = how == BW_PEER_CONNECTED;
	if (!sa) {
		len = sizeof ss;
		if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
			connected = 1;
		} else if (errno == ENOTSOCK) {
			/* the number was reused behind our back (a path we do not hook) */
			bw_fd_set_other(fd);
			fi->kind = BW_FD_OTHER;
			errno = saved;
			return;
		} else if (how == BW_PEER_ACCEPTED) {
			len = 0;     /* the peer left before we asked: no peer, no rules */
		} else {
			len = sizeof ss;
			if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
				len = 0;
		}
		sa = len ? (struct sockaddr *)&ss : NULL;
	}
	struct bw_target t = { .op = BW_OP_SEND, .addr = sa, .addrlen = len };
	const struct bw_rule *s = sa ? bw_engine_match(e, &t, NULL) : NULL;
	t.op = BW_OP_RECV;
	const struct bw_rule *r = sa ? bw_engine_match(e, &t, NULL) : NULL;
	t.op = BW_OP_ACCEPT;
	const struct bw_rule *a = sa ? bw_engine_match(e, &t, NULL) : NULL;
	/* a breaker watch names a rule of the policy it began under; the store cells held
	 * are those of the rules worked out before. A socket learned for the first time
	 * has no generation yet: the watch its connect just set is of this policy. */
	if (fi->io_known && fi->gen != bw_fd_gen(e->gen))
		fi->watch = 0;
	fi->io_known = 1;
	void *none[3] = { NULL, NULL, NULL };
	bw_fd_pin_set(fd, BW_FD_RECV, none);
	bw_fd_pin_set(fd, BW_FD_SEND, none);
	fi->gen = e->gen;
	fi->send_rule = bw_engine_rule_no(e, s);
	fi->recv_rule = bw_engine_rule_no(e, r);
	fi->accept_rule = bw_engine_rule_no(e, a);
	fi->key = bw_key_sockaddr(sa, len);
	if (connected)
		bw_fd_set_peer(fd, sa, len);
	/* timeouts belong to connected sockets (never a listener, whose accept would time
	 * out, nor an unconnected datagram socket); observe mode changes nothing */
	if (connected && e->mode != BW_MODE_OBSERVE)
		apply_timeouts(fd, fi, s ? s->timeout.send : 0, r ? r->timeout.recv : 0);
	bw_fd_put(fd, fi);
	errno = saved;
}

void bw_sock_peer_name(const struct bw_call *c, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = bw_fd_peer(c->fd, &ss);
	int saved = errno;
	if (!len) {
		len = sizeof ss;
		if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
			len = 0;
	}
	if (len)
		bw_format_sockaddr((struct sockaddr *)&ss, len, buf, cap);
	else
		buf[0] = '\0';
	errno = saved;
}

struct run_ctx {
	struct bw_engine *e;
	struct bw_xfer *x;
	struct bw_call *c;
	uint64_t word;           /* the fd table entry; unpacked into fi only when needed */
	struct bw_fdinfo fi;
	int have_fi;
	int passed_err;          /* an error handed to the program as it is (EAGAIN) */
	int judged;              /* a breaker watch counts this transfer's failures */
};

static int blocking(int fd)
{
	int fl = BW_REAL(fcntl)(fd, F_GETFL);
	return fl >= 0 && !(fl & O_NONBLOCK);
}

static const struct bw_fdinfo *fdinfo(struct run_ctx *r)
{
	if (!r->have_fi)
		bw_fd_unpack(r->word, &r->fi);
	r->have_fi = 1;
	return &r->fi;
}

/* Our own SO_RCVTIMEO/SO_SNDTIMEO is on this direction of the socket. */
static int ours_timed(struct run_ctx *r)
{
	const struct bw_fdinfo *fi = fdinfo(r);
	int app = r->x->op == BW_OP_RECV ? fi->app_rcvtimeo : fi->app_sndtimeo;
	return fi->timeouts && !app;
}

/* Our own timeout ran out, as opposed to a non-blocking socket's EAGAIN or a timeout the
 * program set itself. */
static int our_timeout(struct run_ctx *r)
{
	return ours_timed(r) && !r->x->dontwait && blocking(r->x->fd);
}

/* A signal handler interrupted the real call. With no timeout on the socket the kernel
 * would have restarted it under SA_RESTART; our timeout makes the kernel say EINTR
 * instead, so we restart it where the program's own call would have been. */
static int restart_after_signal(struct run_ctx *r)
{
	return ours_timed(r) && bw_sig_restarts();
}

static void timeout_event(const struct run_ctx *r)
{
	const struct bw_rule *rule = r->c->rule;
	bw_engine_timed_out(r->e, r->c, r->x->op == BW_OP_RECV ? rule->timeout.recv
							 : rule->timeout.send);
}

void bw_sock_unconnect(int fd)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	int saved = errno;
	BW_REAL(connect)(fd, &sa, sizeof sa);
	errno = saved;
}

/* The connection is reset for real: connect(AF_UNSPEC) on an established TCP socket
 * sends the peer a RST. It leaves a pending error and the socket open for both
 * directions, where a reset from the other side leaves it shut: the error is taken, and
 * the socket shut down (which says ENOTCONN, and shuts it all the same), so that the
 * next receive reads end of file and the next send fails with EPIPE, as after a real
 * reset. */
static void reset_connection(int fd)
{
	int saved = errno, pending;
	socklen_t len = sizeof pending;
	bw_sock_unconnect(fd);
	BW_REAL(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &pending, &len);
	shutdown(fd, SHUT_RDWR);
	errno = saved;
}

/* A wait of ours (limit, delay, backoff) that a signal handler interrupted ends a call on
 * a blocking socket with EINTR, before any byte moved, as the kernel's own wait would. A
 * non-blocking call never says EINTR: it waits on. */
static int on_signal(void *arg, int where, int *result)
{
	struct run_ctx *r = arg;
	(void)where;
	if (r->x->dontwait || !blocking(r->x->fd))
		return 0;
	*result = EINTR;
	return 1;
}

/* An injected fault for this transfer: 1 when it ends the attempt (*err set), 0 to go on
 * with *len perhaps cut short. Bytes are never invented or lost: a partial transfer moves
 * a prefix and eof reads nothing. */
static int inject(struct run_ctx *r, size_t *len, int *err)
{
	struct bw_fault f;
	struct bw_xfer *x = r->x;
	if (!bw_engine_inject(r->e, r->c, &f))
		return 0;
	if (f.reset) {
		reset_connection(x->fd);
		*err = ECONNRESET;
		return 1;
	}
	if (f.err) {
		/* an EPIPE comes with the SIGPIPE the kernel sends with it */
		if (f.err == EPIPE && x->op == BW_OP_SEND && !x->nosignal)
			raise(SIGPIPE);
		*err = f.err;
		return 1;
	}
	/* an end of file is a receive with no room: the kernel writes what it writes at
	 * a real one (addresses, flags), and takes no byte. Streams only: on a datagram
	 * socket it would swallow a datagram. */
	if (f.eof && x->op == BW_OP_RECV && *len != BW_LEN_ASK &&
	    fdinfo(r)->type == SOCK_STREAM) {
		x->empty = 1;
		ssize_t got = x->fn(x, 0);
		x->empty = 0;
		if (got < 0) {
			*err = errno;
			return 1;
		}
		x->result = got;
		*err = 0;
		return 1;
	}
	/* a datagram or record cut short would lose its tail: partial is for streams only */
	if (f.partial && *len > 1 && *len != BW_LEN_ASK && fdinfo(r)->type == SOCK_STREAM)
		*len = 1 + (size_t)(f.draw % (*len - 1));
	return 0;
}

/* After a transfer moved got bytes: bytes taken for a send and not sent go back to the
 * bucket; what a recv brought in is paced after the fact. */
static void moved(struct run_ctx *r, size_t taken, ssize_t got)
{
	struct bw_xfer *x = r->x;
	if (x->op == BW_OP_SEND && (size_t)got < taken)
		bw_engine_unbytes(r->e, r->c, taken - (size_t)got);
	else if (x->op == BW_OP_RECV && got > 0)
		bw_engine_bytes(r->e, r->c, (size_t)got, 1);
	x->result = got;
}

/* The real call of `want` bytes failed with err: what the attempt ends with (0, with
 * x->result set, or an error). A signal handler interrupted it where the program's own
 * call would have been restarted: it is restarted. */
static int failed(struct run_ctx *r, size_t want, size_t taken, int err)
{
	struct bw_xfer *x = r->x;
	while (err == EINTR && restart_after_signal(r)) {
		ssize_t got = x->fn(x, want);
		if (got >= 0) {
			moved(r, taken, got);
			return 0;
		}
		err = errno;
	}
	bw_engine_unbytes(r->e, r->c, taken);
	if (err == EAGAIN || err == EWOULDBLOCK) {
		if (!our_timeout(r)) {
			r->passed_err = err;
			x->result = -1;
			return 0;
		}
		timeout_event(r);
		return ETIMEDOUT;
	}
	return err;
}

/* The transfer's length, measured if it lies in a scatter list (BW_LEN_ASK when the
 * program's pointers cannot be read: the real call then answers EFAULT). */
static size_t xfer_len(struct bw_xfer *x)
{
	if (x->len == BW_LEN_ASK && x->measure)
		x->len = x->measure(x);
	return x->len;
}

static int attempt(void *arg, int n, int64_t deadline)
{
	struct run_ctx *r = arg;
	struct bw_xfer *x = r->x;
	(void)n, (void)deadline;
	const struct bw_rule *rule = r->c->rule;
	if (rule->n_inject || rule->rate_limit.bytes)
		xfer_len(x);
	size_t want = x->len, taken = 0;
	int err;
	if (rule->n_inject && inject(r, &want, &err))
		return err;
	if (x->op == BW_OP_SEND && want && want != BW_LEN_ASK && rule->rate_limit.bytes) {
		/* only a plain stream send may be cut; a datagram or record goes whole, even
		 * one larger than the bucket can ever hold */
		int whole = !x->shorten || fdinfo(r)->type != SOCK_STREAM;
		taken = bw_engine_take_bytes(r->e, r->c, want, whole, &err);
		if (err)
			return err;
		if (!whole)
			want = taken;
	}
	ssize_t got = x->fn(x, want);
	if (got < 0)
		return failed(r, want, taken, errno);
	moved(r, taken, got);
	return 0;
}

/* A breaker watches this connection (see bw_engine_confirm): its first byte in says the
 * connect worked; a reset, an EOF or our timeout before that says it did not. Returns 1
 * when it counted a failure, which the connection then does not count a second time. */
static int judge_watched(struct bw_engine *e, struct bw_xfer *x, ssize_t got, int err)
{
	int failed;
	if (got > 0 && x->op == BW_OP_RECV)
		failed = 0;
	else if (got == 0 && x->op == BW_OP_RECV && xfer_len(x) > 0)
		failed = 1;
	else if (got < 0 && (err == ECONNRESET || err == EPIPE || err == ETIMEDOUT ||
			     err == ECONNABORTED))
		failed = 1;
	else
		return 0;
	int slow;
	int64_t t0 = bw_fd_watch_t0(x->fd, NULL);
	int no = bw_fd_unwatch(x->fd, &slow);
	if (!no)
		return 0;
	struct bw_call c = {
		.rule = &e->cfg->rules[no - 1], .op = BW_OP_CONNECT, .call = "connect",
		.fd = x->fd, .dest_of = bw_sock_peer_name, .slow = slow, .started = t0,
	};
	c.key = bw_fd_key(x->fd);
	int saved = errno;
	bw_engine_confirm(e, &c, failed);
	errno = saved;
	return failed;
}

/* The descriptor's word under the policy now loaded, learning the socket first when it
 * was never seen or learned under another generation; 0 when it is not a socket. */
static __attribute__((noinline)) uint64_t learn_word(struct bw_engine *e, int fd)
{
	struct bw_fdinfo fi;
	if (bw_fd_classify(fd, &fi) != BW_FD_SOCKET)
		return 0;
	uint64_t w = bw_fd_word(fd);
	if (bw_fd_current_gen(w, e->gen))
		return w;
	bw_sock_learn(e, fd, &fi, NULL, 0, BW_PEER_ASK);
	return fi.kind == BW_FD_SOCKET ? bw_fd_word(fd) : 0;
}

static void init_call(struct bw_call *c, struct run_ctx *r, struct bw_engine *e,
		      struct bw_xfer *x, uint64_t w, int i, int judged)
{
	bw_call_init(c, &e->cfg->rules[i], x->op, x->call);
	c->fd = x->fd;
	c->key = bw_fd_key(x->fd);
	c->dest_of = bw_sock_peer_name;
	c->on_signal = on_signal;
	c->attempt = attempt;
	c->arg = r;
	r->e = e, r->x = x, r->c = c, r->word = w, r->passed_err = 0, r->have_fi = 0;
	r->judged = judged;
}

/* What ends a transfer: its result, or -1 with err (counted against the destination's
 * breaker unless a breaker watch judges it, or it is no outcome at all). */
static ssize_t outcome(struct run_ctx *r, int err, int saved)
{
	if (err) {
		if (!bw_engine_unfinished(err, 0) && !r->judged)
			bw_engine_count_failure(r->e, r->c, err);
		errno = err;
		return -1;
	}
	errno = r->passed_err ? r->passed_err : saved;
	return r->x->result;
}

/* A transfer whose rule has nothing to decide before its one attempt failed with err. */
ssize_t bw_xfer_failed(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int i, int err)
{
	bw_reload_tick();
	struct run_ctx r;
	struct bw_call c;
	init_call(&c, &r, e, x, w, i, 0);
	err = failed(&r, x->len, 0, err);
	if (err && !bw_engine_unfinished(err, 0))
		bw_engine_failed(e, &c, err, 1, 0);
	return outcome(&r, err, errno);
}

/* Every other covered transfer: through the engine's retry driver, or straight to its one
 * attempt when nothing is decided before it (a byte bucket is taken in the attempt). */
static __attribute__((noinline)) ssize_t covered(struct bw_engine *e, struct bw_xfer *x,
						 uint64_t w, int i, int judged)
{
	struct run_ctx r;
	struct bw_call c;
	init_call(&c, &r, e, x, w, i, judged);
	int saved = errno, err;
	if (e->rt[i].direct_ops & BW_OPBIT(x->op)) {
		bw_engine_count_call(e, i);
		err = attempt(&r, 1, 0);
		if (err && !bw_engine_unfinished(err, 0))
			bw_engine_failed(e, &c, err, 1, 0);
	} else {
		err = bw_engine_run(e, &c, bw_thread_rng());
	}
	return outcome(&r, err, saved);
}

/* Names a new store cell for `bulwark status` after the socket's peer. */
static void xfer_label(const void *arg, char *buf, size_t cap)
{
	const struct bw_xfer *x = arg;
	struct bw_call c = { .fd = x->fd };
	bw_sock_peer_name(&c, buf, cap);
}

/* A transfer whose rule has nothing to decide before its one attempt but a byte bucket:
 * a send takes its bytes first (a plain stream send may be cut to what the bucket holds,
 * a datagram or record goes whole), a receive pays for what it brought in. When the
 * bucket is short the transfer goes the general way, which waits. */
/* The store cell this transfer's direction holds on to, pinned on first use. */
static int pinned(struct bw_engine *e, const struct bw_xfer *x, const struct bw_ref *ref,
		  int64_t now, struct bw_pin *pin)
{
	enum bw_fd_dir dir = x->op == BW_OP_SEND ? BW_FD_SEND : BW_FD_RECV;
	void *p[3];
	bw_fd_pin_get(x->fd, dir, p);
	if (p[0]) {
		*pin = (struct bw_pin){ p[0], p[1], p[2] };
		return 0;
	}
	if (bw_store_pin(e->store, ref, now ? now : e->env.mono_us(), pin) < 0)
		return -1;
	void *q[3] = { pin->lock, pin->st, (void *)pin->key };
	bw_fd_pin_set(x->fd, dir, q);
	return 0;
}

static ssize_t paced_slow(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int i);

ssize_t bw_xfer_paced_slow(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int i)
{
	return paced_slow(e, x, w, i);
}

void bw_xfer_give(struct bw_engine *e, struct bw_xfer *x, int i, uint64_t key, double n)
{
	const struct bw_rate_limit *rl = e->rt[i].rate_limit;
	struct bw_ref ref = { e->rt[i].slot, rl->scope, key, xfer_label, x };
	bw_store_give(e->store, &ref, rl, n);
}

/* What a receive brought in is paced after the fact: it waits for its tokens. */
static void pace_after(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int i, size_t got)
{
	int saved = errno;
	struct run_ctx r;
	struct bw_call c;
	init_call(&c, &r, e, x, w, i, 0);
	bw_engine_bytes(e, &c, got, 1);
	errno = saved;
}

void bw_xfer_pace_after(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int i, size_t got)
{
	pace_after(e, x, w, i, got);
}

static ssize_t paced_slow(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int i)
{
	const struct bw_rate_limit *rl = &e->cfg->rules[i].rate_limit;
	size_t want = x->len;
	if (want == BW_LEN_ASK || want == 0 || e->mode == BW_MODE_OBSERVE)
		return covered(e, x, w, i, 0);
	struct bw_ref ref = { e->rt[i].slot, rl->scope, bw_fd_key(x->fd), xfer_label, x };
	struct bw_pin pin;
	int64_t now, wait;
	int have_pin = pinned(e, x, &ref, 0, &pin) == 0;
	ssize_t got;
	if (x->op == BW_OP_SEND) {
		now = e->env.mono_us();
		int whole = !x->shorten || BW_FDW_GET(w, BW_FDW_TYPE, BW_FDW_TYPE_BITS) != SOCK_STREAM;
		/* the usual case: the bucket holds all of it */
		double took = have_pin ? bw_pin_take_all(e->store, &pin, ref.key, rl, now,
							 (double)want) : -1;
		if (took < 0) {
			double least = whole ? (double)want : e->rt[i].piece;
			if (least > (double)want)
				least = (double)want;
			took = bw_store_take(e->store, &ref, rl, now, (double)want, least, &wait);
			if (took <= 0)
				return covered(e, x, w, i, 0);
		}
		size_t taken = took >= (double)want ? want : (size_t)took;
		bw_engine_count_call(e, i);
		got = x->fn(x, whole ? want : taken);
		if (got < (ssize_t)taken) {
			double back = (double)(taken - (got > 0 ? (size_t)got : 0));
			if (!have_pin || bw_pin_give(e->store, &pin, ref.key, rl, back) < 0)
				bw_store_give(e->store, &ref, rl, back);
		}
	} else {
		bw_engine_count_call(e, i);
		got = x->fn(x, want);
		now = got > 0 ? e->env.mono_us() : 0;
		if (got > 0 && !(have_pin && bw_pin_take_all(e->store, &pin, ref.key, rl, now,
							      (double)got) >= 0) &&
		    bw_store_take(e->store, &ref, rl, now, (double)got, (double)got, &wait) <= 0)
			pace_after(e, x, w, i, (size_t)got);
	}
	if (__builtin_expect(got >= 0, 1))
		return got;
	return bw_xfer_failed(e, x, w, i, errno);
}

/* The transfer under the rules word w gives its direction. `judged`: a breaker watch
 * judges the connection's failures (judge_watched), which are not counted twice. The
 * common case, a rule with nothing to decide and no bucket, costs a count and the call. */
static inline ssize_t run_word(struct bw_engine *e, struct bw_xfer *x, uint64_t w, int judged)
{
	int no = BW_FDW_GET(w, x->op == BW_OP_SEND ? BW_FDW_SEND : BW_FDW_RECV,
			    BW_FDW_RULE_BITS);
	if (!no)
		return x->fn(x, x->len);
	int i = no - 1;
	if (__builtin_expect((e->rt[i].plain_ops & BW_OPBIT(x->op)) && !judged, 1)) {
		bw_engine_count_call(e, i);
		ssize_t got = x->fn(x, x->len);
		if (__builtin_expect(got >= 0, 1))
			return got;
		return bw_xfer_failed(e, x, w, i, errno);
	}
	return covered(e, x, w, i, judged);
}

/* A connection a breaker watches: the transfer runs as any other, then its outcome is
 * judged. Only until the connection's first byte. */
static __attribute__((noinline)) ssize_t watched(struct bw_engine *e, struct bw_xfer *x,
						 uint64_t w)
{
	int flags;
	/* a slow-call breaker times the answer from the first request */
	if (x->op == BW_OP_SEND && bw_fd_watch_t0(x->fd, &flags) && !(flags & BW_WATCH_SENT))
		bw_fd_watch_sent(x->fd, e->env.mono_us());
	ssize_t got = run_word(e, x, w, 1);
	int err = errno;
	if (!judge_watched(e, x, got, got < 0 ? err : 0) && got < 0) {
		/* not a failure of the connection's: counted as the rule counts it */
		int no = BW_FDW_GET(w, x->op == BW_OP_SEND ? BW_FDW_SEND : BW_FDW_RECV,
				    BW_FDW_RULE_BITS);
		if (no) {
			struct bw_call c = { .rule = &e->cfg->rules[no - 1], .op = x->op,
					     .call = x->call, .fd = x->fd, .key = bw_fd_key(x->fd),
					     .dest_of = bw_sock_peer_name };
			bw_engine_count_failure(e, &c, err);
		}
	}
	errno = err;
	return got;
}

ssize_t bw_xfer_run(struct bw_engine *e, struct bw_xfer *x)
{
	bw_reload_tick();
	/* the hooks have already let through what the fd table knows needs nothing
	 * (bw_fd_look); a descriptor never seen, or learned under another policy than e's
	 * (one loaded since, or e's successor), is learned here */
	uint64_t w = bw_fd_word(x->fd);
	if (__builtin_expect(BW_FDW_GET(w, BW_FDW_KIND, BW_FDW_KIND_BITS) != BW_FD_SOCKET ||
			     !bw_fd_current_gen(w, e->gen), 0) &&
	    !(w = learn_word(e, x->fd)))
		return x->fn(x, x->len);
	if (__builtin_expect(w & BW_FDW_BIT(BW_FDW_WATCH), 0))
		return watched(e, x, w);
	return run_word(e, x, w, 0);
}
