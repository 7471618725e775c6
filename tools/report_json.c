/* `bulwark report --format json`: the same figures as the table, whole, as one JSON
 * document whose keys always come in the same order, for scripts and dashboards. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include "report.h"
#include "jsonout.h"

/* Whole milliseconds as integers, so that 200 reads 200 and not 200.0. */
static json_t *ms(int64_t us)
{
	if (us % 1000 == 0)
		return json_integer(us / 1000);
	return json_real((double)us / 1000.0);
}

static json_t *tally(const struct bw_rp_tally *t)
{
	json_t *o = bw_js_obj();
	for (size_t i = 0; i < t->n; i++)
		bw_js_set(o, t->v[i].name, json_integer(t->v[i].n));
	return o;
}

static json_t *delay_obj(struct bw_rp_delays *d)
{
	json_t *o = bw_js_obj();
	bw_js_set(o, "count", json_integer((json_int_t)d->n));
	bw_js_set(o, "total", ms(d->total_us));
	bw_js_set(o, "p50", d->n ? ms(bw_rp_quantile(d, 0.5)) : json_null());
	bw_js_set(o, "p99", d->n ? ms(bw_rp_quantile(d, 0.99)) : json_null());
	return o;
}

/* One side's figures into o, in the order the table reads. */
static void side_into(json_t *o, struct bw_rp_side *s)
{
	bw_js_set(o, "failures", json_integer(s->errs.total));
	bw_js_set(o, "errors", tally(&s->errs));
	bw_js_set(o, "retries", json_integer(s->count[BW_RP_RETRIES]));
	bw_js_set(o, "recovered", json_integer(s->count[BW_RP_RECOVERED]));
	bw_js_set(o, "gave_up", json_integer(s->gave_up.total));
	bw_js_set(o, "gave_up_reasons", tally(&s->gave_up));
	for (int c = BW_RP_REJECTED; c < BW_RP_NCOUNT; c++)
		bw_js_set(o, bw_rp_count_keys[c], json_integer(s->count[c]));
	bw_js_set(o, "delay_ms", delay_obj(&s->delays));
}

static json_t *ts(const char *s, int have)
{
	return have ? json_string(s) : json_null();
}

int bw_report_print_json(struct bw_report *r, FILE *out)
{
	bw_js_on_oom("bulwark report", 1);
	json_t *root = bw_js_obj();
	bw_js_set(root, "processes", json_integer((json_int_t)r->n_pids));
	bw_js_set(root, "files", json_integer(r->files));
	bw_js_set(root, "events", json_integer(r->events));
	bw_js_set(root, "lines", json_integer(r->lines));
	bw_js_set(root, "skipped_lines", json_integer(r->skipped));
	bw_js_set(root, "config_errors", json_integer(r->config_errors));
	bw_js_set(root, "warnings", json_integer(r->warnings));
	bw_js_set(root, "reloads", json_integer(r->reloads));
	bw_js_set(root, "reload_errors", json_integer(r->reload_errors));
	bw_js_set(root, "first", ts(r->first_ts, r->have_ts));
	bw_js_set(root, "last", ts(r->last_ts, r->have_ts));
	bw_js_set(root, "span_ms", r->have_ts ? ms(r->last_us - r->first_us) : json_null());

	json_t *dests = bw_js_arr();
	for (size_t i = 0; i < r->n_groups; i++) {
		struct bw_rp_group *g = r->groups[i];
		json_t *o = bw_js_obj();
		bw_js_set(o, "rule", json_string(g->rule));
		bw_js_set(o, "dest", json_string(g->dest));
		side_into(o, &g->did);
		json_t *w = bw_js_obj();
		side_into(w, &g->observed);
		bw_js_set(o, "observe", w);
		bw_js_push(dests, o);
	}
	bw_js_set(root, "destinations", dests);

	json_t *errs = bw_js_arr();
	for (size_t i = 0; i < r->top_errs.n; i++) {
		json_t *o = bw_js_obj();
		bw_js_set(o, "err", json_string(r->top_errs.v[i].name));
		bw_js_set(o, "count", json_integer(r->top_errs.v[i].n));
		bw_js_set(o, "dests", json_integer(r->top_errs_dests[i]));
		bw_js_push(errs, o);
	}
	bw_js_set(root, "top_errors", errs);

	json_t *rules = bw_js_arr();
	for (size_t i = 0; i < r->n_rules; i++) {
		json_t *o = bw_js_obj();
		bw_js_set(o, "rule", json_string(r->rules[i].name));
		bw_js_set(o, "processes", json_integer(r->rules[i].processes));
		for (int s = 0; s < BW_RP_NSTAT; s++)
			bw_js_set(o, bw_rp_stat_keys[s], json_integer(r->rules[i].stat[s]));
		bw_js_push(rules, o);
	}
	bw_js_set(root, "rules", rules);

	json_t *notes = bw_js_arr();
	for (size_t i = 0; i < r->n_notes; i++)
		bw_js_push(notes, json_string(r->notes[i]));
	bw_js_set(root, "notes", notes);

	return bw_js_dump(root, out);
}
