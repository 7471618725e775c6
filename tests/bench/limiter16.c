/* Many threads connecting at once: what a shared rate limiter costs when it never has to
 * make anyone wait (its lock and token arithmetic, under contention).
 *
 * usage: limiter16 THREADS CONNECTS
 * THREADS client threads each make CONNECTS connects to a loopback listener; a server
 * thread accepts and closes each one. Prints "connects_per_s VALUE" (all threads, from
 * the common start to the last one done) on stdout. */
#include <pthread.h>
#include <unistd.h>
#include "bench.h"

/* Per thread, before the clock starts: first-call work out of the way. */
#define WARMUP 20

static int listener;
static unsigned short port;
static long per_thread;
static pthread_barrier_t start;

static void *acceptor(void *arg)
{
	long total = *(long *)arg;
	for (long i = 0; i < total; i++) {
		int fd = accept(listener, NULL, NULL);
		if (fd < 0 && errno == EINTR) {
			i--;
			continue;
		}
		if (fd < 0)
			bench_die("accept");
		/* one byte before the close: a connection that ends before its first byte is a
		 * failure to a connect breaker (docs/design.md 4.7), and the policies of these
		 * runs have one */
		if (send(fd, "k", 1, MSG_NOSIGNAL) != 1)
			bench_die("send");
		close(fd);
	}
	return NULL;
}

/* The client reads the server's byte and waits for its close before its own. Two reasons: the server then
 * holds the TIME_WAIT, not the client's ephemeral port, so thousands of connects per run
 * cannot exhaust the port range; and each client has at most one connection in the accept
 * queue, so the queue never overflows (a dropped loopback SYN costs a 1 s retransmit and
 * would swamp the measurement). */
static void connect_once(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		bench_die("socket");
	struct sockaddr_in a = bench_loopback(port);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		bench_die("connect");
	char c[2];
	ssize_t n, got = 0;
	while ((n = recv(fd, c, sizeof c, 0)) != 0)
		if (n > 0)
			got += n;
		else if (errno != EINTR)
			bench_die("recv (waiting for the server's close)");
	if (got != 1)
		bench_die("recv: not the server's one byte");
	close(fd);
}

static void *client(void *arg)
{
	(void)arg;
	for (int i = 0; i < WARMUP; i++)
		connect_once();
	pthread_barrier_wait(&start);
	for (long i = 0; i < per_thread; i++)
		connect_once();
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[1]) : 0;
	per_thread = argc > 2 ? atol(argv[2]) : 0;
	if (threads <= 0 || threads > 1024 || per_thread <= 0) {
		fprintf(stderr, "usage: limiter16 THREADS CONNECTS\n");
		return 2;
	}
	listener = bench_listen(&port, 4096);
	long total = (long)threads * (per_thread + WARMUP);
	pthread_t server, *tids = calloc((size_t)threads, sizeof *tids);
	if (!tids)
		bench_die("calloc");
	if ((errno = pthread_barrier_init(&start, NULL, (unsigned)threads + 1)) != 0)
		bench_die("pthread_barrier_init");
	if ((errno = pthread_create(&server, NULL, acceptor, &total)) != 0)
		bench_die("pthread_create");
	for (int i = 0; i < threads; i++)
		if ((errno = pthread_create(&tids[i], NULL, client, NULL)) != 0)
			bench_die("pthread_create");

	pthread_barrier_wait(&start);
	double t0 = bench_now();
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	double dt = bench_now() - t0;

	pthread_join(server, NULL);
	close(listener);
	printf("connects_per_s %.1f\n", (double)threads * (double)per_thread / dt);
	free(tids);
	return 0;
}
