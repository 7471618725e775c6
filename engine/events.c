/* Structured events as JSON Lines. Everything here is async-signal-safe: no allocation,
 * no stdio, no locale, no time zone database; only stores into the caller's buffer. */
#include "decimal.h"
#include "events.h"
#include "ops.h"

#include "errnames.h"

/* ---- names ---- */

static const char *const ev_names[BW_EV_COUNT] = {
	[BW_EV_START] = "start",         [BW_EV_CONFIG_ERROR] = "config_error",
	[BW_EV_FAIL] = "fail",           [BW_EV_RETRY] = "retry",
	[BW_EV_RECOVERED] = "recovered", [BW_EV_GAVE_UP] = "gave_up",
	[BW_EV_TIMEOUT] = "timeout",     [BW_EV_BREAKER] = "breaker",
	[BW_EV_REJECTED] = "rejected",   [BW_EV_THROTTLED] = "throttled",
	[BW_EV_LIMITED] = "limited",     [BW_EV_FAILOVER] = "failover",
	[BW_EV_INJECTED] = "injected",   [BW_EV_EXIT] = "exit",
	[BW_EV_WARNING] = "warning",     [BW_EV_RELOAD] = "reload",
	[BW_EV_RESTORED] = "restored",
	[BW_EV_CALLS] = "calls",         [BW_EV_OUTAGE] = "outage",
	[BW_EV_BULKHEAD_FULL] = "bulkhead_full", [BW_EV_SHED] = "shed",
	[BW_EV_FLEET] = "fleet",
};

/* The level table of bulwark.yaml(5) EVENTS; `warning` is ours, not in the table, and is a warn. */
static const enum bw_level ev_levels[BW_EV_COUNT] = {
	[BW_EV_START] = BW_LVL_INFO,     [BW_EV_CONFIG_ERROR] = BW_LVL_ERROR,
	[BW_EV_FAIL] = BW_LVL_INFO,      [BW_EV_RETRY] = BW_LVL_WARN,
	[BW_EV_RECOVERED] = BW_LVL_WARN, [BW_EV_GAVE_UP] = BW_LVL_ERROR,
	[BW_EV_TIMEOUT] = BW_LVL_WARN,   [BW_EV_BREAKER] = BW_LVL_WARN,
	[BW_EV_REJECTED] = BW_LVL_WARN,  [BW_EV_THROTTLED] = BW_LVL_INFO,
	[BW_EV_LIMITED] = BW_LVL_WARN,   [BW_EV_FAILOVER] = BW_LVL_WARN,
	[BW_EV_INJECTED] = BW_LVL_INFO,  [BW_EV_EXIT] = BW_LVL_INFO,
	[BW_EV_WARNING] = BW_LVL_WARN,   [BW_EV_RELOAD] = BW_LVL_WARN,
	[BW_EV_RESTORED] = BW_LVL_INFO,
	[BW_EV_CALLS] = BW_LVL_INFO,     [BW_EV_OUTAGE] = BW_LVL_INFO,
	[BW_EV_BULKHEAD_FULL] = BW_LVL_WARN, [BW_EV_SHED] = BW_LVL_WARN,
	[BW_EV_FLEET] = BW_LVL_WARN,     /* the fleet's limits no longer hold, or hold again */
};

const char *bw_event_name(enum bw_event_kind kind)
{
	if ((unsigned)kind >= BW_EV_COUNT)
		return "unknown";
	return ev_names[kind];
}

enum bw_level bw_event_default_level(enum bw_event_kind kind)
{
	if ((unsigned)kind >= BW_EV_COUNT)
		return BW_LVL_INFO;
	return ev_levels[kind];
}

void bw_event_init(struct bw_event *ev, enum bw_event_kind kind, enum bw_level lvl)
{
	/* The compound literal zeroes the pointers and flags; only the -1s need naming. */
	*ev = (struct bw_event){
		.kind = kind, .lvl = lvl, .op = -1, .fd = -1,
		.attempt = -1, .attempts = -1, .n = -1, .delay_ms = -1.0, .elapsed_ms = -1.0,
	};
}

/* ---- bounded writer ----
 * Writes stop at `lim`; overflowing sets `full` instead of writing, so a member can be
 * written optimistically and rolled back as a whole. */

struct jw {
	char *buf;
	size_t lim;
	size_t len;
	int full;
	int members;             /* members written so far: the next one needs a comma */
};

