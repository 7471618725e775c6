/* libFuzzer target for the event formatter and the bw_json_* helpers (make fuzz).
 *
 * The bytes become a struct bw_event: numbers from raw bytes (any int, NaN, infinities,
 * negative zero), every string a slice of the input (invalid UTF-8, control characters,
 * quotes and backslashes included), and an `extra` built with the bw_json_* helpers. It
 * is formatted into buffers of many sizes, tiny ones too, each followed by canary bytes,
 * and each line is checked:
 *   - nothing written at or past cap; NUL-terminated; the returned length is right;
 *   - one line ending in "}\n", valid UTF-8, strict compact JSON (own validator below);
 *   - top-level keys unique and in the documented order (bulwark.yaml(5), EVENTS), with
 *     the members of `extra` last;
 *   - with room enough, every field that is set is there with its value (strings read
 *     back to the input, sanitized as documented; numbers read back); with less, members
 *     are dropped whole: the line is exactly what a greedy fit of the roomy line's members
 *     gives. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errnames.h"
#include "events.h"
#include "ops.h"

#define CANARY 0xA5
#define SLACK 64
#define MAX_MEMBERS 64
#define MAX_EXTRA 8

/* ---- failure ---- */

static const char *g_line;   /* the line under check, for the report */
static size_t g_cap;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_event: %s (cap %zu)\n", what, g_cap);
	if (g_line)
		fprintf(stderr, "line: %s\n", g_line);
	abort();
}

#define CHECK(c, what) do { if (!(c)) fail(what); } while (0)

/* ---- input ---- */

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t bytes(struct in *in, int k)
{
	uint64_t v = 0;
	for (int i = 0; i < k; i++)
		v = v << 8 | u8(in);
	return v;
}

/* Mostly small and interesting, sometimes any 32-bit value. */
static int small_int(struct in *in)
{
	uint8_t sel = u8(in);
	switch (sel & 3) {
	case 0: return -1;
	case 1: return sel >> 2;
	case 2: return (int)(int8_t)u8(in);
	default: return (int)(uint32_t)bytes(in, 4);
	}
}

static double any_double(struct in *in)
{
	uint8_t sel = u8(in);
	uint64_t b;
	double d;
	switch (sel & 7) {
	case 0: return -1.0;                                   /* unset */
	case 1: return (double)bytes(in, 3) / 1000.0;          /* whole microseconds */
	case 2: return (double)bytes(in, 2) + (double)u8(in) / 256.0;
	case 3: return sel & 8 ? INFINITY : (sel & 16 ? -INFINITY : NAN);
	case 4: return sel & 8 ? -0.0 : 0.0;
	case 5: return (double)bytes(in, 8) / 7.0;             /* up to ~2.6e18 */
	default:
		b = bytes(in, 8);
		memcpy(&d, &b, sizeof d);                      /* any bit pattern */
		return d;
	}
}

/* A NUL-terminated copy of a slice of the input, or NULL; every such string is kept in
 * `owned` to be freed at the end. */
struct strs {
	char *s[32];
	int n;
};

static char *slice(struct in *in, struct strs *own)
{
	uint8_t sel = u8(in);
	if (sel < 32)
		return NULL;
	size_t len = sel < 224 ? (size_t)(sel - 32) % 24 : (size_t)u8(in) * 4 + u8(in);
	if (len > in->n)
		len = in->n;
	char *s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len;
	in->n -= len;
	if (own->n >= (int)(sizeof own->s / sizeof own->s[0]))
		abort();
	own->s[own->n++] = s;
	return s;
}

/* ---- UTF-8 ---- */

/* Length of a well-formed sequence at s (at most `left` bytes), decoding it into *cp; 0 if
 * ill-formed. By code point value, not by the formatter's byte ranges. */
