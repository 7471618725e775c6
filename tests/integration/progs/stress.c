/* Threads and fork at once, for the robustness tests.
 *
 * usage: stress ECHO_PORT DEAD_PORT THREADS ITERS CHILDREN CHILD_ITERS
 * Counts the entries of /proc/self/fd, then starts THREADS threads that each run ITERS
 * rounds of: connect to 127.0.0.1:ECHO_PORT (an echo server), send a message of varied
 * size with send/write/writev/sendmsg, read it back with recv/read/readv/recvmsg and
 * check it byte for byte, close; then connect to 127.0.0.1:DEAD_PORT (nothing listens)
 * and expect ECONNREFUSED, close. Meanwhile the main thread forks CHILDREN children, one
 * after the other while the threads run; each child runs CHILD_ITERS such rounds itself
 * and leaves with _exit(0), or _exit(1) after a failed round. Then the main thread reaps
 * every child, joins the threads, and counts /proc/self/fd again.
 *
 * Everything copes with short transfers and EINTR, as a correct program must. Prints one
 * JSON object:
 *   {"fds_before":N,"fds_after":N,"rounds":N,"thread_failures":N,"children":N,
 *    "children_ok":N,"children_failed":N,"children_signaled":N,"fork_errors":N,
 *    "refused":N,"first_error":"..."|null,"child_status":"..."|null}
 * and exits 0 when every round of every thread and child succeeded and the descriptor
 * count is unchanged, 1 otherwise. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int echo_port, dead_port, iters, child_iters;
static long thread_failures, rounds, refused;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[256];

static void note_error(const char *who, const char *what, int err)
{
	pthread_mutex_lock(&err_lock);
	if (!first_error[0])
		snprintf(first_error, sizeof first_error, "%s: %s: %s", who, what,
			 err ? strerror(err) : "unexpected");
	pthread_mutex_unlock(&err_lock);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;   /* the directory's own descriptor */
}

static uint64_t next(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
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

static ssize_t send_some(int fd, int how, const unsigned char *p, size_t n)
{
	struct iovec iov[2] = { { (void *)p, n / 2 }, { (void *)(p + n / 2), n - n / 2 } };
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = iov;
	m.msg_iovlen = 2;
	switch (how & 3) {
	case 0: return send(fd, p, n, MSG_NOSIGNAL);
	case 1: return write(fd, p, n);
	case 2: return writev(fd, iov, 2);
	default: return sendmsg(fd, &m, MSG_NOSIGNAL);
	}
}

static ssize_t recv_some(int fd, int how, unsigned char *p, size_t n)
{
	struct iovec iov[2] = { { p, n / 2 }, { p + n / 2, n - n / 2 } };
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = iov;
	m.msg_iovlen = 2;
	switch (how & 3) {
	case 0: return recv(fd, p, n, 0);
	case 1: return read(fd, p, n);
	case 2: return readv(fd, iov, 2);
	default: return recvmsg(fd, &m, 0);
	}
}

/* One round: echo a message, then a refused connect. 0 when both went as expected. */
static int round_trip(const char *who, uint64_t *rng, unsigned char *out, unsigned char *in)
{
	size_t n = 1 + (size_t)(next(rng) % 24000);
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)next(rng);
	struct sockaddr_in a = loopback(echo_port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		note_error(who, "socket", errno);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		note_error(who, "connect to the echo server", errno);
		close(fd);
		return -1;
	}
	int how = (int)(next(rng) & 3), rc = 0;
	size_t sent = 0, got = 0;
	/* a message of at most 24000 bytes fits the socket buffers both ways, so it is sent
	 * whole before it is read back */
	while (sent < n) {
		ssize_t k = send_some(fd, how++, out + sent, n - sent);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			note_error(who, "send", k < 0 ? errno : 0);
			rc = -1;
			goto done;
		}
		sent += (size_t)k;
	}
	while (got < n) {
		ssize_t k = recv_some(fd, how++, in + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			note_error(who, k < 0 ? "recv" : "recv: early EOF", k < 0 ? errno : 0);
			rc = -1;
			goto done;
		}
		got += (size_t)k;
	}
	if (memcmp(out, in, n) != 0) {
		note_error(who, "the echo differs from what was sent", 0);
		rc = -1;
	}
