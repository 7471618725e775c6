/* `bulwark status --format json`: one document whose keys always come in the same order,
 * every group (stale ones too, marked "live": false) with every figure whole. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "breaker.h"
#include "status_model.h"
#include "jsonout.h"

/* jansson takes valid UTF-8 only: names from the file were cleaned when read, but the
 * directory comes from the command line or the environment. */
static json_t *str(const char *s)
{
	size_t n = strlen(s);
	char *c = malloc(n + 1);
	if (!c)
		return NULL;     /* bw_js_set and bw_js_push end the command on NULL */
	bw_st_clean(c, n + 1, s, n);
	json_t *v = json_string(c);
	free(c);
	return v;
}

/* Milliseconds, whole when they are. */
static json_t *ms(int64_t us)
{
	if (us % 1000 == 0)
		return json_integer(us / 1000);
	return json_real((double)us / 1000.0);
}

/* Token counts to a thousandth, whole when they are. */
static json_t *num(double v)
{
	if (!isfinite(v))
		return json_null();
	double r = round(v * 1000.0) / 1000.0;
	if (r == floor(r) && fabs(r) < 9e15)
		return json_integer((json_int_t)r);
	return json_real(r);
}

/* RFC 3339, UTC, to the microsecond, as events write it; null when unknown. */
static json_t *when(int64_t wall_us)
{
	char s[40], b[64];
	if (wall_us <= 0)
		return json_null();
	bw_st_fmt_time(s, sizeof s, wall_us);
	if (s[0] == '-')
		return json_null();
	s[19] = '\0';                      /* drop the "Z" */
	snprintf(b, sizeof b, "%s.%06lldZ", s, (long long)(wall_us % 1000000));
	return json_string(b);
}

static json_t *counts(const long b[3])
{
	json_t *o = bw_js_obj();
	bw_js_set(o, "closed", json_integer(b[BW_BRK_CLOSED]));
	bw_js_set(o, "half_open", json_integer(b[BW_BRK_HALF_OPEN]));
	bw_js_set(o, "open", json_integer(b[BW_BRK_OPEN]));
	return o;
}

static json_t *breaker(const struct bw_st_dest *d)
{
	if (!d->has_breaker)
		return json_null();
	json_t *o = bw_js_obj();
	bw_js_set(o, "state", d->pos >= 0 ? str(bw_brk_name(d->pos)) : json_null());
	bw_js_set(o, "consecutive_failures", json_integer(d->consecutive));
	bw_js_set(o, "window_failures", json_integer(d->window_fails));
	bw_js_set(o, "window_calls", json_integer(d->window_calls));
	bw_js_set(o, "window_known", json_boolean(d->window_known));
	int open = d->pos == BW_BRK_OPEN;
	bw_js_set(o, "open_for_ms", open ? ms(d->open_for_us) : json_null());
	bw_js_set(o, "probe_in_ms", open ? ms(d->open_left_us > 0 ? d->open_left_us : 0) : json_null());
	return o;
}

static json_t *bucket(const struct bw_st_dest *d)
{
	if (!d->has_bucket)
		return json_null();
	json_t *o = bw_js_obj();
	bw_js_set(o, "tokens", num(d->tokens));
	bw_js_set(o, "refilled", json_boolean(d->bucket_known));
	bw_js_set(o, "burst", d->bucket_known ? num(d->burst) : json_null());
	bw_js_set(o, "rate_per_sec", d->bucket_known ? num(d->rate) : json_null());
	bw_js_set(o, "unit", d->bucket_known ? str(d->bytes ? "bytes" : "calls") : json_null());
	bw_js_set(o, "age_ms", d->tokens_age_us >= 0 ? ms(d->tokens_age_us) : json_null());
	return o;
}

static json_t *bulkhead(const struct bw_st_dest *d)
{
	if (!d->has_bulk)
		return json_null();
	json_t *o = bw_js_obj();
	bw_js_set(o, "in_use", json_integer(d->in_use));
	bw_js_set(o, "max", d->bulk_max ? json_integer(d->bulk_max) : json_null());
	return o;
}

static json_t *group(const struct bw_st_group *g)
{
	json_t *o = bw_js_obj();
	bw_js_set(o, "group", str(g->group));
	bw_js_set(o, "live", json_boolean(g->live));
	bw_js_set(o, "health", str(bw_health_name(g->health)));
	bw_js_set(o, "breakers", counts(g->breakers));
	bw_js_set(o, "file", str(g->file));
	bw_js_set(o, "policy", g->policy[0] ? str(g->policy) : json_null());
	bw_js_set(o, "policy_loaded", json_boolean(g->policy_loaded));
	bw_js_set(o, "created", when(g->created_us));

	json_t *procs = bw_js_arr();
	for (size_t i = 0; i < g->n_procs; i++) {
		const struct bw_st_proc *p = &g->procs[i];
		json_t *x = bw_js_obj();
		bw_js_set(x, "pid", json_integer(p->pid));
		bw_js_set(x, "prog", str(p->prog));
		bw_js_set(x, "started", when(p->started_us));
		bw_js_set(x, "alive", json_boolean(p->alive));
		bw_js_push(procs, x);
	}
	bw_js_set(o, "processes", procs);

	json_t *dests = bw_js_arr();
	for (size_t i = 0; i < g->n_dests; i++) {
		const struct bw_st_dest *d = &g->dests[i];
		json_t *x = bw_js_obj();
		bw_js_set(x, "rule", str(g->rules[d->rule].name));
		bw_js_set(x, "dest", str(d->dest));
		bw_js_set(x, "scope", str(d->whole ? "rule" : "dest"));
		bw_js_set(x, "health", d->has_breaker && d->health != BW_UNKNOWN
				 ? str(bw_health_name(d->health)) : json_null());
		bw_js_set(x, "breaker", breaker(d));
		bw_js_set(x, "bucket", bucket(d));
		bw_js_set(x, "bulkhead", bulkhead(d));
		bw_js_push(dests, x);
	}
	bw_js_set(o, "destinations", dests);
	return o;
}

int bw_status_print_json(const struct bw_status *st, FILE *out)
{
	bw_js_on_oom("bulwark status", BW_UNKNOWN);
	json_t *root = bw_js_obj();
	bw_js_set(root, "health", str(bw_health_name(st->health)));
	bw_js_set(root, "status", json_integer(st->health));
	bw_js_set(root, "dir", str(st->dir));
	bw_js_set(root, "live_groups", json_integer((json_int_t)st->live));
	bw_js_set(root, "stale_groups", json_integer((json_int_t)st->stale));
	bw_js_set(root, "breakers", counts(st->breakers));
	bw_js_set(root, "time", when(st->now_wall_us));
	json_t *groups = bw_js_arr();
	for (size_t i = 0; i < st->n_groups; i++)
		bw_js_push(groups, group(&st->groups[i]));
	bw_js_set(root, "groups", groups);
	return bw_js_dump(root, out);
}
