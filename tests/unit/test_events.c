/* Events: JSON Lines formatting, escaping, dates, truncation and the `extra` helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <string.h>

#include "events.h"
#include "errnames.h"

#define CANARY 0xA5
#define SLACK 32

/* ---- a strict, tiny JSON checker ----
 * Compact JSON only: whitespace outside strings is an error, so it also proves the
 * output has none. Strings must be well-formed UTF-8 without raw control characters. */

struct jp {
	const char *p, *end;
	/* top-level members, recorded when non-NULL */
	const char **mstart, **mend;
	int nm, maxm;
};

static int jp_value(struct jp *j, int depth);

/* Decodes one UTF-8 sequence by code point, independently of the formatter's table. */
static int jp_utf8(struct jp *j)
{
	const unsigned char *s = (const unsigned char *)j->p;
	size_t left = (size_t)(j->end - j->p), n;
	unsigned cp, min;

	if (s[0] < 0x80) { n = 1; cp = s[0]; min = 0; }
	else if ((s[0] & 0xE0) == 0xC0) { n = 2; cp = s[0] & 0x1F; min = 0x80; }
	else if ((s[0] & 0xF0) == 0xE0) { n = 3; cp = s[0] & 0x0F; min = 0x800; }
	else if ((s[0] & 0xF8) == 0xF0) { n = 4; cp = s[0] & 0x07; min = 0x10000; }
	else return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	j->p += n;
	return 1;
}

static int jp_string(struct jp *j)
{
	if (j->p >= j->end || *j->p != '"')
		return 0;
	j->p++;
	while (j->p < j->end) {
		unsigned char c = (unsigned char)*j->p;
		if (c == '"') {
			j->p++;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			j->p++;
			if (j->p >= j->end)
				return 0;
			if (*j->p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (j->p + i >= j->end || !strchr("0123456789abcdefABCDEF", j->p[i]) ||
					    !j->p[i])
						return 0;
				j->p += 5;
			} else if (*j->p && strchr("\"\\/bfnrt", *j->p)) {
				j->p++;
			} else {
				return 0;
			}
			continue;
		}
		if (!jp_utf8(j))
			return 0;
	}
	return 0;
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
	else if (!jp_digits(j))
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

static int jp_word(struct jp *j, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n))
		return 0;
	j->p += n;
	return 1;
}

static int jp_peek(struct jp *j, char c)
{
	return j->p < j->end && *j->p == c;
}

static int jp_object(struct jp *j, int depth)
{
	j->p++;
	if (jp_peek(j, '}')) {
		j->p++;
		return 1;
	}
	for (;;) {
		const char *start = j->p;
		if (!jp_string(j) || !jp_peek(j, ':'))
			return 0;
		j->p++;
		if (!jp_value(j, depth + 1))
			return 0;
		if (depth == 0 && j->mstart && j->nm < j->maxm) {
			j->mstart[j->nm] = start;
			j->mend[j->nm++] = j->p;
		}
		if (jp_peek(j, '}')) {
			j->p++;
			return 1;
		}
		if (!jp_peek(j, ','))
			return 0;
		j->p++;
	}
}

static int jp_array(struct jp *j, int depth)
{
	j->p++;
	if (jp_peek(j, ']')) {
		j->p++;
		return 1;
	}
	for (;;) {
		if (!jp_value(j, depth + 1))
			return 0;
		if (jp_peek(j, ']')) {
			j->p++;
			return 1;
		}
		if (!jp_peek(j, ','))
			return 0;
		j->p++;
	}
}

static int jp_value(struct jp *j, int depth)
{
	if (j->p >= j->end || depth > 32)
		return 0;
	switch (*j->p) {
	case '{': return jp_object(j, depth);
	case '[': return jp_array(j, depth);
	case '"': return jp_string(j);
	case 't': return jp_word(j, "true");
	case 'f': return jp_word(j, "false");
	case 'n': return jp_word(j, "null");
	default:  return jp_number(j);
	}
}

/* One event line: a JSON object, then exactly one '\n', then the NUL. */
static int valid_line(const char *s, size_t len, struct jp *j)
{
	if (len < 3 || strlen(s) != len || s[len - 1] != '\n' || s[0] != '{')
		return 0;
	j->p = s;
	j->end = s + len - 1;
	return jp_object(j, 0) && j->p == j->end;
}

static void assert_valid_line(const char *s, size_t len)
{
	struct jp j = { 0 };
	if (!valid_line(s, len, &j))
		fail_msg("invalid event line (len %zu): %s", len, s);
}

