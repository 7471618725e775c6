/* Descriptor lifetime hooks: they keep the fd table true and our own descriptors ours.
 * Each is bookkeeping around the real call, with no extra system call where the table has
 * nothing to change. A child running in its parent's memory (vfork, posix_spawn) writes
 * nothing: its closes and dup2s before exec are its own, the table is the parent's. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>
#include "fdtable.h"
#include "pending.h"
#include "hook.h"
#include "real.h"
#include "sink.h"
#include "sockio.h"
#include "state.h"

/* The table may be written: the library tracks descriptors and this is no borrowed-memory
 * child. */
static int keeping(void)
{
	if (!bw_tracking())
		return 0;
	int saved = errno;
	int borrowed = bw_borrowed_memory();
	errno = saved;
	return !borrowed;
}

/* Whether the table holds anything for fd: most closes and dups are of files the table
 * never heard of, and cost no more than this load. */
static int known(int fd)
{
	return bw_fd_word(fd) != 0;
}

BW_HOOK int socket(int domain, int type, int protocol)
{
	int fd = BW_REAL(socket)(domain, type, protocol);
	if (fd >= 0 && keeping())
		bw_fd_set_socket(fd, domain, type & 0xff);
	return fd;
}

BW_HOOK int socketpair(int domain, int type, int protocol, int sv[2])
{
	int rc = BW_REAL(socketpair)(domain, type, protocol, sv);
	if (rc == 0 && keeping()) {
		bw_fd_set_socket(sv[0], domain, type & 0xff);
		bw_fd_set_socket(sv[1], domain, type & 0xff);
	}
	return rc;
}

/* A connection a breaker was waiting on closes before it said anything either way: it
 * counts neither as a success nor as a failure. */
static void drop(int fd)
{
	bw_fd_unwatch(fd, NULL);
	bw_fd_forget(fd);
	if (bw_pending_any()) {
		struct bw_pending p;
		bw_pending_take(fd, &p);
	}
}

/* Closing our log descriptor is answered as done and left open: a program that closes
 * every descriptor must not make us write into whatever takes the number next. */
BW_HOOK int close(int fd)
{
	if (bw_sink_owns(fd) && bw_tracking())
		return 0;
	if (known(fd) && keeping())
		drop(fd);
	return BW_REAL(close)(fd);
}

static int close_span(unsigned lo, unsigned hi, int flags, int keep)
{
	if (lo > hi)
		return 0;
	if (keep)
		bw_fd_forget_range(lo, hi);
	return BW_REAL(close_range)(lo, hi, flags);
}

BW_HOOK int close_range(unsigned lo, unsigned hi, int flags)
{
	/* a range the kernel refuses (hi below lo) is refused by the kernel */
	if (!bw_tracking() || (flags & CLOSE_RANGE_CLOEXEC) || lo > hi)
		return BW_REAL(close_range)(lo, hi, flags);
	int keep = keeping();
	int own = bw_sink_fd();
	if (own < 0 || (unsigned)own < lo || (unsigned)own > hi)
		return close_span(lo, hi, flags, keep);
	int rc = (unsigned)own > lo ? close_span(lo, (unsigned)own - 1, flags, keep) : 0;
	int rc2 = (unsigned)own < hi ? close_span((unsigned)own + 1, hi, flags, keep) : 0;
	return rc < 0 ? rc : rc2;
}

BW_HOOK void closefrom(int lo)
{
	int own = bw_tracking() ? bw_sink_fd() : -1;
	int keep = keeping();
	if (own >= lo && lo >= 0) {
		int saved = errno;
		if (own > lo && close_span((unsigned)lo, (unsigned)own - 1, 0, keep) < 0)
			for (int i = lo; i < own; i++)
				BW_REAL(close)(i);
		errno = saved;
		lo = own + 1;
	}
	if (keep && lo >= 0)
		bw_fd_forget_range((unsigned)lo, BW_FD_MAX - 1);
	BW_REAL(closefrom)(lo);
}

BW_HOOK int dup(int fd)
{
	int nfd = BW_REAL(dup)(fd);
	if (nfd >= 0 && (known(fd) || known(nfd)) && keeping())
		bw_fd_copy(fd, nfd);
	return nfd;
}

/* dup2 and dup3 over our own log descriptor move it out of the way first; in a
 * borrowed-memory child the move would be the parent's too, so there the log stays
 * where it is and the child's dup2 (an exec's stdio set-up) replaces it in the child
 * alone. */
static int dup_onto(int fd, int nfd, int flags, int three)
{
	int keep = fd != nfd && (bw_sink_owns(nfd) || known(fd) || known(nfd)) && keeping();
	if (keep)
		bw_sink_evict(nfd);
	int rc = three ? BW_REAL(dup3)(fd, nfd, flags) : BW_REAL(dup2)(fd, nfd);
	if (rc >= 0 && keep)
		bw_fd_copy(fd, nfd);
	return rc;
}

BW_HOOK int dup2(int fd, int nfd)
{
	return dup_onto(fd, nfd, 0, 0);
}

BW_HOOK int dup3(int fd, int nfd, int flags)
{
	return dup_onto(fd, nfd, flags, 1);
}

/* The argument is read as a pointer: every fcntl argument (int or pointer) travels in the
 * same register on the ABIs glibc supports, and the real fcntl reads the width it needs. */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	int rc = real(fd, cmd, arg);
	if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) &&
	    (known(fd) || known(rc)) && keeping())
		bw_fd_copy(fd, rc);
	return rc;
}

BW_HOOK int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(BW_REAL(fcntl), fd, cmd, arg);
}

BW_HOOK int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(BW_REAL(fcntl64), fd, cmd, arg);
}

/* glibc closes a stream's descriptor internally, out of our close hook's sight. */
BW_HOOK int fclose(FILE *f)
{
	if (f) {
		int fd = fileno(f);
		if (fd >= 0 && known(fd) && keeping())
			drop(fd);
	}
	return BW_REAL(fclose)(f);
}

/* freopen closes the stream's descriptor and puts the new file on the same number, all
 * inside glibc: whatever the table knew of that number (a socket dup2'd onto stdout) is
 * no longer true. */
static FILE *reopened(FILE *f, int old)
{
	if (old >= 0 && known(old) && keeping())
		drop(old);
	int fd = f ? fileno(f) : -1;
	if (fd >= 0 && known(fd) && keeping())
		drop(fd);
	return f;
}

BW_HOOK FILE *freopen(const char *path, const char *mode, FILE *f)
{
	int old = f ? fileno(f) : -1;
	FILE *r = BW_REAL(freopen)(path, mode, f);
	int err = errno;
	reopened(r, old);
	errno = err;
	return r;
}

BW_HOOK FILE *freopen64(const char *path, const char *mode, FILE *f)
{
	int old = f ? fileno(f) : -1;
	FILE *r = BW_REAL(freopen64)(path, mode, f);
	int err = errno;
	reopened(r, old);
	errno = err;
	return r;
}
