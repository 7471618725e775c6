/* A server whose accept() fails with EMFILE until a helper thread lifts the limit
 * (bulwark.yaml(5) RETRY: accept retries EMFILE by default).
 *
 * usage: emfile_server RESTORE_MS
 * Listens on 127.0.0.1 on a free port and prints the port. Then it lowers
 * RLIMIT_NOFILE to the lowest free descriptor number, so that no new descriptor can be
 * allocated and accept() fails with EMFILE at once (the kernel allocates the descriptor
 * before it looks at the queue), and starts a thread that restores the limit after
 * RESTORE_MS. It accepts one connection, sends "hi", and prints "accepted MS" (the time
 * accept took) and exits 0; or prints "accept: ERRNAME" and exits 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct rlimit saved;
static int restore_ms;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void *restore(void *arg)
{
	(void)arg;
	struct timespec ts = { restore_ms / 1000, (restore_ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	setrlimit(RLIMIT_NOFILE, &saved);
	return NULL;
}

int main(int argc, char **argv)
{
	restore_ms = argc > 1 ? atoi(argv[1]) : 300;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0) {
		perror("socket");
		return 2;
	}
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sin;
	if (bind(l, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(l, 16) != 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &sl) != 0) {
		perror("bind/listen");
		return 2;
	}
	printf("%d\n", ntohs(sin.sin_port));
	fflush(stdout);

	if (getrlimit(RLIMIT_NOFILE, &saved) != 0) {
		perror("getrlimit");
		return 2;
	}
	int probe = dup(l);     /* the lowest free descriptor: every one below is in use */
	if (probe < 0) {
		perror("dup");
		return 2;
	}
	close(probe);
	struct rlimit low = saved;
	low.rlim_cur = (rlim_t)probe;
	if (setrlimit(RLIMIT_NOFILE, &low) != 0) {
		perror("setrlimit");
		return 2;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, restore, NULL) != 0) {
		setrlimit(RLIMIT_NOFILE, &saved);
		fprintf(stderr, "pthread_create failed\n");
		return 2;
	}
	double t0 = now_ms();
	int c = accept(l, NULL, NULL);
	int err = errno;
	double took = now_ms() - t0;
	pthread_join(t, NULL);
	if (c < 0) {
		printf("accept: %s %.0f\n", strerrorname_np(err) ? strerrorname_np(err) : "?", took);
		return 1;
	}
	if (write(c, "hi", 2) != 2)
		perror("write");
	close(c);
	printf("accepted %.0f\n", took);
	return 0;
}