/* Checker self-test, so a lenient checker cannot hide formatter bugs. */
static void test_checker(void **state)
{
	(void)state;
	static const char *const good[] = {
		"{}\n", "{\"a\":1}\n", "{\"a\":-0.5,\"b\":[true,false,null],\"c\":{\"d\":\"\\u00e9\"}}\n",
		"{\"a\":\"\xC3\xA9\xF0\x9F\x98\x80\"}\n",
	};
	static const char *const bad[] = {
		"{}", "{} \n", "{\"a\": 1}\n", "{\"a\":1,}\n", "{\"a\":\"\x01\"}\n",
		"{\"a\":\"\xC0\xAF\"}\n", "{\"a\":\"\xED\xA0\x80\"}\n", "{\"a\":\"\\x\"}\n",
		"{\"a\":01}\n", "{\"a\":1.}\n", "{\"a\"}\n", "{\"a\":\"x}\n", "{\"a\":1}}\n",
		"{\"a\":\"\xE2\x82\"}\n",
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		struct jp j = { 0 };
		assert_true(valid_line(good[i], strlen(good[i]), &j));
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct jp j = { 0 };
		if (valid_line(bad[i], strlen(bad[i]), &j))
			fail_msg("checker accepted %s", bad[i]);
	}
}

/* ---- fixtures ---- */

/* 2026-11-25T08:01:02.123456Z */
#define T_2026 INT64_C(1795593662123456)

static const struct bw_event_ctx ctx = { .wall_us = T_2026, .pid = 4242, .tid = 4243,
					 .prog = "app" };

#define BASE "{\"ts\":\"2026-11-25T08:01:02.123456Z\",\"lvl\":\"warn\",\"event\":\"retry\"," \
	     "\"pid\":4242,\"tid\":4243,\"prog\":\"app\""

/* Formats into a buffer followed by canary bytes, and checks them and the line. */
static size_t fmt_at(char *out, size_t cap, const struct bw_event_ctx *c,
		     const struct bw_event *ev)
{
	static char buf[BW_EVENT_MAX * 4 + SLACK];
	assert_true(cap + SLACK <= sizeof buf);
	memset(buf, CANARY, cap + SLACK);
	size_t n = bw_event_format(buf, cap, c, ev);
	for (size_t i = cap; i < cap + SLACK; i++)
		assert_int_equal((unsigned char)buf[i], CANARY);
	if (cap >= 4) {
		assert_true(n < cap);
		assert_valid_line(buf, n);
	} else {
		assert_int_equal(n, 0);
	}
	memcpy(out, buf, n + (cap > 0));
	return n;
}

static char out[BW_EVENT_MAX * 4];

static const char *fmt(const struct bw_event *ev)
{
	fmt_at(out, sizeof out, &ctx, ev);
	return out;
}

static void retry_event(struct bw_event *ev)
{
	bw_event_init(ev, BW_EV_RETRY, BW_LVL_WARN);
}

/* Every optional field set: the full key order. */
static void full_event(struct bw_event *ev)
{
	retry_event(ev);
	ev->rule = "db";
	ev->op = BW_OP_CONNECT;
	ev->call = "connect";
	ev->dest = "127.0.0.1:5432";
	ev->host = "db.local";
	ev->db = "/srv/app.db";
	ev->fd = 7;
	ev->err = ECONNREFUSED;
	ev->attempt = 2;
	ev->attempts = 5;
	ev->delay_ms = 250;
	ev->elapsed_ms = 12.345;
	ev->from = "closed";
	ev->to = "open";
	ev->reason = "attempts";
	ev->observe = 1;
	ev->injected = 1;
	ev->msg = "hello";
	ev->extra = "\"k\":1,\"s\":{\"a\":[1,2]}";
}

#define FULL BASE ",\"rule\":\"db\",\"op\":\"connect\",\"call\":\"connect\"," \
	"\"dest\":\"127.0.0.1:5432\",\"host\":\"db.local\",\"db\":\"/srv/app.db\",\"fd\":7," \
	"\"err\":\"ECONNREFUSED\",\"attempt\":2,\"attempts\":5,\"delay_ms\":250," \
	"\"elapsed_ms\":12.345,\"from\":\"closed\",\"to\":\"open\",\"reason\":\"attempts\"," \
	"\"observe\":true,\"injected\":true,\"msg\":\"hello\",\"k\":1,\"s\":{\"a\":[1,2]}}\n"

/* ---- names and init ---- */

