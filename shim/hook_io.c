/* Send and receive hooks. Each one only says how to make its real call; they all share
 * bw_xfer_run. Calls on descriptors without a rule go straight through. */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "hook.h"
#include "fdtable.h"
#include "real.h"
#include "sockio.h"
#include "state.h"

struct io {
	struct bw_xfer x;
	void *buf;
	const void *cbuf;
	int flags;
	struct sockaddr *from;
	socklen_t *fromlen;
	const struct sockaddr *to;
	socklen_t tolen;
	struct msghdr *msg;
	const struct msghdr *cmsg;
	struct mmsghdr *mm;
	unsigned vlen;
	struct timespec *tmo;
	const struct iovec *iov;
	int iovcnt;
};

#define IO(op_, call_, fd_, len_, fn_) \
	{ .op = (op_), .call = (call_), .fd = (fd_), .len = (len_), .fn = (fn_) }

static size_t iov_bytes(const struct iovec *iov, int n)
{
	size_t total = 0;
	for (int i = 0; iov && i < n; i++)
		total += iov[i].iov_len;
	return total;
}

static ssize_t do_send(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	return BW_REAL(send)(x->fd, a->cbuf, n, a->flags);
}

static ssize_t do_sendto(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	return BW_REAL(sendto)(x->fd, a->cbuf, n, a->flags, a->to, a->tolen);
}

/* The first n bytes of a scatter list, for a transfer an injected fault cuts short.
 * Returns the new count, or -1 when the list is too long to copy here (it then goes
 * whole). */
#define CUT_MAX 64
static int cut_iov(const struct iovec *iov, int cnt, size_t n, struct iovec *out)
{
	if (cnt > CUT_MAX)
		return -1;
	int k = 0;
	for (; k < cnt && n > 0; k++) {
		out[k] = iov[k];
		if (out[k].iov_len > n)
			out[k].iov_len = n;
		n -= out[k].iov_len;
	}
	return k;
}

static ssize_t do_sendmsg(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	struct iovec cut[CUT_MAX];
	int k = n < x->len ? cut_iov(a->cmsg->msg_iov, (int)a->cmsg->msg_iovlen, n, cut) : -1;
	if (k < 0)
		return BW_REAL(sendmsg)(x->fd, a->cmsg, a->flags);
	struct msghdr m = *a->cmsg;
	m.msg_iov = cut;
	m.msg_iovlen = (size_t)k;
	return BW_REAL(sendmsg)(x->fd, &m, a->flags);
}

static ssize_t do_sendmmsg(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	(void)n;
	return BW_REAL(sendmmsg)(x->fd, a->mm, a->vlen, a->flags);
}

static ssize_t do_write(struct bw_xfer *x, size_t n)
{
	return BW_REAL(write)(x->fd, ((struct io *)x)->cbuf, n);
}

static ssize_t do_writev(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	struct iovec cut[CUT_MAX];
	int k = n < x->len ? cut_iov(a->iov, a->iovcnt, n, cut) : -1;
	return k < 0 ? BW_REAL(writev)(x->fd, a->iov, a->iovcnt) : BW_REAL(writev)(x->fd, cut, k);
}

static ssize_t do_recv(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	return BW_REAL(recv)(x->fd, a->buf, n, a->flags);
}

static ssize_t do_recvfrom(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	return BW_REAL(recvfrom)(x->fd, a->buf, n, a->flags, a->from, a->fromlen);
}

static ssize_t do_recvmsg(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	struct iovec cut[CUT_MAX];
	int k = n < x->len ? cut_iov(a->msg->msg_iov, (int)a->msg->msg_iovlen, n, cut) : -1;
	if (k < 0)
		return BW_REAL(recvmsg)(x->fd, a->msg, a->flags);
	/* the program's header gets back what the kernel fills in: names, control, flags */
	struct iovec *mine = a->msg->msg_iov;
	size_t mine_len = a->msg->msg_iovlen;
	a->msg->msg_iov = cut;
	a->msg->msg_iovlen = (size_t)k;
	ssize_t rc = BW_REAL(recvmsg)(x->fd, a->msg, a->flags);
	a->msg->msg_iov = mine;
	a->msg->msg_iovlen = mine_len;
	return rc;
}

static ssize_t do_recvmmsg(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	(void)n;
	return BW_REAL(recvmmsg)(x->fd, a->mm, a->vlen, a->flags, a->tmo);
}

