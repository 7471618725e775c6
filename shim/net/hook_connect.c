/* connect(): classify, ask the engine, carry it out.
 *
 * Three ways through, from the least to the most we take over:
 * - the program's business: a socket already connected or connecting, or a connect the
 *   program repeats to collect the result of one it left in progress. The real call
 *   answers (EISCONN, EALREADY, the pending outcome) and nothing is counted.
 * - at once: no retry can happen (no retry or fallback, observe mode, or a non-blocking
 *   socket under `nonblocking: observe`). Admission (breaker, limiter) and injection
 *   apply at the call, then the real call is made as the program made it: a blocking one
 *   waits in the kernel with the kernel's own signal rules, a non-blocking one returns
 *   EINPROGRESS to the program's event loop. The outcome is recorded when the program
 *   learns it (SO_ERROR, or connect once more).
 * - carried: a retry can happen, or a blocking connect has a per-attempt timeout. On a
 *   blocking socket each attempt is the kernel's own blocking connect, bounded by
 *   SO_SNDTIMEO; on a non-blocking one it is waited for with poll and collected with a
 *   second connect(), never by reading SO_ERROR, which would leave a refused socket to
 *   fail the program's next connect with ECONNABORTED. A retried connect reuses the same
 *   socket (reset with AF_UNSPEC), so descriptor, duplicates, epoll registration, options
 *   and bind() address survive. A signal handler that runs during an attempt or a backoff
 *   ends the call as the kernel would: EINTR (EINPROGRESS on a non-blocking socket) with
 *   an attempt in flight, which the program then finishes like any interrupted connect.
 *
 * After any outcome the socket is in the state the kernel's own calls leave it in
 * (design.md §4.4). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include "decimal.h"
#include "errnames.h"
#include "match.h"
#include "sockio.h"
#include "fdtable.h"
#include "foreign.h"
#include "peek.h"
#include "pending.h"
#include "hold.h"
#include "hook.h"
#include "overdue.h"
#include "real.h"
#include "sigrestart.h"
#include "sockwait.h"
#include "reload.h"
#include "state.h"

struct attempt_ctx {
	struct bw_engine *e;
	struct bw_call *call;
	int fd;
	const struct sockaddr *sa;
	socklen_t len;
	bw_usec per_attempt;     /* timeout.connect, 0 none */
	int64_t app_timeout;     /* the program's SO_SNDTIMEO on a blocking socket, 0 none */
	int nonblocking;         /* as the program made the socket */
	int last_err;            /* the previous attempt's error */
	int64_t attempt_end;     /* when the attempt under way reaches timeout.connect */
};

static void before_retry(void *arg)
{
	bw_sock_unconnect(((struct attempt_ctx *)arg)->fd);
}

/* An attempt goes on without us: its outcome is recorded when the program learns it. */
static int leave_in_flight(struct attempt_ctx *a)
{
	bw_pending_add(a->fd, a->call->rule, a->sa, a->len, a->call->started,
		       a->call->admitted);
	return a->nonblocking ? EINPROGRESS : EINTR;
}

/* The finished attempt's outcome, by a second connect: 0, or its error, the socket left
 * as the kernel leaves it after telling the program (unconnected after a failure). */
static int collect(struct attempt_ctx *a)
{
	if (BW_REAL(connect)(a->fd, a->sa, a->len) == 0)
		return 0;
	int err = errno;
	return err == EISCONN ? 0 : err;
}

/* A connect on a non-blocking socket, carried to its outcome because a retry may follow:
 * waited for with poll, and collected with a second connect. */
