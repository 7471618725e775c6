/* Which rule governs a call: first rule whose every condition holds. */
#ifndef BW_MATCH_H
#define BW_MATCH_H

#include <sys/socket.h>
#include "config.h"
#include "dest.h"

/* What a hook knows about a call before asking the engine. */
struct bw_target {
	int op;                          /* enum bw_op */
	const struct sockaddr *addr;     /* connect/accept/send/recv peer, or NULL */
	socklen_t addrlen;
	const char *host;                /* resolve: the name; connect: a known name, or NULL;
					  * pg: the server's name when addr is NULL */
	int port;                        /* pg: the server's port when addr is NULL */
	const char *db;                  /* sqlite: the database filename; pg: its name */
};

/* The host name this address was obtained for (names.h), written to host_out when a
 * host-name dest is what matched. */
const struct bw_rule *bw_match(const struct bw_config *cfg, const unsigned char *active,
			       const struct bw_target *t, const char **host_out);

int bw_match_dest(const struct bw_dest *d, const struct sockaddr *sa, socklen_t len,
		  const char *host);

/* Room for any name bw_format_sockaddr writes: "unix:" and a 108-byte path, or an IPv6
 * address in brackets with its port. */
#define BW_DEST_NAME_MAX 128

/* "127.0.0.1:5432", "[::1]:6379", "unix:/path"; async-signal-safe. */
void bw_format_sockaddr(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);

/* Key of a destination for per-destination state: address and port, or unix path. */
uint64_t bw_key_sockaddr(const struct sockaddr *sa, socklen_t len);

/* Shell-style glob (* ? [..]) without allocation; '/' is not special. */
int bw_glob(const char *pat, const char *s);

#endif
