/* connect(): classify, ask the engine, carry it out. A retried connect reuses the same
 * socket (reset with AF_UNSPEC), so descriptor, duplicates, epoll registration, options and
 * bind() address survive (SPEC 3.3). Non-blocking sockets are carried to the outcome here;
 * programs accept a non-blocking connect that completes at once. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include "errnames.h"
#include "match.h"
#include "sockio.h"
#include "fdtable.h"
#include "pending.h"
#include "hook.h"
#include "real.h"
#include "sockwait.h"
#include "state.h"

struct attempt_ctx {
	struct bw_engine *e;
	const struct bw_call *call;
	int fd;
	const struct sockaddr *sa;
	socklen_t len;
	bw_usec per_attempt;     /* timeout.connect, 0 none */
	int64_t app_timeout;     /* the program's SO_SNDTIMEO on a blocking socket, 0 none */
	int last_err;            /* the previous attempt's error */
};

static void reset_socket(int fd)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	int saved = errno;
	BW_REAL(connect)(fd, &sa, sizeof sa);
	errno = saved;
}

static void before_retry(void *arg)
{
	reset_socket(((struct attempt_ctx *)arg)->fd);
}

static void timeout_event(struct attempt_ctx *a)
{
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_TIMEOUT, BW_LVL_WARN);
	ev.err = ETIMEDOUT;
	ev.elapsed_ms = (double)a->per_attempt / 1000.0;
	bw_engine_emit(a->e, a->call, &ev);
}