static void put(struct jw *w, char c)
{
	if (w->len < w->lim)
		w->buf[w->len++] = c;
	else
		w->full = 1;
}

static void put_n(struct jw *w, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(w, s[i]);
}

static void put_s(struct jw *w, const char *s)
{
	while (*s && !w->full)
		put(w, *s++);
}

static void put_u64(struct jw *w, uint64_t v)
{
	char d[BW_DECIMAL_MAX];
	put_n(w, d, bw_decimal(d, v));
}

static void put_i64(struct jw *w, int64_t v)
{
	/* Negate in unsigned arithmetic so INT64_MIN works. */
	if (v < 0) {
		put(w, '-');
		put_u64(w, 0 - (uint64_t)v);
	} else {
		put_u64(w, (uint64_t)v);
	}
}

/* Fixed-width zero-padded decimal, for dates and microseconds. */
static void put_pad(struct jw *w, unsigned v, int width)
{
	char tmp[10];
	for (int i = width - 1; i >= 0; i--) {
		tmp[i] = (char)('0' + v % 10);
		v /= 10;
	}
	put_n(w, tmp, (size_t)width);
}

/* Milliseconds rounded to the microsecond, trailing fractional zeros trimmed. Non-finite
 * values have no JSON spelling, so they become null. */
static void put_ms(struct jw *w, double ms)
{
	if (ms != ms || ms - ms != 0) {
		put_s(w, "null");
		return;
	}
	int neg = ms < 0;
	double mag = neg ? -ms : ms;
	if (mag > 9e15)          /* keeps mag * 1000 inside uint64_t; ~285000 years */
		mag = 9e15;
	uint64_t us = (uint64_t)(mag * 1000.0 + 0.5);
	if (neg && us)           /* no "-0" */
		put(w, '-');
	put_u64(w, us / 1000);
	unsigned frac = (unsigned)(us % 1000);
	if (!frac)
		return;
	put(w, '.');
	char d[3] = { (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
		      (char)('0' + frac % 10) };
	size_t n = 3;
	while (d[n - 1] == '0')
		n--;
	put_n(w, d, n);
}

/* ---- strings ---- */

/* Length of the well-formed UTF-8 sequence at s (1-4), or 0 if ill-formed, with *skip
 * set to the bytes to replace by one U+FFFD (the maximal ill-formed prefix, as Unicode
 * recommends). The terminating NUL fails every continuation test, so we never read past
 * the end of s. */
static size_t utf8_seq(const unsigned char *s, size_t *skip)
{
	unsigned c = s[0];
	unsigned lo = 0x80, hi = 0xBF;
	size_t need;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0;       /* overlong */
		if (c == 0xED)
			hi = 0x9F;       /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90;       /* overlong */
		if (c == 0xF4)
			hi = 0x8F;       /* past U+10FFFF */
	} else {
		*skip = 1;
		return 0;
	}
	for (size_t i = 1; i < need; i++) {
		if (s[i] < lo || s[i] > hi) {
			*skip = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return need;
}

static void put_escaped_ctl(struct jw *w, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	switch (c) {
	case '\b': put_s(w, "\\b"); return;
	case '\f': put_s(w, "\\f"); return;
	case '\n': put_s(w, "\\n"); return;
	case '\r': put_s(w, "\\r"); return;
	case '\t': put_s(w, "\\t"); return;
	}
	put_s(w, "\\u00");
	put(w, hex[c >> 4]);
	put(w, hex[c & 15]);
}

/* A JSON string literal, quotes included. */
static void put_str(struct jw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	put(w, '"');
	while (*p && !w->full) {      /* once full the member is dropped anyway */
		size_t skip = 0, n = utf8_seq(p, &skip);
		if (!n) {
			put_s(w, "\xEF\xBF\xBD");
			p += skip;
		} else if (*p == '"' || *p == '\\') {
			put(w, '\\');
			put(w, (char)*p++);
		} else if (*p < 0x20) {
			put_escaped_ctl(w, *p++);
		} else {
			put_n(w, (const char *)p, n);
			p += n;
		}
	}
	put(w, '"');
}

/* ---- members ----
 * Each member is written whole or not at all: on overflow the writer rewinds to where
 * the member began, and later (perhaps shorter) members still get their chance. */

static size_t mem_begin(struct jw *w, const char *key)
{
	size_t mark = w->len;
	if (w->members)
		put(w, ',');
	put(w, '"');
	put_s(w, key);
	put_s(w, "\":");
	return mark;
}

static void mem_end(struct jw *w, size_t mark)
{
	if (w->full) {
		w->len = mark;
		w->full = 0;
	} else {
		w->members++;
	}
}

static void mem_str(struct jw *w, const char *key, const char *s)
{
	if (!s)
		return;
	size_t mark = mem_begin(w, key);
	put_str(w, s);
	mem_end(w, mark);
}

static void mem_int(struct jw *w, const char *key, int64_t v)
{
	size_t mark = mem_begin(w, key);
	put_i64(w, v);
	mem_end(w, mark);
}

static void mem_ms(struct jw *w, const char *key, double ms)
{
	if (!(ms >= 0))          /* negative or NaN: unset */
		return;
	size_t mark = mem_begin(w, key);
	put_ms(w, ms);
	mem_end(w, mark);
}

static void mem_true(struct jw *w, const char *key, int flag)
{
	if (!flag)
		return;
	size_t mark = mem_begin(w, key);
	put_s(w, "true");
	mem_end(w, mark);
}

/* ---- time ---- */

struct civil {
	unsigned year, month, day;
};

/* Days since 1970-01-01 to a proleptic Gregorian date (days >= 0). Shift the epoch to
 * 0000-03-01 so the leap day falls at the end of a year, then split into 400-year eras
 * of 146097 days, years within the era, and a March-based day of year whose months
 * follow a 153-days-per-5-months pattern. */
static struct civil civil_from_days(int64_t days)
{
	int64_t z = days + 719468;
	int64_t era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);                       /* [0, 146096] */
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);            /* [0, 365] */
	unsigned mp = (5 * doy + 2) / 153;                                /* [0, 11], 0 = Mar */
	struct civil c;
	c.day = doy - (153 * mp + 2) / 5 + 1;
	c.month = mp < 10 ? mp + 3 : mp - 9;
	c.year = (unsigned)(yoe + era * 400) + (c.month <= 2);
	return c;
}

