/* Send and receive hooks. Each one only says how to make its real call; they all share
 * bw_xfer_run. Calls on descriptors without a rule go straight through (design.md §3). */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <limits.h>
#include "hook.h"
#include "peek.h"
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

/* Only the fields a hook's own real call reads are set: zeroing the whole struct would
 * cost every covered call. */
#define SET(a, op_, call_, fd_, w_, len_, fn_) \
	((a).x.op = (op_), (a).x.call = (call_), (a).x.fd = (fd_), (a).x.word = (w_), \
	 (a).x.len = (len_), (a).x.fn = (fn_), (a).x.measure = NULL, (a).x.data = NULL)

/* The bytes of a scatter list, read through the kernel (the pointers are the program's,
 * and may be bad); BW_LEN_ASK when they cannot be read. */
static size_t iov_bytes(const struct iovec *iov, size_t n)
{
	struct iovec chunk[64];
	size_t total = 0;
	if (n > IOV_MAX)
		return BW_LEN_ASK;          /* the kernel refuses it: EMSGSIZE or EINVAL */
	for (size_t i = 0; i < n; i += 64) {
		size_t k = n - i < 64 ? n - i : 64;
		if (bw_peek(chunk, iov + i, k * sizeof *chunk) < 0)
			return BW_LEN_ASK;
		for (size_t j = 0; j < k; j++)
			total += chunk[j].iov_len;
	}
	return total;
}

static size_t msg_bytes(const struct msghdr *m)
{
	struct msghdr h;
	return bw_peek(&h, m, sizeof h) < 0 ? BW_LEN_ASK : iov_bytes(h.msg_iov, h.msg_iovlen);
}

static size_t measure_sendmsg(struct bw_xfer *x);
static size_t measure_recvmsg(struct bw_xfer *x);
static size_t measure_iov(struct bw_xfer *x);

static size_t measure_sendmsg(struct bw_xfer *x)
{
	return msg_bytes(((struct io *)x)->cmsg);
}

static size_t measure_recvmsg(struct bw_xfer *x)
{
	return msg_bytes(((struct io *)x)->msg);
}

static size_t measure_iov(struct bw_xfer *x)
{
	struct io *a = (struct io *)x;
	return a->iovcnt < 0 ? BW_LEN_ASK : iov_bytes(a->iov, (size_t)a->iovcnt);
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

/* An injected end of file (x->empty): the headers are received with no room for data,
 * so the kernel writes what it writes at a real end of file, and no byte is taken. */
static ssize_t do_recvmmsg(struct bw_xfer *x, size_t n)
{
	struct io *a = (struct io *)x;
	(void)n;
	if (!x->empty || !a->mm)
		return BW_REAL(recvmmsg)(x->fd, a->mm, a->vlen, a->flags, a->tmo);
	struct mmsghdr empty[CUT_MAX];
	unsigned k = a->vlen < CUT_MAX ? a->vlen : CUT_MAX;
	if (bw_peek(empty, a->mm, k * sizeof *empty) < 0)
		return BW_REAL(recvmmsg)(x->fd, a->mm, a->vlen, a->flags, a->tmo);
	for (unsigned i = 0; i < k; i++) {
		empty[i].msg_hdr.msg_iov = NULL;
		empty[i].msg_hdr.msg_iovlen = 0;
	}
	int rc = BW_REAL(recvmmsg)(x->fd, empty, k, a->flags, a->tmo);
	for (int i = 0; i < rc; i++) {
		a->mm[i].msg_len = empty[i].msg_len;
		a->mm[i].msg_hdr.msg_namelen = empty[i].msg_hdr.msg_namelen;
		a->mm[i].msg_hdr.msg_controllen = empty[i].msg_hdr.msg_controllen;
		a->mm[i].msg_hdr.msg_flags = empty[i].msg_hdr.msg_flags;
	}
	return rc;
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
static inline __attribute__((always_inline)) ssize_t run(int op, struct io *a, int shorten,
							  int flags)
{
	return bw_xfer(op, &a->x, shorten, flags);
}

/* Each hook looks its descriptor up inline (bw_fd_look) and goes straight to libc when no
 * rule can act; the rest is out of line, so the pass-through needs no stack frame, and
 * takes the word it was looked up with. */
#define SLOW static __attribute__((noinline)) ssize_t

SLOW send_slow(int fd, const void *buf, size_t n, int flags, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_SEND, "send", fd, w, n, do_send);
	a.cbuf = buf, a.flags = flags;
	a.x.data = buf, a.x.to = NULL, a.x.tolen = 0;
	return run(BW_OP_SEND, &a, 1, flags);
}

BW_HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_SEND), BW_FD_SEND, BW_UNSEEN_ASK);
	if (!w)
		return BW_REAL(send)(fd, buf, n, flags);
	return send_slow(fd, buf, n, flags, w);
}

