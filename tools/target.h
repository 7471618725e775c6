/* TARGET of `bulwark explain` for the socket ops. */
#ifndef BW_TARGET_H
#define BW_TARGET_H

#include <stddef.h>
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

/* Whether target names a host ("db.internal:5432") rather than an address or a unix:
 * path, without resolving it: 1 with the name in host and the port (host order) in
 * *port; 0 for an address or a path (bw_socket_target reads those); BW_TARGET_BAD after
 * a message on stderr when target is malformed. */
int bw_target_host(const char *target, char *host, size_t cap, int *port);

#endif
