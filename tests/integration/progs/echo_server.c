/* A plain TCP echo server for the robustness tests, one thread per connection.
 *
 * usage: echo_server [N]
 * Listens on 127.0.0.1 (a port of the kernel's choosing), prints the port on a line of
 * its own, and sends back every byte each connection sends until that connection's EOF,
 * then shuts its side down. With N > 0 it exits after N connections have finished,
 * printing for each "conn I bytes B sha256 HEX" (what it received) in the order they
 * finished; with no N it serves until it is killed.
 *
 * It copes with everything a correct program must: short reads and writes and EINTR.
 * It makes only read(2) and write(2) calls on its connections, so that when it runs
 * under the shim its generic read/write hooks are what an inject rule meets. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "sha256.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static long done_count;

struct conn {
	int fd;
	long no;
};

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void *serve(void *arg)
{
	struct conn *c = arg;
	static __thread char buf[1 << 16];
	struct sha256 h;
	unsigned long long total = 0;
	const char *err = NULL;
	sha256_init(&h);
	for (;;) {
		ssize_t k = read(c->fd, buf, sizeof buf);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			err = strerror(errno);
			break;
		}
		if (k == 0)
			break;
		sha256_update(&h, buf, (size_t)k);
		total += (unsigned long long)k;
		if (write_all(c->fd, buf, (size_t)k) < 0) {
			err = strerror(errno);
			break;
		}
	}
	shutdown(c->fd, SHUT_WR);
	close(c->fd);
	char hex[65];
	sha256_hex(&h, hex);
	pthread_mutex_lock(&lock);
	printf("conn %ld bytes %llu sha256 %s%s%s\n", c->no, total, hex, err ? " error " : "",
	       err ? err : "");
	fflush(stdout);
	done_count++;
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&lock);
	free(c);
	return NULL;
}

int main(int argc, char **argv)
{
	long want = argc > 1 ? atol(argv[1]) : 0;
	signal(SIGPIPE, SIG_IGN);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof a;
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 512) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0) {
		perror("echo_server: listen");
		return 2;
	}
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	for (long n = 1; want <= 0 || n <= want; n++) {
		int fd = accept(l, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED) {
				n--;
				continue;
			}
			perror("echo_server: accept");
			return 2;
		}
		struct conn *c = malloc(sizeof *c);
		pthread_t t;
		if (!c) {
			close(fd);
			return 2;
		}
		c->fd = fd;
		c->no = n;
		if (pthread_create(&t, NULL, serve, c) != 0) {
			perror("echo_server: pthread_create");
			return 2;
		}
		pthread_detach(t);
	}
	pthread_mutex_lock(&lock);
	while (done_count < want)
		pthread_cond_wait(&done_cv, &lock);
	pthread_mutex_unlock(&lock);
	return 0;
}
