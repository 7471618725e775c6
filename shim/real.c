/* Real-symbol resolution. Only names libc is known to define are looked up, so dlsym never
 * takes its error path (which allocates, PRELOAD-PITFALLS 2). */
#include <dlfcn.h>
#include <stddef.h>
#include "real.h"

struct bw_real bw_real;

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
		if (__atomic_load_n(slot, __ATOMIC_ACQUIRE))
			continue;
		void *p = dlsym(RTLD_NEXT, table[i].name);
		__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	}
}