/* Latest instant with a four-digit year: 9999-12-31T23:59:59.999999Z. */
#define BW_WALL_MAX_US INT64_C(253402300799999999)

/* RFC 3339 UTC with microseconds. Instants before 1970 or past year 9999 are clamped:
 * a wrong clock must not produce an unparseable timestamp. */
static void put_ts(struct jw *w, int64_t wall_us)
{
	if (wall_us < 0)
		wall_us = 0;
	if (wall_us > BW_WALL_MAX_US)
		wall_us = BW_WALL_MAX_US;
	int64_t secs = wall_us / 1000000;
	unsigned us = (unsigned)(wall_us % 1000000);
	unsigned sod = (unsigned)(secs % 86400);
	struct civil c = civil_from_days(secs / 86400);

	put(w, '"');
	put_pad(w, c.year, 4);
	put(w, '-');
	put_pad(w, c.month, 2);
	put(w, '-');
	put_pad(w, c.day, 2);
	put(w, 'T');
	put_pad(w, sod / 3600, 2);
	put(w, ':');
	put_pad(w, sod / 60 % 60, 2);
	put(w, ':');
	put_pad(w, sod % 60, 2);
	put(w, '.');
	put_pad(w, us, 6);
	put_s(w, "Z\"");
}

static void mem_ts(struct jw *w, int64_t wall_us)
{
	size_t mark = mem_begin(w, "ts");
	put_ts(w, wall_us);
	mem_end(w, mark);
}

/* ---- the event ---- */

static void mem_op(struct jw *w, int op)
{
	if (op < 0 || op >= BW_OP_COUNT)
		return;
	mem_str(w, "op", bw_op_name(op));
}

static void mem_err(struct jw *w, int err)
{
	if (err)
		mem_str(w, "err", bw_err_name(err));
}

static void mem_count(struct jw *w, const char *key, int v)
{
	if (v >= 0)
		mem_int(w, key, v);
}

/* `extra` is trusted raw members; stray commas at either end are tolerated so callers
 * can build it with a separator after every member. */
static void mem_extra(struct jw *w, const char *extra)
{
	if (!extra)
		return;
	while (*extra == ',')
		extra++;
	size_t n = 0;
	while (extra[n])
		n++;
	while (n && extra[n - 1] == ',')
		n--;
	if (!n)
		return;
	size_t mark = w->len;
	if (w->members)
		put(w, ',');
	put_n(w, extra, n);
	mem_end(w, mark);
}

