/* Structured events: one compact JSON object per line, formatted into a caller's buffer
 * without allocation, so it can run inside a signal handler. */
#ifndef BW_EVENTS_H
#define BW_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "vocab.h"   /* bw_level_name */

/* Longest line we format; past it fields are cut (a line must stay under PIPE_BUF for
 * atomic appends by several processes). */
#define BW_EVENT_MAX 4096

enum bw_event_kind {
	BW_EV_START, BW_EV_CONFIG_ERROR, BW_EV_FAIL, BW_EV_RETRY, BW_EV_RECOVERED,
	BW_EV_GAVE_UP, BW_EV_TIMEOUT, BW_EV_BREAKER, BW_EV_REJECTED, BW_EV_THROTTLED,
	BW_EV_LIMITED, BW_EV_FAILOVER, BW_EV_INJECTED, BW_EV_EXIT, BW_EV_WARNING,
	BW_EV_RELOAD, BW_EV_RESTORED, BW_EV_CALLS, BW_EV_OUTAGE, BW_EV_BULKHEAD_FULL, BW_EV_SHED,
	BW_EV_FLEET, BW_EV_COUNT
};

/* Every field is optional: NULL strings, negative numbers and zero flags are left out. */
struct bw_event {
	enum bw_event_kind kind;
	enum bw_level lvl;
	const char *rule;
	int op;                  /* enum bw_op, -1 none */
	const char *call;
	const char *dest;
	const char *host;
	const char *db;
	int fd;                  /* -1 none */
	int err;                 /* bw_err code, 0 none */
	int attempt, attempts;   /* -1 none */
	long n;                  /* the attempt's number (bw_attempt_n), -1 none */
	double delay_ms, elapsed_ms;   /* < 0 none */
	const char *from, *to, *reason;
	int observe, injected;
	const char *msg;
	const char *extra;       /* raw JSON members appended last ("\"k\":v,..."), or NULL */
};

/* Process facts every event carries. */
struct bw_event_ctx {
	int64_t wall_us;         /* UTC microseconds since the epoch */
	long pid, tid;
	const char *prog;
};

void bw_event_init(struct bw_event *ev, enum bw_event_kind kind, enum bw_level lvl);
const char *bw_event_name(enum bw_event_kind kind);
enum bw_level bw_event_default_level(enum bw_event_kind kind);

/* Format one line ending in '\n' into buf, NUL-terminated (so at most cap - 1 bytes);
 * returns its length. Never fails: members that do not fit are dropped whole and the
 * object is still closed. cap < 4 (no room for "{}\n"): returns 0. */
size_t bw_event_format(char *buf, size_t cap, const struct bw_event_ctx *ctx,
		       const struct bw_event *ev);

/* JSON helpers for building `extra`: append to buf at *len, bounded by cap, keeping buf
 * NUL-terminated. All or nothing: a piece that does not fit leaves *len unchanged.
 * A NULL string is written as null by bw_json_str, as nothing by bw_json_raw. */
void bw_json_str(char *buf, size_t cap, size_t *len, const char *s);
void bw_json_raw(char *buf, size_t cap, size_t *len, const char *s);
void bw_json_int(char *buf, size_t cap, size_t *len, int64_t v);
void bw_json_uint(char *buf, size_t cap, size_t *len, uint64_t v);
void bw_json_ms(char *buf, size_t cap, size_t *len, double ms);
/* A quoted RFC 3339 UTC time, as the ts member. */
void bw_json_ts(char *buf, size_t cap, size_t *len, int64_t wall_us);

#endif
