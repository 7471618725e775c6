/* Rule matching: first rule whose every given condition holds. Runs on every hooked call
 * that has a rule for its op, so it allocates nothing and makes no system call. */
#include <string.h>
#include <netinet/in.h>
#include <sys/un.h>
#include "decimal.h"
#include "match.h"
#include "ops.h"
#include "keyed.h"
#include "names.h"

int bw_glob(const char *p, const char *s)
{
	const char *star_p = NULL, *star_s = NULL;
	while (*s) {
		if (*p == '*') {
			star_p = ++p;
			star_s = s;
			continue;
		}
		if (*p == '[') {
			const char *q = p + 1;
			int neg = (*q == '!' || *q == '^');
			if (neg)
				q++;
			int hit = 0;
			for (int first = 1; *q && (first || *q != ']'); first = 0, q++) {
				if (q[1] == '-' && q[2] && q[2] != ']') {
					hit |= (*s >= q[0] && *s <= q[2]);
					q += 2;
				} else {
					hit |= (*s == *q);
				}
			}
			if (*q == ']' && hit != neg) {
				p = q + 1;
				s++;
				continue;
			}
		} else if (*p == '?' || *p == *s) {
			p++;
			s++;
			continue;
		}
		if (!star_p)
			return 0;
		p = star_p;
		s = ++star_s;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static int any_glob(char *const *pats, int n, const char *s)
{
	if (n == 0)
		return 1;
	if (!s)
		return 0;
	for (int i = 0; i < n; i++)
		if (bw_glob(pats[i], s))
			return 1;
	return 0;
}

static int prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
	int bytes = bits / 8, rem = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return 0;
	if (rem == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rem));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

static int inet_parts(const struct sockaddr *sa, socklen_t len, int *family, const uint8_t **addr,
		      int *port)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;
		*family = AF_INET;
		*addr = (const uint8_t *)&in->sin_addr;
		*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		*family = AF_INET6;
		*addr = (const uint8_t *)&in6->sin6_addr;
		*port = ntohs(in6->sin6_port);
		return 0;
	}
	return -1;
}

static int is_v4_mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a, prefix, 12) == 0;
}

/* The path of an AF_UNIX address; abstract sockets come out as "@name". */
static int unix_path(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap)
{
	const struct sockaddr_un *un = (const void *)sa;
	size_t off = offsetof(struct sockaddr_un, sun_path);
	if (sa->sa_family != AF_UNIX || len <= off || cap < 2)
		return -1;
	size_t n = len - off;
	const char *p = un->sun_path;
	size_t o = 0;
	if (p[0] == '\0') {
		buf[o++] = '@';
		p++;
		n--;
	}
	for (size_t i = 0; i < n && p[i] && o + 1 < cap; i++)
		buf[o++] = p[i];
	buf[o] = '\0';
	return 0;
}

int bw_match_dest(const struct bw_dest *d, const struct sockaddr *sa, socklen_t len,
		  const char *host)
{
	if (!sa)
		return 0;
	if (d->kind == BW_DEST_UNIX) {
		char path[sizeof(struct sockaddr_un)];
		return unix_path(sa, len, path, sizeof path) == 0 && bw_glob(d->pattern, path);
	}
	int family, port;
	const uint8_t *addr;
	if (inet_parts(sa, len, &family, &addr, &port) < 0)
		return 0;
	if (d->port >= 0 && d->port != port)
		return 0;
	switch (d->kind) {
	case BW_DEST_ANYADDR:
		return 1;
	case BW_DEST_ADDR:
		/* a dual-stack socket reaches IPv4 peers as ::ffff:a.b.c.d: an IPv4 rule
		 * still means them */
		if (family == AF_INET6 && d->family == AF_INET && is_v4_mapped(addr)) {
			family = AF_INET;
			addr += 12;
		}
		return d->family == family && prefix_eq(d->addr, addr, d->prefix);
	case BW_DEST_HOST:
		return host && bw_glob(d->pattern, host);
	default:
		return 0;
	}
}

/* A server known by name and port only (a client library about to connect to a host
 * name): the dests that name it, or any address on its port. */
static int named_dest_matches(const struct bw_dest *d, const char *host, int port)
{
	if (d->port >= 0 && d->port != port)
		return 0;
	return d->kind == BW_DEST_ANYADDR || (d->kind == BW_DEST_HOST && bw_glob(d->pattern, host));
}

/* *host ends up as the name the address was resolved from, when a host rule needed it. */
static int dest_matches(const struct bw_match *m, const struct bw_target *t, char *name,
			const char **host)
{
	int looked_up = 0;
	for (int i = 0; i < m->n_dest; i++) {
		const struct bw_dest *d = &m->dest[i];
		if (!t->addr) {
			if (t->host && named_dest_matches(d, t->host, t->port))
				return 1;
			continue;
		}
		if (d->kind == BW_DEST_HOST && !*host && !looked_up) {
			looked_up = 1;
			if (bw_names_lookup(t->addr, t->addrlen, name, BW_NAME_LEN) == 0)
				*host = name;
		}
		if (bw_match_dest(d, t->addr, t->addrlen, *host))
			return 1;
	}
	return 0;
}

