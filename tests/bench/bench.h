/* Small helpers shared by the benchmark programs: a monotonic clock, a loopback listener,
 * and whole-buffer send/recv. Header-only so run.sh can build each program with one cc. */
#ifndef BENCH_H
#define BENCH_H

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Exit status 1 with the failing call named: run.sh shows the last line of stderr when a
 * run fails, and that line must say what broke. */
static inline void bench_die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(1);
}

static inline struct sockaddr_in bench_loopback(unsigned short port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* An ephemeral port, so that runs never collide with each other or with a port still in
 * TIME_WAIT from the previous run. */
static inline int bench_listen(unsigned short *port, int backlog)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		bench_die("socket");
	struct sockaddr_in a = bench_loopback(0);
	socklen_t len = sizeof a;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
		bench_die("bind");
	if (listen(fd, backlog) < 0)
		bench_die("listen");
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		bench_die("getsockname");
	*port = ntohs(a.sin_port);
	return fd;
}

/* Stream sockets may transfer less than asked; both loops finish the job. */
static inline int bench_send_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, buf, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		buf += k;
		n -= (size_t)k;
	}
	return 0;
}

/* 0 when all n bytes came, 1 on a clean end of stream before any byte, -1 otherwise. */
static inline int bench_recv_all(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = recv(fd, buf + got, n - got, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0 && got == 0)
			return 1;
		if (k <= 0) {
			if (k == 0)
				errno = EPIPE;
			return -1;
		}
		got += (size_t)k;
	}
	return 0;
}

#endif
