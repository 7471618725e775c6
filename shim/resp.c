/* RESP2 client (resp.h). The fleet needs a handful of commands (SELECT, EVALSHA, EVAL),
 * so a few hundred lines of our own beat linking hiredis: no symbols to hide from a
 * program that has its own hiredis, no allocation, deadlines on every wait (design.md
 * §6.1). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "real.h"
#include "resp.h"

/* Our descriptors live high, out of the way of programs that use small numbers as they
 * come (as the event sink's do, design.md H21). */
#define RESP_MIN_FD 100

static int64_t now_us(void)
{
	return bw_clock_us(CLOCK_MONOTONIC);
}

static int wait_fd(int fd, short events, int64_t deadline)
{
	for (int i = 0; i < 1000; i++) {
		int64_t left = deadline - now_us();
		if (left <= 0)
			return -1;
		struct pollfd p = { fd, events, 0 };
		int n = poll(&p, 1, (int)((left + 999) / 1000));
		if (n > 0)
			return (p.revents & (POLLERR | POLLNVAL)) && !(p.revents & events) ? -2 : 0;
		if (n < 0 && errno != EINTR)
			return -2;
	}
	return -1;
}

void bw_resp_forget(struct bw_resp *r)
{
	r->fd = -1;
	r->len = 0;
}

void bw_resp_close(struct bw_resp *r)
{
	if (r->fd >= 0)
		BW_REAL(close)(r->fd);
	bw_resp_forget(r);
}

/* Still the socket we opened: a program may have closed every descriptor it did not know
 * (closefrom) and opened something else under the number. */