static void test_names(void **state)
{
	(void)state;
	static const struct { enum bw_event_kind k; const char *name; enum bw_level lvl; } t[] = {
		{ BW_EV_START, "start", BW_LVL_INFO },
		{ BW_EV_CONFIG_ERROR, "config_error", BW_LVL_ERROR },
		{ BW_EV_FAIL, "fail", BW_LVL_INFO },
		{ BW_EV_RETRY, "retry", BW_LVL_WARN },
		{ BW_EV_RECOVERED, "recovered", BW_LVL_WARN },
		{ BW_EV_GAVE_UP, "gave_up", BW_LVL_ERROR },
		{ BW_EV_TIMEOUT, "timeout", BW_LVL_WARN },
		{ BW_EV_BREAKER, "breaker", BW_LVL_WARN },
		{ BW_EV_REJECTED, "rejected", BW_LVL_WARN },
		{ BW_EV_THROTTLED, "throttled", BW_LVL_INFO },
		{ BW_EV_LIMITED, "limited", BW_LVL_WARN },
		{ BW_EV_FAILOVER, "failover", BW_LVL_WARN },
		{ BW_EV_INJECTED, "injected", BW_LVL_INFO },
		{ BW_EV_EXIT, "exit", BW_LVL_INFO },
		{ BW_EV_WARNING, "warning", BW_LVL_WARN },
		{ BW_EV_RELOAD, "reload", BW_LVL_WARN },
		{ BW_EV_RESTORED, "restored", BW_LVL_INFO },
		{ BW_EV_CALLS, "calls", BW_LVL_INFO },
		{ BW_EV_OUTAGE, "outage", BW_LVL_INFO },
		{ BW_EV_BULKHEAD_FULL, "bulkhead_full", BW_LVL_WARN },
		{ BW_EV_SHED, "shed", BW_LVL_WARN },
		{ BW_EV_FLEET, "fleet", BW_LVL_WARN },
	};
	assert_int_equal(sizeof t / sizeof *t, BW_EV_COUNT);
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		assert_string_equal(bw_event_name(t[i].k), t[i].name);
		assert_int_equal(bw_event_default_level(t[i].k), t[i].lvl);
	}
	assert_string_equal(bw_event_name(BW_EV_COUNT), "unknown");
	assert_string_equal(bw_level_name(BW_LVL_ERROR), "error");
	assert_string_equal(bw_level_name(BW_LVL_WARN), "warn");
	assert_string_equal(bw_level_name(BW_LVL_INFO), "info");
	assert_string_equal(bw_level_name(BW_LVL_DEBUG), "debug");
	assert_string_equal(bw_level_name((enum bw_level)99), "unknown");
}

static void test_init(void **state)
{
	(void)state;
	struct bw_event ev;
	memset(&ev, 0x5A, sizeof ev);
	bw_event_init(&ev, BW_EV_GAVE_UP, BW_LVL_ERROR);
	assert_int_equal(ev.kind, BW_EV_GAVE_UP);
	assert_int_equal(ev.lvl, BW_LVL_ERROR);
	assert_null(ev.rule);
	assert_null(ev.call);
	assert_null(ev.dest);
	assert_null(ev.host);
	assert_null(ev.db);
	assert_null(ev.from);
	assert_null(ev.to);
	assert_null(ev.reason);
	assert_null(ev.msg);
	assert_null(ev.extra);
	assert_true(ev.op < 0);
	assert_true(ev.fd < 0);
	assert_int_equal(ev.err, 0);
	assert_true(ev.attempt < 0);
	assert_true(ev.attempts < 0);
	assert_true(ev.delay_ms < 0);
	assert_true(ev.elapsed_ms < 0);
	assert_int_equal(ev.observe, 0);
	assert_int_equal(ev.injected, 0);
}

/* ---- layout ---- */

static void test_minimal(void **state)
{
	(void)state;
	struct bw_event ev;
	retry_event(&ev);
	assert_string_equal(fmt(&ev), BASE "}\n");
}

static void test_key_order(void **state)
{
	(void)state;
	struct bw_event ev;
	full_event(&ev);
	assert_string_equal(fmt(&ev), FULL);
}

/* The level written is the event's, not the kind's default. */
static void test_level_from_event(void **state)
{
	(void)state;
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_FAIL, BW_LVL_DEBUG);
	assert_non_null(strstr(fmt(&ev), "\"lvl\":\"debug\",\"event\":\"fail\","));
}

/* One optional field at a time: present exactly where expected, nothing else appears. */
static void test_each_field_present(void **state)
{
	(void)state;
	static const char *const want[] = {
		"\"rule\":\"r\"", "\"op\":\"send\"", "\"call\":\"sendmsg\"",
		"\"dest\":\"[::1]:6379\"", "\"host\":\"h.example\"", "\"db\":\"/x.db\"",
		"\"fd\":0", "\"err\":\"EAI_AGAIN\"", "\"err\":\"SQLITE_BUSY\"", "\"attempt\":0",
		"\"attempts\":1", "\"delay_ms\":0", "\"elapsed_ms\":0.5", "\"from\":\"open\"",
		"\"to\":\"half_open\"", "\"reason\":\"deadline\"", "\"observe\":true",
		"\"injected\":true", "\"msg\":\"m\"", "\"x\":null",
	};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		struct bw_event ev;
		retry_event(&ev);
		switch (i) {
		case 0: ev.rule = "r"; break;
		case 1: ev.op = BW_OP_SEND; break;
		case 2: ev.call = "sendmsg"; break;
		case 3: ev.dest = "[::1]:6379"; break;
		case 4: ev.host = "h.example"; break;
		case 5: ev.db = "/x.db"; break;
		case 6: ev.fd = 0; break;
		case 7: ev.err = bw_err_eai(EAI_AGAIN); break;
		case 8: ev.err = bw_err_sqlite(5); break;
		case 9: ev.attempt = 0; break;
		case 10: ev.attempts = 1; break;
		case 11: ev.delay_ms = 0; break;
		case 12: ev.elapsed_ms = 0.5; break;
		case 13: ev.from = "open"; break;
		case 14: ev.to = "half_open"; break;
		case 15: ev.reason = "deadline"; break;
		case 16: ev.observe = 3; break;    /* any non-zero is true */
		case 17: ev.injected = 1; break;
		case 18: ev.msg = "m"; break;
		case 19: ev.extra = "\"x\":null"; break;
		}
		char expect[256];
		strcpy(expect, BASE ",");
		strcat(expect, want[i]);
		strcat(expect, "}\n");
		assert_string_equal(fmt(&ev), expect);
	}
}

