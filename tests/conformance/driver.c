/* The conformance driver: one scenario per run, each a family of socket calls that prints
 * one deterministic line per call (what was called, what it returned, errno by name, and
 * the state that matters: SO_ERROR, O_NONBLOCK, the peer, SO_RCVTIMEO/SO_SNDTIMEO as the
 * program reads them, bytes and boundaries). tests/conformance/run.py runs every scenario
 * bare and under policies that match but must not act, and compares the outputs.
 *
 * usage: driver --list | driver SCENARIO | driver --child-write FD
 *
 * The peers are the runner's (never preloaded): their addresses come in the environment
 * (CF_ECHO, CF_RST, CF_DEAD, CF_FULL, CF_UECHO: TCP/UDP ports on 127.0.0.1; CF_USTREAM,
 * CF_USEQ, CF_UDGRAM: unix paths), with CF_TMP a scratch directory of this run's own.
 *
 * Adding a scenario is adding a function and a row in `rows` at the bottom. Lines must be
 * the same from one bare run to the next: print fd numbers (they are the lowest free, so
 * stable) but never ports, pids or times; print a time only as a coarse class ("fast"
 * under 1 s) and only where promptness is the contract. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* An address no program owns; volatile so that the compiler lets us pass it. */
static void *volatile bad_ptr = (void *)8;
static volatile int minus_one = -1;

/* Our output goes to a descriptor of its own, written with the raw system call: scenarios
 * move stdout around (dup2, freopen) and the channel the results travel on must not be
 * what is under test. It sits below the library's own descriptors (100 and up) and above
 * every number a scenario uses. */
#define OUT_FD 50
/* The ops a scenario exercises: the runner requires each policy's rule for them to have
 * counted calls, so that a policy matching nothing cannot pass. */
enum { OP_C = 1, OP_A = 2, OP_S = 4, OP_R = 8 };
/* NODEF: the built-in default policy may act here by design (a refused or non-blocking
 * connect is retried / carried to its outcome); NORETRY: so may a policy with default
 * retry lists. STRACE: also run under strace and compare the kernel's connect results. */
enum { F_NODEF = 1, F_NORETRY = 2, F_STRACE = 4 };

/* ---- output ---- */

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	char buf[1024];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	(void)syscall(SYS_write, OUT_FD, buf, (size_t)n);
	errno = saved;
}

static const char *ename(int e)
{
	static __thread char buf[16];
	const char *n = e ? strerrorname_np(e) : "0";
	if (n)
		return n;
	snprintf(buf, sizeof buf, "E#%d", e);
	return buf;
}

/* A call's result: the value, or -1 and errno by name. Every call is made with errno set
 * to EDOM first, so a call that succeeds but changes errno shows up too. */
static long show(const char *label, long r)
{
	int e = errno;
	if (r < 0)
		out("%s = %ld %s", label, r, ename(e));
	else if (e != EDOM)
		out("%s = %ld (errno changed to %s)", label, r, ename(e));
	else
		out("%s = %ld", label, r);
	errno = e;
	return r;
}
#define S(label, call) show((label), (errno = EDOM, (long)(call)))

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Promptness, coarsely: the calls timed return within 0.2-0.3 s bare, and a policy's
 * deadline is seconds away, so 1 s holds on a loaded machine either way. */
static const char *cls(double t0)
{
	return now() - t0 < 1.0 ? "fast" : "slow";
}

/* A call that should return promptly: its result with its time class. */
static long timed(const char *label, double t0, long r)
{
	int e = errno;
	char l[160];
	snprintf(l, sizeof l, "%s [%s]", label, cls(t0));
	errno = e;
	return show(l, r);
}
#define T(label, call) ({ double t0_ = now(); errno = EDOM; long r_ = (long)(call); \
			  timed((label), t0_, r_); })

static void setup_fail(const char *what)
{
	out("setup failed: %s: %s", what, ename(errno));
	exit(4);
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Wait until data is readable on fd, then a little more: loopback normally delivers
 * before send() returns, but on a loaded machine the kernel may defer it, and a
 * non-blocking read that follows must see everything that was sent. */
static void settle(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	poll(&p, 1, 3000);
	msleep(50);
}

/* ---- addresses and peers ---- */

static int envport(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		out("missing %s in the environment", name);
		exit(3);
	}
	return atoi(v);
}

static const char *envstr(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		out("missing %s in the environment", name);
		exit(3);
	}
	return v;
}

static struct sockaddr_in lo4(int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static socklen_t unaddr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof a->sun_path, "%s", path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

static const char *tmppath(const char *name)
{
	static char buf[4][200];
	static int i;
	char *p = buf[i++ % 4];
	snprintf(p, 200, "%s/%s", envstr("CF_TMP"), name);
	return p;
}

static int port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		setup_fail("getsockname");
	return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					: ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A TCP listener on 127.0.0.1, port chosen by the kernel. */
static int listener4(int backlog, int *port)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = lo4(0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, backlog) < 0)
		setup_fail("listener");
	*port = port_of(l);
	return l;
}

static int connect4(int fd, int port)
{
	struct sockaddr_in a = lo4(port);
	return connect(fd, (struct sockaddr *)&a, sizeof a);
}

/* A connected TCP pair through the program's own listener (connect, accept), printed as
 * one line; the calls are the program's, so they go through the library too. */
static void tcp_pair(int *c, int *s)
{
	int port, l = listener4(8, &port);
	*c = socket(AF_INET, SOCK_STREAM, 0);
	if (*c < 0 || connect4(*c, port) < 0)
		setup_fail("pair connect");
	*s = accept(l, NULL, NULL);
	if (*s < 0)
		setup_fail("pair accept");
	close(l);
	out("pair = %d %d", *c, *s);
}

/* A connect the library never sees (setup that must not be part of the test). */
static int raw_connect(int fd, const struct sockaddr *a, socklen_t len)
{
	return (int)syscall(SYS_connect, fd, a, len);
}

/* ---- state ---- */

static const char *famname(int f)
{
	switch (f) {
	case AF_INET: return "AF_INET";
	case AF_INET6: return "AF_INET6";
	case AF_UNIX: return "AF_UNIX";
	case AF_UNSPEC: return "AF_UNSPEC";
	}
	return "AF_?";
}

static void timeo(int fd, int name, char *buf, size_t cap)
{
	struct timeval tv = { -1, -1 };
	socklen_t len = sizeof tv;
	if (getsockopt(fd, SOL_SOCKET, name, &tv, &len) < 0)
		snprintf(buf, cap, "%s", ename(errno));
	else
		snprintf(buf, cap, "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
}

/* The state a program can read: pending error (reading it clears it, as for the
 * program), O_NONBLOCK, the peer, and the timeouts as getsockopt gives them. */
static void state(const char *tag, int fd)
{
	int err = -1;
	socklen_t l = sizeof err;
	char se[40], peer[60], rt[32], st[32];
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		snprintf(se, sizeof se, "getsockopt %s", ename(errno));
	else
		snprintf(se, sizeof se, "%s", ename(err));
	int fl = fcntl(fd, F_GETFL);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		snprintf(peer, sizeof peer, "%s", ename(errno));
	else if (ss.ss_family == AF_UNIX)
		snprintf(peer, sizeof peer, "AF_UNIX/%u", (unsigned)sl);
	else
		snprintf(peer, sizeof peer, "%s", famname(ss.ss_family));
	timeo(fd, SO_RCVTIMEO, rt, sizeof rt);
	timeo(fd, SO_SNDTIMEO, st, sizeof st);
	out("%s: so_error=%s nonblock=%d peer=%s rcvtimeo=%s sndtimeo=%s", tag, se,
	    fl < 0 ? -1 : !!(fl & O_NONBLOCK), peer, rt, st);
}

static void so_error(const char *tag, int fd)
{
	int err = -1;
	socklen_t l = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		out("%s: SO_ERROR: getsockopt %s", tag, ename(errno));
	else
		out("%s: SO_ERROR=%s", tag, ename(err));
}

static void set_timeo(int fd, int name, long sec, long usec)
{
	struct timeval tv = { sec, usec };
	S(name == SO_RCVTIMEO ? "setsockopt SO_RCVTIMEO" : "setsockopt SO_SNDTIMEO",
	  setsockopt(fd, SOL_SOCKET, name, &tv, sizeof tv));
}

static void nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	S(on ? "fcntl O_NONBLOCK on" : "fcntl O_NONBLOCK off",
	  fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK));
}

static void cloexec(const char *tag, int fd)
{
	int f = fcntl(fd, F_GETFD);
	if (f < 0)
		out("%s: F_GETFD %s", tag, ename(errno));
	else
		out("%s: cloexec=%d", tag, !!(f & FD_CLOEXEC));
}

/* Printable payload, short. */
static void showbuf(const char *label, long r, const char *buf)
{
	int e = errno;
	if (r < 0) {
		out("%s = %ld %s", label, r, ename(e));
	} else {
		char p[40];
		long n = r < 32 ? r : 32;
		for (long i = 0; i < n; i++)
			p[i] = buf[i] >= 32 && buf[i] < 127 ? buf[i] : '.';
		p[n] = '\0';
		out("%s = %ld '%s'%s", label, r, p, e != EDOM ? " (errno changed)" : "");
	}
	errno = e;
}
#define RB(label, call, buf) do { errno = EDOM; long r_ = (long)(call); showbuf((label), r_, (buf)); } while (0)

/* Read exactly n bytes (a stream may deliver them in pieces): one line with the total. */
static void recv_all(const char *label, int fd, size_t n)
{
	char buf[8192];
	size_t got = 0;
	long last = 0;
	int e = 0;
	for (int i = 0; i < 10000 && got < n && got < sizeof buf; i++) {
		last = recv(fd, buf + got, n - got, 0);
		if (last <= 0) {
			e = errno;
			break;
		}
		got += (size_t)last;
	}
	if (got == n) {
		errno = EDOM;
		showbuf(label, (long)got, buf);
	} else {
		out("%s = %zu of %zu, then %ld %s", label, got, n, last, last < 0 ? ename(e) : "");
	}
}

static void fill(char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + (i * 7 + seed) % 26);
}

/* ---- signals ---- */

static volatile sig_atomic_t sig_hits;
static volatile int sig_write_fd = -1;   /* the handler writes "x" here */
static volatile int sig_listen_fd = -1;  /* the handler widens this listener's backlog */
static volatile int sig_connect_port;    /* the handler starts a connect to this port */

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	sig_hits++;
	if (sig_write_fd >= 0)
		(void)!write(sig_write_fd, "x", 1);
	if (sig_listen_fd >= 0)
		listen(sig_listen_fd, 64);
	if (sig_connect_port) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in a = lo4(sig_connect_port);
		raw_connect(c, (struct sockaddr *)&a, sizeof a);
	}
	errno = saved;
}