static size_t utf8_decode(const unsigned char *s, size_t left, unsigned *cp)
{
	size_t n;
	unsigned c, min;
	if (!left)
		return 0;
	if (s[0] < 0x80) { *cp = s[0]; return 1; }
	else if ((s[0] & 0xE0) == 0xC0) { n = 2; c = s[0] & 0x1F; min = 0x80; }
	else if ((s[0] & 0xF0) == 0xE0) { n = 3; c = s[0] & 0x0F; min = 0x800; }
	else if ((s[0] & 0xF8) == 0xF0) { n = 4; c = s[0] & 0x07; min = 0x10000; }
	else return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

static int utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned cp;
	for (size_t i = 0, k; i < n; i += k)
		if (!(k = utf8_decode(p + i, n - i, &cp)))
			return 0;
	return 1;
}

/* What a string should read back as: ill-formed input replaced by U+FFFD, one per
 * maximal subpart of an ill-formed sequence (Unicode 3.9, "U+FFFD substitution of maximal
 * subparts"). A subpart is maximal when it is a prefix of some well-formed sequence: it
 * is found by trying to decode ever longer prefixes, using utf8_decode's code point rules
 * (so independently of the formatter's table of lead and second bytes). */
static int is_prefix_of_valid(const unsigned char *s, size_t k)
{
	/* Complete s[0..k) with continuation bytes in every way that matters: a prefix is
	 * viable if some completion decodes. Only the second byte has a range restriction,
	 * so trying each possible second byte (when k == 1) is enough. */
	unsigned char t[4];
	unsigned cp;
	size_t need = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
		    : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
	if (!need || k > need)
		return 0;
	memcpy(t, s, k);
	if (k == 1 && need > 1) {
		for (unsigned b = 0x80; b <= 0xBF; b++) {
			t[1] = (unsigned char)b;
			for (size_t i = 2; i < need; i++)
				t[i] = 0x80;
			if (utf8_decode(t, need, &cp) == need)
				return 1;
		}
		return 0;
	}
	for (size_t i = k; i < need; i++)
		t[i] = 0x80;
	return utf8_decode(t, need, &cp) == need;
}

static size_t sanitize(const char *src, char *out)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t n = strlen(src), o = 0;
	unsigned cp;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_decode(s + i, n - i, &cp);
		if (k) {
			memcpy(out + o, s + i, k);
			o += k;
			i += k;
			continue;
		}
		size_t sub = 1;   /* the longest prefix of a valid sequence, at least one byte */
		while (i + sub < n && is_prefix_of_valid(s + i, sub + 1))
			sub++;
		memcpy(out + o, "\xEF\xBF\xBD", 3);
		o += 3;
		i += sub;
	}
	out[o] = '\0';
	return o;
}

/* ---- a strict JSON validator ----
 * RFC 8259, compact: no whitespace anywhere outside strings (the formatter writes none);
 * strings are well-formed UTF-8 with no raw control character, and escapes are the
 * standard ones (a \u escape of a surrogate must be a proper pair). */

struct jp {
	const char *p, *end;
};

static int jp_value(struct jp *j, int depth);

static int jp_hex4(struct jp *j, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++, j->p++) {
		char c = j->p < j->end ? *j->p : 0;
		unsigned d;
		if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
		else return 0;
		*v = *v << 4 | d;
	}
	return 1;
}

static void put_utf8(char *out, size_t *o, unsigned cp)
{
	if (!out)
		return;
	if (cp < 0x80) {
		out[(*o)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*o)++] = (char)(0xC0 | cp >> 6);
		out[(*o)++] = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		out[(*o)++] = (char)(0xE0 | cp >> 12);
		out[(*o)++] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[(*o)++] = (char)(0x80 | (cp & 0x3F));
	} else {
		out[(*o)++] = (char)(0xF0 | cp >> 18);
		out[(*o)++] = (char)(0x80 | (cp >> 12 & 0x3F));
		out[(*o)++] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[(*o)++] = (char)(0x80 | (cp & 0x3F));
	}
}

/* A string literal; decoded into out (NUL-terminated; room for the literal's length)
 * when out is not NULL. */