/* Every spelling of "unset" leaves the field out. */
static void test_each_field_absent(void **state)
{
	(void)state;
	struct bw_event ev;
	retry_event(&ev);
	ev.op = -3;
	ev.fd = -2;
	ev.err = 0;
	ev.attempt = -9;
	ev.attempts = -1;
	ev.delay_ms = -0.001;
	ev.elapsed_ms = NAN;
	ev.extra = "";
	assert_string_equal(fmt(&ev), BASE "}\n");

	ev.op = BW_OP_COUNT;          /* out of range: not an op */
	ev.extra = ",,";
	assert_string_equal(fmt(&ev), BASE "}\n");
}

static void test_null_ctx_and_event(void **state)
{
	(void)state;
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_START, BW_LVL_INFO);
	fmt_at(out, sizeof out, NULL, &ev);
	assert_string_equal(out, "{\"lvl\":\"info\",\"event\":\"start\"}\n");

	ev.extra = "\"version\":\"0.1.0\"";
	fmt_at(out, sizeof out, NULL, &ev);
	assert_string_equal(out, "{\"lvl\":\"info\",\"event\":\"start\",\"version\":\"0.1.0\"}\n");

	struct bw_event_ctx c = ctx;
	c.prog = NULL;
	c.pid = 1;
	c.tid = 1;
	ev.extra = NULL;
	fmt_at(out, sizeof out, &c, &ev);
	assert_string_equal(out, "{\"ts\":\"2026-11-25T08:01:02.123456Z\",\"lvl\":\"info\","
				 "\"event\":\"start\",\"pid\":1,\"tid\":1}\n");

	fmt_at(out, sizeof out, &ctx, NULL);
	assert_string_equal(out, "{}\n");
}

/* ---- extra ---- */

static void test_extra(void **state)
{
	(void)state;
	struct bw_event ev;
	retry_event(&ev);
	ev.msg = "m";
	ev.extra = "\"config\":\"/etc/b.yaml\",\"rules\":3";
	assert_string_equal(fmt(&ev), BASE ",\"msg\":\"m\",\"config\":\"/etc/b.yaml\",\"rules\":3}\n");

	/* A separator after every member is tolerated. */
	ev.extra = ",\"rules\":3,";
	assert_string_equal(fmt(&ev), BASE ",\"msg\":\"m\",\"rules\":3}\n");
}

/* The shape an `exit` event builds with the helpers. */
static void test_extra_built_with_helpers(void **state)
{
	(void)state;
	char x[256];
	size_t n = 0;
	x[0] = '\0';
	bw_json_raw(x, sizeof x, &n, "\"stats\":{");
	bw_json_str(x, sizeof x, &n, "db \"main\"");
	bw_json_raw(x, sizeof x, &n, ":{\"calls\":");
	bw_json_int(x, sizeof x, &n, 12);
	bw_json_raw(x, sizeof x, &n, ",\"p50_ms\":");
	bw_json_ms(x, sizeof x, &n, 2.5);
	bw_json_raw(x, sizeof x, &n, "}}");
	assert_string_equal(x, "\"stats\":{\"db \\\"main\\\"\":{\"calls\":12,\"p50_ms\":2.5}}");
	assert_int_equal(n, strlen(x));

	struct bw_event ev;
	bw_event_init(&ev, BW_EV_EXIT, BW_LVL_INFO);
	ev.extra = x;
	fmt_at(out, sizeof out, NULL, &ev);
	assert_string_equal(out, "{\"lvl\":\"info\",\"event\":\"exit\","
				 "\"stats\":{\"db \\\"main\\\"\":{\"calls\":12,\"p50_ms\":2.5}}}\n");
}

/* ---- escaping ---- */

