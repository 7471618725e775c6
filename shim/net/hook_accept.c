/* accept and accept4: retry the transient errors a legacy server would die or spin on
 * (EMFILE, ECONNABORTED, ...) and pace inbound connections by delaying the call, so the
 * kernel's backlog absorbs a storm. The program's own address buffer goes to the kernel
 * as it is, so a bad pointer gets the kernel's EFAULT; the accepted socket's rules are
 * worked out from its peer, asked of the kernel. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include "hold.h"
#include "hook.h"
#include "match.h"
#include "real.h"
#include "sockio.h"
#include "reload.h"
#include "state.h"

struct accept_args {
	struct bw_engine *e;
	const struct bw_call *c;
	int fd, flags;
	struct sockaddr *addr;
	socklen_t *addrlen;
	int result, err;
};

static int attempt(void *arg, int n, int64_t deadline)
{
	struct accept_args *a = arg;
	(void)n, (void)deadline;
	struct bw_fault f;
	if (a->c && bw_engine_inject(a->e, a->c, &f) && f.err) {
		a->result = -1;
		a->err = f.err;
		return f.err;
	}
	a->result = BW_REAL(accept4)(a->fd, a->addr, a->addrlen, a->flags);
	if (a->result >= 0)
		return 0;
	a->err = errno;
	/* "nothing to accept yet" on a non-blocking listener is not a failure, and a bad
	 * pointer is the program's own */
	return a->err == EAGAIN || a->err == EWOULDBLOCK || a->err == EFAULT ||
	       a->err == EINVAL ? 0 : a->err;
}

/* A wait of ours on a blocking listener ends with EINTR when a signal handler runs, as
 * the kernel's accept would; a non-blocking accept never says EINTR. */
static int on_signal(void *arg, int where, int *result)
{
	struct accept_args *a = arg;
	(void)where;
	int fl = BW_REAL(fcntl)(a->fd, F_GETFL);
	if (fl < 0 || (fl & O_NONBLOCK))
		return 0;
	a->result = -1;
	*result = a->err = EINTR;
	return 1;
}

static void listener_name(const struct bw_call *c, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int saved = errno;
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
		bw_format_sockaddr((struct sockaddr *)&ss, len, buf, cap);
	else
		buf[0] = '\0';
	errno = saved;
}

static int do_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	bw_reload_tick();
	struct bw_engine *e = bw_engine_for_ops(BW_OPBIT(BW_OP_ACCEPT) | BW_OPBIT(BW_OP_SEND) |
						 BW_OPBIT(BW_OP_RECV));
	if (!e)
		return BW_REAL(accept4)(fd, addr, addrlen, flags);
	int saved = errno;
	struct bw_fdinfo li;
	if (bw_fd_classify(fd, &li) == BW_FD_SOCKET && !(li.io_known && li.gen == bw_fd_gen(e->gen)))
		bw_sock_learn(e, fd, &li, NULL, 0, BW_PEER_ASK);
	struct accept_args a = { .fd = fd, .flags = flags, .addr = addr, .addrlen = addrlen,
				 .result = -1 };
	int err = 0;
	struct bw_call c = { .slot_held = 0 };
	if (li.kind == BW_FD_SOCKET && li.accept_rule && (e->ops & BW_OPBIT(BW_OP_ACCEPT))) {
		c = (struct bw_call){
			.rule = &e->cfg->rules[li.accept_rule - 1], .op = BW_OP_ACCEPT,
			.call = flags ? "accept4" : "accept", .fd = fd, .key = li.key,
			.dest_of = listener_name, .attempt = attempt, .arg = &a,
			.on_signal = on_signal,
		};
		a.e = e;
		a.c = &c;
		err = bw_engine_run(e, &c, bw_thread_rng());
	} else {
		attempt(&a, 1, 0);
	}
	if (a.result < 0) {
		/* nothing accepted (a non-blocking listener with none waiting): no slot kept */
		bw_engine_give_slot(e, &c);
		errno = err ? err : a.err;
		return -1;
	}
	if (li.kind == BW_FD_SOCKET) {
		struct bw_fdinfo fi = { .kind = BW_FD_SOCKET, .family = li.family, .type = li.type };
		bw_fd_set_socket(a.result, li.family, li.type);
		bw_sock_learn(e, a.result, &fi, NULL, 0, BW_PEER_ACCEPTED);
	}
	/* the connection accepted holds the listener's slot until it closes */
	bw_hold_attach(a.result, e, &c);
	errno = saved;
	return a.result;
}

BW_HOOK int accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	return do_accept(fd, addr, addrlen, 0);
}

BW_HOOK int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	return do_accept(fd, addr, addrlen, flags);
}