static ssize_t do_read(struct bw_xfer *x, size_t n)
{
	return BW_REAL(read)(x->fd, ((struct io *)x)->buf, n);
}

static ssize_t do_readv(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	struct iovec cut[CUT_MAX];
	int k = n < x->len ? cut_iov(a->iov, a->iovcnt, n, cut) : -1;
	return k < 0 ? BW_REAL(readv)(x->fd, a->iov, a->iovcnt) : BW_REAL(readv)(x->fd, cut, k);
}

/* A plain-buffer send on a stream socket may be cut short by a byte limit; a datagram
 * or a scatter list is never cut. */
static ssize_t run(struct bw_engine *e, struct io *a, int shorten, int flags)
{
	a->x.shorten = shorten;
	a->x.dontwait = (flags & MSG_DONTWAIT) != 0;
	return bw_xfer_run(e, &a->x);
}

/* Out of line, so the pass-through above needs no stack frame. */
static __attribute__((noinline)) ssize_t send_slow(struct bw_engine *e, int fd, const void *buf, size_t n, int flags)
{
	struct io a = { .x = IO(BW_OP_SEND, "send", fd, n, do_send), .cbuf = buf, .flags = flags };
	return run(e, &a, 1, flags);
}

BW_HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	struct bw_engine *e = bw_engine_for(BW_OP_SEND);
	if (!e || bw_fd_untouched(fd, 1, 0))
		return BW_REAL(send)(fd, buf, n, flags);
	return send_slow(e, fd, buf, n, flags);
}

BW_HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		       socklen_t tolen)
{
	struct bw_engine *e = bw_engine_for(BW_OP_SEND);
	if (!e || bw_fd_untouched(fd, 1, 0))
		return BW_REAL(sendto)(fd, buf, n, flags, to, tolen);
	struct io a = { .x = IO(BW_OP_SEND, "sendto", fd, n, do_sendto), .cbuf = buf,
			.flags = flags, .to = to, .tolen = tolen };
	return run(e, &a, to == NULL, flags);
}

BW_HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct bw_engine *e = bw_engine_for(BW_OP_SEND);
	if (!e || !msg || bw_fd_untouched(fd, 1, 0))
		return BW_REAL(sendmsg)(fd, msg, flags);
	struct io a = { .x = IO(BW_OP_SEND, "sendmsg", fd, iov_bytes(msg->msg_iov,
			(int)msg->msg_iovlen), do_sendmsg), .cmsg = msg, .flags = flags };
	return run(e, &a, 0, flags);
}

BW_HOOK int sendmmsg(int fd, struct mmsghdr *mm, unsigned vlen, int flags)
{
	struct bw_engine *e = bw_engine_for(BW_OP_SEND);
	if (!e || bw_fd_untouched(fd, 1, 0))
		return BW_REAL(sendmmsg)(fd, mm, vlen, flags);
	struct io a = { .x = IO(BW_OP_SEND, "sendmmsg", fd, 0, do_sendmmsg), .mm = mm,
			.vlen = vlen, .flags = flags };
	return (int)run(e, &a, 0, flags);
}

static __attribute__((noinline)) ssize_t write_slow(struct bw_engine *e, int fd, const void *buf, size_t n)
{
	struct io a = { .x = IO(BW_OP_SEND, "write", fd, n, do_write), .cbuf = buf };
	return run(e, &a, 1, 0);
}

BW_HOOK ssize_t write(int fd, const void *buf, size_t n)
{
	struct bw_engine *e = bw_engine_for(BW_OP_SEND);
	if (!e || bw_fd_untouched(fd, 1, 1))
		return BW_REAL(write)(fd, buf, n);
	return write_slow(e, fd, buf, n);
}

static __attribute__((noinline)) ssize_t writev_slow(struct bw_engine *e, int fd, const struct iovec *iov, int iovcnt)
{
	struct io a = { .x = IO(BW_OP_SEND, "writev", fd, iov_bytes(iov, iovcnt), do_writev),
			.iov = iov, .iovcnt = iovcnt };
	return run(e, &a, 0, 0);
}

BW_HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct bw_engine *e = bw_engine_for(BW_OP_SEND);
	if (!e || bw_fd_untouched(fd, 1, 1))
		return BW_REAL(writev)(fd, iov, iovcnt);
	return writev_slow(e, fd, iov, iovcnt);
}