/* SIGALRM once after ms, its handler installed with or without SA_RESTART. */
static void arm(int ms, int restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 0 }, { ms / 1000, (long)(ms % 1000) * 1000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm(void)
{
	struct itimerval it = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &it, NULL);
	out("signal handler ran %d time(s)", (int)sig_hits);
}

/* ==== connect ==== */

static void c_tcp_blocking(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect echo", connect4(s, envport("CF_ECHO")));
	state("after connect", s);
	S("send", send(s, "hello", 5, 0));
	recv_all("recv", s, 5);
	S("close", close(s));
}

static void c_tcp_refused(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect dead", connect4(s, envport("CF_DEAD")));
	state("after refusal", s);
	S("send", send(s, "x", 1, MSG_NOSIGNAL));
	char b[8];
	S("recv", recv(s, b, sizeof b, 0));
	S("close", close(s));
}

static void c_tcp_refused_twice(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect dead", connect4(s, envport("CF_DEAD")));
	S("connect dead again", connect4(s, envport("CF_DEAD")));
	state("after refusals", s);
	S("connect echo", connect4(s, envport("CF_ECHO")));
	state("after connect", s);
	S("send", send(s, "abc", 3, 0));
	recv_all("recv", s, 3);
}

/* The server comes up between two connects on the same socket: the second must work. */
static void c_tcp_refused_then_up(void)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = lo4(0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0)
		setup_fail("bind");
	int port = port_of(l);
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect (not listening)", connect4(s, port));
	state("after refusal", s);
	S("listen", listen(l, 8));
	S("connect (listening)", connect4(s, port));
	state("after connect", s);
	nonblock(l, 1);   /* if the connect failed there is nobody to wait for */
	int c = S("accept", accept(l, NULL, NULL));
	S("send", send(s, "abc", 3, 0));
	recv_all("recv on accepted", c, 3);
	S("connect again", connect4(s, port));
}

static void c_tcp_eisconn(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect echo", connect4(s, envport("CF_ECHO")));
	S("connect echo again", connect4(s, envport("CF_ECHO")));
	S("connect dead while connected", connect4(s, envport("CF_DEAD")));
	state("after", s);
	S("send", send(s, "still", 5, 0));
	recv_all("recv", s, 5);
}

static void poll_out(const char *label, int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	errno = EDOM;
	int n = poll(&p, 1, ms);
	if (n < 0)
		out("%s = -1 %s", label, ename(errno));
	else
		out("%s = %d revents=%s%s%s%s", label, n, p.revents & POLLOUT ? "OUT" : "",
		    p.revents & POLLERR ? "|ERR" : "", p.revents & POLLHUP ? "|HUP" : "",
		    p.revents & POLLIN ? "|IN" : "");
}

static void c_tcp_nonblock(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	T("connect echo", connect4(s, envport("CF_ECHO")));
	poll_out("poll", s, 3000);
	so_error("after poll", s);
	S("connect again", connect4(s, envport("CF_ECHO")));
	S("connect a third time", connect4(s, envport("CF_ECHO")));
	state("after", s);
	S("send", send(s, "nb", 2, 0));
	struct pollfd p = { .fd = s, .events = POLLIN };
	poll(&p, 1, 3000);
	char b[8];
	RB("recv", recv(s, b, sizeof b, 0), b);
}

static void c_tcp_nonblock_refused(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	T("connect dead", connect4(s, envport("CF_DEAD")));
	poll_out("poll", s, 3000);
	so_error("first read", s);
	so_error("second read", s);
	state("after", s);
}

/* A connect that stays in SYN_SENT: EINPROGRESS at once, then EALREADY. */
static void c_tcp_nonblock_pending(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	T("connect full", connect4(s, envport("CF_FULL")));
	poll_out("poll 200ms", s, 200);
	T("connect full again", connect4(s, envport("CF_FULL")));
	state("pending", s);
	S("close", close(s));
}

static void c_tcp_eintr(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	arm(200, 0);
	T("connect full, SIGALRM at 200ms", connect4(s, envport("CF_FULL")));
	disarm();
	state("after", s);
	nonblock(s, 1);
	T("connect again (non-blocking)", connect4(s, envport("CF_FULL")));
}

/* SA_RESTART: the kernel restarts the connect; the handler makes room in the listener's
 * backlog, so the SYN retransmitted after 1 s gets through and connect() returns 0. */
static void c_tcp_sigrestart(void)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = lo4(0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 0) < 0)
		setup_fail("listener");
	a = lo4(port_of(l));
	for (int i = 0; i < 2; i++) {
		int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		raw_connect(f, (struct sockaddr *)&a, sizeof a);
		if (i == 0) {
			struct pollfd p = { .fd = f, .events = POLLOUT };
			poll(&p, 1, 2000);
		}
	}
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	sig_listen_fd = l;
	arm(200, 1);
	S("connect to a full backlog, SA_RESTART handler widens it", connect(s, (struct sockaddr *)&a, sizeof a));
	disarm();
	state("after", s);
}

/* The program's own SO_SNDTIMEO bounds a blocking connect: EINPROGRESS after it. */
static void c_tcp_sndtimeo(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	set_timeo(s, SO_SNDTIMEO, 0, 300000);
	T("connect full", connect4(s, envport("CF_FULL")));
	state("after", s);
	T("connect full again", connect4(s, envport("CF_FULL")));
}

static void c_udp_connect(void)
{
	int s = S("socket", socket(AF_INET, SOCK_DGRAM, 0));
	S("connect udp echo", connect4(s, envport("CF_UECHO")));
	state("after connect", s);
	char b[64];
	S("send", send(s, "one", 3, 0));
	RB("recv", recv(s, b, sizeof b, 0), b);
	S("write", write(s, "two", 3));
	RB("read", read(s, b, sizeof b), b);
	S("connect again", connect4(s, envport("CF_UECHO")));
	struct sockaddr un = { .sa_family = AF_UNSPEC };
	S("connect AF_UNSPEC", connect(s, &un, sizeof un));
	state("after disconnect", s);
	S("send unconnected", send(s, "x", 1, 0));
}

static void c_udp_refused(void)
{
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = lo4(0);
	if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) < 0)
		setup_fail("udp bind");
	int port = port_of(u);
	close(u);
	int s = S("socket", socket(AF_INET, SOCK_DGRAM, 0));
	S("connect closed udp port", connect4(s, port));
	S("send", send(s, "abc", 3, 0));
	char b[8];
	T("recv", recv(s, b, sizeof b, 0));
	so_error("after", s);
	S("send again", send(s, "abc", 3, 0));
}

static void c_unix_stream(void)
{
	struct sockaddr_un a;
	socklen_t len = unaddr(&a, envstr("CF_USTREAM"));
	int s = S("socket", socket(AF_UNIX, SOCK_STREAM, 0));
	S("connect unix echo", connect(s, (struct sockaddr *)&a, len));
	state("after connect", s);
	S("send", send(s, "unix", 4, 0));
	recv_all("recv", s, 4);
	S("connect again", connect(s, (struct sockaddr *)&a, len));
}

static void c_unix_missing(void)
{
	struct sockaddr_un a;
	socklen_t len = unaddr(&a, tmppath("nobody.sock"));
	int s = S("socket", socket(AF_UNIX, SOCK_STREAM, 0));
	S("connect missing path", connect(s, (struct sockaddr *)&a, len));
	state("after", s);
}

static void c_unix_refused(void)
{
	struct sockaddr_un a;
	socklen_t len = unaddr(&a, tmppath("bound.sock"));
	int b = socket(AF_UNIX, SOCK_STREAM, 0);
	if (b < 0 || bind(b, (struct sockaddr *)&a, len) < 0)
		setup_fail("unix bind");
	int s = S("socket", socket(AF_UNIX, SOCK_STREAM, 0));
	S("connect (not listening)", connect(s, (struct sockaddr *)&a, len));
	state("after", s);
}

static void c_unix_refused_then_up(void)
{
	struct sockaddr_un a;
	socklen_t len = unaddr(&a, tmppath("late.sock"));
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, len) < 0)
		setup_fail("unix bind");
	int s = S("socket", socket(AF_UNIX, SOCK_STREAM, 0));
	S("connect (not listening)", connect(s, (struct sockaddr *)&a, len));
	S("listen", listen(l, 8));
	S("connect (listening)", connect(s, (struct sockaddr *)&a, len));
	state("after", s);
	nonblock(l, 1);
	int c = S("accept", accept(l, NULL, NULL));
	S("send", send(s, "abc", 3, 0));
	recv_all("recv on accepted", c, 3);
}

static void c_unix_seqpacket(void)
{
	struct sockaddr_un a;
	socklen_t len = unaddr(&a, envstr("CF_USEQ"));
	int s = S("socket", socket(AF_UNIX, SOCK_SEQPACKET, 0));
	S("connect seqpacket echo", connect(s, (struct sockaddr *)&a, len));
	state("after connect", s);
	char b[64];
	S("send record 1", send(s, "ab", 2, 0));
	S("send record 2", send(s, "cde", 3, 0));
	RB("recv", recv(s, b, sizeof b, 0), b);
	RB("recv", recv(s, b, sizeof b, 0), b);
}

static void c_tcp6(void)
{
	int l = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a;
	memset(&a, 0, sizeof a);
	a.sin6_family = AF_INET6;
	a.sin6_addr = in6addr_loopback;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 8) < 0) {
		out("no IPv6 loopback here");
		return;
	}
	a.sin6_port = htons((unsigned short)port_of(l));
	int s = S("socket", socket(AF_INET6, SOCK_STREAM, 0));
	S("connect [::1]", connect(s, (struct sockaddr *)&a, sizeof a));
	state("after connect", s);
	struct sockaddr_in6 p;
	socklen_t plen = sizeof p;
	int c = S("accept", accept(l, (struct sockaddr *)&p, &plen));
	out("accepted: len=%u family=%s port matches=%d", (unsigned)plen, famname(p.sin6_family),
	    ntohs(p.sin6_port) == port_of(s));
	S("send", send(s, "six", 3, 0));
	recv_all("recv", c, 3);
}

static void c_bad_args(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	struct sockaddr_in a = lo4(envport("CF_ECHO"));
	S("connect NULL address", connect(s, NULL, sizeof a));
	S("connect short length", connect(s, (struct sockaddr *)&a, 3));
	S("connect length 0", connect(s, (struct sockaddr *)&a, 0));
	struct sockaddr_un un;
	socklen_t ul = unaddr(&un, envstr("CF_USTREAM"));
	S("connect unix address on inet socket", connect(s, (struct sockaddr *)&un, ul));
	int p[2];
	if (pipe(p) < 0)
		setup_fail("pipe");
	S("connect on a pipe", connect(p[0], (struct sockaddr *)&a, sizeof a));
	S("connect on fd 999", connect(999, (struct sockaddr *)&a, sizeof a));
	state("after", s);
	S("connect echo", connect(s, (struct sockaddr *)&a, sizeof a));
}

