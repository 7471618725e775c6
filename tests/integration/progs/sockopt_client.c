/* A client that dresses its socket up before connecting, to check that a retried connect
 * leaves it exactly as the program made it (docs/design.md, H9): same open file, options, flags,
 * bound address, epoll registration and duplicates.
 *
 * usage: sockopt_client PORT BINDPORT block|nonblock
 * Connects to 127.0.0.1:PORT (an echo server) from 127.0.0.1:BINDPORT. Prints "OK ..."
 * and exits 0, or prints what differed and exits 1. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	return 1;
}

static int mismatch(const char *what, long want, long got)
{
	printf("FAIL %s: want %ld, got %ld\n", what, want, got);
	return 1;
}

static int getint(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;
	if (getsockopt(fd, level, name, &v, &len) < 0)
		return -1;
	return v;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* A non-blocking connect may still be under way when connect() returns: wait for it the
 * way curl and asyncio do (writable, then SO_ERROR). */
static int finish_connect(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, 10000) != 1)
		return errno = ETIMEDOUT, -1;
	int err = getint(fd, SOL_SOCKET, SO_ERROR);
	if (err != 0)
		return errno = err, -1;
	return 0;
}

static int echo(int fd, int nonblock)
{
	const char msg[] = "ping bulwark";
	if (send(fd, msg, sizeof msg - 1, 0) != (ssize_t)(sizeof msg - 1))
		return fail("send");
	char buf[64];
	size_t got = 0;
	while (got < sizeof msg - 1) {
		if (nonblock) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (poll(&p, 1, 5000) != 1)
				return errno = ETIMEDOUT, fail("poll for echo");
		}
		ssize_t n = recv(fd, buf + got, sizeof buf - got, 0);
		if (n <= 0)
			return n == 0 ? (errno = ECONNRESET, fail("recv: eof")) : fail("recv");
		got += (size_t)n;
	}
	if (memcmp(buf, msg, sizeof msg - 1) != 0) {
		printf("FAIL echo: got %.*s\n", (int)got, buf);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT BINDPORT block|nonblock\n", argv[0]);
		return 2;
	}
	int port = atoi(argv[1]), bindport = atoi(argv[2]);
	int nonblock = strcmp(argv[3], "nonblock") == 0;

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket");
	int one = 1, rcvbuf = 96 * 1024;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		return fail("setsockopt");
	/* The kernel doubles SO_RCVBUF: compare with what it reports, not what we asked. */
	int rcvbuf_set = getint(fd, SOL_SOCKET, SO_RCVBUF);

	struct sockaddr_in src = loopback(bindport);
	if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
		return fail("bind");

	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.fd = fd };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return fail("epoll");

	if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return fail("fcntl O_NONBLOCK");
	int flags_before = fcntl(fd, F_GETFL), fdflags_before = fcntl(fd, F_GETFD);

	/* A duplicate made before connect must see the same, connected socket afterwards;
	 * the inode tells an open file description replaced through dup2. */
	int dupfd = dup(fd);
	struct stat st_before, st_after;
	if (dupfd < 0 || fstat(fd, &st_before) < 0)
		return fail("dup/fstat");

	struct sockaddr_in dst = loopback(port);
	int rc = connect(fd, (struct sockaddr *)&dst, sizeof dst);
	const char *how = "connect=0";
	if (rc < 0 && nonblock && errno == EINPROGRESS) {
		how = "connect=EINPROGRESS";
		rc = finish_connect(fd);
	}
	if (rc < 0)
		return fail("connect");

	if (fstat(fd, &st_after) < 0)
		return fail("fstat after connect");
	if (st_after.st_ino != st_before.st_ino)
		return mismatch("socket inode", (long)st_before.st_ino, (long)st_after.st_ino);
	if (getint(fd, SOL_SOCKET, SO_KEEPALIVE) != 1)
		return mismatch("SO_KEEPALIVE", 1, getint(fd, SOL_SOCKET, SO_KEEPALIVE));
	if (getint(fd, SOL_SOCKET, SO_RCVBUF) != rcvbuf_set)
		return mismatch("SO_RCVBUF", rcvbuf_set, getint(fd, SOL_SOCKET, SO_RCVBUF));
	if (getint(fd, IPPROTO_TCP, TCP_NODELAY) != 1)
		return mismatch("TCP_NODELAY", 1, getint(fd, IPPROTO_TCP, TCP_NODELAY));
	if (fcntl(fd, F_GETFL) != flags_before)
		return mismatch("F_GETFL", flags_before, fcntl(fd, F_GETFL));
	if (fcntl(fd, F_GETFD) != fdflags_before)
		return mismatch("F_GETFD", fdflags_before, fcntl(fd, F_GETFD));

	struct sockaddr_in name;
	socklen_t len = sizeof name;
	if (getsockname(fd, (struct sockaddr *)&name, &len) < 0)
		return fail("getsockname");
	if (ntohs(name.sin_port) != bindport)
		return mismatch("local port", bindport, ntohs(name.sin_port));
	len = sizeof name;
	if (getpeername(dupfd, (struct sockaddr *)&name, &len) < 0)
		return fail("getpeername on the duplicate");
	if (ntohs(name.sin_port) != port)
		return mismatch("peer port seen through the duplicate", port, ntohs(name.sin_port));

	struct epoll_event out[4];
	int n = epoll_wait(ep, out, 4, 2000);
	if (n != 1 || out[0].data.fd != fd || !(out[0].events & EPOLLOUT)) {
		printf("FAIL epoll_wait: n=%d events=%#x (the fd left the epoll set?)\n", n,
		       n > 0 ? out[0].events : 0);
		return 1;
	}
	if (echo(fd, nonblock))
		return 1;
	printf("OK %s fd=%d port=%d\n", how, fd, bindport);
	close(dupfd);
	close(fd);
	close(ep);
	return 0;
}