int bw_resp_ours(const struct bw_resp *r)
{
	struct stat st;
	return r->fd >= 0 && fstat(r->fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       st.st_dev == r->dev && st.st_ino == r->ino;
}

int bw_resp_connect(struct bw_resp *r, const struct bw_fleet *f, int64_t deadline, char *why,
		    size_t cap)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
	} a;
	socklen_t alen;
	memset(&a, 0, sizeof a);
	r->fd = -1;
	r->len = 0;
	if (f->family == AF_UNIX) {
		a.un.sun_family = AF_UNIX;
		snprintf(a.un.sun_path, sizeof a.un.sun_path, "%s", f->unix_path);
		alen = sizeof a.un;
	} else if (f->family == AF_INET6) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons((uint16_t)f->port);
		memcpy(&a.in6.sin6_addr, f->addr, 16);
		alen = sizeof a.in6;
	} else {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons((uint16_t)f->port);
		memcpy(&a.in.sin_addr, f->addr, 4);
		alen = sizeof a.in;
	}
	int fd = BW_REAL(socket)(f->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, cap, "socket: %s", strerror(errno));
		return -1;
	}
	int hi = BW_REAL(fcntl)(fd, F_DUPFD_CLOEXEC, RESP_MIN_FD);
	if (hi >= 0) {
		BW_REAL(close)(fd);
		fd = hi;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(why, cap, "fstat: %s", strerror(errno));
		BW_REAL(close)(fd);
		return -1;
	}
	r->fd = fd;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	if (BW_REAL(connect)(fd, &a.sa, alen) < 0) {
		int err = errno;
		if (err != EINPROGRESS && err != EAGAIN) {
			snprintf(why, cap, "connect: %s", strerror(err));
			bw_resp_close(r);
			return -1;
		}
		int w = wait_fd(fd, POLLOUT, deadline);
		socklen_t el = sizeof err;
		if (w == -1) {
			snprintf(why, cap, "connect: no answer in time");
			bw_resp_close(r);
			return -1;
		}
		err = 0;
		if (BW_REAL(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			snprintf(why, cap, "connect: %s", strerror(err));
			bw_resp_close(r);
			return -1;
		}
	}
	if (f->family != AF_UNIX) {
		int one = 1;
		BW_REAL(setsockopt)(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
	}
	if (f->db) {
		char db[16];
		int n = snprintf(db, sizeof db, "%d", f->db);
		const char *argv[] = { "SELECT", db };
		size_t lens[] = { 6, (size_t)n };
		if (bw_resp_call(r, 2, argv, lens, deadline, why, cap) < 0)
			return -1;
		if (r->v[0].type != '+') {
			snprintf(why, cap, "SELECT %d: %.*s", f->db, (int)r->v[0].n, r->v[0].s);
			bw_resp_close(r);
			return -1;
		}
	}
	return 0;
}

/* A line's end from p: the offset of "\r\n", or -1 when not there yet. */
static long line_end(const char *buf, size_t len, size_t p)
{
	for (size_t i = p; i + 1 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n')
			return (long)i;
	return -1;
}

static int parse_int(const char *s, const char *end, int64_t *out)
{
	int neg = s < end && *s == '-';
	int64_t v = 0;
	s += neg;
	if (s >= end || end - s > 18)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

/* One value at *p (and its elements); 1 done, 0 more bytes needed, -1 bad. */
static int parse_at(const char *buf, size_t len, size_t *p, struct bw_resp_val *v, int cap,
		    int *nv, int depth)
{
	if (*p >= len)
		return 0;
	if (*nv >= cap || depth > 4)
		return -1;
	long e = line_end(buf, len, *p + 1);
	if (e < 0)
		return 0;
	struct bw_resp_val *x = &v[(*nv)++];
	char t = buf[*p];
	const char *s = buf + *p + 1, *end = buf + e;
	memset(x, 0, sizeof *x);
	x->type = t;
	*p = (size_t)e + 2;
	switch (t) {
	case '+':
	case '-':
		x->s = s;
		x->n = (size_t)(end - s);
		return 1;
	case ':':
		return parse_int(s, end, &x->i) < 0 ? -1 : 1;
	case '$':
		if (parse_int(s, end, &x->i) < 0 || x->i < -1 || x->i > BW_RESP_BUF)
			return -1;
		if (x->i == -1) {
			x->type = '_';
			return 1;
		}
		if (len - *p < (size_t)x->i + 2)
			return 0;
		x->s = buf + *p;
		x->n = (size_t)x->i;
		*p += (size_t)x->i + 2;
		return 1;
	case '*':
		if (parse_int(s, end, &x->i) < 0 || x->i < -1 || x->i > cap)
			return -1;
		if (x->i == -1) {
			x->type = '_';
			return 1;
		}
		for (int64_t k = 0; k < x->i; k++) {
			int rc = parse_at(buf, len, p, v, cap, nv, depth + 1);
			if (rc <= 0)
				return rc;
		}
		return 1;
	default:
		return -1;
	}
}

long bw_resp_parse(const char *buf, size_t len, struct bw_resp_val *v, int cap, int *nv)
{
	size_t p = 0;
	*nv = 0;
	int rc = parse_at(buf, len, &p, v, cap, nv, 0);
	return rc < 0 ? -1 : rc == 0 ? 0 : (long)p;
}

static int send_all(int fd, const char *b, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t w = BW_REAL(send)(fd, b, n, MSG_NOSIGNAL);
		if (w > 0) {
			b += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			return -2;
		if (wait_fd(fd, POLLOUT, deadline) < 0)
			return -1;
	}
	return 0;
}

int bw_resp_call(struct bw_resp *r, int argc, const char *const *argv, const size_t *lens,
		 int64_t deadline, char *why, size_t cap)
{
	char out[4 * BW_RESP_BUF];   /* the syncer's stack is ours: 256 KiB */
	size_t n = 0;
	if (!bw_resp_ours(r)) {
		snprintf(why, cap, "the connection's descriptor was closed by the program");
		bw_resp_forget(r);
		return -1;
	}
	int k = snprintf(out, sizeof out, "*%d\r\n", argc);
	n = (size_t)k;
	for (int i = 0; i < argc; i++) {
		if (n + lens[i] + 32 > sizeof out) {
			snprintf(why, cap, "command too long");
			return -1;
		}
		n += (size_t)snprintf(out + n, sizeof out - n, "$%zu\r\n", lens[i]);
		memcpy(out + n, argv[i], lens[i]);
		n += lens[i];
		out[n++] = '\r';
		out[n++] = '\n';
	}
	int rc = send_all(r->fd, out, n, deadline);
	if (rc < 0) {
		snprintf(why, cap, rc == -1 ? "no answer in time (send)" : "send: %s",
			 strerror(errno));
		bw_resp_close(r);
		return -1;
	}
	r->len = 0;
	for (int i = 0; i < 100000; i++) {
		long used = bw_resp_parse(r->buf, r->len, r->v, BW_RESP_VALS, &r->nv);
		if (used > 0) {
			if ((size_t)used != r->len) {
				/* nothing was asked for that: not a Redis we can trust to be in step */
				snprintf(why, cap, "unexpected bytes after the reply");
				bw_resp_close(r);
				return -1;
			}
			return 0;
		}
		if (used < 0 || r->len == sizeof r->buf) {
			snprintf(why, cap, "the reply is not RESP or too large");
			bw_resp_close(r);
			return -1;
		}
		ssize_t got = BW_REAL(recv)(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
		if (got > 0) {
			r->len += (size_t)got;
			continue;
		}
		if (got == 0) {
			snprintf(why, cap, "the server closed the connection");
			bw_resp_close(r);
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			snprintf(why, cap, "recv: %s", strerror(errno));
			bw_resp_close(r);
			return -1;
		}
		int w = wait_fd(r->fd, POLLIN, deadline);
		if (w < 0) {
			snprintf(why, cap, w == -1 ? "no answer in time" : "poll failed");
			bw_resp_close(r);
			return -1;
		}
	}
	snprintf(why, cap, "no answer in time");
	bw_resp_close(r);
	return -1;
}
