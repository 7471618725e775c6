/* TARGET of `bulwark explain` for the socket ops. */
#ifndef BW_TARGET_H
#define BW_TARGET_H

#include <sys/socket.h>

struct bw_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

#define BW_TARGET_BAD (-2)

/* "127.0.0.1:5432", "[::1]:6379", "unix:/path", "unix:@abstract", or "host:port", whose
 * addresses are recorded under the name (names.h) as the library's resolve hook records
 * them. Returns how many addresses were written to out; after a message on stderr,
 * BW_TARGET_BAD when target is malformed, -1 when the name does not resolve. */
int bw_socket_target(const char *target, struct bw_addr *out, int cap);

#endif
