/* Values of a policy file. Numbers are read and written without strtod or printf's %f,
 * whose decimal point follows the host program's locale. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "units.h"
#include "vocab.h"

static const double pow10_tab[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define MAX_SIG 15      /* significant digits a double holds exactly */
#define MAX_RATE 1e12   /* per second; beyond any real limit */
#define MAX_SIZE 1e15   /* bytes; as far as a plain number of 15 digits goes */

struct unit {
	const char *name;
	int64_t mult;
};

static const struct unit dur_units[] = {
	{ "h", BW_HOUR }, { "m", BW_MIN }, { "s", BW_SEC }, { "ms", BW_MS }, { "us", BW_US },
};

static const struct unit size_units[] = {
	{ "", 1 }, { "B", 1 }, { "KB", 1000 }, { "KiB", 1024 }, { "MB", 1000000 },
	{ "MiB", 1048576 }, { "GB", 1000000000 }, { "GiB", 1073741824 }, { "kB", 1000 },
};

static const struct unit per_units[] = { { "s", 1 }, { "min", 60 }, { "h", 3600 } };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int bw_fail(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static const struct unit *find_unit(const struct unit *t, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(t[i].name) == len && strncmp(t[i].name, s, len) == 0)
			return &t[i];
	return NULL;
}

/* Reads digits[.digits] at s. Dividing an exact mantissa by an exact power of ten rounds
 * once, so equal decimals always give equal doubles. -1: no number, -2: too many digits. */
