/* state.redis and state.fleet_quorum. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "redis_url.h"

static int number(const char *s, size_t n, long lo, long hi, long *out)
{
	long v = 0;
	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_unix(const char *s, struct bw_fleet *f, char *err, size_t cap)
{
	const char *path = s + 5, *q = strchr(path, '?');
	size_t n = q ? (size_t)(q - path) : strlen(path);
	long db = 0;
	if (n == 0 || path[0] != '/') {
		snprintf(err, cap, "expected unix:/PATH, an absolute path");
		return -1;
	}
	if (n >= sizeof ((struct sockaddr_un *)0)->sun_path) {
		snprintf(err, cap, "the socket's path is longer than %zu bytes",
			 sizeof ((struct sockaddr_un *)0)->sun_path - 1);
		return -1;
	}
	if (q && (strncmp(q, "?db=", 4) != 0 || number(q + 4, strlen(q + 4), 0, 65535, &db) < 0)) {
		snprintf(err, cap, "expected unix:/PATH or unix:/PATH?db=N");
		return -1;
	}
	char *p = strndup(path, n);
	if (!p) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	free(f->unix_path);
	f->unix_path = p;
	f->family = AF_UNIX;
	f->db = (int)db;
	f->port = 0;
	return 0;
}

int bw_parse_redis_url(const char *s, struct bw_fleet *f, char *err, size_t cap)
{
	static const char what[] = "expected redis://HOST[:PORT][/DB] or unix:/PATH "
				   "(HOST an IP address or localhost)";
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s, f, err, cap);
	if (strncmp(s, "rediss://", 9) == 0) {
		snprintf(err, cap, "TLS (rediss://) is not supported; %s", what);
		return -1;
	}
	if (strncmp(s, "redis://", 8) != 0) {
		snprintf(err, cap, "%s", what);
		return -1;
	}
	const char *h = s + 8, *end;
	char host[64];
	size_t hn;
	if (strchr(h, '@')) {
		snprintf(err, cap, "a user or password in the address is not supported");
		return -1;
	}
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end) {
			snprintf(err, cap, "%s", what);
			return -1;
		}
		hn = (size_t)(end - h - 1);
		h++;
		end++;
	} else {
		end = h + strcspn(h, ":/");
		hn = (size_t)(end - h);
	}
	if (hn == 0 || hn >= sizeof host) {
		snprintf(err, cap, "%s", what);
		return -1;
	}
	memcpy(host, h, hn);
	host[hn] = '\0';
	long port = 6379, db = 0;
	if (*end == ':') {
		const char *p = end + 1;
		end = p + strcspn(p, "/");
		if (number(p, (size_t)(end - p), 1, 65535, &port) < 0) {
			snprintf(err, cap, "the port must be a number from 1 to 65535");
			return -1;
		}
	}
	if (*end == '/' && end[1] && number(end + 1, strlen(end + 1), 0, 65535, &db) < 0) {
		snprintf(err, cap, "the database must be a number from 0 to 65535");
		return -1;
	}
	if (*end && *end != '/') {
		snprintf(err, cap, "%s", what);
		return -1;
	}
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	memset(f->addr, 0, sizeof f->addr);
	if (inet_pton(AF_INET, host, f->addr) == 1) {
		f->family = AF_INET;
	} else if (inet_pton(AF_INET6, host, f->addr) == 1) {
		f->family = AF_INET6;
	} else {
		snprintf(err, cap, "'%s' is not an IP address: name the Redis server by its "
			 "address (the syncer makes no name lookups in the program)", host);
		return -1;
	}
	f->port = (int)port;
	f->db = (int)db;
	free(f->unix_path);
	f->unix_path = NULL;
	return 0;
}

int bw_fleet_quorum(const struct bw_fleet *f)
{
	int hosts = f->hosts > 0 ? f->hosts : 1, q;
	if (f->quorum > 0)
		q = f->quorum_pct ? (hosts * f->quorum + 99) / 100 : f->quorum;
	else
		q = (hosts + 9) / 10 > 2 ? (hosts + 9) / 10 : 2;
	if (q > hosts)
		q = hosts;
	return q < 1 ? 1 : q;
}
