/* Descriptor lifetime hooks: they keep the fd table true and our own descriptors ours.
 * Each is bookkeeping around the real call, with no extra system call. */
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
#include "state.h"

BW_HOOK int socket(int domain, int type, int protocol)
{
	int fd = BW_REAL(socket)(domain, type, protocol);
	if (fd >= 0 && bw_tracking())
		bw_fd_set_socket(fd, domain, type & 0xff);
	return fd;
}

BW_HOOK int socketpair(int domain, int type, int protocol, int sv[2])
{
	int rc = BW_REAL(socketpair)(domain, type, protocol, sv);
	if (rc == 0 && bw_tracking()) {
		bw_fd_set_socket(sv[0], domain, type & 0xff);
		bw_fd_set_socket(sv[1], domain, type & 0xff);
	}
	return rc;
}

/* Closing our log descriptor is answered as done and left open: a program that closes
 * every descriptor must not make us write into whatever takes the number next. */
BW_HOOK int close(int fd)
{
	if (bw_tracking()) {
		if (bw_sink_owns(fd))
			return 0;
		bw_fd_forget(fd);
		if (bw_pending_any()) {
			struct bw_pending p;
			bw_pending_take(fd, &p);
		}
	}
	return BW_REAL(close)(fd);
}

static int close_span(unsigned lo, unsigned hi, int flags)
{
	if (lo > hi)
		return 0;
	bw_fd_forget_range(lo, hi);
	return BW_REAL(close_range)(lo, hi, flags);
}

BW_HOOK int close_range(unsigned lo, unsigned hi, int flags)
{
	if (!bw_tracking() || (flags & CLOSE_RANGE_CLOEXEC))
		return BW_REAL(close_range)(lo, hi, flags);
	int own = bw_sink_fd();
	if (own < 0 || (unsigned)own < lo || (unsigned)own > hi)
		return close_span(lo, hi, flags);
	int rc = (unsigned)own > lo ? close_span(lo, (unsigned)own - 1, flags) : 0;
	int rc2 = (unsigned)own < hi ? close_span((unsigned)own + 1, hi, flags) : 0;
	return rc < 0 ? rc : rc2;
}

BW_HOOK void closefrom(int lo)
{
	int own = bw_tracking() ? bw_sink_fd() : -1;
	if (own >= lo && lo >= 0) {
		int saved = errno;
		if (own > lo && close_span((unsigned)lo, (unsigned)own - 1, 0) < 0)
			for (int i = lo; i < own; i++)
				BW_REAL(close)(i);
		errno = saved;
		lo = own + 1;
	}
	if (bw_tracking() && lo >= 0)
		bw_fd_forget_range((unsigned)lo, BW_FD_MAX - 1);
	BW_REAL(closefrom)(lo);
}

BW_HOOK int dup(int fd)
{
	int nfd = BW_REAL(dup)(fd);
	if (nfd >= 0 && bw_tracking())
		bw_fd_copy(fd, nfd);
	return nfd;
}

BW_HOOK int dup2(int fd, int nfd)
{
	if (fd != nfd && bw_tracking())
		bw_sink_evict(nfd);
	int rc = BW_REAL(dup2)(fd, nfd);
	if (rc >= 0 && fd != nfd && bw_tracking())
		bw_fd_copy(fd, nfd);
	return rc;
}

BW_HOOK int dup3(int fd, int nfd, int flags)
{
	if (fd != nfd && bw_tracking())
		bw_sink_evict(nfd);
	int rc = BW_REAL(dup3)(fd, nfd, flags);
	if (rc >= 0 && bw_tracking())
		bw_fd_copy(fd, nfd);
	return rc;
}

/* The argument is read as a pointer: every fcntl argument (int or pointer) travels in the
 * same register on the ABIs glibc supports, and the real fcntl reads the width it needs. */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	int rc = real(fd, cmd, arg);
	if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && bw_tracking())
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
	if (f && bw_tracking()) {
		int fd = fileno(f);
		if (fd >= 0)
			bw_fd_forget(fd);
	}
	return BW_REAL(fclose)(f);
}