SLOW sendto_slow(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		 socklen_t tolen, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_SEND, "sendto", fd, w, n, do_sendto);
	a.cbuf = buf, a.flags = flags, a.to = to, a.tolen = tolen;
	a.x.data = buf, a.x.to = to, a.x.tolen = tolen;
	return run(BW_OP_SEND, &a, to == NULL, flags);
}

BW_HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		       socklen_t tolen)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_SEND), BW_FD_SEND, BW_UNSEEN_ASK);
	if (!w)
		return BW_REAL(sendto)(fd, buf, n, flags, to, tolen);
	return sendto_slow(fd, buf, n, flags, to, tolen, w);
}

SLOW sendmsg_slow(int fd, const struct msghdr *msg, int flags, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_SEND, "sendmsg", fd, w, BW_LEN_ASK, do_sendmsg);
	a.x.measure = measure_sendmsg;
	a.cmsg = msg, a.flags = flags;
	return run(BW_OP_SEND, &a, 0, flags);
}

BW_HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	uint64_t w = msg ? bw_fd_look(fd, BW_OPBIT(BW_OP_SEND), BW_FD_SEND, BW_UNSEEN_ASK) : 0;
	if (!w)
		return BW_REAL(sendmsg)(fd, msg, flags);
	return sendmsg_slow(fd, msg, flags, w);
}

SLOW sendmmsg_slow(int fd, struct mmsghdr *mm, unsigned vlen, int flags, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_SEND, "sendmmsg", fd, w, 0, do_sendmmsg);
	a.mm = mm, a.vlen = vlen, a.flags = flags;
	return run(BW_OP_SEND, &a, 0, flags);
}

BW_HOOK int sendmmsg(int fd, struct mmsghdr *mm, unsigned vlen, int flags)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_SEND), BW_FD_SEND, BW_UNSEEN_ASK);
	if (!w)
		return BW_REAL(sendmmsg)(fd, mm, vlen, flags);
	return (int)sendmmsg_slow(fd, mm, vlen, flags, w);
}

SLOW write_slow(int fd, const void *buf, size_t n, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_SEND, "write", fd, w, n, do_write);
	a.cbuf = buf;
	a.x.data = buf, a.x.to = NULL, a.x.tolen = 0;
	return run(BW_OP_SEND, &a, 1, 0);
}

BW_HOOK ssize_t write(int fd, const void *buf, size_t n)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_SEND), BW_FD_SEND, BW_UNSEEN_PASS);
	if (!w)
		return BW_REAL(write)(fd, buf, n);
	return write_slow(fd, buf, n, w);
}

SLOW writev_slow(int fd, const struct iovec *iov, int iovcnt, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_SEND, "writev", fd, w, BW_LEN_ASK, do_writev);
	a.x.measure = measure_iov;
	a.iov = iov, a.iovcnt = iovcnt;
	return run(BW_OP_SEND, &a, 0, 0);
}

