/* Send and receive under a rule. A descriptor that is not a socket, or a socket no rule
 * covers, costs a table lookup and nothing else. Timeouts ride on SO_RCVTIMEO/SO_SNDTIMEO,
 * set once per connected socket, so a blocking call under a timeout rule costs no extra
 * system call: the kernel's EAGAIN on a blocking socket is then our timeout, reported as
 * ETIMEDOUT. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <string.h>
#include <sys/time.h>
#include <sys/mman.h>
#include "clock.h"
#include "connfault.h"
#include "match.h"
#include "peek.h"
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
	/* a new connection on this number, or a new policy: faults left on the old go */
	bw_connfault_forget(fd);
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

static int failed(struct run_ctx *r, size_t want, size_t taken, int err);

/* An end of file, now: a receive with no room. The kernel writes what it writes at a real
 * one (addresses, flags), and takes no byte. */
static int eof_now(struct run_ctx *r, int *err)
{
	struct bw_xfer *x = r->x;
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

static int dir_of(const struct bw_xfer *x)
{
	return x->op == BW_OP_SEND ? BW_CF_SEND : BW_CF_RECV;
}

/* Which per: connection entries of the call's rule chose this connection: decided by its
 * first transfer under that rule, kept while it lasts. */
static uint64_t conn_select(struct run_ctx *r)
{
	int rno = (int)(r->c->rule - r->e->cfg->rules) + 1;
	struct bw_connfault *cf = bw_connfault_get(r->x->fd, 1);
	if (!cf)
		return 0;
	uint64_t sel = 0;
	int slot = -1;
	for (int k = 0; k < 2 && slot < 0; k++)
		if (cf->sel_rule[k] == rno)
			slot = k;
	if (slot >= 0) {
		sel = cf->sel[slot];
	} else {
		slot = !cf->sel_rule[0] ? 0 : !cf->sel_rule[1] ? 1 : dir_of(r->x);
		sel = bw_engine_conn_select(r->e, r->c->rule);
		cf->sel_rule[slot] = rno;
		cf->sel[slot] = sel;
	}
	bw_connfault_put(cf);
	return sel;
}

/* What a hit leaves on the connection's direction: a byte limit (streams: a datagram is
 * never cut), a stall, a slow close. */
static void latch(struct run_ctx *r, const struct bw_fault *f)
{
	int d = dir_of(r->x);
	int stream = fdinfo(r)->type == SOCK_STREAM;
	struct bw_connfault *cf = bw_connfault_get(r->x->fd, 1);
	if (!cf)
		return;
	if (f->limit_data && stream && (!cf->limit[d] || f->limit_data < cf->limit[d]))
		cf->limit[d] = f->limit_data;
	if (f->stall)
		cf->stalled[d] = 1;
	if (f->slow_close && stream && f->slow_close > cf->slow_close_us)
		cf->slow_close_us = f->slow_close;
	bw_connfault_put(cf);
}

/* The byte limit is reached: the connection is closed, as a proxy that gives up on it
 * closes it. The peer sees it end; here receives read end of file from now on (what the
 * kernel still holds is not delivered) and sends fail as on any shut connection. */
static void close_conn(struct run_ctx *r)
{
	struct bw_connfault *cf = bw_connfault_get(r->x->fd, 1);
	if (cf) {
		cf->closed = 1;
		bw_connfault_put(cf);
	}
	int saved = errno;
	shutdown(r->x->fd, SHUT_RDWR);
	errno = saved;
}

/* A stalled direction: no byte moves, the connection stays open, and the call ends as the
 * real one would with nothing to move. A non-blocking call says EAGAIN at once; a blocking
 * one waits for the socket's timeout (SO_RCVTIMEO/SO_SNDTIMEO: then EAGAIN, which ours
 * turns into ETIMEDOUT), forever without one. A signal handler ends the wait with EINTR
 * where it would end the real call: always under the program's own timeout (the kernel
 * never restarts a socket call that has one), otherwise unless it restarts (SA_RESTART,
 * which our timeout honours as the kernel would without it). Returns EAGAIN or EINTR. */
static int stall_wait(struct run_ctx *r)
{
	struct bw_xfer *x = r->x;
	if (x->dontwait || !blocking(x->fd))
		return EAGAIN;
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof tv;
	int saved = errno;
	if (BW_REAL(getsockopt)(x->fd, SOL_SOCKET, x->op == BW_OP_RECV ? SO_RCVTIMEO
								    : SO_SNDTIMEO, &tv, &len) < 0)
		tv.tv_sec = tv.tv_usec = 0;
	int64_t limit = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	int apps = limit > 0 && !ours_timed(r);
	int64_t until = bw_mono_us() + limit;
	for (;;) {
		int64_t left = limit > 0 ? until - bw_mono_us() : INT64_C(3600000000);
		if (left <= 0)
			break;
		if (apps || !r->e->env.nap_us) {
			/* poll is never restarted: a handler ends it, as it ends the real call */
			struct timespec ts = { (time_t)(left / 1000000), (long)(left % 1000000) * 1000 };
			if (ppoll(NULL, 0, &ts, NULL) < 0 && errno == EINTR) {
				if (!apps && bw_sig_restarts())
					continue;
				errno = saved;
				return EINTR;
			}
		} else if (r->e->env.nap_us(left) > 0) {
			errno = saved;
			return EINTR;        /* a handler that does not restart ran */
		}
	}
	errno = saved;
	return EAGAIN;
}

/* Faults left on the connection, before its transfer: -1 to go on (with *len perhaps cut
 * to what the byte limit leaves), else the attempt's result as attempt returns it. */
static int conn_before(struct run_ctx *r, size_t *len)
{
	struct bw_xfer *x = r->x;
	struct bw_connfault *cf = bw_connfault_get(x->fd, 0);
	if (!cf)
		return -1;
	int d = dir_of(x), err;
	int closed = cf->closed, stalled = cf->stalled[d];
	long limit = cf->limit[d];
	long long moved = cf->moved[d];
	bw_connfault_put(cf);
	if (closed || (limit && moved >= limit)) {
		if (!closed)
			close_conn(r);
		if (x->op == BW_OP_RECV && eof_now(r, &err))
			return err;
		return -1;             /* a send: the kernel answers as on any shut socket */
	}
	if (stalled) {
		err = stall_wait(r);
		return err == EAGAIN ? failed(r, *len, 0, EAGAIN) : err;
	}
	if (limit && *len != BW_LEN_ASK && (long long)*len > limit - moved)
		*len = (size_t)(limit - moved);
	return -1;
}

/* What the connection's direction already keeps (engine.h, BW_LATCHED_*). */
static unsigned latched_of(struct run_ctx *r)
{
	struct bw_connfault *cf = bw_connfault_get(r->x->fd, 0);
	if (!cf)
		return 0;
	int d = dir_of(r->x);
	unsigned l = (cf->limit[d] ? BW_LATCHED_LIMIT : 0) |
		     (cf->stalled[d] ? BW_LATCHED_STALL : 0) |
		     (cf->slow_close_us ? BW_LATCHED_SLOW_CLOSE : 0);
	bw_connfault_put(cf);
	return l;
}

/* Whether the rule counts the bytes of its connections: a byte limit counts from a
 * connection's first byte, whichever call hits. */
static int counts_bytes(const struct bw_rule *rule)
{
	for (int i = 0; i < rule->n_inject; i++)
		if (rule->inject[i].limit_data)
			return 1;
	return 0;
}

/* Faults left on the connection, after its transfer moved got bytes of want: -1 to go
 * on, else the attempt's result. Counts bytes against a limit; delays an end of file
 * (slow_close); sends a datagram held back once the next one went. */
static int conn_after(struct run_ctx *r, ssize_t got, size_t want)
{
	struct bw_xfer *x = r->x;
	int d = dir_of(x);
	struct bw_connfault *cf = bw_connfault_get(x->fd, got > 0 && counts_bytes(r->c->rule));
	if (!cf)
		return -1;
	if (got > 0)
		cf->moved[d] += got;
	int reached = got > 0 && cf->limit[d] && cf->moved[d] >= cf->limit[d];
	int64_t due = 0;
	if (x->op == BW_OP_RECV && got == 0 && want > 0 && cf->slow_close_us) {
		if (!cf->eof_due)
			cf->eof_due = bw_mono_us() + cf->slow_close_us;
		due = cf->eof_due;
	}
	unsigned char *held = NULL;
	size_t held_len = 0;
	struct sockaddr_storage to;
	socklen_t tolen = 0;
	if (x->op == BW_OP_SEND && got >= 0 && cf->held) {
		held = cf->held;
		held_len = cf->held_len;
		to = cf->held_to;
		tolen = cf->held_tolen;
		cf->held = NULL;
	}
	bw_connfault_put(cf);
	if (reached)
		close_conn(r);
	if (held) {
		/* after the next datagram, the one held back; what becomes of it is the
		 * network's business, as for any datagram */
		int saved = errno;
		BW_REAL(sendto)(x->fd, held, held_len, MSG_DONTWAIT | MSG_NOSIGNAL,
				tolen ? (struct sockaddr *)&to : NULL, tolen);
		munmap(held, BW_CONNFAULT_HOLD);
		errno = saved;
	}
	int64_t now = due ? bw_mono_us() : 0;
	if (due && now < due) {
		int ended = 0;
		if (x->dontwait || !blocking(x->fd)) {
			/* not yet: as if the peer had not closed */
			r->passed_err = EAGAIN;
			x->result = -1;
			return 0;
		}
		if (bw_engine_wait(r->e, r->c, due - now, BW_WAIT_DELAY, &ended))
			return ended;
	}
	return -1;
}

/* A datagram fault (datagram sockets only, one datagram whole: never split): a datagram
 * sent is lost (the program is told it went), sent twice, or held back and sent after
 * the next one; a datagram received is lost (the next one is received instead, as the
 * program's call would). 1 when it ends the attempt (*err set). */
static int datagram_fault(struct run_ctx *r, const struct bw_fault *f, size_t len, int *err)
{
	struct bw_xfer *x = r->x;
	if (fdinfo(r)->type != SOCK_DGRAM || len == BW_LEN_ASK || strcmp(x->call, "sendmmsg") == 0 ||
	    strcmp(x->call, "recvmmsg") == 0)
		return 0;
	ssize_t got;
	if (x->op == BW_OP_RECV) {
		if (!f->loss)
			return 0;
		for (int i = 0; i < 2; i++)
			if ((got = x->fn(x, len)) < 0) {
				*err = failed(r, len, 0, errno);
				return 1;
			}
		x->result = got;
		*err = 0;
		return 1;
	}
	if (f->loss) {
		x->result = (ssize_t)len;
		*err = 0;
		return 1;
	}
	if (f->reorder && x->data && len <= BW_CONNFAULT_HOLD) {
		struct bw_connfault *cf = bw_connfault_get(x->fd, 1);
		int saved = errno, held = 0;
		if (cf && !cf->held) {
			void *p = mmap(NULL, BW_CONNFAULT_HOLD, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			/* the program's pointers may be bad: then its call goes to the kernel,
			 * which says EFAULT */
			if (p != MAP_FAILED && bw_peek(p, x->data, len) == 0 &&
			    (!x->to || (x->tolen <= sizeof cf->held_to &&
					bw_peek(&cf->held_to, x->to, x->tolen) == 0))) {
				cf->held = p;
				cf->held_len = len;
				cf->held_tolen = x->to ? x->tolen : 0;
				held = 1;
			} else if (p != MAP_FAILED) {
				munmap(p, BW_CONNFAULT_HOLD);
			}
		}
		if (cf)
			bw_connfault_put(cf);
		errno = saved;
		if (held) {
			x->result = (ssize_t)len;
			*err = 0;
			return 1;
		}
	}
	if (f->duplicate) {
		if ((got = x->fn(x, len)) < 0) {
			*err = failed(r, len, 0, errno);
			return 1;
		}
		int saved = errno;
		x->fn(x, len);
		errno = saved;
		x->result = got;
		*err = 0;
		return 1;
	}
	return 0;
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
	if (f.limit_data || f.stall || f.slow_close)
		latch(r, &f);
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
	if ((f.loss || f.duplicate || f.reorder) && datagram_fault(r, &f, *len, err))
		return 1;
	/* an end of file is a receive with no room. Streams only: on a datagram socket it
	 * would swallow a datagram. */
	if (f.eof && x->op == BW_OP_RECV && *len != BW_LEN_ASK && fdinfo(r)->type == SOCK_STREAM)
		return eof_now(r, err);
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

/* Observe mode times the transfer (tally.h): a reply's wait from the request's send; an
 * EAGAIN, which waited for nothing, not at all. */
static void measured(struct run_ctx *r, ssize_t got)
{
	int err = errno;
	if (got > 0 && r->x->op == BW_OP_SEND)
		bw_tally_sent(r->e, r->x->fd);
	else if (got > 0)
		bw_tally_replied(r->e, r->x->fd);
	else if (got < 0 && (err == EAGAIN || err == EWOULDBLOCK))
		bw_tally_cur.skip = 1;
	errno = err;
}

/* Before the transfer: the injected faults (inject), and those left on the connection
 * (conn_before). 1 when they end the attempt (*err set). Out of line: a rule without
 * inject entries pays a test for it, nothing more. */
static __attribute__((noinline)) int faults_before(struct run_ctx *r, size_t *want, int *err)
{
	const struct bw_rule *rule = r->c->rule;
	if (rule->n_inject) {
		if (bw_rule_conn_entries(rule))
			bw_inject_conn_sel = conn_select(r);
		bw_inject_latched = latched_of(r);
	}
	if (inject(r, want, err))
		return 1;
	return rule->n_inject && (*err = conn_before(r, want)) >= 0;
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
	if ((rule->n_inject || r->e->tally) && faults_before(r, &want, &err))
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
	if (__builtin_expect(r->e->tally != NULL, 0))
		measured(r, got);
	if (got < 0)
		return failed(r, want, taken, errno);
	moved(r, taken, got);
	if (__builtin_expect(rule->n_inject != 0, 0) && (err = conn_after(r, got, want)) >= 0)
		return err;
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
	bw_attempt_n = 0;        /* nothing numbered this call's one attempt */
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
		bw_attempt_n = 0;
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
