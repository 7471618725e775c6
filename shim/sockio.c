/* Send and receive under a rule. A descriptor that is not a socket, or a socket no rule
 * covers, costs a table lookup and nothing else. Timeouts ride on SO_RCVTIMEO/SO_SNDTIMEO,
 * set once per socket, so a blocking call under a timeout rule costs no extra system call:
 * the kernel's EAGAIN on a blocking socket is then our timeout, reported as ETIMEDOUT. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/time.h>
#include "match.h"
#include "real.h"
#include "sockio.h"
#include "state.h"

static int rule_no(const struct bw_rule *r, const struct bw_engine *e)
{
	return r ? (int)(r - e->cfg->rules) + 1 : 0;
}

static void set_timeout(int fd, int name, bw_usec us)
{
	struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };
	BW_REAL(setsockopt)(fd, SOL_SOCKET, name, &tv, sizeof tv);
}

void bw_sock_learn(struct bw_engine *e, int fd, struct bw_fdinfo *fi, const struct sockaddr *sa,
		   socklen_t len)
{
	int saved = errno;
	struct sockaddr_storage ss;
	if (!sa) {
		len = sizeof ss;
		if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0 &&
		    getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			len = 0;
		sa = len ? (struct sockaddr *)&ss : NULL;
	}
	struct bw_target t = { .op = BW_OP_SEND, .addr = sa, .addrlen = len };
	const struct bw_rule *s = sa ? bw_engine_match(e, &t, NULL) : NULL;
	t.op = BW_OP_RECV;
	const struct bw_rule *r = sa ? bw_engine_match(e, &t, NULL) : NULL;
	t.op = BW_OP_ACCEPT;
	const struct bw_rule *a = sa ? bw_engine_match(e, &t, NULL) : NULL;
	fi->io_known = 1;
	fi->send_rule = rule_no(s, e);
	fi->recv_rule = rule_no(r, e);
	fi->accept_rule = rule_no(a, e);
	fi->key = bw_key_sockaddr(sa, len);
	/* observe mode changes nothing, timeouts included */
	if (e->mode != BW_MODE_OBSERVE) {
		if (s && s->timeout.send && !fi->app_sndtimeo) {
			set_timeout(fd, SO_SNDTIMEO, s->timeout.send);
			fi->timeouts = 1;
		}
		if (r && r->timeout.recv && !fi->app_rcvtimeo) {
			set_timeout(fd, SO_RCVTIMEO, r->timeout.recv);
			fi->timeouts = 1;
		}
	}
	bw_fd_put(fd, fi);
	errno = saved;
}

void bw_sock_peer_name(const struct bw_call *c, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int saved = errno;
	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
		bw_format_sockaddr((struct sockaddr *)&ss, len, buf, cap);
	else
		buf[0] = '\0';
	errno = saved;
}

struct run_ctx {
	struct bw_engine *e;
	struct bw_xfer *x;
	struct bw_call *c;
	uint64_t word, key;      /* the fd table entry; unpacked into fi only when needed */
	struct bw_fdinfo fi;
	int have_fi;
	int passed_err;          /* an error handed to the program as it is (EAGAIN) */
	char dest[128];          /* the peer, kept when a reset makes it unknowable */
};

static int blocking(int fd)
{
	int fl = BW_REAL(fcntl)(fd, F_GETFL);
	return fl >= 0 && !(fl & O_NONBLOCK);
}

static const struct bw_fdinfo *fdinfo(struct run_ctx *r)
{
	if (!r->have_fi)
		bw_fd_unpack(r->word, r->key, &r->fi);
	r->have_fi = 1;
	return &r->fi;
}

/* Our own SO_RCVTIMEO/SO_SNDTIMEO ran out, as opposed to a non-blocking socket's EAGAIN
 * or a timeout the program set itself. */
static int our_timeout(struct run_ctx *r)
{
	const struct bw_fdinfo *fi = fdinfo(r);
	int app = r->x->op == BW_OP_RECV ? fi->app_rcvtimeo : fi->app_sndtimeo;
	return fi->timeouts && !app && !r->x->dontwait && blocking(r->x->fd);
}

static void timeout_event(const struct run_ctx *r)
{
	const struct bw_rule *rule = r->c->rule;
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_TIMEOUT, BW_LVL_WARN);
	ev.err = ETIMEDOUT;
	ev.elapsed_ms = (double)(r->x->op == BW_OP_RECV ? rule->timeout.recv
							 : rule->timeout.send) / 1000.0;
	bw_engine_emit(r->e, r->c, &ev);
}

