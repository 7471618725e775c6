/* Where a database client library's connection goes, for matching and for the breaker's
 * key, as its hook learns it: a host and a port, or a socket file. A host name is matched
 * by its name and keyed by it (one server, one breaker, whether connected yet or not); an
 * address literal and a socket file are matched and keyed as the address. */
#ifndef BW_DBWHERE_H
#define BW_DBWHERE_H

#include <sys/socket.h>
#include "match.h"

struct bw_db_where {
	struct bw_target t;          /* points into this struct: copy with bw_db_where_copy */
	struct sockaddr_storage ss;
	char host[256];
	char db[128];
	char dest[BW_DEST_NAME_MAX];
	uint64_t key;
	int unix_dest;
};

/* A server of op at host:port, or at the socket file path when path is non-NULL ('@' for
 * the abstract namespace); db may be NULL. */
void bw_db_where_set(struct bw_db_where *w, int op, const char *host, int port,
		     const char *path, const char *db);
void bw_db_where_copy(struct bw_db_where *to, const struct bw_db_where *from);
/* s as an IPv4 or IPv6 address literal with port: 1 and *ss, *len set; 0 when it is not
 * one (a host name). */
int bw_db_inet_literal(const char *s, int port, struct sockaddr_storage *ss, socklen_t *len);

#endif
