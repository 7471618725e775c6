/* `bulwark report --format json`: the same figures as the table, whole, as one JSON
 * document whose keys always come in the same order, for scripts and dashboards. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include "report.h"

/* jansson reports allocation failures through return values; a half-built document
 * must not be printed as if it were the report. */
static void oom(void)
{
	fputs("bulwark report: out of memory\n", stderr);
	exit(1);
}

static void set(json_t *obj, const char *key, json_t *v)
{
	if (json_object_set_new(obj, key, v) != 0)
		oom();
}

static void push(json_t *arr, json_t *v)
{
	if (json_array_append_new(arr, v) != 0)
		oom();
}

static json_t *obj(void)
{
	json_t *o = json_object();
	if (!o)
		oom();
	return o;
}

static json_t *arr(void)
{
	json_t *a = json_array();
	if (!a)
		oom();
	return a;
}

/* Whole milliseconds as integers, so that 200 reads 200 and not 200.0. */
static json_t *ms(int64_t us)
{
	if (us % 1000 == 0)
		return json_integer(us / 1000);
	return json_real((double)us / 1000.0);
}

static json_t *tally(const struct bw_rp_tally *t)
{
	json_t *o = obj();
	for (size_t i = 0; i < t->n; i++)
		set(o, t->v[i].name, json_integer(t->v[i].n));
	return o;
}

static json_t *delay_obj(struct bw_rp_delays *d)
{
	json_t *o = obj();
	set(o, "count", json_integer((json_int_t)d->n));
	set(o, "total", ms(d->total_us));
	set(o, "p50", d->n ? ms(bw_rp_quantile(d, 0.5)) : json_null());
	set(o, "p99", d->n ? ms(bw_rp_quantile(d, 0.99)) : json_null());
	return o;
}

/* One side's figures into o, in the order the table reads. */
static void side_into(json_t *o, struct bw_rp_side *s)
{
	set(o, "failures", json_integer(s->errs.total));
	set(o, "errors", tally(&s->errs));
	set(o, "retries", json_integer(s->count[BW_RP_RETRIES]));
	set(o, "recovered", json_integer(s->count[BW_RP_RECOVERED]));
	set(o, "gave_up", json_integer(s->gave_up.total));
	set(o, "gave_up_reasons", tally(&s->gave_up));
	for (int c = BW_RP_REJECTED; c < BW_RP_NCOUNT; c++)
		set(o, bw_rp_count_keys[c], json_integer(s->count[c]));
	set(o, "delay_ms", delay_obj(&s->delays));
}

static json_t *ts(const char *s, int have)
{
	return have ? json_string(s) : json_null();
}

int bw_report_print_json(struct bw_report *r, FILE *out)
{
	json_t *root = obj();
	set(root, "processes", json_integer((json_int_t)r->n_pids));
	set(root, "files", json_integer(r->files));
	set(root, "events", json_integer(r->events));
	set(root, "lines", json_integer(r->lines));
	set(root, "skipped_lines", json_integer(r->skipped));
	set(root, "config_errors", json_integer(r->config_errors));
	set(root, "warnings", json_integer(r->warnings));
	set(root, "first", ts(r->first_ts, r->have_ts));
	set(root, "last", ts(r->last_ts, r->have_ts));
	set(root, "span_ms", r->have_ts ? ms(r->last_us - r->first_us) : json_null());

	json_t *dests = arr();
	for (size_t i = 0; i < r->n_groups; i++) {
		struct bw_rp_group *g = r->groups[i];
		json_t *o = obj();
		set(o, "rule", json_string(g->rule));
		set(o, "dest", json_string(g->dest));
		side_into(o, &g->did);
		json_t *w = obj();
		side_into(w, &g->observed);
		set(o, "observe", w);
		push(dests, o);
	}
	set(root, "destinations", dests);

	json_t *errs = arr();
	for (size_t i = 0; i < r->top_errs.n; i++) {
		json_t *o = obj();
		set(o, "err", json_string(r->top_errs.v[i].name));
		set(o, "count", json_integer(r->top_errs.v[i].n));
		set(o, "dests", json_integer(r->top_errs_dests[i]));
		push(errs, o);
	}
	set(root, "top_errors", errs);

	json_t *rules = arr();
	for (size_t i = 0; i < r->n_rules; i++) {
		json_t *o = obj();
		set(o, "rule", json_string(r->rules[i].name));
		set(o, "processes", json_integer(r->rules[i].processes));
		for (int s = 0; s < BW_RP_NSTAT; s++)
			set(o, bw_rp_stat_keys[s], json_integer(r->rules[i].stat[s]));
		push(rules, o);
	}
	set(root, "rules", rules);

	/* Insertion order is kept (JSON_PRESERVE_ORDER); 15 digits print 0.1 as 0.1. */
	int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
			    JSON_REAL_PRECISION(15));
	fputc('\n', out);
	json_decref(root);
	return rc == 0 ? 0 : -1;
}
