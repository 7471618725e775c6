/* Real-symbol resolution. Every pointer starts at a stub of the same type that resolves
 * them all on its first call and then calls the real function: a hook calls through the
 * pointer with one load and no test (design.md §3), also before our constructor (H1).
 * Only names libc is known to define are looked up, so dlsym never takes its error path,
 * which allocates (H2); a name libc lacks leaves a stub that fails with ENOSYS. */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include "real.h"

/* The pointer is still the stub after resolving: libc has no such function. */
#define MISSING(name) (__atomic_load_n(&bw_real.name, __ATOMIC_ACQUIRE) == first_##name)

static int first_socket(int a, int b, int c);
static int first_socketpair(int a, int b, int c, int d[2]);
static int first_connect(int a, const struct sockaddr *b, socklen_t c);
static int first_accept(int a, struct sockaddr *b, socklen_t *c);
static int first_accept4(int a, struct sockaddr *b, socklen_t *c, int d);
static int first_close(int a);
static int first_close_range(unsigned a, unsigned b, int c);
static void first_closefrom(int a);
static int first_dup(int a);
static int first_dup2(int a, int b);
static int first_dup3(int a, int b, int c);
static int first_fclose(FILE *a);
static FILE * first_freopen(const char *a, const char *b, FILE *c);
static FILE * first_freopen64(const char *a, const char *b, FILE *c);
static int first_getsockopt(int a, int b, int c, void *d, socklen_t *e);
static int first_setsockopt(int a, int b, int c, const void *d, socklen_t e);
static ssize_t first_send(int a, const void *b, size_t c, int d);
static ssize_t first_sendto(int a, const void *b, size_t c, int d, const struct sockaddr *e, socklen_t f);
static ssize_t first_sendmsg(int a, const struct msghdr *b, int c);
static int first_sendmmsg(int a, struct mmsghdr *b, unsigned c, int d);
static ssize_t first_write(int a, const void *b, size_t c);
static ssize_t first_writev(int a, const struct iovec *b, int c);
static ssize_t first_recv(int a, void *b, size_t c, int d);
static ssize_t first_recvfrom(int a, void *b, size_t c, int d, struct sockaddr *e, socklen_t *f);
static ssize_t first_recvmsg(int a, struct msghdr *b, int c);
static int first_recvmmsg(int a, struct mmsghdr *b, unsigned c, int d, struct timespec *e);
static ssize_t first_read(int a, void *b, size_t c);
static ssize_t first_readv(int a, const struct iovec *b, int c);
static ssize_t first_recv_chk(int a, void *b, size_t c, size_t d, int e);
static ssize_t first_recvfrom_chk(int a, void *b, size_t c, size_t d, int e, struct sockaddr *f, socklen_t *g);
static ssize_t first_read_chk(int a, void *b, size_t c, size_t d);
static int first_getaddrinfo(const char *a, const char *b, const struct addrinfo *c, struct addrinfo **d);
static struct hostent * first_gethostbyname(const char *a);
static struct hostent * first_gethostbyname2(const char *a, int b);
static int first_gethostbyname_r(const char *a, struct hostent *b, char *c, size_t d, struct hostent **e, int *f);
static int first_fcntl(int a, int b, ...);
static int first_fcntl64(int a, int b, ...);

struct bw_real bw_real = {
	.socket = first_socket,
	.socketpair = first_socketpair,
	.connect = first_connect,
	.accept = first_accept,
	.accept4 = first_accept4,
	.close = first_close,
	.close_range = first_close_range,
	.closefrom = first_closefrom,
	.dup = first_dup,
	.dup2 = first_dup2,
	.dup3 = first_dup3,
	.fcntl = first_fcntl,
	.fcntl64 = first_fcntl64,
	.fclose = first_fclose,
	.freopen = first_freopen,
	.freopen64 = first_freopen64,
	.getsockopt = first_getsockopt,
	.setsockopt = first_setsockopt,
	.send = first_send,
	.sendto = first_sendto,
	.sendmsg = first_sendmsg,
	.sendmmsg = first_sendmmsg,
	.write = first_write,
	.writev = first_writev,
	.recv = first_recv,
	.recvfrom = first_recvfrom,
	.recvmsg = first_recvmsg,
	.recvmmsg = first_recvmmsg,
	.read = first_read,
	.readv = first_readv,
	.recv_chk = first_recv_chk,
	.recvfrom_chk = first_recvfrom_chk,
	.read_chk = first_read_chk,
	.getaddrinfo = first_getaddrinfo,
	.gethostbyname = first_gethostbyname,
	.gethostbyname2 = first_gethostbyname2,
	.gethostbyname_r = first_gethostbyname_r,
};

