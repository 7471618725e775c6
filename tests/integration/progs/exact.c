/* Scenarios where a call's meaning must be the kernel's when no policy acts, each printing
 * what the program saw: return values, errno names, option values, and a coarse timing
 * class where timing is the point ("fast" under 0.6 s, "1s" between 0.6 and 3 s, "slow"
 * above). test_exactness.py runs each bare and under policies and compares.
 *
 *   exact SCENARIO [ARGS...]
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case EFAULT: return "EFAULT";
	case EINTR: return "EINTR";
	case EAGAIN: return "EAGAIN";
	case EINPROGRESS: return "EINPROGRESS";
	case EALREADY: return "EALREADY";
	case EISCONN: return "EISCONN";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case ECONNABORTED: return "ECONNABORTED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EPIPE: return "EPIPE";
	case ENOTCONN: return "ENOTCONN";
	case EMSGSIZE: return "EMSGSIZE";
	}
	static char buf[32];
	snprintf(buf, sizeof buf, "errno%d", e);
	return buf;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *tclass(double dt)
{
	return dt < 0.6 ? "fast" : dt < 3.0 ? "1s" : "slow";
}

static void say(const char *what, long rc, int err)
{
	printf("%s = %ld %s\n", what, rc, rc < 0 ? ename(err) : "");
	fflush(stdout);
}

static struct sockaddr_in loop4(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int listener(int *port)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = loop4(*port);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0) {
		perror("listen");
		exit(2);
	}
	socklen_t len = sizeof a;
	getsockname(l, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return l;
}

static int dial(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loop4(port);
	if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("connect");
		exit(2);
	}
	return s;
}

static double timeo(int fd, int name)
{
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof tv;
	getsockopt(fd, SOL_SOCKET, name, &tv, &len);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void set_timeo(int fd, int name, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, name, &tv, sizeof tv);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* SIGALRM after ms, with a handler installed with or without SA_RESTART. */