static void c_bad_pointer(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect address (void *)8", connect(s, (struct sockaddr *)bad_ptr, sizeof(struct sockaddr_in)));
	state("after", s);
}

/* ==== accept ==== */

static void a_blocking(void)
{
	int port, l = listener4(8, &port);
	int c = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect", connect4(c, port));
	struct sockaddr_in p;
	memset(&p, 0xaa, sizeof p);
	socklen_t len = sizeof p;
	int s = S("accept", accept(l, (struct sockaddr *)&p, &len));
	out("peer: len=%u family=%s port matches=%d", (unsigned)len, famname(p.sin_family),
	    ntohs(p.sin_port) == port_of(c));
	state("accepted", s);
	S("send", send(s, "srv", 3, 0));
	recv_all("recv", c, 3);
}

static void a_nonblock(void)
{
	int port, l = listener4(8, &port);
	nonblock(l, 1);
	T("accept (none pending)", accept(l, NULL, NULL));
	S("accept4 SOCK_NONBLOCK (none pending)", accept4(l, NULL, NULL, SOCK_NONBLOCK));
	int c = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect", connect4(c, port));
	struct pollfd pf = { .fd = l, .events = POLLIN };
	S("poll listener", poll(&pf, 1, 3000));
	int s = S("accept", accept(l, NULL, NULL));
	state("accepted", s);
	S("accept again", accept(l, NULL, NULL));
}

static void a_accept4_flags(void)
{
	int port, l = listener4(8, &port);
	int c = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect", connect4(c, port));
	S("accept4 bad flags", accept4(l, NULL, NULL, 0x1));
	int s = S("accept4 NONBLOCK|CLOEXEC", accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC));
	state("accepted", s);
	cloexec("accepted", s);
	char b[8];
	S("recv (nothing sent)", recv(s, b, sizeof b, 0));
}

static void a_null_len(void)
{
	int port, l = listener4(8, &port);
	int c = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect", connect4(c, port));
	struct sockaddr_in p;
	S("accept(fd, addr, NULL)", accept(l, (struct sockaddr *)&p, NULL));
	nonblock(l, 1);
	S("accept again", accept(l, NULL, NULL));
}

static void a_bad_addr(void)
{
	int port, l = listener4(8, &port);
	int c = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect", connect4(c, port));
	socklen_t len = sizeof(struct sockaddr_in);
	S("accept(fd, (void *)8, &len)", accept(l, (struct sockaddr *)bad_ptr, &len));
	out("len after = %u", (unsigned)len);
	nonblock(l, 1);
	S("accept again", accept(l, NULL, NULL));
}

static void a_bad_len_ptr(void)
{
	int port, l = listener4(8, &port);
	int c = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect", connect4(c, port));
	struct sockaddr_in p;
	S("accept(fd, addr, (void *)8)", accept(l, (struct sockaddr *)&p, (socklen_t *)bad_ptr));
	nonblock(l, 1);
	S("accept again", accept(l, NULL, NULL));
}

static void a_short_len(void)
{
	int port, l = listener4(8, &port);
	int c = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect", connect4(c, port));
	unsigned char buf[32];
	memset(buf, 0xaa, sizeof buf);
	socklen_t len = 4;
	S("accept len 4", accept(l, (struct sockaddr *)buf, &len));
	out("len=%u family=%s byte4=%02x", (unsigned)len, famname(((struct sockaddr *)buf)->sa_family),
	    buf[4]);
	S("connect", connect4(c = socket(AF_INET, SOCK_STREAM, 0), port));
	memset(buf, 0xaa, sizeof buf);
	len = 0;
	S("accept len 0", accept(l, (struct sockaddr *)buf, &len));
	out("len=%u byte0=%02x", (unsigned)len, buf[0]);
	S("connect", connect4(c = socket(AF_INET, SOCK_STREAM, 0), port));
	len = 77;
	S("accept NULL addr, &len", accept(l, NULL, &len));
	out("len=%u", (unsigned)len);
	S("connect", connect4(c = socket(AF_INET, SOCK_STREAM, 0), port));
	S("accept NULL NULL", accept(l, NULL, NULL));
}

static void a_listener_rcvtimeo(void)
{
	int port, l = listener4(8, &port);
	set_timeo(l, SO_RCVTIMEO, 0, 300000);
	T("accept (nobody comes)", accept(l, NULL, NULL));
	state("listener", l);
}

/* Bare, an accepted socket inherits the listener's SO_RCVTIMEO and SO_SNDTIMEO. */
static void a_inherit_timeo(void)
{
	int port, l = listener4(8, &port);
	set_timeo(l, SO_RCVTIMEO, 0, 300000);
	set_timeo(l, SO_SNDTIMEO, 0, 400000);
	int c = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect", connect4(c, port));
	int s = S("accept", accept(l, NULL, NULL));
	state("accepted", s);
	char b[8];
	T("recv on accepted (nothing sent)", recv(s, b, sizeof b, 0));
}

/* A server idle in accept() for longer than any recv timeout a policy has. */
static void a_idle(void)
{
	int port, l = listener4(8, &port);
	pid_t pid = fork();
	if (pid == 0) {
		msleep(3000);
		int c = socket(AF_INET, SOCK_STREAM, 0);
		connect4(c, port);
		msleep(500);
		exit(0);
	}
	double t0 = now();
	int s = S("accept (a client comes after 3 s)", accept(l, NULL, NULL));
	out("waited at least 2.5 s: %s", now() - t0 >= 2.5 ? "yes" : "no");
	if (s >= 0)
		state("accepted", s);
	int st;
	waitpid(pid, &st, 0);
}

static void a_eintr(void)
{
	int port, l = listener4(8, &port);
	arm(200, 0);
	T("accept, SIGALRM at 200ms", accept(l, NULL, NULL));
	disarm();
	state("listener", l);
}

static void a_sigrestart(void)
{
	int port, l = listener4(8, &port);
	sig_connect_port = port;
	arm(200, 1);
	int s = T("accept, SA_RESTART handler connects", accept(l, NULL, NULL));
	disarm();
	if (s >= 0)
		state("accepted", s);
}

static void a_unix(void)
{
	struct sockaddr_un a;
	socklen_t len = unaddr(&a, tmppath("srv.sock"));
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, len) < 0 || listen(l, 8) < 0)
		setup_fail("unix listener");
	int c = S("socket", socket(AF_UNIX, SOCK_STREAM, 0));
	S("connect", connect(c, (struct sockaddr *)&a, len));
	struct sockaddr_un p;
	socklen_t plen = sizeof p;
	int s = S("accept", accept(l, (struct sockaddr *)&p, &plen));
	out("peer: len=%u family=%s", (unsigned)plen, famname(p.sun_family));
	state("accepted", s);
	S("send", send(s, "hi", 2, 0));
	recv_all("recv", c, 2);
}

static void a_unix_seqpacket(void)
{
	struct sockaddr_un a;
	socklen_t len = unaddr(&a, tmppath("seq.sock"));
	int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, len) < 0 || listen(l, 8) < 0)
		setup_fail("seqpacket listener");
	int c = S("socket", socket(AF_UNIX, SOCK_SEQPACKET, 0));
	S("connect", connect(c, (struct sockaddr *)&a, len));
	int s = S("accept", accept(l, NULL, NULL));
	state("accepted", s);
	char b[64];
	S("send 1", send(c, "one", 3, 0));
	S("send 2", send(c, "three", 5, 0));
	RB("recv", recv(s, b, sizeof b, 0), b);
	RB("recv", recv(s, b, sizeof b, 0), b);
}

static void a_not_listening(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("accept on a socket not listening", accept(s, NULL, NULL));
	int p[2];
	if (pipe(p) < 0)
		setup_fail("pipe");
	S("accept on a pipe", accept(p[0], NULL, NULL));
	S("accept on fd 999", accept(999, NULL, NULL));
	int u = S("socket udp", socket(AF_INET, SOCK_DGRAM, 0));
	S("accept on udp", accept(u, NULL, NULL));
}

/* ==== send and receive on TCP ==== */

static void io_send_recv(void)
{
	int a, b;
	tcp_pair(&a, &b);
	char buf[64];
	S("send", send(a, "hello", 5, 0));
	RB("recv", recv(b, buf, sizeof buf, 0), buf);
	S("sendto NULL", sendto(a, "abc", 3, 0, NULL, 0));
	struct sockaddr_storage from;
	socklen_t fl = sizeof from;
	RB("recvfrom", recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), buf);
	out("fromlen=%u", (unsigned)fl);
	S("send 0 bytes", send(a, "", 0, 0));
	S("recv 0 bytes", recv(b, buf, 0, MSG_DONTWAIT));
}

static void io_read_write(void)
{
	int a, b;
	tcp_pair(&a, &b);
	char buf[64];
	S("write", write(a, "written", 7));
	RB("read", read(b, buf, sizeof buf), buf);
	S("write 0", write(a, buf, 0));
	S("write back", write(b, "back", 4));
	RB("read", read(a, buf, sizeof buf), buf);
}

static void io_readv_writev(void)
{
	int a, b;
	tcp_pair(&a, &b);
	struct iovec w[3] = { { "ab", 2 }, { "cde", 3 }, { "fghi", 4 } };
	S("writev 3 pieces", writev(a, w, 3));
	char x[4], y[10];
	struct iovec r[2] = { { x, sizeof x }, { y, sizeof y } };
	errno = EDOM;
	long n = readv(b, r, 2);
	show("readv into 4+10", n);
	if (n > 0)
		out("pieces: '%.4s' '%.*s'", x, (int)(n > 4 ? n - 4 : 0), y);
	S("writev 0 pieces", writev(a, w, 0));
	S("writev -1 pieces", writev(a, w, minus_one));
}

static void io_sendmsg_recvmsg(void)
{
	int a, b;
	tcp_pair(&a, &b);
	struct iovec w[2] = { { "msg", 3 }, { "hdr", 3 } };
	struct msghdr m = { .msg_iov = w, .msg_iovlen = 2 };
	S("sendmsg", sendmsg(a, &m, 0));
	char buf[64];
	struct iovec r = { buf, sizeof buf };
	struct sockaddr_storage name;
	struct msghdr rm = { .msg_name = &name, .msg_namelen = sizeof name, .msg_iov = &r,
			     .msg_iovlen = 1 };
	RB("recvmsg", recvmsg(b, &rm, 0), buf);
	out("msg_namelen=%u msg_flags=%#x msg_controllen=%zu", (unsigned)rm.msg_namelen,
	    (unsigned)rm.msg_flags, (size_t)rm.msg_controllen);
}

