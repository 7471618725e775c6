/* Return values and errno through the hooks must be exactly libc's (docs/design.md, 4.1): failures keep
 * their errno, and a successful call leaves errno as it found it.
 *
 * usage: errno_check REFUSED_PORT
 * Prints one line per call, "NAME rc=RC errno=ERRNO", so that a run with the shim can be
 * compared line by line with a run without it, then "OK" or "FAIL n" (exit 0 or 1) for
 * the expectations checked here. REFUSED_PORT is a local port nothing listens on. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

/* errno values a program would set and never expect a library to invent. */
#define SENTINEL EDOM

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case EBADF: return "EBADF";
	case ENOTSOCK: return "ENOTSOCK";
	case EDOM: return "EDOM";
	case EINVAL: return "EINVAL";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EINPROGRESS: return "EINPROGRESS";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EISCONN: return "EISCONN";
	case ENOENT: return "ENOENT";
	default: {
		static char buf[32];
		snprintf(buf, sizeof buf, "%d", e);
		return buf;
	}
	}
}

/* Record one call; want_rc/want_errno of -2 mean "not checked here, only compared". */
static void check(const char *name, long rc, int err, long want_rc, int want_errno)
{
	printf("%s rc=%ld errno=%s\n", name, rc, ename(err));
	if ((want_rc != -2 && rc != want_rc) || (want_errno != -2 && err != want_errno)) {
		printf("  ^ expected rc=%ld errno=%s\n", want_rc, ename(want_errno));
		failures++;
	}
}

#define CALL(name, expr, want_rc, want_errno) do { \
	errno = SENTINEL; \
	long rc_ = (long)(expr); \
	check(name, rc_, errno, want_rc, want_errno); \
} while (0)

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s REFUSED_PORT\n", argv[0]);
		return 2;
	}
	int refused = atoi(argv[1]);

	/* Failures with their own errno. */
	CALL("close(-1)", close(-1), -1, EBADF);
	int nul = open("/dev/null", O_RDWR);
	struct sockaddr_in a = loopback(refused);
	CALL("connect(non-socket)", connect(nul, (struct sockaddr *)&a, sizeof a), -1, ENOTSOCK);
	CALL("connect(bad fd)", connect(-1, (struct sockaddr *)&a, sizeof a), -1, EBADF);
	int v;
	socklen_t vl = sizeof v;
	CALL("getsockopt(non-socket)", getsockopt(nul, SOL_SOCKET, SO_TYPE, &v, &vl), -1, ENOTSOCK);
	CALL("accept(non-socket)", accept(nul, NULL, NULL), -1, ENOTSOCK);
	CALL("dup2(bad fd)", dup2(-1, 50), -1, EBADF);
	CALL("fcntl(bad fd)", fcntl(-1, F_GETFL), -1, EBADF);
	CALL("socket(bad family)", socket(12345, SOCK_STREAM, 0), -1, EAFNOSUPPORT);

	/* A listener of our own, for connects that succeed. */
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in la = loopback(0);
	socklen_t ll = sizeof la;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&la, sizeof la) < 0 || listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&la, &ll) < 0) {
		perror("listener");
		return 2;
	}
	int idle = socket(AF_INET, SOCK_STREAM, 0);
	CALL("accept(not listening)", accept(idle, NULL, NULL), -1, EINVAL);
	close(idle);

	/* Successes: errno must come back as the program left it. */
	int fd;
	errno = SENTINEL;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	check("socket", fd >= 0, errno, 1, SENTINEL);
	CALL("setsockopt", setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &(int){1}, sizeof(int)), 0, SENTINEL);
	CALL("getsockopt", getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl), 0, SENTINEL);
	CALL("fcntl(F_GETFL)", fcntl(fd, F_GETFL) >= 0, 1, SENTINEL);
	CALL("connect(listener)", connect(fd, (struct sockaddr *)&la, sizeof la), 0, SENTINEL);
	CALL("connect(again)", connect(fd, (struct sockaddr *)&la, sizeof la), -1, EISCONN);
	int c = accept(lfd, NULL, NULL);
	CALL("send", send(fd, "x", 1, 0), 1, SENTINEL);
	char ch;
	CALL("recv", recv(c, &ch, 1, 0), 1, SENTINEL);
	CALL("write", write(c, "y", 1), 1, SENTINEL);
	CALL("read", read(fd, &ch, 1), 1, SENTINEL);
	int d;
	errno = SENTINEL;
	d = dup(fd);
	check("dup", d >= 0, errno, 1, SENTINEL);
	CALL("dup2", dup2(fd, d) == d, 1, SENTINEL);
	CALL("dup3", dup3(fd, d, O_CLOEXEC) == d, 1, SENTINEL);
	CALL("close(dup)", close(d), 0, SENTINEL);
	CALL("close", close(fd), 0, SENTINEL);
	CALL("close(accepted)", close(c), 0, SENTINEL);

	/* A refused connect: ECONNREFUSED whether or not a retry rule tried again. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CALL("connect(refused)", connect(fd, (struct sockaddr *)&a, sizeof a), -1, ECONNREFUSED);
	close(fd);

	/* Name resolution: only compared with the run without the shim. */
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	errno = SENTINEL;
	int g = getaddrinfo("127.0.0.1", "80", &hints, &res);
	check("getaddrinfo(numeric)", g, errno, 0, -2);
	if (res)
		freeaddrinfo(res);
	res = NULL;
	/* AI_NUMERICHOST: a failure without asking any DNS server. */
	hints.ai_flags = AI_NUMERICHOST;
	g = getaddrinfo("not-an-address", "80", &hints, &res);
	printf("getaddrinfo(bad numeric) rc=%s\n", g == EAI_NONAME ? "EAI_NONAME" : gai_strerror(g));
	if (res)
		freeaddrinfo(res);

	/* fork: the child starts with the errno the parent had (the shim's fork handler
	 * takes a slot in a shared state file and must leave no errno behind) */
	fflush(stdout);
	errno = SENTINEL;
	pid_t kid = fork();
	if (kid == 0)
		_exit(errno == SENTINEL ? 0 : 1);
	int st = 0;
	waitpid(kid, &st, 0);
	check("fork(child's errno)", WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0, 0, -2);

	close(nul);
	close(lfd);
	if (failures) {
		printf("FAIL %d\n", failures);
		return 1;
	}
	printf("OK\n");
	return 0;
}