static int attempt_once(struct attempt_ctx *a, int64_t deadline)
{
	if (BW_REAL(connect)(a->fd, a->sa, a->len) == 0)
		return 0;
	int err = errno;
	if (err != EINPROGRESS)
		return err;      /* EINTR from a blocking unix connect is the kernel's own */
	for (;;) {
		int64_t now = bw_mono_us(), until = 0;
		int app_bound = 0;
		if (a->per_attempt)
			until = now + a->per_attempt;
		if (deadline && (!until || deadline < until))
			until = deadline;
		if (a->app_timeout && (!until || now + a->app_timeout < until)) {
			until = now + a->app_timeout;
			app_bound = 1;
		}
		/* with its own SO_SNDTIMEO the kernel never restarts a connect */
		int w = bw_wait_writable(a->fd, until,
					 a->app_timeout ? BW_RESTART_NEVER : BW_RESTART_SA);
		if (w == EINTR)
			return leave_in_flight(a);
		if (w == ETIMEDOUT) {
			if (app_bound) {
				/* the program's own timeout: as the kernel does, the attempt
				 * goes on and the program hears EINPROGRESS */
				bw_pending_add(a->fd, a->call->rule, a->sa, a->len,
					       a->call->started, a->call->admitted);
				return EINPROGRESS;
			}
			bw_sock_unconnect(a->fd);
			if (a->per_attempt && until - now == a->per_attempt) {
				bw_engine_timed_out(a->e, a->call, a->per_attempt);
				return ETIMEDOUT;
			}
			/* cut short by the call's deadline: what the call gives up with is
			 * the last real outcome, not a timeout of our making */
			return a->last_err ? a->last_err : ETIMEDOUT;
		}
		err = collect(a);
		if (err != EALREADY)
			return err;
		/* woken before the handshake ended: wait on */
	}
}

static void set_send_timeout(int fd, int64_t us)
{
	struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };
	BW_REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A blocking connect waits in the kernel, as the program's own would: the kernel's rules
 * hold for the handshake, for a reset that comes right after it, and for a signal
 * handler with SA_RESTART while no time limit is set. Only the time limit is ours, as
 * SO_SNDTIMEO, which a connect obeys (set for each wait; the socket's own value comes back
 * when the call ends). */
static int attempt_blocking(struct attempt_ctx *a, int64_t deadline)
{
	int again = 0;
	for (;;) {
		int64_t now = bw_mono_us(), until = 0;
		int app_bound = 0;
		if (a->per_attempt)
			until = now + (again ? a->attempt_end - now : a->per_attempt);
		if (deadline && (!until || deadline < until))
			until = deadline;
		if (a->app_timeout && (!until || now + a->app_timeout < until)) {
			until = now + a->app_timeout;
			app_bound = 1;
		}
		if (!again)
			a->attempt_end = now + a->per_attempt;
		if (until && until <= now)
			until = now + 1;
		set_send_timeout(a->fd, until ? until - now : 0);
		if (BW_REAL(connect)(a->fd, a->sa, a->len) == 0)
			return 0;
		int err = errno;
		if (err == EISCONN && again)
			return 0;
		if (err == EINTR) {
			/* with no time limit the kernel has already restarted the call where the
			 * handler asked for it; with one it never restarts, so we do it for the
			 * program's handlers that would have had it restarted */
			if (until && !a->app_timeout && bw_sig_restarts()) {
				again = 1;
				continue;
			}
			return leave_in_flight(a);
		}
		if ((err == EINPROGRESS && !again) || (err == EALREADY && again)) {
			/* the time ran out with the attempt under way */
			if (app_bound) {
				bw_pending_add(a->fd, a->call->rule, a->sa, a->len,
					       a->call->started, a->call->admitted);
				return EINPROGRESS;
			}
			bw_sock_unconnect(a->fd);
			if (a->per_attempt && until >= a->attempt_end) {
				bw_engine_timed_out(a->e, a->call, a->per_attempt);
				return ETIMEDOUT;
			}
			return a->last_err ? a->last_err : ETIMEDOUT;
		}
		return err;
	}
}

static int attempt(void *arg, int n, int64_t deadline)
{
	struct attempt_ctx *a = arg;
	(void)n;
	struct bw_fault f;
	int err = bw_engine_inject(a->e, a->call, &f) ? f.err : 0;
	if (!err)
		err = a->nonblocking ? attempt_once(a, deadline) : attempt_blocking(a, deadline);
	a->last_err = err;
	return err;
}

/* A signal handler ran in a backoff. The socket was reset for the next attempt; start it
 * now and let the program finish it, as after a connect interrupted in the kernel (POSIX:
 * the connection goes on asynchronously). An attempt that ends at once is the outcome. */
