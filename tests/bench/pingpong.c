/* Loopback TCP ping-pong: what the shim adds to a blocking send/recv round trip.
 *
 * usage: pingpong ROUNDS
 * A server thread echoes 64-byte messages; the client sends one and waits for it back,
 * ROUNDS times. Prints "round_trips_per_s VALUE" on stdout. Both ends run in this process,
 * so under LD_PRELOAD both sides' send and recv go through the hooks. */
#include <netinet/tcp.h>
#include <pthread.h>
#include <unistd.h>
#include "bench.h"

#define MSG 64
/* Enough for the first-call work (lazy symbol resolution, the policy's first lookup of
 * this destination, page faults) to be over before the clock starts. */
#define WARMUP 2000

static int listener;

static void nodelay(int fd)
{
	int one = 1;
	/* without it, Nagle and delayed ACKs turn every round trip into a 40 ms wait */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		bench_die("setsockopt TCP_NODELAY");
}

static void *echo_server(void *arg)
{
	(void)arg;
	int fd = accept(listener, NULL, NULL);
	if (fd < 0)
		bench_die("accept");
	nodelay(fd);
	char buf[MSG];
	for (;;) {
		int rc = bench_recv_all(fd, buf, sizeof buf);
		if (rc == 1)
			break;
		if (rc < 0)
			bench_die("server recv");
		if (bench_send_all(fd, buf, sizeof buf) < 0)
			bench_die("server send");
	}
	close(fd);
	return NULL;
}

static void round_trips(int fd, long n)
{
	char out[MSG], in[MSG];
	memset(out, 'p', sizeof out);
	for (long i = 0; i < n; i++) {
		if (bench_send_all(fd, out, sizeof out) < 0)
			bench_die("client send");
		if (bench_recv_all(fd, in, sizeof in) != 0)
			bench_die("client recv");
	}
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 0;
	if (rounds <= 0) {
		fprintf(stderr, "usage: pingpong ROUNDS\n");
		return 2;
	}
	unsigned short port;
	listener = bench_listen(&port, 1);
	pthread_t server;
	if ((errno = pthread_create(&server, NULL, echo_server, NULL)) != 0)
		bench_die("pthread_create");

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		bench_die("socket");
	struct sockaddr_in a = bench_loopback(port);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		bench_die("connect");
	nodelay(fd);

	round_trips(fd, WARMUP);
	double t0 = bench_now();
	round_trips(fd, rounds);
	double dt = bench_now() - t0;

	close(fd);
	pthread_join(server, NULL);
	close(listener);
	printf("round_trips_per_s %.1f\n", (double)rounds / dt);
	return 0;
}