static void io_mmsg(void)
{
	int a, b;
	tcp_pair(&a, &b);
	struct iovec i1 = { "one", 3 }, i2 = { "four", 4 };
	struct mmsghdr mm[2];
	memset(mm, 0, sizeof mm);
	mm[0].msg_hdr.msg_iov = &i1;
	mm[0].msg_hdr.msg_iovlen = 1;
	mm[1].msg_hdr.msg_iov = &i2;
	mm[1].msg_hdr.msg_iovlen = 1;
	S("sendmmsg 2", sendmmsg(a, mm, 2, 0));
	out("msg_len: %u %u", mm[0].msg_len, mm[1].msg_len);
	char r1[64], r2[64];
	struct iovec j1 = { r1, sizeof r1 }, j2 = { r2, sizeof r2 };
	struct mmsghdr rm[2];
	memset(rm, 0, sizeof rm);
	rm[0].msg_hdr.msg_iov = &j1;
	rm[0].msg_hdr.msg_iovlen = 1;
	rm[1].msg_hdr.msg_iov = &j2;
	rm[1].msg_hdr.msg_iovlen = 1;
	settle(b);
	S("recvmmsg 2 MSG_DONTWAIT", recvmmsg(b, rm, 2, MSG_DONTWAIT, NULL));
	out("msg_len: %u", rm[0].msg_len);
	S("recvmmsg again", recvmmsg(b, rm, 2, MSG_DONTWAIT, NULL));
}

static void io_peek(void)
{
	int a, b;
	tcp_pair(&a, &b);
	char buf[64];
	S("send", send(a, "abcdef", 6, 0));
	RB("recv 3 MSG_PEEK", recv(b, buf, 3, MSG_PEEK), buf);
	RB("recv 64 MSG_PEEK", recv(b, buf, sizeof buf, MSG_PEEK), buf);
	RB("recv 64", recv(b, buf, sizeof buf, 0), buf);
	S("recv MSG_DONTWAIT", recv(b, buf, sizeof buf, MSG_DONTWAIT));
}

struct later { int fd; int ms; const char *data; };

static void *send_later(void *arg)
{
	struct later *l = arg;
	msleep(l->ms);
	send(l->fd, l->data, strlen(l->data), 0);
	return NULL;
}

static void io_waitall(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("send", send(a, "abc", 3, 0));
	struct later l = { a, 100, "def" };
	pthread_t t;
	pthread_create(&t, NULL, send_later, &l);
	char buf[64];
	RB("recv 6 MSG_WAITALL", recv(b, buf, 6, MSG_WAITALL), buf);
	pthread_join(t, NULL);
}

static void io_dontwait(void)
{
	int a, b;
	tcp_pair(&a, &b);
	char buf[8];
	T("recv MSG_DONTWAIT on an empty blocking socket", recv(b, buf, sizeof buf, MSG_DONTWAIT));
	state("after", b);
	S("send MSG_DONTWAIT", send(a, "dw", 2, MSG_DONTWAIT));
	RB("recv MSG_DONTWAIT", recv(b, buf, sizeof buf, MSG_DONTWAIT), buf);
}

static void rst_close(int fd)
{
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

static void io_nosignal(void)
{
	signal(SIGPIPE, SIG_DFL);
	int a, b;
	tcp_pair(&a, &b);
	rst_close(b);
	char buf[8];
	S("recv after the peer's reset", recv(a, buf, sizeof buf, 0));
	S("send MSG_NOSIGNAL", send(a, "x", 1, MSG_NOSIGNAL));
	S("sendto MSG_NOSIGNAL", sendto(a, "x", 1, MSG_NOSIGNAL, NULL, 0));
	out("still alive");
}

static void on_pipe(int sig)
{
	(void)sig;
	sig_hits++;
}

static void io_sigpipe(void)
{
	signal(SIGPIPE, on_pipe);
	int a, b;
	tcp_pair(&a, &b);
	rst_close(b);
	char buf[8];
	S("read after the peer's reset", read(a, buf, sizeof buf));
	S("write", write(a, "x", 1));
	out("SIGPIPE handler ran %d time(s)", (int)sig_hits);
	S("send", send(a, "x", 1, 0));
	out("SIGPIPE handler ran %d time(s)", (int)sig_hits);
}

static void io_shutdown(void)
{
	int a, b;
	tcp_pair(&a, &b);
	char buf[8];
	S("shutdown a SHUT_WR", shutdown(a, SHUT_WR));
	S("recv on b (EOF)", recv(b, buf, sizeof buf, 0));
	S("send b->a", send(b, "x", 1, 0));
	RB("recv on a", recv(a, buf, sizeof buf, 0), buf);
	S("send on a after SHUT_WR", send(a, "x", 1, MSG_NOSIGNAL));
	S("shutdown a SHUT_RD", shutdown(a, SHUT_RD));
	S("recv on a after SHUT_RD", recv(a, buf, sizeof buf, 0));
	S("shutdown bad how", shutdown(a, 99));
	int u = socket(AF_INET, SOCK_STREAM, 0);
	S("shutdown unconnected", shutdown(u, SHUT_RDWR));
	state("a", a);
}

static void io_eof(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("send", send(b, "last", 4, 0));
	S("close peer", close(b));
	char buf[64];
	RB("recv", recv(a, buf, sizeof buf, 0), buf);
	S("recv at EOF", recv(a, buf, sizeof buf, 0));
	S("read at EOF", read(a, buf, sizeof buf));
	struct iovec v = { buf, sizeof buf };
	S("readv at EOF", readv(a, &v, 1));
	state("a", a);
}

static void io_rst_peer(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect to a server that accepts then resets", connect4(s, envport("CF_RST")));
	char buf[8];
	S("recv", recv(s, buf, sizeof buf, 0));
	state("after the reset", s);
	S("send MSG_NOSIGNAL", send(s, "x", 1, MSG_NOSIGNAL));
	S("recv again", recv(s, buf, sizeof buf, 0));
	S("connect again", connect4(s, envport("CF_ECHO")));
}

static void io_bulk_echo(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect echo", connect4(s, envport("CF_ECHO")));
	static char buf[65536], back[65536];
	fill(buf, sizeof buf, 3);
	size_t sent = 0, got = 0;
	int calls = 0, err = 0;
	while (got < sizeof buf && calls < 100000) {
		size_t chunk = sizeof buf - sent < 16384 ? sizeof buf - sent : 16384;
		if (chunk) {
			ssize_t n = send(s, buf + sent, chunk, 0);
			calls++;
			if (n < 0) {
				err = errno;
				break;
			}
			sent += (size_t)n;
		}
		while (got < sent && calls < 100000) {
			ssize_t n = recv(s, back + got, sent - got, 0);
			calls++;
			if (n <= 0) {
				err = n < 0 ? errno : -1;
				break;
			}
			got += (size_t)n;
		}
		if (err)
			break;
	}
	out("bulk: sent %zu received %zu same=%d err=%s", sent, got,
	    got == sizeof buf && memcmp(buf, back, sizeof buf) == 0, err > 0 ? ename(err) : err ? "EOF" : "0");
}

static void io_rcvtimeo(void)
{
	int a, b;
	tcp_pair(&a, &b);
	state("before", b);
	set_timeo(b, SO_RCVTIMEO, 0, 300000);
	state("after setting", b);
	char buf[8];
	T("recv (nothing comes)", recv(b, buf, sizeof buf, 0));
	T("read (nothing comes)", read(b, buf, sizeof buf));
	struct iovec v = { buf, sizeof buf };
	T("readv (nothing comes)", readv(b, &v, 1));
	set_timeo(b, SO_RCVTIMEO, 0, 0);
	state("after clearing", b);
	T("recv MSG_DONTWAIT", recv(b, buf, sizeof buf, MSG_DONTWAIT));
	S("send", send(a, "late", 4, 0));
	RB("recv", recv(b, buf, sizeof buf, 0), buf);
}

/* Set before connect: the program's timeout holds on the connected socket. */
static void io_rcvtimeo_before_connect(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	set_timeo(s, SO_RCVTIMEO, 0, 300000);
	S("connect echo", connect4(s, envport("CF_ECHO")));
	state("after connect", s);
	char buf[8];
	T("recv (echo has nothing)", recv(s, buf, sizeof buf, 0));
}

static void io_sndtimeo(void)
{
	int a, b;
	tcp_pair(&a, &b);
	int small = 4096;
	setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	set_timeo(a, SO_SNDTIMEO, 0, 300000);
	state("sender", a);
	static char buf[65536];
	fill(buf, sizeof buf, 1);
	long n = 0;
	int e = 0, calls = 0;
	double t0 = now();
	for (; calls < 5000; calls++) {
		t0 = now();
		n = send(a, buf, sizeof buf, 0);
		if (n < 0) {
			e = errno;
			break;
		}
	}
	out("send until full: last = %ld %s [%s]", n, n < 0 ? ename(e) : "", cls(t0));
	state("sender", a);
}

static void io_timeo_readback(void)
{
	int a, b;
	tcp_pair(&a, &b);
	set_timeo(a, SO_RCVTIMEO, 1, 500000);
	set_timeo(a, SO_SNDTIMEO, 2, 250000);
	state("after setting", a);
	int small = 1;
	S("setsockopt SO_RCVTIMEO int-sized", setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &small, sizeof small));
	struct timeval bad = { 0, 2000000 };
	S("setsockopt SO_RCVTIMEO usec out of range", setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad));
	struct timeval tv;
	socklen_t len = sizeof(int);
	S("getsockopt SO_RCVTIMEO int-sized", getsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
	out("len=%u", (unsigned)len);
	state("after bad calls", a);
	set_timeo(a, SO_RCVTIMEO, 0, 0);
	set_timeo(a, SO_SNDTIMEO, 0, 0);
	state("after clearing", a);
	state("peer, never set", b);
}

/* Without SA_RESTART a signal ends a blocking recv with EINTR; the handler's byte then
 * waits for the next call. */
static void io_eintr_recv(void)
{
	int a, b;
	tcp_pair(&a, &b);
	sig_write_fd = a;
	arm(200, 0);
	char buf[8];
	T("recv, SIGALRM at 200ms", recv(b, buf, sizeof buf, 0));
	disarm();
	RB("recv", recv(b, buf, sizeof buf, 0), buf);
}

static void io_eintr_read(void)
{
	int a, b;
	tcp_pair(&a, &b);
	sig_write_fd = a;
	arm(200, 0);
	char buf[8];
	T("read, SIGALRM at 200ms", read(b, buf, sizeof buf));
	disarm();
	RB("read", read(b, buf, sizeof buf), buf);
}