static int jp_string(struct jp *j, char *out)
{
	size_t o = 0;
	if (j->p >= j->end || *j->p != '"')
		return 0;
	j->p++;
	for (;;) {
		if (j->p >= j->end)
			return 0;
		unsigned char c = (unsigned char)*j->p;
		if (c == '"') {
			j->p++;
			if (out)
				out[o] = '\0';
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			unsigned cp;
			if (++j->p >= j->end)
				return 0;
			switch (*j->p++) {
			case '"': cp = '"'; break;
			case '\\': cp = '\\'; break;
			case '/': cp = '/'; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			case 'u':
				if (!jp_hex4(j, &cp))
					return 0;
				if (cp >= 0xDC00 && cp <= 0xDFFF)
					return 0;   /* lone low surrogate */
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					unsigned lo;
					if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
						return 0;
					j->p += 2;
					if (!jp_hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF)
						return 0;
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				}
				break;
			default:
				return 0;
			}
			put_utf8(out, &o, cp);
			continue;
		}
		unsigned cp;
		size_t k = utf8_decode((const unsigned char *)j->p, (size_t)(j->end - j->p), &cp);
		if (!k)
			return 0;
		if (out)
			memcpy(out + o, j->p, k);
		o += k;
		j->p += k;
	}
}

static int jp_digits(struct jp *j)
{
	const char *s = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > s;
}

static int jp_number(struct jp *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (!(j->p < j->end && *j->p >= '1' && *j->p <= '9') || !jp_digits(j))
		return 0;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!jp_digits(j))
			return 0;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!jp_digits(j))
			return 0;
	}
	return 1;
}

static int jp_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return 0;
	j->p += n;
	return 1;
}

static int jp_object(struct jp *j, int depth)
{
	j->p++;
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 1;
	}
	for (;;) {
		if (!jp_string(j, NULL) || j->p >= j->end || *j->p++ != ':' || !jp_value(j, depth + 1))
			return 0;
		if (j->p >= j->end)
			return 0;
		if (*j->p == '}') {
			j->p++;
			return 1;
		}
		if (*j->p++ != ',')
			return 0;
	}
}

static int jp_array(struct jp *j, int depth)
{
	j->p++;
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 1;
	}
	for (;;) {
		if (!jp_value(j, depth + 1) || j->p >= j->end)
			return 0;
		if (*j->p == ']') {
			j->p++;
			return 1;
		}
		if (*j->p++ != ',')
			return 0;
	}
}

static int jp_value(struct jp *j, int depth)
{
	if (depth > 32 || j->p >= j->end)
		return 0;
	switch (*j->p) {
	case '{': return jp_object(j, depth);
	case '[': return jp_array(j, depth);
	case '"': return jp_string(j, NULL);
	case 't': return jp_lit(j, "true");
	case 'f': return jp_lit(j, "false");
	case 'n': return jp_lit(j, "null");
	default: return jp_number(j);
	}
}

/* ---- the line's top-level members ---- */

struct member {
	const char *start, *end;     /* "key":value, as written */
	const char *vstart;          /* value */
	char key[64];                /* decoded, truncated: only compared to short names */
};

struct line {
	struct member m[MAX_MEMBERS];
	int n;
};

/* Validates one whole line (the object, then "\n", nothing else) and splits it into its
 * top-level members. */
static void parse_line(const char *s, size_t len, struct line *ln)
{
	struct jp j = { s, s + len };
	ln->n = 0;
	CHECK(len >= 3 && s[0] == '{' && s[len - 2] == '}' && s[len - 1] == '\n',
	      "not one object ending in \"}\\n\"");
	CHECK(memchr(s, '\n', len - 1) == NULL, "more than one line");
	CHECK(utf8_valid(s, len), "not valid UTF-8");
	j.end = s + len - 1;
	j.p++;
	if (*j.p == '}') {
		j.p++;
		CHECK(j.p == j.end, "junk after the object");
		return;
	}
	for (;;) {
		CHECK(ln->n < MAX_MEMBERS, "too many members");
		struct member *m = &ln->m[ln->n++];
		m->start = j.p;
		char *key = malloc(len + 1);
		if (!key)
			abort();
		CHECK(jp_string(&j, key), "invalid JSON: key");
		snprintf(m->key, sizeof m->key, "%s", key);
		free(key);
		CHECK(j.p < j.end && *j.p++ == ':', "invalid JSON: no ':' after a key");
		m->vstart = j.p;
		CHECK(jp_value(&j, 1), "invalid JSON: value");
		m->end = j.p;
		CHECK(j.p < j.end, "invalid JSON: unterminated object");
		if (*j.p == '}') {
			j.p++;
			break;
		}
		CHECK(*j.p++ == ',', "invalid JSON: no ',' between members");
	}
	CHECK(j.p == j.end, "junk after the object");
}

