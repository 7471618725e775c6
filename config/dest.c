/* Parsing of policy destinations. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dest.h"
#include "units.h"

#define EXPECTED "expected host:port, ip:port, a CIDR such as 10.0.0.0/8, [ipv6]:port, " \
		 "*:port or unix:path"


static int is_glob_char(char c)
{
	return c == '*' || c == '?' || c == '[';
}

static int parse_port(const char *p, int *port, char *err, size_t cap)
{
	long v = 0;
	if (strcmp(p, "*") == 0) {
		*port = -1;
		return 0;
	}
	for (const char *q = p; *q; q++) {
		if (!bw_is_digit(*q) || (v = v * 10 + (*q - '0')) > 65535)
			return bw_fail(err, cap, "invalid port '%s'; expected 1 to 65535 or *", p);
	}
	if (!*p || v == 0)
		return bw_fail(err, cap, "invalid port '%s'; expected 1 to 65535 or *", p);
	*port = (int)v;
	return 0;
}

/* Bits past the prefix must be zero, or the prefix was probably mistyped. */
static int host_bits_clear(const uint8_t *a, int bytes, int prefix)
{
	for (int i = 0; i < bytes; i++) {
		int keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
		uint8_t mask = (uint8_t)(keep ? 0xff << (8 - keep) : 0);
		if (a[i] & (uint8_t)~mask)
			return 0;
	}
	return 1;
}

/* "addr" or "addr/prefix" of one family, n bytes of s. */
static int parse_addr(const char *s, size_t n, int family, struct bw_dest *d, char *err,
		      size_t cap)
{
	char buf[INET6_ADDRSTRLEN + 8];
	int bits = family == AF_INET ? 32 : 128;
	if (n >= sizeof buf)
		return bw_fail(err, cap, "invalid address '%.*s'", (int)n, s);
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *slash = strchr(buf, '/');
	d->prefix = bits;
	if (slash) {
		int v = 0;
		*slash++ = '\0';
		for (const char *q = slash; *q; q++)
			if (!bw_is_digit(*q) || (v = v * 10 + (*q - '0')) > bits)
				v = bits + 1;
		if (!*slash || v > bits)
			return bw_fail(err, cap, "invalid prefix length '/%s'; expected 0 to %d",
				    slash, bits);
		d->prefix = v;
	}
	if (inet_pton(family, buf, d->addr) != 1)
		return bw_fail(err, cap, "invalid %s address '%s'", family == AF_INET ? "IPv4" : "IPv6",
			    buf);
	if (!host_bits_clear(d->addr, bits / 8, d->prefix))
		return bw_fail(err, cap, "'%s/%d' has bits set past the prefix length", buf, d->prefix);
	d->kind = BW_DEST_ADDR;
	d->family = family;
	return 0;
}

static int parse_bracketed(const char *s, struct bw_dest *d, char *err, size_t cap)
{
	const char *close = strchr(s, ']');
	if (!close)
		return bw_fail(err, cap, "missing ']' in '%s'", s);
	if (parse_addr(s + 1, (size_t)(close - s - 1), AF_INET6, d, err, cap) < 0)
		return -1;
	if (close[1] == '\0')
		return 0;
	if (close[1] != ':')
		return bw_fail(err, cap, "unexpected '%s' after ']'; expected :port", close + 1);
	return parse_port(close + 2, &d->port, err, cap);
}

static int all_digits_dots(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!bw_is_digit(s[i]) && s[i] != '.' && s[i] != '/')
			return 0;
	return 1;
}

static int valid_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || bw_is_digit(c) || c == '-' ||
	       c == '.' || c == '_' || c == '*' || c == '?' || c == '[' || c == ']' || c == '!';
}

/* Host part, n bytes of s: "*", an IPv4 address or CIDR, or a host name glob. */
static int parse_host(const char *s, size_t n, struct bw_dest *d, char *err, size_t cap)
{
	if (n == 0)
		return bw_fail(err, cap, "missing host before ':'; " EXPECTED);
	if (n == 1 && s[0] == '*') {
		d->kind = BW_DEST_ANYADDR;
		return 0;
	}
	if (all_digits_dots(s, n))
		return parse_addr(s, n, AF_INET, d, err, cap);
	for (size_t i = 0; i < n; i++)
		if (!valid_host_char(s[i]))
			return bw_fail(err, cap, "invalid host name '%.*s'; " EXPECTED, (int)n, s);
	d->kind = BW_DEST_HOST;
	d->pattern = strndup(s, n);
	return d->pattern ? 0 : bw_fail(err, cap, "out of memory");
}

static int parse_inet(const char *s, struct bw_dest *d, char *err, size_t cap)
{
	const char *colon = strchr(s, ':');
	if (s[0] == '[')
		return parse_bracketed(s, d, err, cap);
	if (colon && strchr(colon + 1, ':'))   /* bare IPv6: no port without brackets */
		return parse_addr(s, strlen(s), AF_INET6, d, err, cap);
	if (!colon)
		return parse_host(s, strlen(s), d, err, cap);
	if (parse_host(s, (size_t)(colon - s), d, err, cap) < 0)
		return -1;
	return parse_port(colon + 1, &d->port, err, cap);
}

int bw_dest_parse(const char *s, struct bw_dest *d, char *err, size_t cap)
{
	int r;
	memset(d, 0, sizeof *d);
	d->port = -1;
	if (!*s)
		return bw_fail(err, cap, "empty destination; " EXPECTED);
	if (strncmp(s, "unix:", 5) == 0) {
		if (!s[5])
			return bw_fail(err, cap, "empty path after 'unix:'");
		d->kind = BW_DEST_UNIX;
		d->pattern = strdup(s + 5);
		r = d->pattern ? 0 : bw_fail(err, cap, "out of memory");
	} else {
		r = parse_inet(s, d, err, cap);
	}
	if (r == 0 && !(d->text = strdup(s)))
		r = bw_fail(err, cap, "out of memory");
	if (r < 0)
		bw_dest_free(d);
	return r;
}

void bw_dest_free(struct bw_dest *d)
{
	free(d->pattern);
	free(d->text);
	d->pattern = d->text = NULL;
}

static int has_glob(const char *s)
{
	for (; *s; s++)
		if (is_glob_char(*s))
			return 1;
	return 0;
}

int bw_dest_concrete(const struct bw_dest *d)
{
	switch (d->kind) {
	case BW_DEST_ADDR:
		return d->port >= 0 && d->prefix == (d->family == AF_INET ? 32 : 128);
	case BW_DEST_HOST:
		return d->port >= 0 && !has_glob(d->pattern);
	case BW_DEST_UNIX:
		return !has_glob(d->pattern);
	default:
		return 0;
	}
}