static void io_sigrestart_recv(void)
{
	int a, b;
	tcp_pair(&a, &b);
	sig_write_fd = a;
	arm(200, 1);
	char buf[8];
	errno = EDOM;
	double t0 = now();
	long n = recv(b, buf, sizeof buf, 0);
	int e = errno;
	char l[64];
	snprintf(l, sizeof l, "recv, SA_RESTART handler sends a byte [%s]", cls(t0));
	errno = e;
	showbuf(l, n, buf);
	disarm();
}

static void io_unconnected(void)
{
	signal(SIGPIPE, SIG_IGN);
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	char buf[8];
	S("send", send(s, "x", 1, MSG_NOSIGNAL));
	S("recv", recv(s, buf, sizeof buf, 0));
	S("read", read(s, buf, sizeof buf));
	S("write", write(s, "x", 1));
	struct iovec v = { buf, sizeof buf };
	S("readv", readv(s, &v, 1));
	S("writev", writev(s, &v, 1));
	int port, l = listener4(8, &port);
	S("read on a listener", read(l, buf, sizeof buf));
	S("send on a listener", send(l, "x", 1, MSG_NOSIGNAL));
	S("recv MSG_DONTWAIT on a listener", recv(l, buf, sizeof buf, MSG_DONTWAIT));
}

static void io_bad_buffers(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("send", send(a, "data", 4, 0));
	struct pollfd p = { .fd = b, .events = POLLIN };
	poll(&p, 1, 3000);
	S("recv into (void *)8", recv(b, (void *)bad_ptr, 4, 0));
	S("read into (void *)8", read(b, (void *)bad_ptr, 4));
	S("send from (void *)8", send(a, (void *)bad_ptr, 4, MSG_NOSIGNAL));
	S("write from (void *)8", write(a, (void *)bad_ptr, 4));
	char buf[8];
	RB("recv", recv(b, buf, sizeof buf, 0), buf);
}

static void io_bad_writev(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("writev iov (void *)8", writev(a, (struct iovec *)bad_ptr, 1));
	S("send", send(a, "ok", 2, 0));
	recv_all("recv", b, 2);
}

static void io_bad_readv(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("send", send(a, "ok", 2, 0));
	S("readv iov (void *)8", readv(b, (struct iovec *)bad_ptr, 1));
	recv_all("recv", b, 2);
}

static void io_bad_sendmsg(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("sendmsg msg (void *)8", sendmsg(a, (struct msghdr *)bad_ptr, 0));
	struct msghdr m = { .msg_iov = (struct iovec *)bad_ptr, .msg_iovlen = 1 };
	S("sendmsg msg_iov (void *)8", sendmsg(a, &m, 0));
	S("send", send(a, "ok", 2, 0));
	recv_all("recv", b, 2);
}

static void io_bad_recvmsg(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("send", send(a, "ok", 2, 0));
	S("recvmsg msg (void *)8", recvmsg(b, (struct msghdr *)bad_ptr, 0));
	struct msghdr m = { .msg_iov = (struct iovec *)bad_ptr, .msg_iovlen = 1 };
	S("recvmsg msg_iov (void *)8", recvmsg(b, &m, 0));
	recv_all("recv", b, 2);
}

static void io_bad_mmsg(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("sendmmsg (void *)8", sendmmsg(a, (struct mmsghdr *)bad_ptr, 1, 0));
	S("send", send(a, "ok", 2, 0));
	struct pollfd p = { .fd = b, .events = POLLIN };
	poll(&p, 1, 3000);
	S("recvmmsg (void *)8", recvmmsg(b, (struct mmsghdr *)bad_ptr, 1, 0, NULL));
	recv_all("recv", b, 2);
}

static void io_ebadf(void)
{
	char buf[8];
	struct iovec v = { buf, sizeof buf };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	S("send 999", send(999, "x", 1, 0));
	S("recv 999", recv(999, buf, sizeof buf, 0));
	S("read 999", read(999, buf, sizeof buf));
	S("write 999", write(999, "x", 1));
	S("readv 999", readv(999, &v, 1));
	S("writev 999", writev(999, &v, 1));
	S("sendmsg 999", sendmsg(999, &m, 0));
	S("recvmsg 999", recvmsg(999, &m, 0));
	S("sendto -1", sendto(-1, "x", 1, 0, NULL, 0));
	S("recvfrom -1", recvfrom(-1, buf, 1, 0, NULL, NULL));
	int s = socket(AF_INET, SOCK_STREAM, 0);
	S("close", close(s));
	S("send on a closed socket", send(s, "x", 1, 0));
	S("close again", close(s));
}

static void io_nonsocket(void)
{
	int p[2];
	S("pipe", pipe(p));
	static char big[3000], back[3000];
	fill(big, sizeof big, 5);
	S("write 3000 to a pipe", write(p[1], big, sizeof big));
	S("read 3000", read(p[0], back, sizeof back));
	out("same=%d", memcmp(big, back, sizeof big) == 0);
	char buf[8];
	S("recv on a pipe", recv(p[0], buf, sizeof buf, 0));
	S("send on a pipe", send(p[1], "x", 1, 0));
	int v = 0;
	socklen_t len = sizeof v;
	S("getsockopt on a pipe", getsockopt(p[0], SOL_SOCKET, SO_ERROR, &v, &len));
	int f = S("open file", open(tmppath("plain.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600));
	S("write 3000 to a file", write(f, big, sizeof big));
	struct iovec w[2] = { { big, 1500 }, { big + 1500, 1500 } };
	S("writev 3000 to a file", writev(f, w, 2));
	S("lseek", lseek(f, 0, SEEK_SET));
	S("read 3000", read(f, back, sizeof back));
	struct iovec r[2] = { { back, 1000 }, { back + 1000, 2000 } };
	S("readv 3000", readv(f, r, 2));
	S("read at EOF", read(f, buf, sizeof buf));
}

static void io_epoll(void)
{
	int a, b;
	tcp_pair(&a, &b);
	nonblock(b, 1);
	int ep = S("epoll_create1", epoll_create1(0));
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = b };
	S("epoll_ctl ADD", epoll_ctl(ep, EPOLL_CTL_ADD, b, &ev));
	S("send", send(a, "12345", 5, 0));
	S("send", send(a, "678", 3, 0));
	settle(b);
	struct epoll_event got;
	S("epoll_wait", epoll_wait(ep, &got, 1, 3000));
	char buf[4];
	size_t total = 0;
	long n;
	int calls = 0;
	while ((n = recv(b, buf, sizeof buf, 0)) > 0 && calls++ < 100)
		total += (size_t)n;
	out("drained %zu, then %ld %s", total, n, n < 0 ? ename(errno) : "");
	S("epoll_wait (edge consumed)", epoll_wait(ep, &got, 1, 0));
}

struct blast { int fd; int n; long sent; };

static void *blast(void *arg)
{
	struct blast *bl = arg;
	char msg[10];
	memset(msg, 'z', sizeof msg);
	/* a stream send may legitimately be short (a byte limit): send the rest, as
	 * programs do; what is compared is the total */
	for (int i = 0, calls = 0; i < bl->n && calls < 100000; i++) {
		size_t off = 0;
		while (off < sizeof msg && calls++ < 100000) {
			long n = send(bl->fd, msg + off, sizeof msg - off, 0);
			if (n <= 0)
				return NULL;
			off += (size_t)n;
			bl->sent += n;
		}
	}
	return NULL;
}

static void io_threads(void)
{
	int a1, b1, a2, b2;
	tcp_pair(&a1, &b1);
	tcp_pair(&a2, &b2);
	struct blast x = { a1, 200, 0 }, y = { a2, 200, 0 };
	pthread_t t1, t2;
	pthread_create(&t1, NULL, blast, &x);
	pthread_create(&t2, NULL, blast, &y);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	out("sent %ld and %ld", x.sent, y.sent);
	recv_all("recv all on 1", b1, 2000);
	recv_all("recv all on 2", b2, 2000);
}

/* ==== UDP ==== */

static int udp_bound(int *port)
{
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = lo4(0);
	if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) < 0)
		setup_fail("udp bind");
	*port = port_of(u);
	return u;
}

/* Two UDP sockets, the first connected to the second. */
static void udp_pair(int *a, int *b)
{
	int pb;
	*b = udp_bound(&pb);
	*a = socket(AF_INET, SOCK_DGRAM, 0);
	if (*a < 0 || connect4(*a, pb) < 0)
		setup_fail("udp connect");
	out("udp pair = %d %d", *a, *b);
}

static void u_sendto_recvfrom(void)
{
	int s = S("socket", socket(AF_INET, SOCK_DGRAM, 0));
	struct sockaddr_in e = lo4(envport("CF_UECHO"));
	S("sendto echo", sendto(s, "one", 3, 0, (struct sockaddr *)&e, sizeof e));
	S("sendto echo", sendto(s, "two!", 4, 0, (struct sockaddr *)&e, sizeof e));
	char buf[64];
	struct sockaddr_in from;
	socklen_t fl = sizeof from;
	RB("recvfrom", recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), buf);
	out("from: len=%u echo=%d", (unsigned)fl, from.sin_port == e.sin_port);
	fl = sizeof from;
	RB("recvfrom", recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), buf);
	state("after", s);
}

static void u_boundaries(void)
{
	int a, b;
	udp_pair(&a, &b);
	S("send 1", send(a, "a", 1, 0));
	S("send 2", send(a, "bc", 2, 0));
	S("write 3", write(a, "def", 3));
	struct iovec w[2] = { { "gh", 2 }, { "ij", 2 } };
	S("writev 2+2", writev(a, w, 2));
	char buf[64];
	RB("recv", recv(b, buf, sizeof buf, 0), buf);
	RB("recv", recv(b, buf, sizeof buf, 0), buf);
	RB("recv 2 of 3 (rest dropped)", recv(b, buf, 2, 0), buf);
	RB("read", read(b, buf, sizeof buf), buf);
	S("recv MSG_DONTWAIT", recv(b, buf, sizeof buf, MSG_DONTWAIT));
}