/* Documented order of top-level keys; extra's members (all named "x-...") come last. */
static const char *const order[] = {
	"ts", "lvl", "event", "pid", "tid", "prog", "rule", "op", "call", "dest", "host", "db",
	"fd", "err", "attempt", "attempts", "delay_ms", "elapsed_ms", "from", "to", "reason",
	"observe", "injected", "msg", NULL
};

static int key_rank(const char *k)
{
	for (int i = 0; order[i]; i++)
		if (strcmp(order[i], k) == 0)
			return i;
	return strncmp(k, "x-", 2) == 0 ? 1000 : -1;
}

static void check_order(const struct line *ln)
{
	int last = -1;
	for (int i = 0; i < ln->n; i++) {
		int r = key_rank(ln->m[i].key);
		CHECK(r >= 0, "unknown key");
		CHECK(r > last || (r == 1000 && last == 1000), "keys out of the documented order");
		last = r;
	}
}

static const struct member *find(const struct line *ln, const char *key)
{
	for (int i = 0; i < ln->n; i++)
		if (strcmp(ln->m[i].key, key) == 0)
			return &ln->m[i];
	return NULL;
}

/* ---- what a roomy line must say ---- */

static void expect_str(const struct line *ln, const char *key, const char *want)
{
	const struct member *m = find(ln, key);
	if (!want) {
		CHECK(!m, "a NULL string was written");
		return;
	}
	CHECK(m, "a set string member is missing");
	size_t vlen = (size_t)(m->end - m->vstart);
	char *got = malloc(vlen + 1), *exp = malloc(strlen(want) * 3 + 1);
	if (!got || !exp)
		abort();
	struct jp j = { m->vstart, m->end };
	CHECK(jp_string(&j, got) && j.p == m->end, "a string member is not a string");
	sanitize(want, exp);
	if (utf8_valid(want, strlen(want)))
		CHECK(strcmp(exp, want) == 0, "sanitize changed valid UTF-8");
	CHECK(strcmp(got, exp) == 0, "a string does not read back as written (sanitized)");
	free(got);
	free(exp);
}

static void expect_int(const struct line *ln, const char *key, int present, int64_t want)
{
	const struct member *m = find(ln, key);
	if (!present) {
		CHECK(!m, "an unset number was written");
		return;
	}
	CHECK(m, "a set number member is missing");
	char buf[32];
	size_t n = (size_t)(m->end - m->vstart);
	CHECK(n < sizeof buf, "an integer too long");
	memcpy(buf, m->vstart, n);
	buf[n] = '\0';
	char *e;
	long long v = strtoll(buf, &e, 10);
	CHECK(*e == '\0' && v == want, "an integer does not read back");
}

static void expect_ms(const struct line *ln, const char *key, double ms)
{
	const struct member *m = find(ln, key);
	if (!(ms >= 0)) {
		CHECK(!m, "an unset or negative duration was written");
		return;
	}
	CHECK(m, "a set duration is missing");
	size_t n = (size_t)(m->end - m->vstart);
	if (isinf(ms)) {
		CHECK(n == 4 && memcmp(m->vstart, "null", 4) == 0, "infinity not written as null");
		return;
	}
	char buf[48];
	CHECK(n < sizeof buf, "a duration too long");
	memcpy(buf, m->vstart, n);
	buf[n] = '\0';
	CHECK(!strchr(buf, 'e') && !strchr(buf, 'E'), "a duration with an exponent");
	const char *dot = strchr(buf, '.');
	CHECK(!dot || (strlen(dot + 1) <= 3 && buf[n - 1] != '0'),
	      "a duration not rounded to the microsecond, or with trailing zeros");
	double v = strtod(buf, NULL);
	if (ms > 9e15)
		CHECK(v == 9e15, "a huge duration is not clamped");
	else
		CHECK(fabs(v - ms) <= 0.0005 + ms * 1e-15, "a duration does not read back");
}