static int scan_decimal(const char *s, const char **end, double *out)
{
	uint64_t mant = 0;
	int sig = 0, frac = 0;
	const char *p = s;
	if (!bw_is_digit(*p))
		return -1;
	for (; bw_is_digit(*p); p++) {
		if (mant == 0 && *p == '0')
			continue;
		if (++sig > MAX_SIG)
			return -2;
		mant = mant * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		if (!bw_is_digit(*++p))
			return -1;
		for (; bw_is_digit(*p); p++) {
			if (++frac >= (int)NELEM(pow10_tab))
				return -2;
			if (mant == 0 && *p == '0')
				continue;
			if (++sig > MAX_SIG)
				return -2;
			mant = mant * 10 + (uint64_t)(*p - '0');
		}
	}
	*out = (double)mant / pow10_tab[frac];
	*end = p;
	return 0;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* The fraction digits [f, f+n) of unit mult, as whole microseconds. */
static int frac_usec(const char *f, size_t n, uint64_t mult, uint64_t *out)
{
	while (n && f[n - 1] == '0')
		n--;
	if (n > 10)   /* no unit has more than 10 factors of ten below it */
		return -1;
	uint64_t num = 0, den = 1;
	for (size_t i = 0; i < n; i++) {
		num = num * 10 + (uint64_t)(f[i] - '0');
		den *= 10;
	}
	uint64_t g = gcd(mult, den);
	if (num % (den / g))
		return -1;
	*out = num / (den / g) * (mult / g);
	return 0;
}

int bw_parse_duration(const char *s, bw_usec *out, char *err, size_t cap)
{
	const char *p = s, *frac = NULL;
	uint64_t whole = 0, part = 0, total;
	size_t nfrac = 0;

	if (*s == '-')
		return bw_fail(err, cap, "a duration cannot be negative, got '%s'", s);
	if (!bw_is_digit(*s))
		return bw_fail(err, cap, "expected a duration like 250ms or 1.5s, got '%s'", s);
	for (; bw_is_digit(*p); p++)
		if (__builtin_mul_overflow(whole, 10, &whole) ||
		    __builtin_add_overflow(whole, (uint64_t)(*p - '0'), &whole))
			return bw_fail(err, cap, "duration '%s' is too large", s);
	if (*p == '.') {
		frac = ++p;
		while (bw_is_digit(*p))
			p++;
		nfrac = (size_t)(p - frac);
		if (nfrac == 0)
			return bw_fail(err, cap, "expected a duration like 250ms or 1.5s, got '%s'", s);
	}
	if (*p == '\0')
		return bw_fail(err, cap, "duration needs a unit, e.g. 250ms");
	const struct unit *u = find_unit(dur_units, NELEM(dur_units), p, strlen(p));
	if (!u)
		return bw_fail(err, cap, "unknown duration unit '%s' in '%s'; expected us, ms, s, m or h",
			    p, s);
	if (frac && frac_usec(frac, nfrac, (uint64_t)u->mult, &part) < 0)
		return bw_fail(err, cap, "'%s' is not a whole number of microseconds", s);
	if (__builtin_mul_overflow(whole, (uint64_t)u->mult, &total) ||
	    __builtin_add_overflow(total, part, &total) || total > INT64_MAX)
		return bw_fail(err, cap, "duration '%s' is too large", s);
	*out = (bw_usec)total;
	return 0;
}

int bw_parse_number(const char *s, double *out, char *err, size_t cap)
{
	const char *end;
	int r = scan_decimal(s, &end, out);
	if (r == -2)
		return bw_fail(err, cap, "'%s' has more than %d significant digits", s, MAX_SIG);
	if (r < 0 || *end)
		return bw_fail(err, cap, "expected a number like 2 or 1.5, got '%s'", s);
	return 0;
}

int bw_parse_rate(const char *s, double *per_sec, int *bytes, char *err, size_t cap)
{
	const char *p, *slash;
	double v;
	int r = scan_decimal(s, &p, &v);
	if (r == -2)
		return bw_fail(err, cap, "'%s' has more than %d significant digits", s, MAX_SIG);
	if (r < 0)
		return bw_fail(err, cap, "expected a rate like 50/s or 1MiB/s, got '%s'", s);
	if (*p == '\0')
		return bw_fail(err, cap, "rate needs a unit, e.g. 50/s or 1MiB/s");
	slash = strchr(p, '/');
	if (!slash)
		return bw_fail(err, cap, "expected a rate like 50/s or 1MiB/s, got '%s'", s);
	const struct unit *sz = find_unit(size_units, NELEM(size_units), p, (size_t)(slash - p));
	if (!sz)
		return bw_fail(err, cap, "unknown size unit '%.*s' in '%s'; expected B, KB, KiB, MB, "
			    "MiB, GB or GiB", (int)(slash - p), p, s);
	const struct unit *per = find_unit(per_units, NELEM(per_units), slash + 1,
					   strlen(slash + 1));
	if (!per)
		return bw_fail(err, cap, "unknown rate unit '/%s' in '%s'; expected /s, /min or /h",
			    slash + 1, s);
	v = v * (double)sz->mult / (double)per->mult;
	if (v <= 0)
		return bw_fail(err, cap, "a rate must be greater than 0, got '%s'", s);
	if (v > MAX_RATE)
		return bw_fail(err, cap, "rate '%s' is too large", s);
	*per_sec = v;
	*bytes = sz != &size_units[0];
	return 0;
}

int bw_parse_size(const char *s, double *out, int *sized, char *err, size_t cap)
{
	const char *p;
	double v;
	int r = scan_decimal(s, &p, &v);
	if (r == -2)
		return bw_fail(err, cap, "'%s' has more than %d significant digits", s, MAX_SIG);
	if (r < 0)
		return bw_fail(err, cap, "expected a number like 10 or a size like 64KiB, got '%s'", s);
	const struct unit *u = find_unit(size_units, NELEM(size_units), p, strlen(p));
	if (!u)
		return bw_fail(err, cap, "unknown size unit '%s' in '%s'; expected B, KB, KiB, MB, "
			    "MiB, GB or GiB", p, s);
	v *= (double)u->mult;
	if (v >= MAX_SIZE)
		return bw_fail(err, cap, "size '%s' is too large", s);
	*out = v;
	*sized = u != &size_units[0];
	return 0;
}

int bw_parse_ratio(const char *s, double *out, char *err, size_t cap)
{
	const char *p;
	double v;
	int r = scan_decimal(s, &p, &v);
	if (r == 0 && p[0] == '%' && p[1] == '\0') {
		v /= 100;
		p++;
	}
	if (r < 0 || *p || v > 1)
		return bw_fail(err, cap, "expected a ratio from 0 to 1 or 0%% to 100%%, got '%s'", s);
	*out = v;
	return 0;
}

static int is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!bw_is_digit(*s) && *s != '.')
			return 0;
	return 1;
}