/* The connection is reset for real: connect(AF_UNSPEC) on an established TCP socket
 * sends the peer a RST and leaves the descriptor open (and unconnected) for the program
 * to close, as after a reset from the other side. */
static void reset_connection(int fd)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	int saved = errno;
	BW_REAL(connect)(fd, &sa, sizeof sa);
	errno = saved;
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
	if (f.delay)
		r->e->env.sleep_us(f.delay);
	if (f.reset) {
		/* name the peer now: after the reset it is gone */
		bw_sock_peer_name(r->c, r->dest, sizeof r->dest);
		r->c->dest = r->dest;
		reset_connection(x->fd);
		*err = ECONNRESET;
		return 1;
	}
	if (f.err) {
		*err = f.err;
		return 1;
	}
	if (f.eof && x->op == BW_OP_RECV) {
		x->result = 0;
		*err = 0;
		return 1;
	}
	/* a datagram cut short would lose its tail: partial is for streams only */
	if (f.partial && *len > 1 && fdinfo(r)->type == SOCK_STREAM)
		*len = 1 + (size_t)(f.draw % (*len - 1));
	return 0;
}

static int attempt(void *arg, int n, int64_t deadline)
{
	struct run_ctx *r = arg;
	struct bw_xfer *x = r->x;
	(void)n, (void)deadline;
	size_t want = x->len;
	int ierr;
	if (r->c->rule->n_inject && inject(r, &want, &ierr))
		return ierr;
	if (x->op == BW_OP_SEND && want)
		want = bw_engine_bytes(r->e, r->c, want, !x->shorten);
	ssize_t got = x->fn(x, want);
	if (got < 0) {
		int err = errno;
		if (x->op == BW_OP_SEND)
			bw_engine_unbytes(r->e, r->c, want);
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
	if (x->op == BW_OP_SEND && (size_t)got < want)
		bw_engine_unbytes(r->e, r->c, want - (size_t)got);
	else if (x->op == BW_OP_RECV && got > 0)
		bw_engine_bytes(r->e, r->c, (size_t)got, 1);   /* pace what already arrived */
	x->result = got;
	return 0;
}

ssize_t bw_xfer_run(struct bw_engine *e, struct bw_xfer *x)
{
	/* the hooks have already let through what the fd table knows needs nothing
	 * (bw_fd_untouched); only send/recv on a never-seen descriptor is probed here */
	struct run_ctx r;
	r.have_fi = 0;
	r.word = bw_fd_word(x->fd, &r.key);
	if ((r.word & 3) != BW_FD_SOCKET || !BW_FDW_GET(r.word, BW_FDW_IO_KNOWN, 1)) {
		if (bw_fd_classify(x->fd, &r.fi) != BW_FD_SOCKET)
			return x->fn(x, x->len);
		if (!r.fi.io_known)
			bw_sock_learn(e, x->fd, &r.fi, NULL, 0);
		r.have_fi = 1;
		r.key = r.fi.key;
	}
	int no = r.have_fi ? (x->op == BW_OP_SEND ? r.fi.send_rule : r.fi.recv_rule)
			   : BW_FDW_GET(r.word, x->op == BW_OP_SEND ? BW_FDW_SEND : BW_FDW_RECV,
					BW_FDW_RULE_BITS);
	if (!no)
		return x->fn(x, x->len);

	int saved = errno;
	struct bw_call c = {
		.rule = &e->cfg->rules[no - 1], .op = x->op, .call = x->call, .fd = x->fd,
		.key = r.key, .dest_of = bw_sock_peer_name,
	};
	/* dest is filled only on a reset: clearing all of it would cost every call */
	r.e = e, r.x = x, r.c = &c, r.passed_err = 0, r.dest[0] = '\0';
	c.attempt = attempt;
	c.arg = &r;
	int err;
	if (bw_engine_direct(c.rule, x->op)) {
		bw_engine_count(e, c.rule, BW_ST_CALLS);
		err = attempt(&r, 1, 0);
		if (err)
			bw_engine_failed(e, &c, err, 1, 0);
	} else {
		err = bw_engine_run(e, &c, bw_thread_rng());
	}
	if (err) {
		bw_engine_count_failure(e, &c, err);
		errno = err;
		return -1;
	}
	errno = r.passed_err ? r.passed_err : saved;
	return x->result;
}