static void u_trunc_peek(void)
{
	int a, b;
	udp_pair(&a, &b);
	S("send", send(a, "datagram", 8, 0));
	char buf[64];
	memset(buf, 0, sizeof buf);
	RB("recv 4 MSG_PEEK", recv(b, buf, 4, MSG_PEEK), buf);
	RB("recv 4 MSG_PEEK|MSG_TRUNC", recv(b, buf, 4, MSG_PEEK | MSG_TRUNC), buf);
	struct iovec v = { buf, 3 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	RB("recvmsg 3", recvmsg(b, &m, 0), buf);
	out("msg_flags MSG_TRUNC=%d", !!(m.msg_flags & MSG_TRUNC));
}

/* Datagrams larger than any byte burst a policy allows at once must go whole. */
static void u_big(void)
{
	int s = S("socket", socket(AF_INET, SOCK_DGRAM, 0));
	S("connect udp echo", connect4(s, envport("CF_UECHO")));
	static char big[3000], buf[8192];
	fill(big, sizeof big, 2);
	S("send 3000", send(s, big, sizeof big, 0));
	S("recv", recv(s, buf, sizeof buf, 0));
	S("write 3000", write(s, big, sizeof big));
	S("read", read(s, buf, sizeof buf));
	S("sendto NULL 3000", sendto(s, big, sizeof big, 0, NULL, 0));
	S("recv", recv(s, buf, sizeof buf, 0));
}

static void u_mmsg(void)
{
	int a, b;
	udp_pair(&a, &b);
	struct iovec i[3] = { { "a", 1 }, { "bb", 2 }, { "ccc", 3 } };
	struct mmsghdr mm[3];
	memset(mm, 0, sizeof mm);
	for (int k = 0; k < 3; k++) {
		mm[k].msg_hdr.msg_iov = &i[k];
		mm[k].msg_hdr.msg_iovlen = 1;
	}
	S("sendmmsg 3", sendmmsg(a, mm, 3, 0));
	settle(b);
	char r[4][16];
	struct iovec j[4];
	struct mmsghdr rm[4];
	memset(rm, 0, sizeof rm);
	for (int k = 0; k < 4; k++) {
		j[k].iov_base = r[k];
		j[k].iov_len = sizeof r[k];
		rm[k].msg_hdr.msg_iov = &j[k];
		rm[k].msg_hdr.msg_iovlen = 1;
	}
	S("recvmmsg 4 MSG_DONTWAIT", recvmmsg(b, rm, 4, MSG_DONTWAIT, NULL));
	out("msg_len: %u %u %u", rm[0].msg_len, rm[1].msg_len, rm[2].msg_len);
	S("recvmmsg again", recvmmsg(b, rm, 4, MSG_DONTWAIT, NULL));
	S("sendmmsg 0", sendmmsg(a, mm, 0, 0));
}

static void u_zero(void)
{
	int a, b;
	udp_pair(&a, &b);
	S("send 0 bytes", send(a, "", 0, 0));
	S("write 0 bytes", write(a, "", 0));
	char buf[8];
	S("recv (empty datagram)", recv(b, buf, sizeof buf, 0));
	S("recv MSG_DONTWAIT", recv(b, buf, sizeof buf, MSG_DONTWAIT));
}

static void u_dontwait(void)
{
	int port, s = udp_bound(&port);
	char buf[8];
	T("recv MSG_DONTWAIT", recv(s, buf, sizeof buf, MSG_DONTWAIT));
	T("recvfrom MSG_DONTWAIT", recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));
	struct iovec v = { buf, sizeof buf };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	T("recvmsg MSG_DONTWAIT", recvmsg(s, &m, MSG_DONTWAIT));
	set_timeo(s, SO_RCVTIMEO, 0, 200000);
	T("recv with SO_RCVTIMEO 200ms", recv(s, buf, sizeof buf, 0));
}

/* ==== unix sockets and socketpairs ==== */