BW_HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_SEND), BW_FD_SEND, BW_UNSEEN_PASS);
	if (!w)
		return BW_REAL(writev)(fd, iov, iovcnt);
	return writev_slow(fd, iov, iovcnt, w);
}

SLOW recv_slow(int fd, void *buf, size_t n, int flags, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_RECV, "recv", fd, w, n, do_recv);
	a.buf = buf, a.flags = flags;
	return run(BW_OP_RECV, &a, 0, flags);
}

BW_HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_RECV), BW_FD_RECV, BW_UNSEEN_ASK);
	if (!w)
		return BW_REAL(recv)(fd, buf, n, flags);
	return recv_slow(fd, buf, n, flags, w);
}

SLOW recvfrom_slow(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
		   socklen_t *fromlen, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_RECV, "recvfrom", fd, w, n, do_recvfrom);
	a.buf = buf, a.flags = flags, a.from = from, a.fromlen = fromlen;
	return run(BW_OP_RECV, &a, 0, flags);
}

BW_HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
			 socklen_t *fromlen)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_RECV), BW_FD_RECV, BW_UNSEEN_ASK);
	if (!w)
		return BW_REAL(recvfrom)(fd, buf, n, flags, from, fromlen);
	return recvfrom_slow(fd, buf, n, flags, from, fromlen, w);
}

SLOW recvmsg_slow(int fd, struct msghdr *msg, int flags, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_RECV, "recvmsg", fd, w, BW_LEN_ASK, do_recvmsg);
	a.x.measure = measure_recvmsg;
	a.msg = msg, a.flags = flags;
	return run(BW_OP_RECV, &a, 0, flags);
}

BW_HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	uint64_t w = msg ? bw_fd_look(fd, BW_OPBIT(BW_OP_RECV), BW_FD_RECV, BW_UNSEEN_ASK) : 0;
	if (!w)
		return BW_REAL(recvmsg)(fd, msg, flags);
	return recvmsg_slow(fd, msg, flags, w);
}

SLOW recvmmsg_slow(int fd, struct mmsghdr *mm, unsigned vlen, int flags, struct timespec *tmo, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_RECV, "recvmmsg", fd, w, 0, do_recvmmsg);
	a.mm = mm, a.vlen = vlen, a.flags = flags, a.tmo = tmo;
	return run(BW_OP_RECV, &a, 0, flags);
}

BW_HOOK int recvmmsg(int fd, struct mmsghdr *mm, unsigned vlen, int flags, struct timespec *tmo)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_RECV), BW_FD_RECV, BW_UNSEEN_ASK);
	if (!w)
		return BW_REAL(recvmmsg)(fd, mm, vlen, flags, tmo);
	return (int)recvmmsg_slow(fd, mm, vlen, flags, tmo, w);
}

SLOW read_slow(int fd, void *buf, size_t n, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_RECV, "read", fd, w, n, do_read);
	a.buf = buf;
	return run(BW_OP_RECV, &a, 0, 0);
}

BW_HOOK ssize_t read(int fd, void *buf, size_t n)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_RECV), BW_FD_RECV, BW_UNSEEN_PASS);
	if (!w)
		return BW_REAL(read)(fd, buf, n);
	return read_slow(fd, buf, n, w);
}

SLOW readv_slow(int fd, const struct iovec *iov, int iovcnt, uint64_t w)
{
	struct io a;
	SET(a, BW_OP_RECV, "readv", fd, w, BW_LEN_ASK, do_readv);
	a.x.measure = measure_iov;
	a.iov = iov, a.iovcnt = iovcnt;
	return run(BW_OP_RECV, &a, 0, 0);
}

BW_HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	uint64_t w = bw_fd_look(fd, BW_OPBIT(BW_OP_RECV), BW_FD_RECV, BW_UNSEEN_PASS);
	if (!w)
		return BW_REAL(readv)(fd, iov, iovcnt);
	return readv_slow(fd, iov, iovcnt, w);
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