static void expect_bool(const struct line *ln, const char *key, int flag)
{
	const struct member *m = find(ln, key);
	if (!flag) {
		CHECK(!m, "a false flag was written");
		return;
	}
	CHECK(m && m->end - m->vstart == 4 && memcmp(m->vstart, "true", 4) == 0,
	      "a set flag is not true");
}

/* RFC 3339 with microseconds, by gmtime_r: clamped to 1970..9999. */
static void expect_ts(const struct line *ln, int64_t wall_us)
{
	const struct member *m = find(ln, "ts");
	CHECK(m, "ts missing");
	const int64_t max = INT64_C(253402300799999999);
	if (wall_us < 0)
		wall_us = 0;
	if (wall_us > max)
		wall_us = max;
	time_t secs = (time_t)(wall_us / 1000000);
	struct tm tm;
	CHECK(gmtime_r(&secs, &tm), "gmtime_r");
	char want[64];
	snprintf(want, sizeof want, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ\"", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(wall_us % 1000000));
	CHECK((size_t)(m->end - m->vstart) == strlen(want) &&
	      memcmp(m->vstart, want, strlen(want)) == 0, "ts is wrong");
}

/* ---- extra, through the helpers ---- */

/* One piece appended with a helper into a roomy buffer and into a small one: the small
 * one must take all of the piece or none of it, stay NUL-terminated and never write past
 * its cap. */
struct xbuf {
	char *big;
	size_t bigcap, biglen;
	char *small;             /* cap bytes, then SLACK canary bytes */
	size_t cap, len;
};

enum piece { P_STR, P_RAW, P_INT, P_UINT, P_MS };

static void append(struct xbuf *x, enum piece kind, const char *s, int64_t i, uint64_t u,
		   double ms)
{
	size_t before = x->biglen, sbefore = x->len;
	switch (kind) {
	case P_STR:
		bw_json_str(x->big, x->bigcap, &x->biglen, s);
		bw_json_str(x->small, x->cap, &x->len, s);
		break;
	case P_RAW:
		bw_json_raw(x->big, x->bigcap, &x->biglen, s);
		bw_json_raw(x->small, x->cap, &x->len, s);
		break;
	case P_INT:
		bw_json_int(x->big, x->bigcap, &x->biglen, i);
		bw_json_int(x->small, x->cap, &x->len, i);
		break;
	case P_UINT:
		bw_json_uint(x->big, x->bigcap, &x->biglen, u);
		bw_json_uint(x->small, x->cap, &x->len, u);
		break;
	case P_MS:
		bw_json_ms(x->big, x->bigcap, &x->biglen, ms);
		bw_json_ms(x->small, x->cap, &x->len, ms);
		break;
	}
	CHECK(x->biglen < x->bigcap && x->big[x->biglen] == '\0', "helper: big buffer unterminated");
	CHECK(strlen(x->big) == x->biglen, "helper: length is not the string's");
	size_t piece = x->biglen - before;
	CHECK(piece > 0 || (kind == P_RAW && (!s || !*s)), "helper: nothing written with room");
	for (size_t k = 0; k < SLACK; k++)
		CHECK((unsigned char)x->small[x->cap + k] == CANARY, "helper: wrote past cap");
	if (x->cap == 0) {
		CHECK(x->len == 0, "helper: length moved with cap 0");
		return;
	}
	if (sbefore >= x->cap) {
		CHECK(x->len == sbefore, "helper: length moved past cap");
		return;
	}
	CHECK(x->len < x->cap && x->small[x->len] == '\0', "helper: small buffer unterminated");
	if (x->len != sbefore) {
		CHECK(x->len - sbefore == piece &&
		      memcmp(x->small + sbefore, x->big + before, piece) == 0,
		      "helper: a piece was cut, or differs from the roomy one");
	} else {
		CHECK(piece == 0 || sbefore + piece > x->cap - 1, "helper: a piece that fits was dropped");
	}
}