static void x_stream_pair(void)
{
	int sv[2];
	S("socketpair stream", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	char buf[64];
	S("write", write(sv[0], "pair", 4));
	RB("read", read(sv[1], buf, sizeof buf), buf);
	S("send", send(sv[1], "back", 4, 0));
	RB("recv", recv(sv[0], buf, sizeof buf, 0), buf);
	struct iovec w[2] = { { "ab", 2 }, { "cd", 2 } };
	S("writev", writev(sv[0], w, 2));
	struct iovec r = { buf, sizeof buf };
	RB("readv", readv(sv[1], &r, 1), buf);
	state("end 0", sv[0]);
	S("shutdown SHUT_WR", shutdown(sv[0], SHUT_WR));
	S("read at EOF", read(sv[1], buf, sizeof buf));
}

static void x_dgram_pair(void)
{
	int sv[2];
	S("socketpair dgram", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	char buf[64];
	S("send", send(sv[0], "a", 1, 0));
	S("send", send(sv[0], "bcd", 3, 0));
	S("write", write(sv[0], "efgh", 4));
	RB("recv", recv(sv[1], buf, sizeof buf, 0), buf);
	RB("recv 2 of 3", recv(sv[1], buf, 2, 0), buf);
	RB("read", read(sv[1], buf, sizeof buf), buf);
	S("recv MSG_DONTWAIT", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
	state("end 1", sv[1]);
}

static void x_dgram_pair_big(void)
{
	int sv[2];
	S("socketpair dgram", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	static char big[3000], buf[8192];
	fill(big, sizeof big, 4);
	S("write 3000", write(sv[0], big, sizeof big));
	S("send 3000", send(sv[0], big, sizeof big, 0));
	S("read", read(sv[1], buf, sizeof buf));
	S("recv", recv(sv[1], buf, sizeof buf, 0));
}

static void x_seqpacket_pair(void)
{
	int sv[2];
	S("socketpair seqpacket", socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	char buf[64];
	S("send", send(sv[0], "ab", 2, 0));
	S("send", send(sv[0], "cde", 3, 0));
	S("write", write(sv[0], "fghi", 4));
	RB("recv 1 of 2", recv(sv[1], buf, 1, 0), buf);
	struct iovec v = { buf, 2 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	RB("recvmsg 2 of 3", recvmsg(sv[1], &m, 0), buf);
	out("msg_flags MSG_TRUNC=%d MSG_EOR=%d", !!(m.msg_flags & MSG_TRUNC), !!(m.msg_flags & MSG_EOR));
	RB("read", read(sv[1], buf, sizeof buf), buf);
	S("close", close(sv[0]));
	S("recv at EOF", recv(sv[1], buf, sizeof buf, 0));
	S("send to a closed peer", send(sv[1], "x", 1, MSG_NOSIGNAL));
}

static void x_seqpacket_pair_big(void)
{
	int sv[2];
	S("socketpair seqpacket", socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	static char big[3000], buf[8192];
	fill(big, sizeof big, 6);
	S("send 3000", send(sv[0], big, sizeof big, 0));
	S("write 3000", write(sv[0], big, sizeof big));
	S("recv", recv(sv[1], buf, sizeof buf, 0));
	S("read", read(sv[1], buf, sizeof buf));
}

static void x_seqpacket_peer_big(void)
{
	struct sockaddr_un a;
	socklen_t len = unaddr(&a, envstr("CF_USEQ"));
	int s = S("socket", socket(AF_UNIX, SOCK_SEQPACKET, 0));
	S("connect seqpacket echo", connect(s, (struct sockaddr *)&a, len));
	static char big[3000], buf[8192];
	fill(big, sizeof big, 7);
	S("send 3000", send(s, big, sizeof big, 0));
	S("recv", recv(s, buf, sizeof buf, 0));
	S("write 3000", write(s, big, sizeof big));
	S("read", read(s, buf, sizeof buf));
}

static void x_dgram_peer(void)
{
	struct sockaddr_un me, srv;
	socklen_t ml = unaddr(&me, tmppath("client.sock"));
	socklen_t sl = unaddr(&srv, envstr("CF_UDGRAM"));
	int s = S("socket", socket(AF_UNIX, SOCK_DGRAM, 0));
	S("bind", bind(s, (struct sockaddr *)&me, ml));
	S("sendto echo", sendto(s, "ping", 4, 0, (struct sockaddr *)&srv, sl));
	char buf[64];
	struct sockaddr_un from;
	socklen_t fl = sizeof from;
	RB("recvfrom", recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), buf);
	out("from the echo path: %d", strcmp(from.sun_path, srv.sun_path) == 0);
	S("connect echo", connect(s, (struct sockaddr *)&srv, sl));
	S("send", send(s, "pong", 4, 0));
	RB("recv", recv(s, buf, sizeof buf, 0), buf);
	state("after", s);
}

static void x_scm_rights(void)
{
	int sv[2];
	S("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	int a, b;
	tcp_pair(&a, &b);
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec v = { "F", 1 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof cbuf };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &a, sizeof a);
	S("sendmsg SCM_RIGHTS", sendmsg(sv[0], &m, 0));
	S("close the original", close(a));
	char rb[8];
	char rc[CMSG_SPACE(sizeof(int))];
	struct iovec rv = { rb, sizeof rb };
	struct msghdr rm = { .msg_iov = &rv, .msg_iovlen = 1, .msg_control = rc,
			     .msg_controllen = sizeof rc };
	S("recvmsg", recvmsg(sv[1], &rm, 0));
	struct cmsghdr *rcm = CMSG_FIRSTHDR(&rm);
	int got = -1;
	if (rcm && rcm->cmsg_type == SCM_RIGHTS)
		memcpy(&got, CMSG_DATA(rcm), sizeof got);
	out("received fd %d, controllen=%zu", got, (size_t)rm.msg_controllen);
	state("received", got);
	S("send through it", send(got, "via", 3, 0));
	recv_all("recv", b, 3);
}

static void x_abstract(void)
{
	struct sockaddr_un a;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "bulwark-cf-%010d", (int)getpid());
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, len) < 0 || listen(l, 8) < 0)
		setup_fail("abstract listener");
	int c = S("socket", socket(AF_UNIX, SOCK_STREAM, 0));
	S("connect abstract", connect(c, (struct sockaddr *)&a, len));
	int s = S("accept", accept(l, NULL, NULL));
	state("client", c);
	S("send", send(c, "abs", 3, 0));
	recv_all("recv", s, 3);
}

/* ==== descriptors ==== */

static void d_dup(void)
{
	int a, b;
	tcp_pair(&a, &b);
	set_timeo(a, SO_RCVTIMEO, 0, 300000);
	int d = S("dup", dup(a));
	state("dup", d);
	S("send via dup", send(d, "dup", 3, 0));
	recv_all("recv", b, 3);
	S("close original", close(a));
	S("send via dup", send(d, "again", 5, 0));
	recv_all("recv", b, 5);
	char buf[8];
	T("recv via dup (nothing comes)", recv(d, buf, sizeof buf, 0));
	S("dup 999", dup(999));
}

static void d_dup2_dup3(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("dup2 a 20", dup2(a, 20));
	S("dup2 a a", dup2(a, a));
	S("dup3 a 21 O_CLOEXEC", dup3(a, 21, O_CLOEXEC));
	cloexec("21", 21);
	S("dup3 a a", dup3(a, a, 0));
	S("dup2 a -1", dup2(a, -1));
	S("dup2 999 22", dup2(999, 22));
	S("close a", close(a));
	S("send via 20", send(20, "x", 1, 0));
	S("send via 21", send(21, "y", 1, 0));
	recv_all("recv", b, 2);
	state("20", 20);
}

/* A socket's number taken over by a pipe, and a pipe's by a socket. */
static void d_dup2_over(void)
{
	int a, b, p[2];
	tcp_pair(&a, &b);
	S("pipe", pipe(p));
	static char big[3000], back[3000];
	fill(big, sizeof big, 8);
	S("dup2 pipe-write over the socket", dup2(p[1], a));
	S("write 3000 (now a pipe)", write(a, big, sizeof big));
	S("read 3000 from the pipe", read(p[0], back, sizeof back));
	int c, d;
	tcp_pair(&c, &d);
	S("dup2 socket over the pipe's read end", dup2(c, p[0]));
	S("send via it", send(p[0], "sock", 4, 0));
	recv_all("recv", d, 4);
	state("it", p[0]);
}

static void d_fcntl_dupfd(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("F_DUPFD 30", fcntl(a, F_DUPFD, 30));
	S("F_DUPFD_CLOEXEC 40", fcntl(a, F_DUPFD_CLOEXEC, 40));
	cloexec("40", 40);
	S("F_SETFL O_NONBLOCK via 30", fcntl(30, F_SETFL, O_NONBLOCK));
	state("a", a);
	char buf[8];
	T("recv on a (nothing)", recv(a, buf, sizeof buf, 0));
	S("send via 40", send(40, "fd", 2, 0));
	recv_all("recv", b, 2);
	S("F_DUPFD on 999", fcntl(999, F_DUPFD, 0));
}

static void d_close_range(void)
{
	int s[4];
	for (int i = 0; i < 4; i++)
		s[i] = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("close_range first..last", close_range((unsigned)s[0], (unsigned)s[3], 0));
	for (int i = 0; i < 4; i++)
		cloexec("closed", s[i]);
	int t = S("socket (lowest free)", socket(AF_INET, SOCK_STREAM, 0));
	S("close_range CLOEXEC", close_range((unsigned)t, (unsigned)t, CLOSE_RANGE_CLOEXEC));
	cloexec("t", t);
	S("close_range hi < lo", close_range(10, 5, 0));
	S("connect echo on t", connect4(t, envport("CF_ECHO")));
	S("send", send(t, "cr", 2, 0));
	recv_all("recv", t, 2);
}

static void d_closefrom(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("dup2 a 60", dup2(a, 60));
	S("dup2 b 61", dup2(b, 61));
	closefrom(60);
	out("closefrom 60");
	cloexec("60", 60);
	cloexec("61", 61);
	S("send on a", send(a, "cf", 2, 0));
	recv_all("recv", b, 2);
}

/* A number reused by a file after a close: it must not keep the socket's rules. */
static void d_close_reuse(void)
{
	int s = S("socket", socket(AF_INET, SOCK_STREAM, 0));
	S("connect echo", connect4(s, envport("CF_ECHO")));
	S("close", close(s));
	int f = S("open (same number)", open(tmppath("reuse.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600));
	static char big[3000];
	fill(big, sizeof big, 9);
	S("write 3000", write(f, big, sizeof big));
	S("lseek", lseek(f, 0, SEEK_SET));
	S("read 3000", read(f, big, sizeof big));
}

/* dup2(sock, 1) then freopen(file, "w", stdout): glibc moves the file onto fd 1 behind
 * the library's back. Writes must land whole in the file. */
static void d_freopen(void)
{
	int a, b;
	tcp_pair(&a, &b);
	S("dup2 a 1", dup2(a, 1));
	S("write to fd 1 (the socket)", write(1, "sock", 4));
	recv_all("recv", b, 4);
	const char *path = tmppath("stdout.txt");
	out("freopen = %s", freopen(path, "w", stdout) ? "ok" : ename(errno));
	out("fileno(stdout) = %d", fileno(stdout));
	static char big[3000];
	fill(big, sizeof big, 10);
	S("write 3000 to fd 1 (now the file)", write(1, big, sizeof big));
	struct iovec v[2] = { { big, 100 }, { big, 200 } };
	S("writev 300 to fd 1", writev(1, v, 2));
	fputs("line\n", stdout);
	fflush(stdout);
	struct stat st;
	stat(path, &st);
	out("file size %ld (want 3305)", (long)st.st_size);
	char buf[8];
	S("recv MSG_DONTWAIT on the socket's peer", recv(b, buf, sizeof buf, MSG_DONTWAIT));
}

static void d_fork(void)
{
	int a, b;
	tcp_pair(&a, &b);
	set_timeo(a, SO_RCVTIMEO, 0, 300000);
	pid_t pid = fork();
	if (pid == 0) {
		S("child: send", send(a, "child", 5, 0));
		state("child: a", a);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	out("child exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	recv_all("recv", b, 5);
	S("parent: send", send(a, "parent", 6, 0));
	recv_all("recv", b, 6);
	state("parent: a", a);
	char buf[8];
	T("recv on a (nothing)", recv(a, buf, sizeof buf, 0));
}

static int vfork_fd;

/* The child runs in the parent's memory until it exits: whatever a hook changes there
 * changes it for the parent. */
static void d_vfork_close_range(void)
{
	int a, b;
	tcp_pair(&a, &b);
	set_timeo(a, SO_RCVTIMEO, 0, 300000);
	pid_t pid = vfork();
	if (pid == 0) {
		close_range(3, ~0U, 0);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	out("child exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	state("a", a);
	char buf[8];
	T("recv on a (nothing)", recv(a, buf, sizeof buf, 0));
	S("send", send(a, "vf", 2, 0));
	recv_all("recv", b, 2);
}

static void d_vfork_close(void)
{
	int a, b;
	tcp_pair(&a, &b);
	set_timeo(a, SO_RCVTIMEO, 0, 300000);
	vfork_fd = a;
	pid_t pid = vfork();
	if (pid == 0) {
		close(vfork_fd);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	out("child exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	state("a", a);
	char buf[8];
	T("recv on a (nothing)", recv(a, buf, sizeof buf, 0));
}

static const char *self_exe(void)
{
	static char path[512];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
	if (n < 0)
		setup_fail("readlink");
	path[n] = '\0';
	return path;
}

static void d_vfork_exec(void)
{
	int a, b;
	tcp_pair(&a, &b);
	set_timeo(a, SO_RCVTIMEO, 0, 300000);
	char fdarg[16];
	snprintf(fdarg, sizeof fdarg, "%d", b);
	char *argv[] = { (char *)"driver", (char *)"--child-write", fdarg, NULL };
	const char *exe = self_exe();
	pid_t pid = vfork();
	if (pid == 0) {
		close(a);
		execve(exe, argv, environ);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	out("child exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	recv_all("recv from the child", a, 7);
	state("a", a);
	char buf[8];
	T("recv on a (nothing)", recv(a, buf, sizeof buf, 0));
}

static void d_posix_spawn(void)
{
	int a, b;
	tcp_pair(&a, &b);
	set_timeo(a, SO_RCVTIMEO, 0, 300000);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, b, 9);
	posix_spawn_file_actions_addclose(&fa, a);
	char *argv[] = { (char *)"driver", (char *)"--child-write", (char *)"9", NULL };
	pid_t pid;
	int rc = posix_spawn(&pid, self_exe(), &fa, NULL, argv, environ);
	out("posix_spawn = %s", ename(rc));
	int st;
	if (rc == 0) {
		waitpid(pid, &st, 0);
		out("child exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}
	recv_all("recv from the child", a, 7);
	state("a", a);
	char buf[8];
	T("recv on a (nothing)", recv(a, buf, sizeof buf, 0));
	posix_spawn_file_actions_destroy(&fa);
}

static void d_posix_spawn_closefrom(void)
{
	int a, b;
	tcp_pair(&a, &b);
	set_timeo(a, SO_RCVTIMEO, 0, 300000);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	char *argv[] = { (char *)"true", NULL };
	pid_t pid;
	int rc = posix_spawn(&pid, "/bin/true", &fa, NULL, argv, environ);
	out("posix_spawn = %s", ename(rc));
	int st;
	if (rc == 0) {
		waitpid(pid, &st, 0);
		out("child exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}
	state("a", a);
	char buf[8];
	T("recv on a (nothing)", recv(a, buf, sizeof buf, 0));
	S("send", send(b, "ps", 2, 0));
	recv_all("recv", a, 2);
	posix_spawn_file_actions_destroy(&fa);
}

static void d_sockopt_misc(void)
{
	int port, l = listener4(8, &port);
	int v = -1;
	socklen_t len = sizeof v;
	S("SO_ACCEPTCONN", getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &len));
	out("value %d", v);
	len = sizeof v;
	S("SO_TYPE", getsockopt(l, SOL_SOCKET, SO_TYPE, &v, &len));
	out("value %d", v);
	len = sizeof v;
	S("SO_ERROR NULL value", getsockopt(l, SOL_SOCKET, SO_ERROR, NULL, &len));
	S("SO_ERROR NULL len", getsockopt(l, SOL_SOCKET, SO_ERROR, &v, NULL));
	struct timeval tv;
	S("SO_RCVTIMEO NULL len", getsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, NULL));
	S("setsockopt SO_RCVTIMEO NULL", setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, NULL, sizeof tv));
	state("listener", l);
}

/* ---- the table ---- */

struct row {
	const char *name;
	void (*fn)(void);
	int ops;
	int flags;
	int watch_s;   /* run in a child, killed after this many seconds: a hang is a result */
};

#define ALL (OP_C | OP_A | OP_S | OP_R)
#define CSR (OP_C | OP_S | OP_R)
#define NOF (F_NODEF | F_NORETRY)

static const struct row rows[] = {
	/* connect */
	{ "connect_tcp_blocking", c_tcp_blocking, CSR, 0, 0 },
	{ "connect_tcp_refused", c_tcp_refused, CSR, NOF | F_STRACE, 0 },
	{ "connect_tcp_refused_twice", c_tcp_refused_twice, CSR, NOF | F_STRACE, 0 },
	{ "connect_tcp_refused_then_up", c_tcp_refused_then_up, ALL, NOF | F_STRACE, 0 },
	{ "connect_tcp_eisconn", c_tcp_eisconn, CSR, F_STRACE, 0 },
	{ "connect_tcp_nonblock", c_tcp_nonblock, CSR, F_NODEF, 3 },
	{ "connect_tcp_nonblock_refused", c_tcp_nonblock_refused, OP_C, F_NODEF, 3 },
	{ "connect_tcp_nonblock_pending", c_tcp_nonblock_pending, OP_C, F_NODEF, 3 },
	{ "connect_tcp_eintr", c_tcp_eintr, OP_C, 0, 3 },
	{ "connect_tcp_sigrestart", c_tcp_sigrestart, OP_C, 0, 5 },
	{ "connect_tcp_sndtimeo", c_tcp_sndtimeo, OP_C, 0, 3 },
	{ "connect_tcp6", c_tcp6, ALL, 0, 0 },
	{ "connect_bad_args", c_bad_args, OP_C, 0, 0 },
	{ "connect_bad_pointer", c_bad_pointer, 0, 0, 0 },   /* unreadable: nothing to match */
	{ "connect_udp", c_udp_connect, OP_S | OP_R, 0, 0 },
	{ "connect_udp_refused", c_udp_refused, OP_S | OP_R, 0, 3 },
	{ "connect_unix_stream", c_unix_stream, CSR, 0, 0 },
	{ "connect_unix_missing", c_unix_missing, OP_C, NOF, 0 },
	{ "connect_unix_refused", c_unix_refused, OP_C, NOF, 0 },
	{ "connect_unix_refused_then_up", c_unix_refused_then_up, ALL, NOF | F_STRACE, 0 },
	{ "connect_unix_seqpacket", c_unix_seqpacket, OP_S | OP_R, 0, 0 },
	/* accept */
	{ "accept_blocking", a_blocking, ALL, 0, 0 },
	{ "accept_nonblock", a_nonblock, OP_C | OP_A, 0, 0 },
	{ "accept4_flags", a_accept4_flags, OP_C | OP_A | OP_R, 0, 0 },
	{ "accept_null_addrlen", a_null_len, OP_C | OP_A, 0, 0 },
	{ "accept_bad_addr", a_bad_addr, OP_C | OP_A, 0, 0 },
	{ "accept_bad_addrlen_ptr", a_bad_len_ptr, OP_C | OP_A, 0, 0 },
	{ "accept_short_addrlen", a_short_len, OP_C | OP_A, 0, 0 },
	{ "accept_listener_rcvtimeo", a_listener_rcvtimeo, OP_A, 0, 3 },
	{ "accept_inherits_timeouts", a_inherit_timeo, OP_C | OP_A | OP_R, 0, 3 },
	{ "accept_idle_listener", a_idle, OP_C | OP_A, 0, 6 },
	{ "accept_eintr", a_eintr, OP_A, 0, 3 },
	{ "accept_sigrestart", a_sigrestart, OP_A, 0, 3 },
	{ "accept_unix", a_unix, ALL, 0, 0 },
	{ "accept_unix_seqpacket", a_unix_seqpacket, OP_A | OP_S | OP_R, 0, 0 },
	{ "accept_not_listening", a_not_listening, OP_A, 0, 0 },
	/* TCP transfers */
	{ "io_tcp_send_recv", io_send_recv, ALL, 0, 0 },
	{ "io_tcp_read_write", io_read_write, ALL, 0, 0 },
	{ "io_tcp_readv_writev", io_readv_writev, ALL, 0, 0 },
	{ "io_tcp_sendmsg_recvmsg", io_sendmsg_recvmsg, ALL, 0, 0 },
	{ "io_tcp_mmsg", io_mmsg, ALL, 0, 0 },
	{ "io_tcp_peek", io_peek, ALL, 0, 0 },
	{ "io_tcp_waitall", io_waitall, ALL, 0, 3 },
	{ "io_tcp_dontwait", io_dontwait, ALL, 0, 0 },
	{ "io_tcp_nosignal", io_nosignal, ALL, 0, 0 },
	{ "io_tcp_sigpipe", io_sigpipe, ALL, 0, 0 },
	{ "io_tcp_shutdown", io_shutdown, ALL, 0, 0 },
	{ "io_tcp_eof", io_eof, ALL, 0, 0 },
	{ "io_tcp_rst_peer", io_rst_peer, CSR, 0, 0 },
	{ "io_tcp_bulk_echo", io_bulk_echo, CSR, 0, 0 },
	{ "io_tcp_rcvtimeo", io_rcvtimeo, ALL, 0, 3 },
	{ "io_tcp_rcvtimeo_before_connect", io_rcvtimeo_before_connect, OP_C | OP_R, 0, 3 },
	{ "io_tcp_sndtimeo", io_sndtimeo, OP_C | OP_A | OP_S, 0, 4 },
	{ "io_tcp_timeo_readback", io_timeo_readback, OP_C | OP_A, 0, 0 },
	{ "io_tcp_eintr_recv", io_eintr_recv, ALL, 0, 3 },
	{ "io_tcp_eintr_read", io_eintr_read, ALL, 0, 3 },
	{ "io_tcp_sigrestart_recv", io_sigrestart_recv, ALL, 0, 3 },
	{ "io_tcp_unconnected", io_unconnected, OP_S | OP_R, 0, 0 },
	{ "io_bad_buffers", io_bad_buffers, ALL, 0, 0 },
	{ "io_bad_writev", io_bad_writev, ALL, 0, 0 },
	{ "io_bad_readv", io_bad_readv, ALL, 0, 0 },
	{ "io_bad_sendmsg", io_bad_sendmsg, ALL, 0, 0 },
	{ "io_bad_recvmsg", io_bad_recvmsg, ALL, 0, 0 },
	{ "io_bad_mmsg", io_bad_mmsg, ALL, 0, 0 },
	{ "io_ebadf", io_ebadf, 0, 0, 0 },
	{ "io_nonsocket", io_nonsocket, 0, 0, 0 },
	{ "io_epoll_edge", io_epoll, ALL, 0, 0 },
	{ "io_threads", io_threads, ALL, 0, 5 },
	/* UDP */
	{ "udp_sendto_recvfrom", u_sendto_recvfrom, OP_S | OP_R, 0, 0 },
	{ "udp_boundaries", u_boundaries, OP_S | OP_R, 0, 0 },
	{ "udp_trunc_peek", u_trunc_peek, OP_S | OP_R, 0, 0 },
	{ "udp_big_datagram", u_big, OP_S | OP_R, 0, 0 },
	{ "udp_mmsg", u_mmsg, OP_S | OP_R, 0, 0 },
	{ "udp_zero_length", u_zero, OP_S | OP_R, 0, 0 },
	{ "udp_dontwait", u_dontwait, OP_R, 0, 3 },
	/* unix and socketpairs */
	{ "unix_stream_pair", x_stream_pair, OP_S | OP_R, 0, 0 },
	{ "unix_dgram_pair", x_dgram_pair, OP_S | OP_R, 0, 0 },
	{ "unix_dgram_pair_big", x_dgram_pair_big, OP_S | OP_R, 0, 0 },
	{ "unix_seqpacket_pair", x_seqpacket_pair, OP_S | OP_R, 0, 0 },
	{ "unix_seqpacket_pair_big", x_seqpacket_pair_big, OP_S | OP_R, 0, 0 },
	{ "unix_seqpacket_peer_big", x_seqpacket_peer_big, OP_S | OP_R, 0, 0 },
	{ "unix_dgram_peer", x_dgram_peer, OP_S | OP_R, 0, 0 },
	{ "unix_scm_rights", x_scm_rights, ALL, 0, 0 },
	{ "unix_abstract", x_abstract, ALL, 0, 0 },
	/* descriptors and processes */
	{ "fd_dup", d_dup, ALL, 0, 3 },
	{ "fd_dup2_dup3", d_dup2_dup3, ALL, 0, 0 },
	{ "fd_dup2_over", d_dup2_over, ALL, 0, 0 },
	{ "fd_fcntl_dupfd", d_fcntl_dupfd, ALL, 0, 3 },
	{ "fd_close_range", d_close_range, CSR, 0, 0 },
	{ "fd_closefrom", d_closefrom, ALL, 0, 0 },
	{ "fd_close_reuse", d_close_reuse, OP_C, 0, 0 },
	{ "fd_freopen", d_freopen, ALL, 0, 0 },
	{ "fd_fork", d_fork, ALL, 0, 3 },
	{ "fd_vfork_close_range", d_vfork_close_range, ALL, 0, 3 },
	{ "fd_vfork_close", d_vfork_close, OP_C | OP_A | OP_R, 0, 3 },
	{ "fd_vfork_exec", d_vfork_exec, ALL, 0, 3 },
	{ "fd_posix_spawn", d_posix_spawn, ALL, 0, 3 },
	{ "fd_posix_spawn_closefrom", d_posix_spawn_closefrom, ALL, 0, 3 },
	{ "sockopt_misc", d_sockopt_misc, 0, 0, 0 },
};

#define N_ROWS (sizeof rows / sizeof rows[0])

/* Run the scenario in a child and give it watch_s seconds: a call that hangs where the
 * kernel returns is a result to print, not a stuck run. */
static int watched(const struct row *r)
{
	pid_t pid = fork();
	if (pid < 0)
		setup_fail("fork");
	if (pid == 0) {
		r->fn();
		exit(0);
	}
	int st;
	for (int i = 0; i < r->watch_s * 50; i++) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			if (WIFSIGNALED(st))
				out("scenario died of signal %s", sigabbrev_np(WTERMSIG(st)));
			else if (WEXITSTATUS(st))
				out("scenario exited %d", WEXITSTATUS(st));
			return 0;
		}
		msleep(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	out("watchdog: still running after %d s, killed", r->watch_s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < N_ROWS; i++) {
			const struct row *r = &rows[i];
			char flags[64];
			snprintf(flags, sizeof flags, "%s%s%s", r->flags & F_NODEF ? "nodefault," : "",
				 r->flags & F_NORETRY ? "noretry," : "", r->flags & F_STRACE ? "strace," : "");
			/* name, ops (c a s r), flags, watchdog seconds */
			printf("%s %s%s%s%s%s %s %d\n", r->name, r->ops & OP_C ? "c" : "",
			       r->ops & OP_A ? "a" : "", r->ops & OP_S ? "s" : "", r->ops & OP_R ? "r" : "",
			       r->ops ? "" : "-", flags[0] ? flags : "-", r->watch_s);
		}
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "--child-write") == 0) {
		int fd = atoi(argv[2]);
		return write(fd, "spawned", 7) == 7 ? 0 : 1;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: driver --list | driver SCENARIO\n");
		return 2;
	}
	if (dup2(1, OUT_FD) != OUT_FD)
		return 2;
	fcntl(OUT_FD, F_SETFD, FD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < N_ROWS; i++) {
		if (strcmp(rows[i].name, argv[1]) != 0)
			continue;
		if (rows[i].watch_s)
			watched(&rows[i]);
		else
			rows[i].fn();
		return 0;
	}
	fprintf(stderr, "driver: no scenario %s\n", argv[1]);
	return 2;
}
