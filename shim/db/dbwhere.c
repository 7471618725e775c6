/* A client library's server as a match target and a destination key. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include "dbwhere.h"
#include "keyed.h"

int bw_db_inet_literal(const char *s, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, s, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof *in;
		return 1;
	}
	if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof *in6;
		return 1;
	}
	return 0;
}

static int unix_path(const char *path, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	size_t n = strlen(path);
	memset(ss, 0, sizeof *ss);
	if (n == 0 || n >= sizeof un->sun_path)
		return 0;
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n);
	if (path[0] == '@')
		un->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] != '@'));
	return 1;
}

void bw_db_where_set(struct bw_db_where *w, int op, const char *host, int port,
		     const char *path, const char *db)
{
	socklen_t len = 0;
	int have;
	memset(&w->t, 0, sizeof w->t);
	w->t.op = op;
	w->unix_dest = path != NULL;
	snprintf(w->db, sizeof w->db, "%s", db ? db : "");
	snprintf(w->host, sizeof w->host, "%s", path ? path : host ? host : "");
	have = path ? unix_path(path, &w->ss, &len)
		    : bw_db_inet_literal(w->host, port, &w->ss, &len);
	if (have) {
		w->t.addr = (const struct sockaddr *)&w->ss;
		w->t.addrlen = len;
		bw_format_sockaddr(w->t.addr, len, w->dest, sizeof w->dest);
		w->key = bw_key_sockaddr(w->t.addr, len);
	} else {
		if (!path && w->host[0])
			w->t.host = w->host;
		snprintf(w->dest, sizeof w->dest, "%s%.100s:%d", path ? "unix:" : "", w->host, port);
		w->key = bw_key_bytes(w->dest, strlen(w->dest), 2);
	}
	w->t.port = port;
	w->t.db = w->db;
}

void bw_db_where_copy(struct bw_db_where *to, const struct bw_db_where *from)
{
	*to = *from;
	to->t.addr = from->t.addr ? (const struct sockaddr *)&to->ss : NULL;
	to->t.host = from->t.host ? to->host : NULL;
	to->t.db = to->db;
}
