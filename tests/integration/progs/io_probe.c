/* Every output of one socket call, printed, so that a call that met a real failure (run
 * bare) can be compared line by line with the same call failed by bulwark (a refusal or
 * an injected fault): return value, errno, each output parameter, and signals raised.
 * Output parameters start as sentinels, so "untouched" is told from "written".
 *
 * usage: io_probe CALL PEER [then]
 *   CALL  recv recvfrom recvmsg recvmmsg read readv | send sendto sendmsg sendmmsg write
 *         writev | accept accept4 | connect
 *   PEER  what happens before the call:
 *         data       the peer sends "hello world" (receives), or stays quiet (sends)
 *         eof        the peer shuts down its sending side
 *         rst        the peer closes with a reset (SO_LINGER 0)
 *         rst-epipe  the same, then one plain send() takes the pending ECONNRESET, so
 *                    that the call meets EPIPE
 *         small      accept: the address buffer is shorter than the address
 *         refused    connect: to a local port nothing listens on
 *         tripped    connect: one connect to that port first (a breaker learns of it),
 *                    then the call to the same port on a new socket
 *   then  make the same call once more and print it too (what the socket is left as)
 *
 * Everything is on 127.0.0.1 with ephemeral ports; prints one line per call and then
 * "done"; exit 0 unless the setup itself failed (exit 2). Bounded: every wait is a poll
 * of at most 5 s. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define SENT_BYTE 0x5a           /* fills buffers the call may write */
#define SENT_LEN 127             /* an address length no call ever reports here */
#define SENT_FLAGS 0x5a5a
#define SENT_CTL 64

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

static void die(const char *what)
{
	fprintf(stderr, "io_probe: %s: %s\n", what, strerror(errno));
	exit(2);
}

static const char *ename(int e)
{
	static char buf[16];
	switch (e) {
	case 0: return "0";
	case EDOM: return "EDOM(untouched)";
	case EAGAIN: return "EAGAIN";
	case ECONNRESET: return "ECONNRESET";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNABORTED: return "ECONNABORTED";
	case EPIPE: return "EPIPE";
	case ENOTCONN: return "ENOTCONN";
	case EMFILE: return "EMFILE";
	case EINTR: return "EINTR";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EISCONN: return "EISCONN";
	case EINPROGRESS: return "EINPROGRESS";
	}
	snprintf(buf, sizeof buf, "%d", e);
	return buf;
}

/* The data a buffer holds after a call that returned rc: "untouched", or the bytes. */
static const char *bytes(const char *buf, size_t cap, long rc)
{
	static char out[64];
	size_t i = 0;
	while (i < cap && (unsigned char)buf[i] == SENT_BYTE)
		i++;
	if (i == cap)
		return "untouched";
	size_t n = rc > 0 ? (size_t)rc : 0;
	if (n > sizeof out - 3)
		n = sizeof out - 3;
	out[0] = '"';
	memcpy(out + 1, buf, n);
	out[n + 1] = '"';
	out[n + 2] = '\0';
	return out;
}

/* An address buffer after a call: untouched, or its family and address. */
static const char *addr(const struct sockaddr_storage *ss)
{
	static char out[80];
	const unsigned char *p = (const unsigned char *)ss;
	size_t i = 0;
	while (i < sizeof *ss && p[i] == SENT_BYTE)
		i++;
	if (i == sizeof *ss)
		return "untouched";
	if (ss->ss_family == AF_INET) {
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, a, sizeof a);
		snprintf(out, sizeof out, "inet:%s", a);
		return out;
	}
	snprintf(out, sizeof out, "family=%d", ss->ss_family);
	return out;
}

static void wait_for(int fd, short events)
{
	struct pollfd p = { fd, events, 0 };
	if (poll(&p, 1, 5000) != 1)
		die("poll");
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	return fd;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return in;
}

static int listener(int *port)
{
	int fd = tcp_socket();
	struct sockaddr_in in = loopback(0);
	socklen_t len = sizeof in;
	if (bind(fd, (struct sockaddr *)&in, sizeof in) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&in, &len) < 0)
		die("listen");
	*port = ntohs(in.sin_port);
	return fd;
}

/* A port nothing listens on: bound, never listened on, kept so no one else takes it. */
static int closed_port(int *keep)
{
	*keep = tcp_socket();
	struct sockaddr_in in = loopback(0);
	socklen_t len = sizeof in;
	if (bind(*keep, (struct sockaddr *)&in, sizeof in) < 0 ||
	    getsockname(*keep, (struct sockaddr *)&in, &len) < 0)
		die("bind");
	return ntohs(in.sin_port);
}

/* ---- receives ---- */