const char *bw_quote_value(const char *s, char *buf, size_t cap)
{
	if (is_number(s) && strlen(s) < cap)
		snprintf(buf, cap, "%s", s);
	else
		snprintf(buf, cap, strlen(s) > 40 ? "'%.40s...'" : "'%s'", s);
	return buf;
}

void bw_join_names(const char *const *names, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int i = 0; names[i] && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", names[i]);
}

int bw_parse_name(const char *s, const char *const *names, int *out, char *err, size_t cap)
{
	char all[160], got[64];
	int i = bw_name_index(names, s);
	if (i < 0) {
		bw_join_names(names, all, sizeof all);
		return bw_fail(err, cap, "expected one of %s, got %s", all,
			       bw_quote_value(s, got, sizeof got));
	}
	*out = i;
	return 0;
}

int bw_parse_sink(const char *s, enum bw_sink_kind *kind, const char **path, char *err,
		  size_t cap)
{
	const char *file = bw_sink_names[BW_SINK_FILE];
	size_t n = strlen(file);
	char got[64];
	int i = bw_name_index(bw_sink_names, s);
	*path = NULL;
	if (i >= 0 && i != BW_SINK_FILE) {
		*kind = (enum bw_sink_kind)i;
		return 0;
	}
	if (strncmp(s, file, n) == 0 && s[n] == ':') {
		if (!s[n + 1])
			return bw_fail(err, cap, "file: needs a path, e.g. file:/var/log/bulwark.jsonl");
		*kind = BW_SINK_FILE;
		*path = s + n + 1;
		return 0;
	}
	return bw_fail(err, cap, "expected " BW_SINK_WHAT ", got %s",
		       bw_quote_value(s, got, sizeof got));
}

int bw_parse_seed(const char *s, uint64_t *out, char *err, size_t cap)
{
	uint64_t seed = 0;
	char got[64];
	int ok = *s != '\0';
	for (const char *p = s; ok && *p; p++)
		ok = bw_is_digit(*p) && !__builtin_mul_overflow(seed, 10, &seed) &&
		     !__builtin_add_overflow(seed, (uint64_t)(*p - '0'), &seed);
	if (!ok)
		return bw_fail(err, cap, "expected " BW_SEED_WHAT ", got %s",
			       bw_quote_value(s, got, sizeof got));
	*out = seed;
	return 0;
}

/* m / 10^k in fixed notation, trailing zeros dropped; returns the length. k may exceed
 * the powers of ten a uint64_t holds (a policy may write 22 decimals), so this works on
 * the digits: m zero-padded to k + 1 of them, the point before the last k. */
static size_t put_fixed(uint64_t m, int k, char *buf, size_t cap)
{
	char d[48];
	int n = snprintf(d, sizeof d, "%0*llu", k + 1, (unsigned long long)m);
	if (n < 0 || n >= (int)sizeof d)
		return 0;
	while (k && d[n - 1] == '0') {
		n--;
		k--;
	}
	n = snprintf(buf, cap, "%.*s%s%.*s", n - k, d, k ? "." : "", k, d + n - k);
	return n < 0 ? 0 : (size_t)n;
}

/* Fewest decimals of x that, followed by suffix, parse back to want: as many as the
 * parser reads, so whatever it read can be written back. */
static int shortest_fixed(double x, const char *suffix, double want,
			  double (*reparse)(const char *), char *buf, size_t cap)
{
	for (int k = 0; k < (int)NELEM(pow10_tab); k++) {
		double scaled = x * pow10_tab[k];
		if (scaled >= pow10_tab[MAX_SIG])
			return -1;
		size_t n = put_fixed((uint64_t)(scaled + 0.5), k, buf, cap);
		snprintf(buf + n, cap > n ? cap - n : 0, "%s", suffix);
		if (reparse(buf) == want)
			return 0;
	}
	return -1;
}

static double reparse_number(const char *s)
{
	double v;
	char e[4];
	return bw_parse_number(s, &v, e, sizeof e) ? -1 : v;
}