const struct bw_rule *bw_match(const struct bw_config *cfg, const unsigned char *active,
			       const struct bw_target *t, const char **host_out)
{
	static __thread char name[BW_NAME_LEN];
	const char *host = t->host;
	for (int i = 0; i < cfg->n_rules; i++) {
		const struct bw_rule *r = &cfg->rules[i];
		const struct bw_match *m = &r->match;
		if ((active && !active[i]) || !(m->ops & BW_OPBIT(t->op)))
			continue;
		unsigned keys = bw_op(t->op)->keys;
		if (m->n_host && !((keys & BW_KEY_HOST) && any_glob(m->host, m->n_host, t->host)))
			continue;
		if (m->n_db && !((keys & BW_KEY_DB) && any_glob(m->db, m->n_db, t->db)))
			continue;
		if (m->n_dest && !((keys & BW_KEY_DEST) && dest_matches(m, t, name, &host)))
			continue;
		if (host_out)
			*host_out = host;
		return r;
	}
	if (host_out)
		*host_out = NULL;
	return NULL;
}

static size_t put(char *buf, size_t cap, size_t o, const char *s)
{
	while (*s && o + 1 < cap)
		buf[o++] = *s++;
	buf[o < cap ? o : cap - 1] = '\0';
	return o;
}

static size_t put_uint(char *buf, size_t cap, size_t o, unsigned v)
{
	char d[BW_DECIMAL_MAX];
	size_t n = bw_decimal(d, v);
	for (size_t i = 0; i < n && o + 1 < cap; i++)
		buf[o++] = d[i];
	buf[o] = '\0';
	return o;
}

static size_t put_ipv6(char *buf, size_t cap, size_t o, const uint8_t *a)
{
	static const char hex[] = "0123456789abcdef";
	uint16_t w[8];
	for (int i = 0; i < 8; i++)
		w[i] = (uint16_t)(a[2 * i] << 8 | a[2 * i + 1]);
	int best = -1, best_len = 0;
	for (int i = 0; i < 8;) {
		int j = i;
		while (j < 8 && w[j] == 0)
			j++;
		if (j - i > best_len && j - i > 1) {
			best = i;
			best_len = j - i;
		}
		i = j > i ? j : i + 1;
	}
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			o = put(buf, cap, o, "::");
			i += best_len - 1;
			continue;
		}
		if (i && i != best + best_len)
			o = put(buf, cap, o, ":");
		char t[5];
		int n = 0, started = 0;
		for (int s = 12; s >= 0; s -= 4) {
			int nib = (w[i] >> s) & 0xf;
			if (nib || started || s == 0) {
				t[n++] = hex[nib];
				started = 1;
			}
		}
		t[n] = '\0';
		o = put(buf, cap, o, t);
	}
	return o;
}

void bw_format_sockaddr(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap)
{
	int family, port;
	const uint8_t *a;
	size_t o = 0;
	if (cap == 0)
		return;
	buf[0] = '\0';
	if (!sa)
		return;
	if (sa->sa_family == AF_UNIX) {
		o = put(buf, cap, 0, "unix:");
		unix_path(sa, len, buf + o, cap - o);
		return;
	}
	if (inet_parts(sa, len, &family, &a, &port) < 0) {
		put(buf, cap, 0, "?");
		return;
	}
	if (family == AF_INET) {
		for (int i = 0; i < 4; i++) {
			if (i)
				o = put(buf, cap, o, ".");
			o = put_uint(buf, cap, o, a[i]);
		}
	} else {
		o = put(buf, cap, o, "[");
		o = put_ipv6(buf, cap, o, a);
		o = put(buf, cap, o, "]");
	}
	o = put(buf, cap, o, ":");
	put_uint(buf, cap, o, (unsigned)port);
}

uint64_t bw_key_sockaddr(const struct sockaddr *sa, socklen_t len)
{
	int family, port;
	const uint8_t *addr;
	if (sa && inet_parts(sa, len, &family, &addr, &port) == 0) {
		uint8_t k[19] = { (uint8_t)family, (uint8_t)(port >> 8), (uint8_t)port };
		for (int i = 0; i < (family == AF_INET ? 4 : 16); i++)
			k[3 + i] = addr[i];
		return bw_key_bytes(k, sizeof k, 0);
	}
	char path[sizeof(struct sockaddr_un) + 1];
	if (sa && unix_path(sa, len, path, sizeof path) == 0)
		return bw_key_bytes(path, strlen(path), 1);
	return 1;
}