static int on_signal(void *arg, int where, int *result)
{
	struct attempt_ctx *a = arg;
	if (where != BW_WAIT_BACKOFF)
		return 0;        /* waits before an attempt (limits, delays) run to their end */
	if (a->sa->sa_family == AF_UNIX) {
		/* a unix connect never goes on in the background: nothing to start */
		*result = a->nonblocking ? EAGAIN : EINTR;
		return 1;
	}
	int flags = BW_REAL(fcntl)(a->fd, F_GETFL);
	int switched = !a->nonblocking && flags >= 0 &&
		       BW_REAL(fcntl)(a->fd, F_SETFL, flags | O_NONBLOCK) == 0;
	int rc = BW_REAL(connect)(a->fd, a->sa, a->len);
	int err = errno;
	if (switched)
		BW_REAL(fcntl)(a->fd, F_SETFL, flags);
	*result = rc == 0 ? 0 : err == EINPROGRESS ? leave_in_flight(a) : err;
	return 1;
}

static int finish(int rc, int err, int saved)
{
	errno = rc < 0 ? err : saved;
	return rc;
}

/* A fallback destination as an address for this socket's family; -1 if it has none. */
static int fallback_addr(const struct bw_dest *d, int family, struct sockaddr_storage *ss,
			 socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (d->kind == BW_DEST_UNIX) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		size_t n = strlen(d->pattern);
		if (family != AF_UNIX || n >= sizeof un->sun_path)
			return -1;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, d->pattern, n + 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		return 0;
	}
	if (d->kind == BW_DEST_ADDR && d->family == family && family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)d->port);
		memcpy(&in->sin_addr, d->addr, 4);
		*len = sizeof *in;
		return 0;
	}
	if (d->kind == BW_DEST_ADDR && d->family == family && family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)d->port);
		memcpy(&in6->sin6_addr, d->addr, 16);
		*len = sizeof *in6;
		return 0;
	}
	if (d->kind != BW_DEST_HOST || (family != AF_INET && family != AF_INET6))
		return -1;
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char port[BW_DECIMAL_MAX + 1];
	port[bw_decimal(port, (uint64_t)d->port)] = '\0';
	int saved = errno;
	int rc = BW_REAL(getaddrinfo)(d->pattern, port, &hints, &res);
	errno = saved;
	if (rc != 0 || !res)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void failover_event(struct bw_engine *e, const struct bw_call *c, const char *from)
{
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_FAILOVER, BW_LVL_WARN);
	ev.from = from;
	bw_engine_emit(e, c, &ev);
}

/* The primary gave up or its breaker is open: the same socket, reset, is connected to
 * each fallback in turn under the same rule, each with its own breaker. A destination's
 * give-up (held in c->held) is an error only when no fallback follows it: the call goes
 * on, and may yet succeed. */
static int try_fallbacks(struct bw_engine *e, struct bw_call *c, struct attempt_ctx *a,
			 int family, int err, struct sockaddr_storage *ss)
{
	const struct bw_rule *r = c->rule;
	const char *from = c->dest;
	char dest[BW_DEST_NAME_MAX];
	socklen_t len;
	for (int i = 0; i < r->n_fallback; i++) {
		if (fallback_addr(&r->fallback[i], family, ss, &len) < 0)
			continue;
		bw_engine_gave_up(e, c, c->held, BW_LVL_WARN);
		bw_sock_unconnect(a->fd);
		bw_format_sockaddr((struct sockaddr *)ss, len, dest, sizeof dest);
		c->dest = dest;
		c->host = r->fallback[i].kind == BW_DEST_HOST ? r->fallback[i].pattern : NULL;
		c->key = bw_key_sockaddr((struct sockaddr *)ss, len);
		c->unix_dest = family == AF_UNIX;
		failover_event(e, c, from);
		a->sa = (struct sockaddr *)ss;
		a->len = len;
		a->last_err = 0;
		err = bw_engine_run(e, c, bw_thread_rng());
		if (err == 0 || bw_engine_unfinished(err, 0))
			return err;
	}
	/* here, while c->dest still names the last destination tried */
	bw_engine_gave_up(e, c, c->held, BW_LVL_ERROR);
	return err;
}

/* Work out the socket's send/recv rules and peer now that its peer is known. */
static void learn(struct bw_engine *e, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct bw_fdinfo fi;
	if (bw_fd_classify(fd, &fi) == BW_FD_SOCKET)
		bw_sock_learn(e, fd, &fi, sa, len, BW_PEER_CONNECTED);
}

/* A connect that succeeded under a rule whose breaker judges connections: the breaker
 * hears of it when the connection delivers its first byte or breaks first. */
static void watch(struct bw_engine *e, const struct bw_call *c, int fd)
{
	if (!c->confirm_later)
		return;
	bw_fd_watch(fd, bw_engine_rule_no(e, c->rule), c->slow, c->began);
	if (bw_engine_slow_timed(c->rule))
		bw_overdue_add(fd);
}