static double reparse_ratio(const char *s)
{
	double v;
	char e[4];
	return bw_parse_ratio(s, &v, e, sizeof e) ? -1 : v;
}

static double reparse_rate(const char *s)
{
	double v;
	int b;
	char e[4];
	return bw_parse_rate(s, &v, &b, e, sizeof e) ? -1 : v;
}

static double reparse_size(const char *s)
{
	double v;
	int sized;
	char e[4];
	return bw_parse_size(s, &v, &sized, e, sizeof e) ? -1 : v;
}

void bw_format_number(double v, char *buf, size_t cap)
{
	if (v < 0 || shortest_fixed(v, "", v, reparse_number, buf, cap) < 0)
		snprintf(buf, cap, "%.17g", v);
}

void bw_format_ratio(double r, char *buf, size_t cap)
{
	if (shortest_fixed(r * 100, "%", r, reparse_ratio, buf, cap) < 0)
		bw_format_number(r, buf, cap);
}

/* Candidates in every unit; the shortest wins, then one without a fraction. */
static int better(const char *cand, const char *best)
{
	size_t a = strlen(cand), b = strlen(best);
	if (b == 0 || a != b)
		return b == 0 || a < b;
	return strchr(best, '.') && !strchr(cand, '.');
}

void bw_format_rate(double per_sec, int bytes, char *buf, size_t cap)
{
	char best[64] = "", cand[64], suffix[16];
	size_t first = bytes ? 1 : 0, last = bytes ? NELEM(size_units) - 1 : 1;
	for (size_t i = first; i < last; i++) {
		for (size_t j = 0; j < NELEM(per_units); j++) {
			snprintf(suffix, sizeof suffix, "%s/%s", size_units[i].name,
				 per_units[j].name);
			double x = per_sec * (double)per_units[j].mult / (double)size_units[i].mult;
			if (shortest_fixed(x, suffix, per_sec, reparse_rate, cand, sizeof cand) == 0 &&
			    better(cand, best))
				memcpy(best, cand, sizeof best);
		}
	}
	if (best[0])
		snprintf(buf, cap, "%s", best);
	else
		snprintf(buf, cap, "%.17g%s/s", per_sec, bytes ? "B" : "");
}

void bw_format_size(double bytes, char *buf, size_t cap)
{
	char best[64] = "", cand[64];
	for (size_t i = 1; i < NELEM(size_units) - 1; i++) {   /* "kB" is "KB" again */
		double x = bytes / (double)size_units[i].mult;
		if (shortest_fixed(x, size_units[i].name, bytes, reparse_size, cand, sizeof cand) == 0 &&
		    better(cand, best))
			memcpy(best, cand, sizeof best);
	}
	if (best[0])
		snprintf(buf, cap, "%s", best);
	else
		snprintf(buf, cap, "%.17gB", bytes);
}

/* us in unit mult, exactly, or -1 when that needs more than 9 decimals. */
static int duration_in(uint64_t us, const struct unit *u, char *buf, size_t cap)
{
	uint64_t m = (uint64_t)u->mult, rem = us % m;
	for (int k = 0; k <= 9; k++) {
		uint64_t scaled = rem * (uint64_t)pow10_tab[k];
		if (scaled % m == 0) {
			uint64_t whole = us / m * (uint64_t)pow10_tab[k] + scaled / m;
			size_t n = put_fixed(whole, k, buf, cap);
			snprintf(buf + n, cap > n ? cap - n : 0, "%s", u->name);
			return 0;
		}
	}
	return -1;
}

void bw_format_duration(bw_usec us, char *buf, size_t cap)
{
	char best[48] = "", cand[48];
	uint64_t v = us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;
	if (us == 0) {
		snprintf(buf, cap, "0s");
		return;
	}
	/* "200ms", not the shorter "0.2s": a unit the value does not reach reads badly */
	for (size_t i = 0; i < NELEM(dur_units); i++)
		if (v >= (uint64_t)dur_units[i].mult &&
		    duration_in(v, &dur_units[i], cand, sizeof cand) == 0 && better(cand, best))
			memcpy(best, cand, sizeof best);
	snprintf(buf, cap, "%s%s", us < 0 ? "-" : "", best);
}