static const char *json_str(const char *s)
{
	static char buf[512];
	size_t n = 0;
	buf[0] = '\0';
	bw_json_str(buf, sizeof buf, &n, s);
	assert_int_equal(n, strlen(buf));
	return buf;
}

static void test_escape_ascii(void **state)
{
	(void)state;
	assert_string_equal(json_str(""), "\"\"");
	assert_string_equal(json_str("plain /path:1"), "\"plain /path:1\"");
	assert_string_equal(json_str("a\"b"), "\"a\\\"b\"");
	assert_string_equal(json_str("back\\slash"), "\"back\\\\slash\"");
	assert_string_equal(json_str("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
	assert_string_equal(json_str("\x01\x1f\x1b"), "\"\\u0001\\u001f\\u001b\"");
	assert_string_equal(json_str("del\x7f"), "\"del\x7f\"");   /* legal in JSON */
	assert_string_equal(json_str(NULL), "null");
}

static void test_escape_utf8_kept(void **state)
{
	(void)state;
	/* é € 😀, U+D7FF, U+E000, U+FFFF, U+10FFFF: the edges next to excluded ranges. */
	static const char *const ok[] = {
		"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
		"\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF", "\xC2\x80", "\xE0\xA0\x80", "\xF0\x90\x80\x80",
		"caf\xC3\xA9 \xE2\x82\xAC" "5",
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		char expect[64];
		strcpy(expect, "\"");
		strcat(expect, ok[i]);
		strcat(expect, "\"");
		assert_string_equal(json_str(ok[i]), expect);
	}
}

#define FFFD "\xEF\xBF\xBD"

static void test_escape_utf8_invalid(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } t[] = {
		{ "\x80", FFFD },                            /* lone continuation */
		{ "a\xBF" "b", "a" FFFD "b" },
		{ "\xC0\xAF", FFFD FFFD },                   /* overlong '/' */
		{ "\xC1\xBF", FFFD FFFD },
		{ "\xE0\x80\x80", FFFD FFFD FFFD },          /* overlong NUL */
		{ "\xED\xA0\x80", FFFD FFFD FFFD },          /* surrogate D800 */
		{ "\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD }, /* past U+10FFFF */
		{ "\xF5\x80", FFFD FFFD },
		{ "\xFF\xFE", FFFD FFFD },
		{ "\xE2\x82", FFFD },                        /* truncated at the end */
		{ "\xE2\x82x", FFFD "x" },                   /* truncated mid-string */
		{ "\xF0\x9F\x98!", FFFD "!" },
		{ "\xC3\"", FFFD "\\\"" },                   /* escaping resumes after */
		{ "ok\xC3\xA9\xC3", "ok\xC3\xA9" FFFD },
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		char expect[64];
		strcpy(expect, "\"");
		strcat(expect, t[i].out);
		strcat(expect, "\"");
		assert_string_equal(json_str(t[i].in), expect);
	}
}

/* Every string field goes through the same escaping inside an event. */
static void test_escape_in_event(void **state)
{
	(void)state;
	struct bw_event ev;
	retry_event(&ev);
	ev.rule = "r\"1";
	ev.dest = "unix:/tmp/a\\b";
	ev.host = "h\x80";
	ev.msg = "line1\nline2\t\x01";
	struct bw_event_ctx c = ctx;
	c.prog = "pr\"og\xFF";
	fmt_at(out, sizeof out, &c, &ev);
	assert_string_equal(out,
		"{\"ts\":\"2026-11-25T08:01:02.123456Z\",\"lvl\":\"warn\",\"event\":\"retry\","
		"\"pid\":4242,\"tid\":4243,\"prog\":\"pr\\\"og" FFFD "\",\"rule\":\"r\\\"1\","
		"\"dest\":\"unix:/tmp/a\\\\b\",\"host\":\"h" FFFD "\","
		"\"msg\":\"line1\\nline2\\t\\u0001\"}\n");
}

/* ---- dates ---- */

static const char *ts_of(int64_t wall_us)
{
	static char ts[64];
	struct bw_event_ctx c = ctx;
	struct bw_event ev;
	c.wall_us = wall_us;
	retry_event(&ev);
	fmt_at(out, sizeof out, &c, &ev);
	assert_memory_equal(out, "{\"ts\":\"", 7);
	const char *end = strchr(out + 7, '"');
	assert_non_null(end);
	memcpy(ts, out + 7, (size_t)(end - out - 7));
	ts[end - out - 7] = '\0';
	return ts;
}

#define SEC INT64_C(1000000)

static void test_dates(void **state)
{
	(void)state;
	assert_string_equal(ts_of(0), "1970-01-01T00:00:00.000000Z");
	assert_string_equal(ts_of(1709210096 * SEC), "2024-02-29T12:34:56.000000Z");
	assert_string_equal(ts_of(1709251200 * SEC - 1), "2024-02-29T23:59:59.999999Z");
	assert_string_equal(ts_of(1709251200 * SEC), "2024-03-01T00:00:00.000000Z");
	assert_string_equal(ts_of(T_2026), "2026-11-25T08:01:02.123456Z");
	assert_string_equal(ts_of(946684799 * SEC), "1999-12-31T23:59:59.000000Z");
	assert_string_equal(ts_of(951782400 * SEC), "2000-02-29T00:00:00.000000Z");
	assert_string_equal(ts_of(1704067199 * SEC), "2023-12-31T23:59:59.000000Z");
	/* 2100 is not a leap year: February 28 is followed by March 1. */
	assert_string_equal(ts_of(4107542399 * SEC), "2100-02-28T23:59:59.000000Z");
	assert_string_equal(ts_of(4107542400 * SEC), "2100-03-01T00:00:00.000000Z");
}

static void test_microsecond_padding(void **state)
{
	(void)state;
	assert_string_equal(ts_of(1), "1970-01-01T00:00:00.000001Z");
	assert_string_equal(ts_of(1000), "1970-01-01T00:00:00.001000Z");
	assert_string_equal(ts_of(999999), "1970-01-01T00:00:00.999999Z");
	assert_string_equal(ts_of(SEC + 10), "1970-01-01T00:00:01.000010Z");
	assert_string_equal(ts_of(3723 * SEC + 45), "1970-01-01T01:02:03.000045Z");
}

/* Out-of-range clocks are clamped into four-digit years rather than misprinted. */
static void test_date_clamp(void **state)
{
	(void)state;
	assert_string_equal(ts_of(-1), "1970-01-01T00:00:00.000000Z");
	assert_string_equal(ts_of(INT64_MIN), "1970-01-01T00:00:00.000000Z");
	assert_string_equal(ts_of(253402300799 * SEC), "9999-12-31T23:59:59.000000Z");
	assert_string_equal(ts_of(INT64_MAX), "9999-12-31T23:59:59.999999Z");
}

/* Every day from 1970 to 2400 against a naive calendar walk. */
static void test_dates_exhaustive(void **state)
{
	(void)state;
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y = 1970, m = 1, d = 1;
	for (int64_t day = 0; y < 2401; day++) {
		char expect[32];
		int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		/* noon, so any off-by-a-day shows up, not just midnight rounding */
		const char *ts = ts_of((day * 86400 + 43200) * SEC);
		expect[0] = (char)('0' + y / 1000);
		expect[1] = (char)('0' + y / 100 % 10);
		expect[2] = (char)('0' + y / 10 % 10);
		expect[3] = (char)('0' + y % 10);
		expect[4] = '-';
		expect[5] = (char)('0' + m / 10);
		expect[6] = (char)('0' + m % 10);
		expect[7] = '-';
		expect[8] = (char)('0' + d / 10);
		expect[9] = (char)('0' + d % 10);
		strcpy(expect + 10, "T12:00:00.000000Z");
		if (strcmp(ts, expect))
			fail_msg("day %lld: got %s, want %s", (long long)day, ts, expect);
		if (++d > mdays[m - 1] + (m == 2 && leap)) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
	}
}

/* ---- numbers ---- */

static const char *json_ms(double ms)
{
	static char buf[64];
	size_t n = 0;
	buf[0] = '\0';
	bw_json_ms(buf, sizeof buf, &n, ms);
	assert_int_equal(n, strlen(buf));
	return buf;
}

static void test_ms_format(void **state)
{
	(void)state;
	assert_string_equal(json_ms(250), "250");
	assert_string_equal(json_ms(0.5), "0.5");
	assert_string_equal(json_ms(12.345), "12.345");
	assert_string_equal(json_ms(0), "0");
	assert_string_equal(json_ms(1.1), "1.1");
	assert_string_equal(json_ms(1.01), "1.01");
	assert_string_equal(json_ms(1.001), "1.001");
	assert_string_equal(json_ms(100.0), "100");
	assert_string_equal(json_ms(0.0004), "0");       /* below a microsecond */
	assert_string_equal(json_ms(0.0006), "0.001");   /* rounds up */
	assert_string_equal(json_ms(99.9996), "100");    /* carries into the integer part */
	assert_string_equal(json_ms(1234567.25), "1234567.25");
	assert_string_equal(json_ms(-2.5), "-2.5");
	assert_string_equal(json_ms(-0.0001), "0");      /* no "-0" */
	assert_string_equal(json_ms(NAN), "null");
	assert_string_equal(json_ms(INFINITY), "null");
	assert_string_equal(json_ms(-INFINITY), "null");
	assert_string_equal(json_ms(1e300), "9000000000000000");
}

static void test_ms_in_event(void **state)
{
	(void)state;
	struct bw_event ev;
	retry_event(&ev);
	ev.delay_ms = 0.25;
	ev.elapsed_ms = 1500;
	assert_string_equal(fmt(&ev), BASE ",\"delay_ms\":0.25,\"elapsed_ms\":1500}\n");
}

static void test_json_int(void **state)
{
	(void)state;
	static const struct { int64_t v; const char *s; } t[] = {
		{ 0, "0" }, { 7, "7" }, { -1, "-1" }, { 1234567890123, "1234567890123" },
		{ INT64_MAX, "9223372036854775807" }, { INT64_MIN, "-9223372036854775808" },
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		char buf[32];
		size_t n = 0;
		bw_json_int(buf, sizeof buf, &n, t[i].v);
		assert_string_equal(buf, t[i].s);
		assert_int_equal(n, strlen(t[i].s));
	}

	struct bw_event ev;
	retry_event(&ev);
	struct bw_event_ctx c = ctx;
	c.pid = 2147483647;
	c.tid = -1;                   /* unknown tid still prints: it is a common key */
	fmt_at(out, sizeof out, &c, &ev);
	assert_non_null(strstr(out, ",\"pid\":2147483647,\"tid\":-1,"));
}

/* ---- bounds ---- */

/* Members of a line, as spans into it. */
static int members(const char *line, size_t len, const char **ms, const char **me, int max)
{
	struct jp j = { .mstart = ms, .mend = me, .maxm = max };
	assert_true(valid_line(line, len, &j));
	return j.nm;
}

/* At every cap the line is valid, closed, within cap, and made of whole members of the
 * untruncated line in their original order. */
static void check_all_caps(const struct bw_event *ev)
{
	static char full[BW_EVENT_MAX * 4], cut[BW_EVENT_MAX * 4];
	const char *fs[64], *fe[64], *cs[64], *ce[64];
	size_t flen = fmt_at(full, sizeof full, &ctx, ev);
	int nf = members(full, flen, fs, fe, 64);

	for (size_t cap = 0; cap <= flen + 8; cap++) {
		size_t n = fmt_at(cut, cap, &ctx, ev);
		if (cap < 4) {
			if (cap)
				assert_int_equal(cut[0], '\0');
			continue;
		}
		assert_true(n <= cap - 1);
		assert_memory_equal(cut + n - 2, "}\n", 2);
		if (cap > flen) {
			assert_string_equal(cut, full);
			continue;
		}
		assert_true(n < flen);
		int nc = members(cut, n, cs, ce, 64), k = 0;
		for (int i = 0; i < nc; i++) {
			size_t len = (size_t)(ce[i] - cs[i]);
			while (k < nf && ((size_t)(fe[k] - fs[k]) != len || memcmp(fs[k], cs[i], len)))
				k++;
			if (k == nf)
				fail_msg("cap %zu: member not whole or out of order: %.*s", cap,
					 (int)len, cs[i]);
			k++;
		}
	}
}

static void test_truncation_full_event(void **state)
{
	(void)state;
	struct bw_event ev;
	full_event(&ev);
	check_all_caps(&ev);
}

/* Escapes and multi-byte characters must never be split at the cut. */
static void test_truncation_escapes(void **state)
{
	(void)state;
	struct bw_event ev;
	retry_event(&ev);
	ev.rule = "\"\"\"\"";
	ev.msg = "\xE2\x82\xAC\xE2\x82\xAC\x01\x01\xF0\x9F\x98\x80\\\\\xFF";
	ev.reason = "\n\n\n";
	check_all_caps(&ev);
}

static void test_small_caps(void **state)
{
	(void)state;
	struct bw_event ev;
	full_event(&ev);
	for (size_t cap = 0; cap < 4; cap++)
		assert_int_equal(fmt_at(out, cap, &ctx, &ev), 0);
	assert_int_equal(bw_event_format(NULL, 100, &ctx, &ev), 0);
	/* The smallest closed object. */
	for (size_t cap = 4; cap < 10; cap++) {
		assert_int_equal(fmt_at(out, cap, &ctx, &ev), 3);
		assert_string_equal(out, "{}\n");
	}
	/* Room for lvl only. */
	size_t n = strlen("{\"lvl\":\"warn\"}\n");
	assert_int_equal(fmt_at(out, n + 1, &ctx, &ev), n);
	assert_string_equal(out, "{\"lvl\":\"warn\"}\n");
}

/* A huge member is dropped whole; smaller members after it still make it. */
static void test_drop_big_keep_small(void **state)
{
	(void)state;
	static char big[BW_EVENT_MAX * 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';

	struct bw_event ev;
	retry_event(&ev);
	ev.msg = big;
	ev.extra = "\"k\":1";
	size_t n = fmt_at(out, BW_EVENT_MAX, &ctx, &ev);
	assert_true(n < BW_EVENT_MAX);
	assert_string_equal(out, BASE ",\"k\":1}\n");

	/* Exactly enough room: the line is whole; one byte less drops the last member. */
	ev.msg = "hello";
	char full[512];
	size_t flen = fmt_at(full, sizeof full, &ctx, &ev);
	assert_int_equal(fmt_at(out, flen + 1, &ctx, &ev), flen);
	assert_string_equal(out, full);
	fmt_at(out, flen, &ctx, &ev);
	assert_string_equal(out, BASE ",\"msg\":\"hello\"}\n");
}

/* Helpers are all-or-nothing per call and never write past cap. */
static void test_helpers_bounded(void **state)
{
	(void)state;
	char buf[64 + SLACK];
	for (size_t cap = 0; cap <= 16; cap++) {
		memset(buf, CANARY, sizeof buf);
		size_t n = 0;
		if (cap)
			buf[0] = '\0';
		bw_json_str(buf, cap, &n, "h\"llo");         /* "h\"llo" is 8 bytes */
		if (cap >= 9) {
			assert_int_equal(n, 8);
			assert_string_equal(buf, "\"h\\\"llo\"");
		} else {
			assert_int_equal(n, 0);
			if (cap)
				assert_int_equal(buf[0], '\0');
		}
		bw_json_int(buf, cap, &n, -123);
		bw_json_ms(buf, cap, &n, 1.5);
		bw_json_raw(buf, cap, &n, ",\"z\":");
		assert_true(n < cap || (cap == 0 && n == 0));
		if (cap)
			assert_int_equal(strlen(buf), n);
		for (size_t i = cap; i < sizeof buf; i++)
			assert_int_equal((unsigned char)buf[i], CANARY);
	}
}

static void test_helpers_keep_prefix(void **state)
{
	(void)state;
	char buf[8];
	size_t n = 0;
	buf[0] = '\0';
	bw_json_raw(buf, sizeof buf, &n, "\"a\":");
	assert_int_equal(n, 4);
	bw_json_str(buf, sizeof buf, &n, "long");     /* 6 bytes + NUL do not fit */
	assert_int_equal(n, 4);
	assert_string_equal(buf, "\"a\":");
	bw_json_int(buf, sizeof buf, &n, 123);
	assert_string_equal(buf, "\"a\":123");
	assert_int_equal(n, 7);
	bw_json_raw(buf, sizeof buf, &n, "x");        /* full: needs the NUL's byte */
	assert_string_equal(buf, "\"a\":123");

	/* *len at or past cap: nothing is touched. */
	memset(buf, 'q', sizeof buf);
	n = sizeof buf;
	bw_json_str(buf, sizeof buf, &n, "a");
	bw_json_raw(buf, sizeof buf, &n, NULL);
	assert_int_equal(n, sizeof buf);
	for (size_t i = 0; i < sizeof buf; i++)
		assert_int_equal(buf[i], 'q');

	n = 0;
	bw_json_raw(buf, sizeof buf, &n, NULL);       /* NULL raw adds nothing */
	assert_int_equal(n, 0);
	assert_int_equal(buf[0], '\0');
}

/* A line at the maximum size stays within BW_EVENT_MAX and under PIPE_BUF. */
static void test_event_max(void **state)
{
	(void)state;
	static char msg[BW_EVENT_MAX];
	struct bw_event ev;
	full_event(&ev);
	for (size_t len = 3000; len < sizeof msg; len += 7) {
		memset(msg, 'y', len);
		msg[len] = '\0';
		ev.msg = msg;
		size_t n = fmt_at(out, BW_EVENT_MAX, &ctx, &ev);
		assert_true(n < BW_EVENT_MAX);
		/* Either msg fits, or it is dropped and extra takes its place. */
		if (!strstr(out, "\"msg\":"))
			assert_non_null(strstr(out, ",\"k\":1,\"s\":{\"a\":[1,2]}}\n"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checker),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_key_order),
		cmocka_unit_test(test_level_from_event),
		cmocka_unit_test(test_each_field_present),
		cmocka_unit_test(test_each_field_absent),
		cmocka_unit_test(test_null_ctx_and_event),
		cmocka_unit_test(test_extra),
		cmocka_unit_test(test_extra_built_with_helpers),
		cmocka_unit_test(test_escape_ascii),
		cmocka_unit_test(test_escape_utf8_kept),
		cmocka_unit_test(test_escape_utf8_invalid),
		cmocka_unit_test(test_escape_in_event),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_microsecond_padding),
		cmocka_unit_test(test_date_clamp),
		cmocka_unit_test(test_dates_exhaustive),
		cmocka_unit_test(test_ms_format),
		cmocka_unit_test(test_ms_in_event),
		cmocka_unit_test(test_json_int),
		cmocka_unit_test(test_truncation_full_event),
		cmocka_unit_test(test_truncation_escapes),
		cmocka_unit_test(test_small_caps),
		cmocka_unit_test(test_drop_big_keep_small),
		cmocka_unit_test(test_helpers_bounded),
		cmocka_unit_test(test_helpers_keep_prefix),
		cmocka_unit_test(test_event_max),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