/* The outcome of a connect call, as the socket's state afterwards: whether it is (or is
 * becoming) connected to sa. */
static int connecting(int rc, int err)
{
	return rc == 0 || err == EINPROGRESS || err == EINTR || err == EALREADY ||
	       err == EISCONN;
}

/* A socket already connected or connecting (not one whose earlier attempt failed: that
 * one reads TCP_CLOSE). Asked only on connects a rule matched. */
static int busy(int fd, int family)
{
	int saved = errno, rc = 0;
	if (family == AF_UNIX) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		rc = getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
	} else {
		struct tcp_info ti;
		socklen_t len = sizeof ti;
		memset(&ti, 0, sizeof ti);
		rc = BW_REAL(getsockopt)(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
		     ti.tcpi_state != TCP_CLOSE;
	}
	errno = saved;
	return rc;
}

/* The program's business: the real call answers. When it collects the outcome of a
 * connect we left in progress (p, its entry), that outcome is recorded now. */
static int pass_through(struct bw_engine *e, struct bw_call *c, int fd, const struct sockaddr *sa,
			socklen_t len, const struct bw_pending *p)
{
	if (p)
		bw_pending_resume(p);
	int rc = BW_REAL(connect)(fd, sa, len);
	int err = errno;
	if (p && rc < 0 && (err == EALREADY || err == EINPROGRESS || err == EINTR)) {
		bw_pending_add(fd, c->rule, sa, len, p->started, p->admitted);  /* not finished */
	} else if (p) {
		bw_attempt_injected = 0;
		int outcome = rc == 0 || err == EISCONN ? 0 : err;
		c->started = p->started;
		c->admitted = p->admitted;
		bw_engine_outcome(e, c, outcome);
		if (outcome == 0)
			watch(e, c, fd);
		else
			bw_hold_fail(fd);       /* the connection it held a slot for failed */
	}
	errno = err;
	return rc;
}

/* No retry can happen: admission and injection at the call, then the real call as the
 * program made it. */
static int at_once(struct bw_engine *e, struct bw_call *c, int fd, const struct sockaddr *sa,
		   socklen_t len)
{
	int err = bw_engine_admit_call(e, c);
	if (err)
		return finish(-1, err, errno);
	struct bw_fault f;
	bw_attempt_injected = 0;
	if (bw_engine_inject(e, c, &f) && f.err) {
		bw_engine_outcome(e, c, f.err);
		return finish(-1, f.err, errno);
	}
	int rc = BW_REAL(connect)(fd, sa, len);
	err = errno;
	if (rc < 0 && (err == EINPROGRESS || err == EINTR) && sa->sa_family != AF_UNIX) {
		bw_pending_add(fd, c->rule, sa, len, c->started, c->admitted);
	} else if (!(rc < 0 && err == EINTR)) {
		bw_engine_outcome(e, c, rc == 0 ? 0 : err);
		if (rc == 0)
			watch(e, c, fd);
	}
	errno = err;
	return rc;
}

static int can_retry(const struct bw_rule *r)
{
	return (r->has_retry && r->retry.attempts > 1) || r->n_fallback > 0;
}

static int carried(struct bw_engine *e, struct bw_call *c, int fd, const struct sockaddr *sa,
		   socklen_t len, int flags, const struct bw_fdinfo *fi,
		   const struct sockaddr **final, socklen_t *final_len,
		   struct sockaddr_storage *fb)
{
	const struct bw_rule *r = c->rule;
	int nonblocking = flags & O_NONBLOCK;
	struct attempt_ctx a = { e, c, fd, sa, len, r->timeout.connect, 0, nonblocking != 0, 0, 0 };
	c->attempt = attempt;
	c->arg = &a;
	c->before_retry = before_retry;
	c->on_signal = on_signal;
	/* a blocking socket's own SO_SNDTIMEO bounds its connect, and comes back after ours */
	struct timeval snd = { 0, 0 };
	socklen_t sl = sizeof snd;
	int restore = !nonblocking &&
		      BW_REAL(getsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, &sl) == 0;
	if (restore && (!fi->timeouts || fi->app_sndtimeo))
		a.app_timeout = (int64_t)snd.tv_sec * 1000000 + snd.tv_usec;
	struct bw_gave_up held = { NULL, NULL, 0, 0 };
	c->held = r->n_fallback ? &held : NULL;
	int err = bw_engine_run(e, c, bw_thread_rng());
	/* a fallback is for a destination that failed, not for the program's own errors */
	if (err && !bw_engine_unfinished(err, 0) && err != EAGAIN && r->n_fallback)
		err = try_fallbacks(e, c, &a, sa->sa_family, err, fb);
	else if (c->held)
		bw_engine_gave_up(e, c, c->held, BW_LVL_ERROR);
	c->held = NULL;
	if (restore) {
		int saved = errno;
		BW_REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
		errno = saved;
	}
	if (err == 0)
		watch(e, c, fd);
	*final = a.sa;
	*final_len = a.len;
	return err;
}