static const struct {
	const char *name;
	size_t off;
} table[] = {
	{ "socket", offsetof(struct bw_real, socket) },
	{ "socketpair", offsetof(struct bw_real, socketpair) },
	{ "connect", offsetof(struct bw_real, connect) },
	{ "accept", offsetof(struct bw_real, accept) },
	{ "accept4", offsetof(struct bw_real, accept4) },
	{ "close", offsetof(struct bw_real, close) },
	{ "close_range", offsetof(struct bw_real, close_range) },
	{ "closefrom", offsetof(struct bw_real, closefrom) },
	{ "dup", offsetof(struct bw_real, dup) },
	{ "dup2", offsetof(struct bw_real, dup2) },
	{ "dup3", offsetof(struct bw_real, dup3) },
	{ "fcntl", offsetof(struct bw_real, fcntl) },
	{ "fcntl64", offsetof(struct bw_real, fcntl64) },
	{ "fclose", offsetof(struct bw_real, fclose) },
	{ "freopen", offsetof(struct bw_real, freopen) },
	{ "freopen64", offsetof(struct bw_real, freopen64) },
	{ "getsockopt", offsetof(struct bw_real, getsockopt) },
	{ "setsockopt", offsetof(struct bw_real, setsockopt) },
	{ "send", offsetof(struct bw_real, send) },
	{ "sendto", offsetof(struct bw_real, sendto) },
	{ "sendmsg", offsetof(struct bw_real, sendmsg) },
	{ "sendmmsg", offsetof(struct bw_real, sendmmsg) },
	{ "write", offsetof(struct bw_real, write) },
	{ "writev", offsetof(struct bw_real, writev) },
	{ "recv", offsetof(struct bw_real, recv) },
	{ "recvfrom", offsetof(struct bw_real, recvfrom) },
	{ "recvmsg", offsetof(struct bw_real, recvmsg) },
	{ "recvmmsg", offsetof(struct bw_real, recvmmsg) },
	{ "read", offsetof(struct bw_real, read) },
	{ "readv", offsetof(struct bw_real, readv) },
	{ "__recv_chk", offsetof(struct bw_real, recv_chk) },
	{ "__recvfrom_chk", offsetof(struct bw_real, recvfrom_chk) },
	{ "__read_chk", offsetof(struct bw_real, read_chk) },
	{ "getaddrinfo", offsetof(struct bw_real, getaddrinfo) },
	{ "gethostbyname", offsetof(struct bw_real, gethostbyname) },
	{ "gethostbyname2", offsetof(struct bw_real, gethostbyname2) },
	{ "gethostbyname_r", offsetof(struct bw_real, gethostbyname_r) },
};

void bw_real_resolve(void)
{
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		void **slot = (void **)((char *)&bw_real + table[i].off);
		void *p = dlsym(RTLD_NEXT, table[i].name);
		if (p)
			__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	}
}