static __attribute__((noinline)) ssize_t recv_slow(struct bw_engine *e, int fd, void *buf, size_t n, int flags)
{
	struct io a = { .x = IO(BW_OP_RECV, "recv", fd, n, do_recv), .buf = buf, .flags = flags };
	return run(e, &a, 0, flags);
}

BW_HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	struct bw_engine *e = bw_engine_for(BW_OP_RECV);
	if (!e || bw_fd_untouched(fd, 0, 0))
		return BW_REAL(recv)(fd, buf, n, flags);
	return recv_slow(e, fd, buf, n, flags);
}

BW_HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
			 socklen_t *fromlen)
{
	struct bw_engine *e = bw_engine_for(BW_OP_RECV);
	if (!e || bw_fd_untouched(fd, 0, 0))
		return BW_REAL(recvfrom)(fd, buf, n, flags, from, fromlen);
	struct io a = { .x = IO(BW_OP_RECV, "recvfrom", fd, n, do_recvfrom), .buf = buf,
			.flags = flags, .from = from, .fromlen = fromlen };
	return run(e, &a, 0, flags);
}

BW_HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct bw_engine *e = bw_engine_for(BW_OP_RECV);
	if (!e || bw_fd_untouched(fd, 0, 0))
		return BW_REAL(recvmsg)(fd, msg, flags);
	struct io a = { .x = IO(BW_OP_RECV, "recvmsg", fd, msg ? iov_bytes(msg->msg_iov,
			(int)msg->msg_iovlen) : 0, do_recvmsg), .msg = msg,
			.flags = flags };
	return run(e, &a, 0, flags);
}

BW_HOOK int recvmmsg(int fd, struct mmsghdr *mm, unsigned vlen, int flags, struct timespec *tmo)
{
	struct bw_engine *e = bw_engine_for(BW_OP_RECV);
	if (!e || bw_fd_untouched(fd, 0, 0))
		return BW_REAL(recvmmsg)(fd, mm, vlen, flags, tmo);
	struct io a = { .x = IO(BW_OP_RECV, "recvmmsg", fd, 0, do_recvmmsg), .mm = mm,
			.vlen = vlen, .flags = flags, .tmo = tmo };
	return (int)run(e, &a, 0, flags);
}

static __attribute__((noinline)) ssize_t read_slow(struct bw_engine *e, int fd, void *buf, size_t n)
{
	struct io a = { .x = IO(BW_OP_RECV, "read", fd, n, do_read), .buf = buf };
	return run(e, &a, 0, 0);
}

BW_HOOK ssize_t read(int fd, void *buf, size_t n)
{
	struct bw_engine *e = bw_engine_for(BW_OP_RECV);
	if (!e || bw_fd_untouched(fd, 0, 1))
		return BW_REAL(read)(fd, buf, n);
	return read_slow(e, fd, buf, n);
}

static __attribute__((noinline)) ssize_t readv_slow(struct bw_engine *e, int fd, const struct iovec *iov, int iovcnt)
{
	struct io a = { .x = IO(BW_OP_RECV, "readv", fd, iov_bytes(iov, iovcnt), do_readv),
			.iov = iov,
			.iovcnt = iovcnt };
	return run(e, &a, 0, 0);
}

BW_HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct bw_engine *e = bw_engine_for(BW_OP_RECV);
	if (!e || bw_fd_untouched(fd, 0, 1))
		return BW_REAL(readv)(fd, iov, iovcnt);
	return readv_slow(e, fd, iov, iovcnt);
}

/* _FORTIFY_SOURCE entry points: glibc calls its internal recv from them, out of our
 * sight, so they need hooks of their own. A length over the buffer goes to the real
 * checker, which aborts as it would have. */
BW_HOOK ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		return BW_REAL(recv_chk)(fd, buf, n, buflen, flags);
	return recv(fd, buf, n, flags);
}

BW_HOOK ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
			       struct sockaddr *from, socklen_t *fromlen)
{
	if (n > buflen)
		return BW_REAL(recvfrom_chk)(fd, buf, n, buflen, flags, from, fromlen);
	return recvfrom(fd, buf, n, flags, from, fromlen);
}

BW_HOOK ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		return BW_REAL(read_chk)(fd, buf, n, buflen);
	return read(fd, buf, n);
}