static void alarm_in(long ms, int restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

/* accept with bad pointers: the kernel's EFAULT, not a descriptor or a crash. */
static int accept_efault(void)
{
	int port = 0, l = listener(&port);
	int c1 = dial(port), c2 = dial(port), c3 = dial(port);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	errno = 0;
	int rc = accept(l, (struct sockaddr *)&ss, NULL);
	say("accept(addr, NULL)", rc, errno);
	errno = 0;
	rc = accept(l, (struct sockaddr *)8, &len);
	say("accept((void *)8, &len)", rc, errno);
	len = sizeof ss;
	rc = accept(l, (struct sockaddr *)&ss, &len);
	int err = errno;
	say("accept(&ss, &len) ok", rc < 0 ? rc : 0, err);
	printf("len = %u\n", (unsigned)len);
	close(c1), close(c2), close(c3);
	return 0;
}

/* A refused connect leaves the socket usable: once the server is up, a second connect on
 * the same socket succeeds. */
static int refused_reuse(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loop4(port);
	int rc = connect(s, (struct sockaddr *)&a, sizeof a);
	say("connect (nobody listens)", rc, errno);
	int l = listener(&port);
	rc = connect(s, (struct sockaddr *)&a, sizeof a);
	say("connect (listening now)", rc, errno);
	rc = send(s, "x", 1, MSG_NOSIGNAL);
	say("send", rc, errno);
	close(s), close(l);
	return 0;
}

/* A listener idle in accept longer than a policy's recv timeout still accepts. */
static int listener_timeout(void)
{
	int port = 0, l = listener(&port);
	pid_t pid = fork();
	if (pid == 0) {
		usleep(1500000);
		int c = dial(port);
		usleep(200000);
		close(c);
		_exit(0);
	}
	double t0 = now();
	int rc = accept(l, NULL, NULL);
	int err = errno;
	say("accept", rc < 0 ? rc : 0, err);
	printf("accept took %s\n", tclass(now() - t0));
	printf("listener SO_RCVTIMEO = %.3f\n", timeo(l, SO_RCVTIMEO));
	printf("listener SO_SNDTIMEO = %.3f\n", timeo(l, SO_SNDTIMEO));
	waitpid(pid, NULL, 0);
	return 0;
}

/* An accepted socket keeps the SO_RCVTIMEO it inherited from the listener. */
static int accept_inherits(void)
{
	int port = 0, l = listener(&port);
	set_timeo(l, SO_RCVTIMEO, 300);
	pid_t pid = fork();
	if (pid == 0) {
		int c = dial(port);
		usleep(2500000);
		close(c);
		_exit(0);
	}
	int s = accept(l, NULL, NULL);
	printf("accepted SO_RCVTIMEO = %.3f\n", timeo(s, SO_RCVTIMEO));
	char b[8];
	double t0 = now();
	int rc = (int)recv(s, b, sizeof b, 0);
	int err = errno;
	say("recv", rc, err);
	printf("recv took %s\n", tclass(now() - t0));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

/* A vfork child closing every descriptor before _exit leaves the parent's sockets as
 * they were: the policy's timeout stays hidden from getsockopt, the program's own
 * timeout keeps its value. */
static int vfork_close(int port)
{
	int a = dial(port), b = dial(port);
	set_timeo(b, SO_RCVTIMEO, 250);
	printf("before: a %.3f b %.3f\n", timeo(a, SO_RCVTIMEO), timeo(b, SO_RCVTIMEO));
	pid_t pid = vfork();
	if (pid == 0) {
		close_range(3, ~0U, 0);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	printf("after: a %.3f b %.3f\n", timeo(a, SO_RCVTIMEO), timeo(b, SO_RCVTIMEO));
	char buf[8];
	double t0 = now();
	int rc = (int)recv(b, buf, sizeof buf, 0);
	say("recv on b", rc, errno);
	printf("recv took %s\n", tclass(now() - t0));
	return 0;
}

/* A non-blocking connect returns EINPROGRESS at once, to the program's own event loop. */
static int nb_connect(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = loop4(port);
	double t0 = now();
	int rc = connect(s, (struct sockaddr *)&a, sizeof a);
	say("connect", rc, errno);
	printf("connect took %s\n", tclass(now() - t0));
	close(s);
	return 0;
}

/* A signal handler without SA_RESTART interrupts a blocking connect to a silent peer. */
static int alarm_connect(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loop4(port);
	alarm_in(1000, 0);
	double t0 = now();
	int rc = connect(s, (struct sockaddr *)&a, sizeof a);
	say("connect", rc, errno);
	printf("connect took %s\n", tclass(now() - t0));
	/* as after the kernel's EINTR, the attempt goes on: a second connect says so */
	fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
	rc = connect(s, (struct sockaddr *)&a, sizeof a);
	say("connect again", rc, errno);
	return 0;
}

/* ... and a blocking recv on a peer that says nothing. */
static int alarm_recv(int port)
{
	int s = dial(port);
	alarm_in(1000, 0);
	char b[8];
	double t0 = now();
	int rc = (int)recv(s, b, sizeof b, 0);
	say("recv", rc, errno);
	printf("recv took %s\n", tclass(now() - t0));
	return 0;
}

/* connect on a connected socket is the program's business: EISCONN, the connection left
 * as it is, nothing counted against the destination. */
static int eisconn(int port)
{
	int s = dial(port);
	struct sockaddr_in a = loop4(port);
	for (int i = 0; i < 3; i++) {
		int rc = connect(s, (struct sockaddr *)&a, sizeof a);
		say("connect again", rc, errno);
	}
	struct sockaddr_in p;
	socklen_t len = sizeof p;
	getpeername(s, (struct sockaddr *)&p, &len);
	printf("peer is the server: %s\n", ntohs(p.sin_port) == port ? "yes" : "no");
	int t = socket(AF_INET, SOCK_STREAM, 0);
	int rc = connect(t, (struct sockaddr *)&a, sizeof a);
	say("connect a new socket", rc, errno);
	return 0;
}

/* A datagram or a record sent with send() or write() arrives whole. */
static int whole_records(const char *path)
{
	/* UDP, connected */
	int r = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = loop4(0);
	bind(r, (struct sockaddr *)&a, sizeof a);
	socklen_t len = sizeof a;
	getsockname(r, (struct sockaddr *)&a, &len);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	connect(s, (struct sockaddr *)&a, sizeof a);
	static char buf[4000];
	memset(buf, 'u', sizeof buf);
	long n = send(s, buf, 1000, 0);
	say("udp send 1000", n, errno);
	n = write(s, buf, 1200);
	say("udp write 1200", n, errno);
	n = recv(r, buf, sizeof buf, 0);
	say("udp recv", n, errno);
	n = recv(r, buf, sizeof buf, 0);
	say("udp recv", n, errno);
	/* SOCK_SEQPACKET over a unix path */
	int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	snprintf(u.sun_path, sizeof u.sun_path, "%s", path);
	unlink(path);
	bind(l, (struct sockaddr *)&u, sizeof u);
	listen(l, 4);
	int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	connect(c, (struct sockaddr *)&u, sizeof u);
	int srv = accept(l, NULL, NULL);
	n = send(c, buf, 1000, 0);
	say("seqpacket send 1000", n, errno);
	n = write(c, buf, 1500);
	say("seqpacket write 1500", n, errno);
	n = recv(srv, buf, sizeof buf, 0);
	say("seqpacket recv", n, errno);
	n = recv(srv, buf, sizeof buf, 0);
	say("seqpacket recv", n, errno);
	unlink(path);
	return 0;
}

/* A socket dup2'd onto stdout, then stdout reopened on a file with freopen: the file is
 * a file, whatever the socket's rules say. */
static int freopen_socket(int port, const char *file)
{
	int s = dial(port);
	dup2(s, 1);
	if (!freopen(file, "w", stdout))
		return 3;
	int bad = 0;
	for (int i = 0; i < 100; i++)
		if (write(1, "hello\n", 6) != 6)
			bad++;
	fprintf(stderr, "short or failed writes: %d\n", bad);
	return bad ? 1 : 0;
}

/* A server: accept one connection and read from it until it ends. */
static int serve_one(void)
{
	int port = 0, l = listener(&port);
	printf("port %d\n", port);
	fflush(stdout);
	int s = accept(l, NULL, NULL);
	char b[64];
	int rc = (int)recv(s, b, sizeof b, 0);
	say("recv", rc, errno);
	return 0;
}

/* Connect, read: five times, against a server that accepts and resets. */
static int reset_loop(int port)
{
	struct sockaddr_in a = loop4(port);
	for (int i = 0; i < 5; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		int rc = connect(s, (struct sockaddr *)&a, sizeof a);
		say("connect", rc, errno);
		if (rc == 0) {
			char b[8];
			long n = recv(s, b, sizeof b, 0);
			say("recv", n, errno);
		}
		close(s);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *sc = argv[1];
	int port = argc > 2 ? atoi(argv[2]) : 0;
	if (!strcmp(sc, "accept-efault"))
		return accept_efault();
	if (!strcmp(sc, "refused-reuse"))
		return refused_reuse(port);
	if (!strcmp(sc, "listener-timeout"))
		return listener_timeout();
	if (!strcmp(sc, "accept-inherits"))
		return accept_inherits();
	if (!strcmp(sc, "vfork-close"))
		return vfork_close(port);
	if (!strcmp(sc, "nb-connect"))
		return nb_connect(port);
	if (!strcmp(sc, "alarm-connect"))
		return alarm_connect(port);
	if (!strcmp(sc, "alarm-recv"))
		return alarm_recv(port);
	if (!strcmp(sc, "eisconn"))
		return eisconn(port);
	if (!strcmp(sc, "whole-records") && argc > 2)
		return whole_records(argv[2]);
	if (!strcmp(sc, "freopen-socket") && argc > 3)
		return freopen_socket(port, argv[3]);
	if (!strcmp(sc, "serve-one"))
		return serve_one();
	if (!strcmp(sc, "reset-loop"))
		return reset_loop(port);
	fprintf(stderr, "exact: unknown scenario %s\n", sc);
	return 2;
}