static int first_socket(int a, int b, int c)
{
	bw_real_resolve();
	if (MISSING(socket)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.socket(a, b, c);
}

static int first_socketpair(int a, int b, int c, int d[2])
{
	bw_real_resolve();
	if (MISSING(socketpair)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.socketpair(a, b, c, d);
}

static int first_connect(int a, const struct sockaddr *b, socklen_t c)
{
	bw_real_resolve();
	if (MISSING(connect)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.connect(a, b, c);
}

static int first_accept(int a, struct sockaddr *b, socklen_t *c)
{
	bw_real_resolve();
	if (MISSING(accept)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.accept(a, b, c);
}

static int first_accept4(int a, struct sockaddr *b, socklen_t *c, int d)
{
	bw_real_resolve();
	if (MISSING(accept4)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.accept4(a, b, c, d);
}

static int first_close(int a)
{
	bw_real_resolve();
	if (MISSING(close)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.close(a);
}

static int first_close_range(unsigned a, unsigned b, int c)
{
	bw_real_resolve();
	if (MISSING(close_range)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.close_range(a, b, c);
}

static void first_closefrom(int a)
{
	bw_real_resolve();
	if (!MISSING(closefrom))
		bw_real.closefrom(a);
}

static int first_dup(int a)
{
	bw_real_resolve();
	if (MISSING(dup)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.dup(a);
}

static int first_dup2(int a, int b)
{
	bw_real_resolve();
	if (MISSING(dup2)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.dup2(a, b);
}

static int first_dup3(int a, int b, int c)
{
	bw_real_resolve();
	if (MISSING(dup3)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.dup3(a, b, c);
}

static int first_fclose(FILE *a)
{
	bw_real_resolve();
	if (MISSING(fclose)) {
		errno = ENOSYS;
		return EOF;
	}
	return bw_real.fclose(a);
}

static FILE * first_freopen(const char *a, const char *b, FILE *c)
{
	bw_real_resolve();
	if (MISSING(freopen)) {
		errno = ENOSYS;
		return NULL;
	}
	return bw_real.freopen(a, b, c);
}

static FILE * first_freopen64(const char *a, const char *b, FILE *c)
{
	bw_real_resolve();
	if (MISSING(freopen64)) {
		errno = ENOSYS;
		return NULL;
	}
	return bw_real.freopen64(a, b, c);
}

static int first_getsockopt(int a, int b, int c, void *d, socklen_t *e)
{
	bw_real_resolve();
	if (MISSING(getsockopt)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.getsockopt(a, b, c, d, e);
}

static int first_setsockopt(int a, int b, int c, const void *d, socklen_t e)
{
	bw_real_resolve();
	if (MISSING(setsockopt)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.setsockopt(a, b, c, d, e);
}

static ssize_t first_send(int a, const void *b, size_t c, int d)
{
	bw_real_resolve();
	if (MISSING(send)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.send(a, b, c, d);
}

static ssize_t first_sendto(int a, const void *b, size_t c, int d, const struct sockaddr *e, socklen_t f)
{
	bw_real_resolve();
	if (MISSING(sendto)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.sendto(a, b, c, d, e, f);
}

static ssize_t first_sendmsg(int a, const struct msghdr *b, int c)
{
	bw_real_resolve();
	if (MISSING(sendmsg)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.sendmsg(a, b, c);
}

static int first_sendmmsg(int a, struct mmsghdr *b, unsigned c, int d)
{
	bw_real_resolve();
	if (MISSING(sendmmsg)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.sendmmsg(a, b, c, d);
}

static ssize_t first_write(int a, const void *b, size_t c)
{
	bw_real_resolve();
	if (MISSING(write)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.write(a, b, c);
}

static ssize_t first_writev(int a, const struct iovec *b, int c)
{
	bw_real_resolve();
	if (MISSING(writev)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.writev(a, b, c);
}

static ssize_t first_recv(int a, void *b, size_t c, int d)
{
	bw_real_resolve();
	if (MISSING(recv)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.recv(a, b, c, d);
}

static ssize_t first_recvfrom(int a, void *b, size_t c, int d, struct sockaddr *e, socklen_t *f)
{
	bw_real_resolve();
	if (MISSING(recvfrom)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.recvfrom(a, b, c, d, e, f);
}

static ssize_t first_recvmsg(int a, struct msghdr *b, int c)
{
	bw_real_resolve();
	if (MISSING(recvmsg)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.recvmsg(a, b, c);
}

static int first_recvmmsg(int a, struct mmsghdr *b, unsigned c, int d, struct timespec *e)
{
	bw_real_resolve();
	if (MISSING(recvmmsg)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.recvmmsg(a, b, c, d, e);
}

static ssize_t first_read(int a, void *b, size_t c)
{
	bw_real_resolve();
	if (MISSING(read)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.read(a, b, c);
}

static ssize_t first_readv(int a, const struct iovec *b, int c)
{
	bw_real_resolve();
	if (MISSING(readv)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.readv(a, b, c);
}

static ssize_t first_recv_chk(int a, void *b, size_t c, size_t d, int e)
{
	bw_real_resolve();
	if (MISSING(recv_chk)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.recv_chk(a, b, c, d, e);
}

static ssize_t first_recvfrom_chk(int a, void *b, size_t c, size_t d, int e, struct sockaddr *f, socklen_t *g)
{
	bw_real_resolve();
	if (MISSING(recvfrom_chk)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.recvfrom_chk(a, b, c, d, e, f, g);
}

static ssize_t first_read_chk(int a, void *b, size_t c, size_t d)
{
	bw_real_resolve();
	if (MISSING(read_chk)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.read_chk(a, b, c, d);
}

static int first_getaddrinfo(const char *a, const char *b, const struct addrinfo *c, struct addrinfo **d)
{
	bw_real_resolve();
	if (MISSING(getaddrinfo)) {
		errno = ENOSYS;
		return EAI_SYSTEM;
	}
	return bw_real.getaddrinfo(a, b, c, d);
}

static struct hostent * first_gethostbyname(const char *a)
{
	bw_real_resolve();
	if (MISSING(gethostbyname)) {
		errno = ENOSYS;
		return NULL;
	}
	return bw_real.gethostbyname(a);
}

static struct hostent * first_gethostbyname2(const char *a, int b)
{
	bw_real_resolve();
	if (MISSING(gethostbyname2)) {
		errno = ENOSYS;
		return NULL;
	}
	return bw_real.gethostbyname2(a, b);
}

static int first_gethostbyname_r(const char *a, struct hostent *b, char *c, size_t d, struct hostent **e, int *f)
{
	bw_real_resolve();
	if (MISSING(gethostbyname_r)) {
		errno = ENOSYS;
		return ENOSYS;
	}
	return bw_real.gethostbyname_r(a, b, c, d, e, f);
}

/* Every fcntl argument, int or pointer, travels in the same register on the ABIs glibc
 * supports, and the real fcntl reads the width it needs. */
static int first_fcntl(int a, int b, ...)
{
	va_list ap;
	va_start(ap, b);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	bw_real_resolve();
	if (MISSING(fcntl)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.fcntl(a, b, arg);
}

/* Every fcntl argument, int or pointer, travels in the same register on the ABIs glibc
 * supports, and the real fcntl reads the width it needs. */
static int first_fcntl64(int a, int b, ...)
{
	va_list ap;
	va_start(ap, b);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	bw_real_resolve();
	if (MISSING(fcntl64)) {
		errno = ENOSYS;
		return -1;
	}
	return bw_real.fcntl64(a, b, arg);
}