static void put_ctx(struct jw *w, const struct bw_event_ctx *ctx, const struct bw_event *ev)
{
	if (ctx)
		mem_ts(w, ctx->wall_us);
	mem_str(w, "lvl", bw_level_name(ev->lvl));
	mem_str(w, "event", bw_event_name(ev->kind));
	if (ctx) {
		mem_int(w, "pid", ctx->pid);
		mem_int(w, "tid", ctx->tid);
		mem_str(w, "prog", ctx->prog);
	}
}

static void put_fields(struct jw *w, const struct bw_event *ev)
{
	mem_str(w, "rule", ev->rule);
	mem_op(w, ev->op);
	mem_str(w, "call", ev->call);
	mem_str(w, "dest", ev->dest);
	mem_str(w, "host", ev->host);
	mem_str(w, "db", ev->db);
	mem_count(w, "fd", ev->fd);
	mem_err(w, ev->err);
	mem_count(w, "attempt", ev->attempt);
	mem_count(w, "attempts", ev->attempts);
	if (ev->n >= 0)
		mem_int(w, "n", ev->n);
	mem_ms(w, "delay_ms", ev->delay_ms);
	mem_ms(w, "elapsed_ms", ev->elapsed_ms);
	mem_str(w, "from", ev->from);
	mem_str(w, "to", ev->to);
	mem_str(w, "reason", ev->reason);
	mem_true(w, "observe", ev->observe);
	mem_true(w, "injected", ev->injected);
	mem_str(w, "msg", ev->msg);
	mem_extra(w, ev->extra);
}

/* The line is NUL-terminated too (for callers that log it as a string), so it is at most
 * cap - 1 bytes; "}\n\0" is reserved up front so the object always closes. */
size_t bw_event_format(char *buf, size_t cap, const struct bw_event_ctx *ctx,
		       const struct bw_event *ev)
{
	if (!buf || cap < 4) {   /* not even room for "{}\n" */
		if (buf && cap)
			buf[0] = '\0';
		return 0;
	}
	struct jw w = { .buf = buf, .lim = cap - 3 };
	put(&w, '{');
	if (ev) {
		put_ctx(&w, ctx, ev);
		put_fields(&w, ev);
	}
	buf[w.len++] = '}';
	buf[w.len++] = '\n';
	buf[w.len] = '\0';
	return w.len;
}

/* ---- helpers for `extra` ----
 * Same writer, leaving room for a NUL so the result can be passed as ev->extra. A piece
 * that does not fit is not written at all: *len stays and buf stays terminated there. */

static int helper_open(struct jw *w, char *buf, size_t cap, const size_t *len)
{
	if (!buf || !len || *len >= cap)
		return 0;
	*w = (struct jw){ .buf = buf, .lim = cap - 1, .len = *len };
	return 1;
}

static void helper_close(struct jw *w, size_t *len)
{
	if (!w->full)
		*len = w->len;
	w->buf[*len] = '\0';
}

void bw_json_str(char *buf, size_t cap, size_t *len, const char *s)
{
	struct jw w;
	if (!helper_open(&w, buf, cap, len))
		return;
	if (s)
		put_str(&w, s);
	else
		put_s(&w, "null");
	helper_close(&w, len);
}

void bw_json_raw(char *buf, size_t cap, size_t *len, const char *s)
{
	struct jw w;
	if (!helper_open(&w, buf, cap, len))
		return;
	if (s)
		put_s(&w, s);
	helper_close(&w, len);
}

void bw_json_int(char *buf, size_t cap, size_t *len, int64_t v)
{
	struct jw w;
	if (!helper_open(&w, buf, cap, len))
		return;
	put_i64(&w, v);
	helper_close(&w, len);
}

void bw_json_uint(char *buf, size_t cap, size_t *len, uint64_t v)
{
	struct jw w;
	if (!helper_open(&w, buf, cap, len))
		return;
	put_u64(&w, v);
	helper_close(&w, len);
}

void bw_json_ms(char *buf, size_t cap, size_t *len, double ms)
{
	struct jw w;
	if (!helper_open(&w, buf, cap, len))
		return;
	put_ms(&w, ms);
	helper_close(&w, len);
}

void bw_json_ts(char *buf, size_t cap, size_t *len, int64_t wall_us)
{
	struct jw w;
	if (!helper_open(&w, buf, cap, len))
		return;
	put_ts(&w, wall_us);
	helper_close(&w, len);
}