static void one_recv(const char *call, int fd)
{
	char buf[32];
	memset(buf, SENT_BYTE, sizeof buf);
	struct sockaddr_storage from;
	memset(&from, SENT_BYTE, sizeof from);
	socklen_t fromlen = SENT_LEN;
	char ctl[SENT_CTL];
	struct iovec iov[2] = { { buf, 5 }, { buf + 5, sizeof buf - 5 } };
	struct msghdr m = { .msg_name = &from, .msg_namelen = SENT_LEN, .msg_iov = iov,
			    .msg_iovlen = 2, .msg_control = ctl, .msg_controllen = SENT_CTL,
			    .msg_flags = SENT_FLAGS };
	struct mmsghdr mm[2];
	char buf2[32];
	memset(buf2, SENT_BYTE, sizeof buf2);
	struct iovec iov2 = { buf2, sizeof buf2 };
	mm[0].msg_hdr = m;
	mm[0].msg_len = SENT_LEN;
	mm[1].msg_hdr = (struct msghdr){ .msg_iov = &iov2, .msg_iovlen = 1,
					 .msg_flags = SENT_FLAGS };
	mm[1].msg_len = SENT_LEN;
	long rc;
	errno = EDOM;
	if (!strcmp(call, "recv"))
		rc = recv(fd, buf, sizeof buf, 0);
	else if (!strcmp(call, "recvfrom"))
		rc = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
	else if (!strcmp(call, "recvmsg"))
		rc = recvmsg(fd, &m, 0);
	else if (!strcmp(call, "recvmmsg"))
		rc = recvmmsg(fd, mm, 2, MSG_DONTWAIT, NULL);
	else if (!strcmp(call, "read"))
		rc = read(fd, buf, sizeof buf);
	else
		rc = readv(fd, iov, 2);
	int err = rc < 0 ? errno : 0;
	long got = !strcmp(call, "recvmmsg") ? (rc > 0 ? (long)mm[0].msg_len : rc) : rc;
	printf("%s rc=%ld errno=%s buf=%s", call, rc, ename(err), bytes(buf, sizeof buf, got));
	if (!strcmp(call, "recvfrom"))
		printf(" from=%s fromlen=%u", addr(&from), (unsigned)fromlen);
	if (!strcmp(call, "recvmsg"))
		printf(" name=%s namelen=%u flags=%#x controllen=%zu", addr(&from),
		       (unsigned)m.msg_namelen, (unsigned)m.msg_flags, (size_t)m.msg_controllen);
	if (!strcmp(call, "recvmmsg"))
		printf(" len0=%u namelen0=%u flags0=%#x controllen0=%zu len1=%u buf1=%s flags1=%#x",
		       mm[0].msg_len, (unsigned)mm[0].msg_hdr.msg_namelen,
		       (unsigned)mm[0].msg_hdr.msg_flags, (size_t)mm[0].msg_hdr.msg_controllen,
		       mm[1].msg_len, bytes(buf2, sizeof buf2, (long)mm[1].msg_len),
		       (unsigned)mm[1].msg_hdr.msg_flags);
	printf(" sigpipe=%d\n", (int)sigpipes);
}

/* ---- sends ---- */