BW_HOOK int connect(int fd, const struct sockaddr *to, socklen_t len)
{
	bw_reload_tick();
	struct bw_engine *e = bw_engine_for_ops(BW_OPBIT(BW_OP_CONNECT) | BW_OPBIT(BW_OP_SEND) |
						 BW_OPBIT(BW_OP_RECV));
	/* the address is read through the kernel: a bad pointer gets the kernel's EFAULT */
	struct sockaddr_storage copy;
	const struct sockaddr *sa = (const struct sockaddr *)&copy;
	if (!e || len < sizeof(sa_family_t) || len > sizeof copy || bw_peek(&copy, to, len) < 0 ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6 && sa->sa_family != AF_UNIX))
		return BW_REAL(connect)(fd, to, len);
	const char *host;
	struct bw_target t = { .op = BW_OP_CONNECT, .addr = sa, .addrlen = len };
	/* a connection a database client makes for a call its rule acts on is that rule's */
	const struct bw_rule *r = bw_foreign_ruled ? NULL : bw_engine_match(e, &t, &host);
	struct bw_fdinfo fi;
	/* datagram connects send nothing: nothing to retry or count */
	if (!r || bw_fd_classify(fd, &fi) != BW_FD_SOCKET ||
	    (fi.type != SOCK_STREAM && fi.type != SOCK_SEQPACKET)) {
		int rc = BW_REAL(connect)(fd, sa, len);
		int err = errno;
		if (connecting(rc, err))
			learn(e, fd, sa, len);
		errno = err;
		return rc;
	}

	int saved = errno;
	/* connections of a slow-call breaker still waiting past `over` count before this
	 * connect is admitted */
	if (bw_engine_slow_timed(r))
		bw_overdue_scan(e);
	char dest[BW_DEST_NAME_MAX];
	bw_format_sockaddr(sa, len, dest, sizeof dest);
	struct bw_call c = {
		.rule = r, .op = BW_OP_CONNECT, .call = "connect", .dest = dest, .host = host,
		.fd = fd, .key = bw_key_sockaddr(sa, len), .unix_dest = sa->sa_family == AF_UNIX,
		.confirm_later = r->breaker.enabled,
	};
	struct bw_pending p;
	int collecting = bw_pending_any() && bw_pending_take(fd, &p);
	if (collecting || busy(fd, sa->sa_family))
		return pass_through(e, &c, fd, sa, len, collecting ? &p : NULL);

	int flags = BW_REAL(fcntl)(fd, F_GETFL);
	int nonblocking = flags >= 0 && (flags & O_NONBLOCK);
	int rc, err;
	const struct sockaddr *final = sa;
	socklen_t final_len = len;
	struct sockaddr_storage fb;
	if (flags < 0 || e->mode == BW_MODE_OBSERVE ||
	    (nonblocking && (r->nonblocking == BW_NB_OBSERVE || !can_retry(r))) ||
	    (!nonblocking && !can_retry(r) && (!r->timeout.connect || sa->sa_family == AF_UNIX))) {
		rc = at_once(e, &c, fd, sa, len);
		err = errno;
	} else {
		err = carried(e, &c, fd, sa, len, flags, &fi, &final, &final_len, &fb);
		rc = err ? -1 : 0;
	}
	if (connecting(rc, err))
		learn(e, fd, final, final_len);
	/* a connection made, or still being made, holds the slot it was admitted with
	 * until its descriptor closes (or its connect fails) */
	if (connecting(rc, err))
		bw_hold_attach(fd, e, &c);
	else
		bw_engine_give_slot(e, &c);
	return finish(rc, err, saved);
}