/* extra: "x-KEY":value members, sometimes with stray commas at either end. */
static void build_extra(struct in *in, struct strs *own, struct xbuf *x, int *n_members)
{
	int n = u8(in) % (MAX_EXTRA + 1);
	char key[64];
	*n_members = 0;
	if (u8(in) & 1)
		append(x, P_RAW, ",", 0, 0, 0);
	for (int i = 0; i < n; i++) {
		const char *k = slice(in, own);
		snprintf(key, sizeof key, "x-%s", k ? k : "");
		if (i)
			append(x, P_RAW, ",", 0, 0, 0);
		append(x, P_STR, key, 0, 0, 0);
		append(x, P_RAW, ":", 0, 0, 0);
		uint8_t t = u8(in);
		switch (t % 8) {
		case 0: append(x, P_STR, slice(in, own), 0, 0, 0); break;
		case 1: append(x, P_INT, NULL, (int64_t)bytes(in, 8), 0, 0); break;
		case 2: append(x, P_UINT, NULL, 0, bytes(in, 8), 0); break;
		case 3: append(x, P_MS, NULL, 0, 0, any_double(in)); break;
		case 4: append(x, P_RAW, t & 8 ? "true" : "false", 0, 0, 0); break;
		case 5: append(x, P_RAW, "null", 0, 0, 0); break;
		case 6: append(x, P_INT, NULL, t & 8 ? INT64_MIN : INT64_MAX, 0, 0); break;
		default:   /* a nested value, as raw text */
			append(x, P_RAW, "[", 0, 0, 0);
			append(x, P_STR, slice(in, own), 0, 0, 0);
			append(x, P_RAW, ",{\"a\":", 0, 0, 0);
			append(x, P_UINT, NULL, 0, UINT64_MAX, 0);
			append(x, P_RAW, "}]", 0, 0, 0);
		}
		(*n_members)++;
	}
	if (u8(in) & 1)
		append(x, P_RAW, ",,", 0, 0, 0);
	append(x, P_RAW, NULL, 0, 0, 0);
	append(x, P_RAW, "", 0, 0, 0);
}

/* ---- formatting into a given cap ---- */

static size_t format_into(char *buf, size_t cap, const struct bw_event_ctx *ctx,
			  const struct bw_event *ev)
{
	memset(buf, CANARY, cap + SLACK);
	g_cap = cap;
	g_line = NULL;
	size_t n = bw_event_format(buf, cap, ctx, ev);
	for (size_t k = 0; k < SLACK; k++)
		CHECK((unsigned char)buf[cap + k] == CANARY, "wrote past cap");
	if (cap < 4) {
		CHECK(n == 0, "a line in fewer than 4 bytes");
		CHECK(cap == 0 || buf[0] == '\0', "cap < 4 left unterminated");
		return 0;
	}
	CHECK(n < cap, "length not below cap");
	CHECK(buf[n] == '\0', "not NUL-terminated at the returned length");
	CHECK(strlen(buf) == n, "a NUL inside the line");
	g_line = buf;
	return n;
}

/* The greedy fit of the roomy line's units into cap: '{', then each unit (one member, or
 * the whole of extra) with its comma if it fits in cap - 3 bytes, then "}\n". */