done:
	close(fd);
	if (rc < 0)
		return rc;

	a = loopback(dead_port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		note_error(who, "socket", errno);
		return -1;
	}
	int c = connect(fd, (struct sockaddr *)&a, sizeof a), e = errno;
	close(fd);
	if (c == 0 || e != ECONNREFUSED) {
		note_error(who, "connect to the dead port", c == 0 ? 0 : e);
		return -1;
	}
	__atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
	return 0;
}

static void *thread_main(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 1000003u;
	static __thread unsigned char out[24000], in[24000];
	for (int i = 0; i < iters; i++) {
		if (round_trip("thread", &rng, out, in) < 0)
			__atomic_add_fetch(&thread_failures, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&rounds, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void child_main(int no)
{
	static unsigned char out[24000], in[24000];
	uint64_t rng = (uint64_t)no * 7777 + 1;
	for (int i = 0; i < child_iters; i++)
		if (round_trip("child", &rng, out, in) < 0) {
			/* the reason, for the test's log; write(2) only, no stdio in the child */
			char line[320];
			int len = snprintf(line, sizeof line, "child %d: %s\n", no, first_error);
			if (len > 0 && write(2, line, (size_t)len) < 0)
				_exit(3);
			_exit(1);
		}
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: %s ECHO_PORT DEAD_PORT THREADS ITERS CHILDREN CHILD_ITERS\n",
			argv[0]);
		return 2;
	}
	echo_port = atoi(argv[1]);
	dead_port = atoi(argv[2]);
	int nthreads = atoi(argv[3]);
	iters = atoi(argv[4]);
	int children = atoi(argv[5]);
	child_iters = atoi(argv[6]);
	signal(SIGPIPE, SIG_IGN);
	fflush(NULL);

	int fds_before = count_fds();
	pthread_t *t = calloc((size_t)nthreads, sizeof *t);
	pid_t *pids = calloc((size_t)children, sizeof *pids);
	if (!t || !pids)
		return 2;
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, thread_main, (void *)(uintptr_t)(i + 1)) != 0) {
			perror("pthread_create");
			return 2;
		}

	int fork_errors = 0;
	for (int i = 0; i < children; i++) {
		pid_t p = fork();
		if (p == 0)
			child_main(i + 1);
		if (p < 0)
			fork_errors++;
		pids[i] = p;
	}
	int ok = 0, failed = 0, signaled = 0;
	char child_status[128] = "";
	for (int i = 0; i < children; i++) {
		int st;
		if (pids[i] <= 0)
			continue;
		while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			ok++;
			continue;
		}
		if (WIFSIGNALED(st))
			signaled++;
		else
			failed++;
		if (!child_status[0])
			snprintf(child_status, sizeof child_status, "child %d (pid %d): %s %d", i + 1,
				 (int)pids[i], WIFSIGNALED(st) ? "signal" : "exit",
				 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	free(t);
	free(pids);
	int fds_after = count_fds();

	printf("{\"fds_before\":%d,\"fds_after\":%d,\"rounds\":%ld,\"thread_failures\":%ld,"
	       "\"children\":%d,\"children_ok\":%d,\"children_failed\":%d,"
	       "\"children_signaled\":%d,\"fork_errors\":%d,\"refused\":%ld,\"first_error\":",
	       fds_before, fds_after, rounds, thread_failures, children, ok, failed, signaled,
	       fork_errors, refused);
	if (first_error[0])
		printf("\"%s\"", first_error);
	else
		printf("null");
	printf(",\"child_status\":");
	if (child_status[0])
		printf("\"%s\"}\n", child_status);
	else
		printf("null}\n");
	return fds_before == fds_after && thread_failures == 0 && ok == children &&
	       fork_errors == 0 ? 0 : 1;
}
