/* connect(): classify, ask the engine, carry it out. A retried connect reuses the same
 * socket (reset with AF_UNSPEC), so descriptor, duplicates, epoll registration, options and
 * bind() address survive (SPEC 3.3). Non-blocking sockets are carried to the outcome here;
 * programs accept a non-blocking connect that completes at once. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include "errnames.h"
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

static int attempt(void *arg, int n, int64_t deadline)
{
	struct attempt_ctx *a = arg;
	(void)n;
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
		if (a->per_attempt && until - now == a->per_attempt)
			timeout_event(a);
		return ETIMEDOUT;
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
	int rc = BW_REAL(connect)(fd, sa, len);
	int err = errno;
	if (rc < 0 && err == EINPROGRESS)
		bw_pending_add(fd, c->rule, sa, len);
	else
		bw_engine_outcome(e, c, rc == 0 ? 0 : err);
	return finish(rc, err, saved);
}

BW_HOOK int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct bw_engine *e = bw_engine_for(BW_OP_CONNECT);
	if (!e || !sa || len < sizeof(sa_family_t) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6 && sa->sa_family != AF_UNIX))
		return BW_REAL(connect)(fd, sa, len);
	const char *host;
	struct bw_target t = { .op = BW_OP_CONNECT, .addr = sa, .addrlen = len };
	const struct bw_rule *r = bw_engine_match(e, &t, &host);
	struct bw_fdinfo fi;
	/* datagram connects send nothing: nothing to retry */
	if (!r || bw_fd_classify(fd, &fi) != BW_FD_SOCKET || fi.type != SOCK_STREAM)
		return BW_REAL(connect)(fd, sa, len);

	int saved = errno;
	char dest[128];
	bw_format_sockaddr(sa, len, dest, sizeof dest);
	int flags = BW_REAL(fcntl)(fd, F_GETFL);
	int nonblocking = flags >= 0 && (flags & O_NONBLOCK);
	struct bw_call c = {
		.rule = r, .op = BW_OP_CONNECT, .call = "connect", .dest = dest, .host = host,
		.fd = fd, .unix_dest = sa->sa_family == AF_UNIX, .blocking = !nonblocking,
	};
	if (e->mode == BW_MODE_OBSERVE || (nonblocking && r->nonblocking == BW_NB_OBSERVE))
		return connect_observed(e, &c, fd, sa, len, saved);

	struct attempt_ctx a = { e, &c, fd, sa, len, r->timeout.connect, 0 };
	c.attempt = attempt;
	c.arg = &a;
	c.before_retry = before_retry;
	/* an AF_UNIX connect never waits for a handshake; made non-blocking it would fail
	 * with EAGAIN on a full backlog where the program expects to wait */
	int switched = 0;
	if (!nonblocking && flags >= 0 && sa->sa_family != AF_UNIX) {
		a.app_timeout = app_send_timeout(fd);
		switched = BW_REAL(fcntl)(fd, F_SETFL, flags | O_NONBLOCK) == 0;
	}
	int err = bw_engine_run(e, &c, bw_thread_rng());
	if (switched)
		BW_REAL(fcntl)(fd, F_SETFL, flags);
	return finish(err ? -1 : 0, err, saved);
}

/* The outcome of a connect left to complete on its own arrives here. */
BW_HOOK int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	int rc = BW_REAL(getsockopt)(fd, level, name, val, len);
	if (rc == 0 && level == SOL_SOCKET && name == SO_ERROR && bw_pending_any() && val &&
	    *len >= sizeof(int) && *(int *)val != EINPROGRESS) {
		struct bw_engine *e = bw_engine_for(BW_OP_CONNECT);
		struct bw_pending p;
		if (e && bw_pending_take(fd, &p)) {
			int saved = errno;
			char dest[128];
			bw_format_sockaddr((struct sockaddr *)&p.addr, p.len, dest, sizeof dest);
			struct bw_call c = { .rule = p.rule, .op = BW_OP_CONNECT, .call = "connect",
					     .dest = dest, .fd = fd };
			bw_engine_outcome(e, &c, *(int *)val);
			errno = saved;
		}
	}
	return rc;
}