static void expect_greedy(const struct line *fl, int extra_from, const char *got, size_t cap)
{
	char *want = malloc(cap + 1);
	if (!want)
		abort();
	size_t lim = cap - 3, len = 0;
	int any = 0;
	want[len++] = '{';
	for (int i = 0; i < fl->n;) {
		int j = i < extra_from ? i + 1 : fl->n;   /* extra is one unit */
		size_t ulen = (size_t)(fl->m[j - 1].end - fl->m[i].start);
		if (len + any + ulen <= lim) {
			if (any)
				want[len++] = ',';
			memcpy(want + len, fl->m[i].start, ulen);
			len += ulen;
			any = 1;
		}
		i = j;
	}
	want[len++] = '}';
	want[len++] = '\n';
	want[len] = '\0';
	CHECK(strcmp(got, want) == 0, "members not dropped whole and greedily");
	free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct strs own = { .n = 0 };
	struct bw_event ev;
	struct bw_event_ctx ctx;

	uint8_t flags = u8(&in);
	int sel = u8(&in);
	/* kinds and levels: the real ones mostly, sometimes out of range */
	enum bw_event_kind kind = (enum bw_event_kind)(sel < 240 ? sel % BW_EV_COUNT
								 : (int)(int8_t)u8(&in));
	sel = u8(&in);
	enum bw_level lvl = (enum bw_level)(sel < 240 ? sel % 4 : (int)(int8_t)u8(&in));
	bw_event_init(&ev, kind, lvl);
	CHECK((unsigned)bw_event_default_level(kind) <= BW_LVL_DEBUG, "bw_event_default_level");
	CHECK(ev.op == -1 && ev.fd == -1 && ev.attempt == -1 && ev.attempts == -1 &&
	      ev.delay_ms < 0 && ev.elapsed_ms < 0 && !ev.rule && !ev.msg && !ev.extra &&
	      !ev.observe && !ev.injected && ev.err == 0, "bw_event_init");

	ctx.wall_us = (int64_t)bytes(&in, 8);
	if (flags & 2)   /* mostly a plausible clock */
		ctx.wall_us = (int64_t)(bytes(&in, 7) % INT64_C(253402300800000000));
	ctx.pid = (long)(int64_t)bytes(&in, 8);
	ctx.tid = (long)(int32_t)bytes(&in, 4);
	ctx.prog = slice(&in, &own);

	ev.rule = slice(&in, &own);
	ev.op = small_int(&in);
	ev.call = slice(&in, &own);
	ev.dest = slice(&in, &own);
	ev.host = slice(&in, &own);
	ev.db = slice(&in, &own);
	ev.fd = small_int(&in);
	sel = u8(&in);
	switch (sel % 5) {   /* errno, EAI, SQLite, unknown or none */
	case 0: ev.err = 0; break;
	case 1: ev.err = (int)(sel >> 3) + (int)u8(&in) % 140; break;
	case 2: ev.err = bw_err_eai(-(int)(u8(&in) % 120)); break;
	case 3: ev.err = bw_err_sqlite((int)bytes(&in, 2)); break;
	default: ev.err = (int)(uint32_t)bytes(&in, 4);
	}
	/* a known name reads back to its code */
	const char *ename = bw_err_name(ev.err);
	CHECK(ename && (ename[0] == 'E' || strncmp(ename, "SQLITE_", 7) == 0 ||
			strncmp(ename, "SQLSTATE_", 9) == 0 || strncmp(ename, "MYSQL_", 6) == 0 ||
			strncmp(ename, "REDIS_", 6) == 0), "bw_err_name");
	if (strcmp(ename, "E?") && strcmp(ename, "EAI_?") && strcmp(ename, "SQLITE_?"))
		CHECK(bw_err_parse(ename) == ev.err, "an error name does not parse back to its code");
	ev.attempt = small_int(&in);
	ev.attempts = small_int(&in);
	ev.delay_ms = any_double(&in);
	ev.elapsed_ms = any_double(&in);
	ev.from = slice(&in, &own);
	ev.to = slice(&in, &own);
	ev.reason = slice(&in, &own);
	ev.observe = (flags & 4) ? (int)(int8_t)u8(&in) : 0;
	ev.injected = (flags & 8) ? 1 : 0;
	ev.msg = slice(&in, &own);

	/* extra, built twice: in a roomy buffer (used) and in a small one (checked) */
	struct xbuf x;
	x.bigcap = 8 * size + 8192;   /* every input byte at most 6 escaped bytes */
	x.big = malloc(x.bigcap);
	x.cap = u8(&in);
	x.small = malloc(x.cap + SLACK);
	if (!x.big || !x.small)
		abort();
	x.biglen = x.len = 0;
	x.big[0] = '\0';
	memset(x.small, CANARY, x.cap + SLACK);
	if (x.cap)
		x.small[0] = '\0';
	int n_extra = 0;
	if (flags & 16)
		build_extra(&in, &own, &x, &n_extra);
	ev.extra = (flags & 16) ? x.big : NULL;

	const struct bw_event_ctx *cp = (flags & 32) ? NULL : &ctx;
	const struct bw_event *ep = (flags & 64) ? NULL : &ev;

	/* the roomy line: everything set is there */
	size_t bigcap = 8 * size + 8192;
	char *full = malloc(bigcap + SLACK);
	if (!full)
		abort();
	size_t fn = format_into(full, bigcap, cp, ep);
	struct line fl;
	parse_line(full, fn, &fl);
	check_order(&fl);
	int extra_from = fl.n;
	for (int i = 0; i < fl.n; i++)
		if (strncmp(fl.m[i].key, "x-", 2) == 0) {
			extra_from = i;
			break;
		}
	if (!ep) {
		CHECK(fn == 3 && strcmp(full, "{}\n") == 0, "no event is not {}");
	} else {
		CHECK(fl.n - extra_from == n_extra, "extra's members are not all there");
		if (cp) {
			expect_ts(&fl, cp->wall_us);
			expect_int(&fl, "pid", 1, cp->pid);
			expect_int(&fl, "tid", 1, cp->tid);
			expect_str(&fl, "prog", cp->prog);
		} else {
			CHECK(!find(&fl, "ts") && !find(&fl, "pid") && !find(&fl, "tid") &&
			      !find(&fl, "prog"), "process facts without a ctx");
		}
		expect_str(&fl, "lvl", bw_level_name(ev.lvl));
		expect_str(&fl, "event", bw_event_name(ev.kind));
		expect_str(&fl, "rule", ev.rule);
		expect_str(&fl, "op", ev.op >= 0 && ev.op < BW_OP_COUNT ? bw_op_name(ev.op) : NULL);
		expect_str(&fl, "call", ev.call);
		expect_str(&fl, "dest", ev.dest);
		expect_str(&fl, "host", ev.host);
		expect_str(&fl, "db", ev.db);
		expect_int(&fl, "fd", ev.fd >= 0, ev.fd);
		expect_str(&fl, "err", ev.err ? bw_err_name(ev.err) : NULL);
		expect_int(&fl, "attempt", ev.attempt >= 0, ev.attempt);
		expect_int(&fl, "attempts", ev.attempts >= 0, ev.attempts);
		expect_ms(&fl, "delay_ms", ev.delay_ms);
		expect_ms(&fl, "elapsed_ms", ev.elapsed_ms);
		expect_str(&fl, "from", ev.from);
		expect_str(&fl, "to", ev.to);
		expect_str(&fl, "reason", ev.reason);
		expect_bool(&fl, "observe", ev.observe);
		expect_bool(&fl, "injected", ev.injected);
		expect_str(&fl, "msg", ev.msg);
	}

	/* smaller caps: tiny ones, ones around the roomy line's length, a fuzzed one, and the
	 * library's own bound */
	size_t caps[24];
	int nc = 0;
	for (size_t c = 0; c <= 8; c++)
		caps[nc++] = c;
	caps[nc++] = fn;        /* one byte short of the line and its NUL */
	caps[nc++] = fn + 1;    /* exactly enough */
	caps[nc++] = fn > 8 ? fn - 1 : 9;
	caps[nc++] = fn / 2 + 1;
	caps[nc++] = fn / 3 + 2;
	caps[nc++] = 16 + bytes(&in, 2) % (fn + 1);
	caps[nc++] = 16 + bytes(&in, 1);
	caps[nc++] = BW_EVENT_MAX;
	char *buf = malloc(bigcap + SLACK);
	if (!buf)
		abort();
	for (int i = 0; i < nc; i++) {
		size_t cap = caps[i] < bigcap ? caps[i] : bigcap;
		size_t n = format_into(buf, cap, cp, ep);
		if (cap < 4)
			continue;
		struct line ln;
		parse_line(buf, n, &ln);
		check_order(&ln);
		expect_greedy(&fl, extra_from, buf, cap);
		if (cap > fn)
			CHECK(n == fn && strcmp(buf, full) == 0, "a roomy cap changed the line");
	}

	/* a NULL buffer (cap 0 with a real one is among the caps above) */
	CHECK(bw_event_format(NULL, 100, cp, ep) == 0, "NULL buffer");

	free(buf);
	free(full);
	free(x.big);
	free(x.small);
	for (int i = 0; i < own.n; i++)
		free(own.s[i]);
	return 0;
}
