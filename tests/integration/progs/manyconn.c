/* Very many connects to distinct destinations, for the bounded-memory test.
 *
 * usage: manyconn N CANARY_PORT PORT...
 * Makes N connects, each from a fresh socket, to distinct destinations: connect i goes to
 * 127.1.H.L:PORT[i / 65536] with H.L = i % 65536, so the first 65536 connects cover
 * 127.1.0.0/16 on the first port, the next 65536 on the second port, and so on (N may be
 * at most 65536 times the number of ports). Nothing listens there: each connect is
 * refused at once. After 10k, 100k, 200k, 500k and 1M connects (those not above N) and
 * at the end it prints "rss COUNT KIB" with VmRSS from /proc/self/status, then
 * "hwm KIB" (VmHWM), "results refused=N other=N ok=N first_other=ERRNO", and
 * "canary ok|ERRNAME" for one last connect to 127.0.0.1:CANARY_PORT (a live listener:
 * under a policy that injects a refusal there it shows the library was at work to the
 * end), and "elapsed SECONDS". Exit 0 unless it could not run. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(key);
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, n) == 0 && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s N CANARY_PORT PORT...\n", argv[0]);
		return 2;
	}
	long n = atol(argv[1]);
	int canary = atoi(argv[2]);
	int nports = argc - 3;
	if (n > 65536L * nports) {
		fprintf(stderr, "manyconn: %ld connects need more than %d ports\n", n, nports);
		return 2;
	}
	static const long marks[] = { 10000, 100000, 200000, 500000, 1000000 };
	size_t next_mark = 0;
	long refused = 0, other = 0, ok = 0;
	int first_other = 0;
	double t0 = now();
	for (long i = 0; i < n; i++) {
		struct sockaddr_in a;
		memset(&a, 0, sizeof a);
		a.sin_family = AF_INET;
		a.sin_port = htons((unsigned short)atoi(argv[3 + i / 65536]));
		a.sin_addr.s_addr = htonl(0x7f010000u | (unsigned)(i % 65536));
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			perror("manyconn: socket");
			return 2;
		}
		if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
			ok++;
		else if (errno == ECONNREFUSED)
			refused++;
		else if (other++ == 0)
			first_other = errno;
		close(fd);
		while (next_mark < sizeof marks / sizeof marks[0] && i + 1 == marks[next_mark]) {
			printf("rss %ld %ld\n", i + 1, status_kib("VmRSS"));
			fflush(stdout);
			next_mark++;
		}
	}
	printf("rss %ld %ld\n", n, status_kib("VmRSS"));
	printf("hwm %ld\n", status_kib("VmHWM"));
	printf("results refused=%ld other=%ld ok=%ld first_other=%d\n", refused, other, ok,
	       first_other);

	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)canary);
	a.sin_addr.s_addr = htonl(0x7f000001u);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = connect(fd, (struct sockaddr *)&a, sizeof a), e = errno;
	close(fd);
	printf("canary %s\n", rc == 0 ? "ok" : e == ECONNREFUSED ? "ECONNREFUSED" : strerror(e));
	printf("elapsed %.2f\n", now() - t0);
	return 0;
}