static int attempt_once(struct attempt_ctx *a, int64_t deadline)
{
	struct bw_fault f;
	if (bw_engine_inject(a->e, a->call, &f)) {
		if (f.delay)
			a->e->env.sleep_us(f.delay);
		if (f.err)
			return f.err;
	}
	if (BW_REAL(connect)(a->fd, a->sa, a->len) == 0)
		return 0;
	int err = errno;
	if (err != EINPROGRESS)
		return err;
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
	if (bw_wait_writable(a->fd, until) == ETIMEDOUT) {
		if (app_bound) {
			/* the program's own timeout: behave as the kernel does, attempt goes on */
			return EINPROGRESS;
		}
		reset_socket(a->fd);
		if (a->per_attempt && until - now == a->per_attempt) {
			timeout_event(a);
			return ETIMEDOUT;
		}
		/* cut short by the call's deadline: what the call gives up with is the last
		 * real outcome, not a timeout of our making */
		return a->last_err ? a->last_err : ETIMEDOUT;
	}
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (BW_REAL(getsockopt)(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return errno;
	if (soerr == 0) {
		/* Linux keeps a socket whose connect finished in the background "connecting"
		 * until connect() is called once more; without this the program's own next
		 * connect() would return 0 instead of EISCONN */
		int saved = errno;
		BW_REAL(connect)(a->fd, a->sa, a->len);
		errno = saved;
	}
	return soerr;
}

static int attempt(void *arg, int n, int64_t deadline)
{
	struct attempt_ctx *a = arg;
	(void)n;
	int err = attempt_once(a, deadline);
	a->last_err = err;
	return err;
}

static int64_t app_send_timeout(int fd)
{
	struct timeval tv;
	socklen_t len = sizeof tv;
	if (BW_REAL(getsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) < 0)
		return 0;
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static int finish(int rc, int err, int saved)
{
	errno = rc < 0 ? err : saved;
	return rc;
}

/* Let the program see EINPROGRESS and record the outcome when it reads SO_ERROR. */
static int connect_observed(struct bw_engine *e, struct bw_call *c, int fd,
			    const struct sockaddr *sa, socklen_t len, int saved)
{
	/* observe mode only logs the would-be fault; `nonblocking: observe` meets it as a
	 * connect that failed at once, which non-blocking programs handle */
	struct bw_fault f;
	if (bw_engine_inject(e, c, &f)) {
		if (f.delay)
			e->env.sleep_us(f.delay);
		if (f.err) {
			bw_engine_outcome(e, c, f.err);
			return finish(-1, f.err, saved);
		}
	}
	int rc = BW_REAL(connect)(fd, sa, len);
	int err = errno;
	if (rc < 0 && err == EINPROGRESS)
		bw_pending_add(fd, c->rule, sa, len);
	else
		bw_engine_outcome(e, c, rc == 0 ? 0 : err);
	return finish(rc, err, saved);
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
	char port[8];
	int n = 0;
	for (int v = d->port, div = 10000; div; div /= 10)
		if (v / div % 10 || n || div == 1)
			port[n++] = (char)('0' + v / div % 10);
	port[n] = '\0';
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
 * each fallback in turn under the same rule, each with its own breaker. */
static int try_fallbacks(struct bw_engine *e, struct bw_call *c, struct attempt_ctx *a,
			 int family, int err)
{
	const struct bw_rule *r = c->rule;
	const char *from = c->dest;
	char dest[128];
	struct sockaddr_storage ss;
	socklen_t len;
	for (int i = 0; i < r->n_fallback; i++) {
		if (fallback_addr(&r->fallback[i], family, &ss, &len) < 0)
			continue;
		reset_socket(a->fd);
		bw_format_sockaddr((struct sockaddr *)&ss, len, dest, sizeof dest);
		c->dest = dest;
		c->host = r->fallback[i].kind == BW_DEST_HOST ? r->fallback[i].pattern : NULL;
		c->key = bw_key_sockaddr((struct sockaddr *)&ss, len);
		c->unix_dest = family == AF_UNIX;
		failover_event(e, c, from);
		a->sa = (struct sockaddr *)&ss;
		a->len = len;
		a->last_err = 0;
		err = bw_engine_run(e, c, bw_thread_rng());
		if (err == 0)
			return 0;
	}
	return err;
}

/* Work out the socket's send/recv rules now that its peer is known. */
static void learn(struct bw_engine *e, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct bw_fdinfo fi;
	if (e->ops & (BW_OPBIT(BW_OP_SEND) | BW_OPBIT(BW_OP_RECV)) &&
	    bw_fd_classify(fd, &fi) == BW_FD_SOCKET)
		bw_sock_learn(e, fd, &fi, sa, len);
}

static int plain_connect(struct bw_engine *e, int fd, const struct sockaddr *sa, socklen_t len)
{
	int rc = BW_REAL(connect)(fd, sa, len);
	int err = errno;
	learn(e, fd, sa, len);
	errno = err;
	return rc;
}

BW_HOOK int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct bw_engine *e = bw_engine_for_ops(BW_OPBIT(BW_OP_CONNECT) | BW_OPBIT(BW_OP_SEND) |
						 BW_OPBIT(BW_OP_RECV));
	if (!e || !sa || len < sizeof(sa_family_t) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6 && sa->sa_family != AF_UNIX))
		return BW_REAL(connect)(fd, sa, len);
	const char *host;
	struct bw_target t = { .op = BW_OP_CONNECT, .addr = sa, .addrlen = len };
	const struct bw_rule *r = bw_engine_match(e, &t, &host);
	struct bw_fdinfo fi;
	/* datagram connects send nothing: nothing to retry */
	if (!r || bw_fd_classify(fd, &fi) != BW_FD_SOCKET || fi.type != SOCK_STREAM)
		return plain_connect(e, fd, sa, len);

	int saved = errno;
	char dest[128];
	bw_format_sockaddr(sa, len, dest, sizeof dest);
	int flags = BW_REAL(fcntl)(fd, F_GETFL);
	int nonblocking = flags >= 0 && (flags & O_NONBLOCK);
	struct bw_call c = {
		.rule = r, .op = BW_OP_CONNECT, .call = "connect", .dest = dest, .host = host,
		.fd = fd, .key = bw_key_sockaddr(sa, len), .unix_dest = sa->sa_family == AF_UNIX,
		.blocking = !nonblocking,
	};
	if (e->mode == BW_MODE_OBSERVE || (nonblocking && r->nonblocking == BW_NB_OBSERVE)) {
		int rc = connect_observed(e, &c, fd, sa, len, saved);
		int err = errno;
		learn(e, fd, sa, len);
		errno = err;
		return rc;
	}

	struct attempt_ctx a = { e, &c, fd, sa, len, r->timeout.connect, 0, 0 };
	c.attempt = attempt;
	c.arg = &a;
	c.before_retry = before_retry;
	/* an AF_UNIX connect never waits for a handshake; made non-blocking it would fail
	 * with EAGAIN on a full backlog where the program expects to wait */
	int switched = 0;
	if (!nonblocking && flags >= 0 && sa->sa_family != AF_UNIX) {
		if (!fi.timeouts || fi.app_sndtimeo)
			a.app_timeout = app_send_timeout(fd);
		switched = BW_REAL(fcntl)(fd, F_SETFL, flags | O_NONBLOCK) == 0;
	}
	int err = bw_engine_run(e, &c, bw_thread_rng());
	if (err && r->n_fallback)
		err = try_fallbacks(e, &c, &a, sa->sa_family, err);
	if (switched)
		BW_REAL(fcntl)(fd, F_SETFL, flags);
	learn(e, fd, a.sa, a.len);
	return finish(err ? -1 : 0, err, saved);
}