static void one_send(const char *call, int fd)
{
	static char data[] = "hello world";
	struct iovec iov[2] = { { data, 5 }, { data + 5, 6 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	struct mmsghdr mm[2] = { { m, SENT_LEN }, { m, SENT_LEN } };
	long rc;
	errno = EDOM;
	sigpipes = 0;
	if (!strcmp(call, "send"))
		rc = send(fd, data, 11, 0);
	else if (!strcmp(call, "sendto"))
		rc = sendto(fd, data, 11, 0, NULL, 0);
	else if (!strcmp(call, "sendmsg"))
		rc = sendmsg(fd, &m, 0);
	else if (!strcmp(call, "sendmmsg"))
		rc = sendmmsg(fd, mm, 2, 0);
	else if (!strcmp(call, "write"))
		rc = write(fd, data, 11);
	else
		rc = writev(fd, iov, 2);
	int err = rc < 0 ? errno : 0;
	printf("%s rc=%ld errno=%s", call, rc, ename(err));
	if (!strcmp(call, "sendmmsg"))
		printf(" len0=%u len1=%u", mm[0].msg_len, mm[1].msg_len);
	printf(" sigpipe=%d\n", (int)sigpipes);
}

/* ---- accept ---- */

static void one_accept(const char *call, int lfd, int small)
{
	struct sockaddr_storage ss;
	memset(&ss, SENT_BYTE, sizeof ss);
	socklen_t len = small ? 4 : SENT_LEN;
	errno = EDOM;
	int fd = !strcmp(call, "accept") ? accept(lfd, (struct sockaddr *)&ss, &len)
					 : accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
	int err = fd < 0 ? errno : 0;
	if (small) {
		/* only the first 4 bytes may be written: family and port */
		const unsigned char *p = (const unsigned char *)&ss;
		int beyond = 0;
		for (size_t i = 4; i < sizeof ss; i++)
			beyond |= p[i] != SENT_BYTE;
		printf("%s rc=%s errno=%s family=%d written_beyond_len=%d addrlen=%u\n", call,
		       fd >= 0 ? "fd" : "-1", ename(err), fd >= 0 ? ss.ss_family : -1, beyond,
		       (unsigned)len);
	} else {
		printf("%s rc=%s errno=%s addr=%s addrlen=%u\n", call, fd >= 0 ? "fd" : "-1",
		       ename(err), addr(&ss), (unsigned)len);
	}
	if (fd >= 0)
		close(fd);
}

/* ---- connect ---- */

static void socket_state(int fd)
{
	int soerr = -1;
	socklen_t sl = sizeof soerr;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	struct sockaddr_storage peer;
	socklen_t pl = sizeof peer;
	errno = 0;
	int pr = getpeername(fd, (struct sockaddr *)&peer, &pl);
	int flags = fcntl(fd, F_GETFL);
	printf("  so_error=%s peer=%s nonblock=%d\n", ename(soerr),
	       pr == 0 ? "connected" : ename(errno), (flags & O_NONBLOCK) != 0);
}

static void one_connect(int fd, int port)
{
	struct sockaddr_in to = loopback(port);
	errno = EDOM;
	int rc = connect(fd, (struct sockaddr *)&to, sizeof to);
	int err = rc < 0 ? errno : 0;
	printf("connect rc=%d errno=%s\n", rc, ename(err));
	socket_state(fd);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: io_probe CALL PEER [then]\n");
		return 2;
	}
	const char *call = argv[1], *peer = argv[2];
	int then = argc > 3 && !strcmp(argv[3], "then");
	struct sigaction sa = { .sa_handler = on_sigpipe };
	sigaction(SIGPIPE, &sa, NULL);

	int port, lfd = listener(&port);
	if (!strcmp(call, "connect")) {
		int keep, closed = closed_port(&keep);
		if (!strcmp(peer, "tripped")) {
			int fd = tcp_socket();
			struct sockaddr_in to = loopback(closed);
			connect(fd, (struct sockaddr *)&to, sizeof to);
			close(fd);
		}
		int fd = tcp_socket();
		one_connect(fd, closed);
		/* the socket must still be usable, as after a real refusal */
		if (then)
			one_connect(fd, port);
		printf("done\n");
		return 0;
	}

	int c = tcp_socket();
	struct sockaddr_in to = loopback(port);
	if (connect(c, (struct sockaddr *)&to, sizeof to) < 0)
		die("connect");
	if (!strncmp(call, "accept", 6)) {
		wait_for(lfd, POLLIN);
		one_accept(call, lfd, !strcmp(peer, "small"));
		if (then) {
			int c2 = tcp_socket();
			if (connect(c2, (struct sockaddr *)&to, sizeof to) < 0)
				die("connect");
			wait_for(lfd, POLLIN);
			one_accept(call, lfd, !strcmp(peer, "small"));
		}
		printf("done\n");
		return 0;
	}
	int s = accept(lfd, NULL, NULL);
	if (s < 0)
		die("accept");
	int sending = !strncmp(call, "send", 4) || !strncmp(call, "write", 5);
	if (!strcmp(peer, "data") && !sending) {
		if (write(s, "hello world", 11) != 11)
			die("peer write");
		wait_for(c, POLLIN);
	} else if (!strcmp(peer, "eof")) {
		shutdown(s, SHUT_WR);
		wait_for(c, POLLIN);
	} else if (!strncmp(peer, "rst", 3)) {
		struct linger lg = { 1, 0 };
		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(s);
		s = -1;
		wait_for(c, sending ? POLLOUT : POLLIN);
		if (!strcmp(peer, "rst-epipe") && send(c, "x", 1, MSG_NOSIGNAL) >= 0)
			die("send after reset");
	}
	for (int i = 0; i < 1 + then; i++) {
		if (sending) {
			one_send(call, c);
			continue;
		}
		/* a second receive with nothing to read would block for good */
		struct pollfd p = { c, POLLIN, 0 };
		if (i > 0 && poll(&p, 1, 500) != 1) {
			printf("%s would block\n", call);
			continue;
		}
		one_recv(call, c);
	}
	printf("done\n");
	return 0;
}
