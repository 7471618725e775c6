/* Pushes a large seeded byte stream through an echo server and checks what comes back.
 *
 * usage: echo_blast PORT MIB SEED
 * Connects to 127.0.0.1:PORT; a writer thread sends MIB MiB of a pseudo-random stream
 * (a function of SEED and the offset only) in chunks of varied size, with send, write,
 * writev and sendmsg in turn, then shuts its side down; the main thread reads the echo
 * until EOF with recv, read, readv and recvmsg in turn, checking every byte against the
 * stream as it arrives. Both sides cope with short transfers and EINTR, as a correct
 * program must. Prints one JSON object:
 *   {"sent":HEX,"back":HEX,"bytes_sent":N,"bytes_back":N,"first_mismatch":OFF|-1,
 *    "short_sends":N,"short_recvs":N,"eintr_send":N,"eintr_recv":N,"send_calls":N,
 *    "recv_calls":N,"error":"..."|null}
 * (sha256 of what was sent and of what came back) and exits 0 when the two streams are
 * identical, 1 otherwise, 2 on a setup or I/O error. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "sha256.h"

static int fd;
static uint64_t seed;
static unsigned long long total;

/* writer results */
static struct sha256 h_sent;
static unsigned long long bytes_sent, short_sends, eintr_send, send_calls;
static char send_err[160];

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Byte `off` of the stream. */
static unsigned char stream_byte(uint64_t off)
{
	return (unsigned char)(splitmix(seed ^ (off >> 3) * 0x2545f4914f6cdd1dULL) >> (8 * (off & 7)));
}

static void fill(unsigned char *p, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = stream_byte(off + i);
}

/* A chunk size: mostly mid-sized, some tiny, some large. */
static size_t pick_size(uint64_t *rng, size_t cap)
{
	*rng = splitmix(*rng);
	size_t n;
	switch (*rng & 3) {
	case 0: n = 1 + (size_t)(*rng >> 8) % 16; break;
	case 1: n = 1 + (size_t)(*rng >> 8) % 4096; break;
	default: n = 1 + (size_t)(*rng >> 8) % 65536; break;
	}
	return n < cap ? n : cap;
}

/* One send-family call for buf[0..n): returns what the call returned. */
static ssize_t one_send(int how, const unsigned char *buf, size_t n)
{
	struct iovec iov[3];
	size_t a = n / 3, b = n / 3;
	iov[0].iov_base = (void *)buf;
	iov[0].iov_len = a;
	iov[1].iov_base = (void *)(buf + a);
	iov[1].iov_len = b;
	iov[2].iov_base = (void *)(buf + a + b);
	iov[2].iov_len = n - a - b;
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = iov;
	m.msg_iovlen = 3;
	switch (how) {
	case 0: return send(fd, buf, n, 0);
	case 1: return write(fd, buf, n);
	case 2: return writev(fd, iov, 3);
	default: return sendmsg(fd, &m, MSG_NOSIGNAL);
	}
}

static ssize_t one_recv(int how, unsigned char *buf, size_t n)
{
	struct iovec iov[2];
	iov[0].iov_base = buf;
	iov[0].iov_len = n / 2;
	iov[1].iov_base = buf + n / 2;
	iov[1].iov_len = n - n / 2;
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = iov;
	m.msg_iovlen = 2;
	switch (how) {
	case 0: return recv(fd, buf, n, 0);
	case 1: return read(fd, buf, n);
	case 2: return readv(fd, iov, 2);
	default: return recvmsg(fd, &m, 0);
	}
}

static void *writer(void *arg)
{
	static unsigned char buf[1 << 16];
	uint64_t rng = seed * 7 + 1;
	unsigned long long off = 0;
	int how = 0;
	(void)arg;
	sha256_init(&h_sent);
	while (off < total) {
		size_t n = pick_size(&rng, (size_t)(total - off));
		fill(buf, off, n);
		size_t done = 0;
		while (done < n) {
			ssize_t k = one_send(how, buf + done, n - done);
			how = (how + 1) & 3;
			send_calls++;
			if (k < 0 && errno == EINTR) {
				eintr_send++;
				continue;
			}
			if (k <= 0) {
				snprintf(send_err, sizeof send_err, "send at offset %llu: %s",
					 off + done, k < 0 ? strerror(errno) : "returned 0");
				goto out;
			}
			if ((size_t)k > n - done) {
				snprintf(send_err, sizeof send_err,
					 "send at offset %llu returned %zd for %zu bytes", off + done, k,
					 n - done);
				goto out;
			}
			if ((size_t)k < n - done)
				short_sends++;
			sha256_update(&h_sent, buf + done, (size_t)k);
			done += (size_t)k;
		}
		off += n;
	}
out:
	bytes_sent = off;
	if (shutdown(fd, SHUT_WR) < 0 && !send_err[0])
		snprintf(send_err, sizeof send_err, "shutdown: %s", strerror(errno));
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT MIB SEED\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	total = strtoull(argv[2], NULL, 10) << 20;
	seed = strtoull(argv[3], NULL, 10);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		printf("{\"error\":\"connect: %s\"}\n", strerror(errno));
		return 2;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, writer, NULL) != 0)
		return 2;

	static unsigned char buf[1 << 16];
	struct sha256 h_back;
	unsigned long long back = 0, short_recvs = 0, eintr_recv = 0, recv_calls = 0;
	long long mismatch = -1;
	char recv_err[160] = "";
	uint64_t rng = seed * 13 + 5;
	int how = 0;
	sha256_init(&h_back);
	for (;;) {
		size_t want = pick_size(&rng, sizeof buf);
		ssize_t k = one_recv(how, buf, want);
		how = (how + 1) & 3;
		recv_calls++;
		if (k < 0 && errno == EINTR) {
			eintr_recv++;
			continue;
		}
		if (k < 0) {
			snprintf(recv_err, sizeof recv_err, "recv at offset %llu: %s", back,
				 strerror(errno));
			break;
		}
		if (k == 0)
			break;
		if ((size_t)k > want) {
			snprintf(recv_err, sizeof recv_err, "recv returned %zd for %zu bytes", k, want);
			break;
		}
		if ((size_t)k < want)
			short_recvs++;
		for (ssize_t i = 0; mismatch < 0 && i < k; i++)
			if (buf[i] != stream_byte(back + (uint64_t)i))
				mismatch = (long long)(back + (uint64_t)i);
		sha256_update(&h_back, buf, (size_t)k);
		back += (unsigned long long)k;
	}
	pthread_join(t, NULL);
	close(fd);

	char hs[65], hb[65];
	sha256_hex(&h_sent, hs);
	sha256_hex(&h_back, hb);
	const char *err = send_err[0] ? send_err : recv_err[0] ? recv_err : NULL;
	printf("{\"sent\":\"%s\",\"back\":\"%s\",\"bytes_sent\":%llu,\"bytes_back\":%llu,"
	       "\"first_mismatch\":%lld,\"short_sends\":%llu,\"short_recvs\":%llu,"
	       "\"eintr_send\":%llu,\"eintr_recv\":%llu,\"send_calls\":%llu,\"recv_calls\":%llu,"
	       "\"error\":%s%s%s}\n",
	       hs, hb, bytes_sent, back, mismatch, short_sends, short_recvs, eintr_send,
	       eintr_recv, send_calls, recv_calls, err ? "\"" : "", err ? err : "null",
	       err ? "\"" : "");
	if (err)
		return 2;
	return strcmp(hs, hb) == 0 && bytes_sent == total && back == total && mismatch < 0 ? 0 : 1;
}
