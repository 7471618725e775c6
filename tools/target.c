/* TARGET of `bulwark explain` for the socket ops: an address as events print it, or a
 * host name to resolve the way the program would. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include "names.h"
#include "target.h"

static int parse_port(const char *s, in_port_t *port)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || v > 65535)
		return -1;
	*port = htons((in_port_t)v);
	return 0;
}

/* "unix:/path", or "unix:@name" for the abstract namespace, as events print it. */
static int unix_addr(const char *path, struct bw_addr *a)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof un->sun_path)
		return -1;
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n);
	if (path[0] == '@')
		un->sun_path[0] = '\0';
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] != '@'));
	return 0;
}

static int literal_addr(const char *host, in_port_t port, struct bw_addr *a)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = port;
		a->len = sizeof *in;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = port;
		a->len = sizeof *in6;
		return 0;
	}
	return -1;
}

/* /etc/hosts may list an address twice for one name; it is explained once. */
static int seen(const struct bw_addr *a, int n, const struct sockaddr *sa, socklen_t len)
{
	for (int i = 0; i < n; i++)
		if (a[i].len == len && memcmp(&a[i].ss, sa, len) == 0)
			return 1;
	return 0;
}

/* Resolves name as a program would, and records each address under the name, as the
 * library's getaddrinfo hook does, so that `dest: name:port` rules can match it. */
static int resolve(const char *name, in_port_t port, struct bw_addr *out, int cap)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int rc = getaddrinfo(name, NULL, &hints, &res), n = 0;
	if (rc != 0) {
		fprintf(stderr, "bulwark explain: %s: %s\n", name, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai && n < cap; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    seen(out, n, ai->ai_addr, ai->ai_addrlen))
			continue;
		memset(&out[n], 0, sizeof out[n]);
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)&out[n].ss)->sin_port = port;
		else
			((struct sockaddr_in6 *)&out[n].ss)->sin6_port = port;
		bw_names_remember(name, (struct sockaddr *)&out[n].ss, out[n].len);
		n++;
	}
	freeaddrinfo(res);
	return n;
}

/* target split at its port: the host part (brackets dropped) in host, the port in *port
 * (network order). 0, or BW_TARGET_BAD after a message. */
static int split(const char *target, char *host, size_t cap, in_port_t *port)
{
	const char *colon;
	if (target[0] == '[') {
		colon = strstr(target, "]:");
		if (colon)
			colon++;
	} else {
		colon = strrchr(target, ':');
	}
	int hlen = colon ? (int)(colon - target) - (target[0] == '[' ? 2 : 0) : 0;
	if (!colon || hlen <= 0 || (size_t)hlen >= cap || parse_port(colon + 1, port) < 0) {
		fprintf(stderr, "bulwark explain: %s: expected ADDRESS:PORT, e.g. 127.0.0.1:5432, "
			"[::1]:6379, db.internal:5432 or unix:/run/app.sock\n", target);
		return BW_TARGET_BAD;
	}
	snprintf(host, cap, "%.*s", hlen, target + (target[0] == '['));
	return 0;
}

int bw_target_host(const char *target, char *host, size_t cap, int *port)
{
	struct bw_addr a;
	in_port_t p;
	if (strncmp(target, "unix:", 5) == 0)
		return 0;
	if (split(target, host, cap, &p) < 0)
		return BW_TARGET_BAD;
	if (target[0] == '[' || literal_addr(host, p, &a) == 0)
		return 0;
	*port = ntohs(p);
	return 1;
}

int bw_socket_target(const char *target, struct bw_addr *out, int cap)
{
	char host[256];
	in_port_t port;
	memset(out, 0, sizeof *out);
	if (strncmp(target, "unix:", 5) == 0) {
		if (unix_addr(target + 5, out) == 0)
			return 1;
		fprintf(stderr, "bulwark explain: %s: a unix: path must have 1 to %zu bytes\n",
			target, sizeof ((struct sockaddr_un *)0)->sun_path - 1);
		return BW_TARGET_BAD;
	}
	if (split(target, host, sizeof host, &port) < 0)
		return BW_TARGET_BAD;
	if (literal_addr(host, port, out) == 0)
		return 1;
	if (target[0] == '[') {
		fprintf(stderr, "bulwark explain: %s: not an IPv6 address\n", target);
		return BW_TARGET_BAD;
	}
	return resolve(host, port, out, cap);
}
