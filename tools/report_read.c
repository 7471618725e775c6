/* `bulwark report`: reading event logs. Each line is decoded with jansson; anything that
 * is not one JSON object naming an event is skipped and said so, never fatal, since
 * logs shared with a program's stderr or cut short by a crash are the usual case. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fx.h"
#include "report.h"

/* A string member, NULL when absent, of another type, or empty: an empty dest says no
 * more than a missing one, and must not become a destination named "". */
static const char *str_of(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	return s && *s ? s : NULL;
}

/* Numbers are decoded as doubles (see decode): a whole number fits a long long here
 * when it is within +-2^63; counters are exact up to 2^53, far past any real count. */
static int whole(json_t *v, long long *out)
{
	if (!json_is_number(v))
		return 0;
	double d = json_number_value(v);
	if (!(d >= -9.2e18 && d <= 9.2e18) || d != (double)(long long)d)
		return 0;
	*out = (long long)d;
	return 1;
}

/* An exit event's `stats`: {rule: {calls: N, ...}}. Members of the wrong type are
 * passed over: the rest of the event still counts. */
static void add_stats(struct bw_report *r, json_t *stats)
{
	const char *rule;
	json_t *counters;
	if (!json_is_object(stats))
		return;
	json_object_foreach(stats, rule, counters) {
		if (!json_is_object(counters))
			continue;
		bw_report_rule_seen(r, rule);
		for (int s = 0; s < BW_RP_NSTAT; s++) {
			long long n;
			if (whole(json_object_get(counters, bw_rp_stat_keys[s]), &n))
				bw_report_add_stat(r, rule, (enum bw_rp_stat)s, n);
		}
	}
}

/* The line's event, or NULL with *why set to the reason it is skipped. */
static json_t *decode(const char *line, size_t len, char *why, size_t cap)
{
	json_error_t jerr;
	/* JSON_DECODE_ANY so that `42` or `"x"` are called what they are, not a syntax
	 * error. JSON_DECODE_INT_AS_REAL because jansson's integers are signed 64-bit and
	 * the start event's `seed` is unsigned: without it, every start event with a seed
	 * past 2^63 (half of them) would be refused as "too big integer". */
	json_t *j = json_loadb(line, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);
	if (!j) {
		snprintf(why, cap, "not JSON: %s", jerr.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		snprintf(why, cap, "not a JSON object");
	} else if (!str_of(j, "event")) {
		snprintf(why, cap, "no \"event\" name in the object");
	} else {
		return j;
	}
	json_decref(j);
	return NULL;
}

static void add_event(struct bw_report *r, json_t *j)
{
	struct bw_rp_event ev = {
		.event = str_of(j, "event"), .ts = str_of(j, "ts"), .lvl = str_of(j, "lvl"),
		.rule = str_of(j, "rule"),
		.dest = str_of(j, "dest"), .db = str_of(j, "db"), .host = str_of(j, "host"),
		.from = str_of(j, "from"), .to = str_of(j, "to"), .err = str_of(j, "err"),
		.reason = str_of(j, "reason"),
	};
	ev.has_pid = whole(json_object_get(j, "pid"), &ev.pid);
	json_t *v = json_object_get(j, "delay_ms");
	if (json_is_number(v)) {
		ev.delay_ms = json_number_value(v);
		ev.has_delay = 1;
	}
	ev.observe = json_is_true(json_object_get(j, "observe"));
	ev.no_summary = json_is_false(json_object_get(j, "summary"));
	bw_report_add(r, &ev);
	if (strcmp(ev.event, "exit") == 0)
		add_stats(r, json_object_get(j, "stats"));
}

int bw_report_read(struct bw_report *r, FILE *in, const char *name)
{
	char *line = NULL;
	size_t cap = 0;
	long long lineno = 0;
	ssize_t n;

	r->files++;
	if (r->fx)
		bw_fx_file(r->fx, name);
	for (;;) {
		errno = 0;       /* getline leaves it alone at end of file */
		if ((n = getline(&line, &cap, in)) == -1)
			break;
		lineno++;
		r->lines++;
		size_t len = (size_t)n;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		/* blank lines carry nothing and are no sign of damage: pass over them */
		size_t sp = 0;
		while (sp < len && (line[sp] == ' ' || line[sp] == '\t'))
			sp++;
		if (sp == len)
			continue;
		char why[256];
		json_t *j = decode(line, len, why, sizeof why);
		if (!j) {
			if (r->skipped++ < BW_RP_MAX_SKIP_MSGS)
				fprintf(stderr, "%s:%lld: skipped: %s\n", name, lineno, why);
			continue;
		}
		add_event(r, j);
		if (r->fx)
			bw_fx_add_json(r->fx, j, lineno);
		json_decref(j);
	}
	int err = ferror(in) ? (errno ? errno : EIO) : 0;
	free(line);
	if (err) {
		fprintf(stderr, "bulwark report: %s: %s\n", name, strerror(err));
		return -1;
	}
	return 0;
}
