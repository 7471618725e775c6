/* `bulwark report` for people: short tables that fit an 80-column terminal. Long
 * names are cut with an ellipsis and big counts abbreviated (123k), unless wide (--wide:
 * everything whole, lines as long as they need); the JSON format has every figure whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "report.h"
#include "table.h"

#define TOP_ERRORS 10

/* Rule names like "default-connect" stay whole; destinations get the most room. */
#define RULE_SOFT 16
#define DEST_SOFT 28
#define FIG(head) { head, 0, 0, 0 }
#define RULE_COL { "RULE", 1, 0, RULE_SOFT }
#define DEST_COL { "DEST", 1, 1, DEST_SOFT }


/* ---- sections ---- */

/* Whole in a wide table; else short (123k). */
static const char *count(char *buf, long long n)
{
	if (bw_tab_wide)
		snprintf(buf, 16, "%lld", n);
	else
		bw_rp_fmt_count(buf, 16, n);
	return buf;
}

static void header(struct bw_report *r, FILE *out)
{
	fprintf(out, "bulwark report: %lld event%s from %zu process%s in %lld file%s",
		r->events, r->events == 1 ? "" : "s", r->n_pids, r->n_pids == 1 ? "" : "es",
		r->files, r->files == 1 ? "" : "s");
	if (r->skipped)
		fprintf(out, ", %lld line%s skipped", r->skipped, r->skipped == 1 ? "" : "s");
	fputc('\n', out);
	if (r->have_ts) {
		char span[32], a[64], b[64];
		bw_rp_fmt_dur(span, sizeof span, r->last_us - r->first_us);
		/* room for "span:  ..  (999.9h)" around the two times */
		bw_rp_fit(a, sizeof a, r->first_ts, bw_tab_wide ? sizeof a : 32, 0);
		bw_rp_fit(b, sizeof b, r->last_ts, bw_tab_wide ? sizeof b : 32, 0);
		fprintf(out, "span: %s .. %s (%s)\n", a, b, span);
	}
	/* not about calls, so in no table below, but a policy that failed to load matters */
	if (r->config_errors || r->warnings)
		fprintf(out, "also read: %lld config_error event%s, %lld warning event%s\n",
			r->config_errors, r->config_errors == 1 ? "" : "s", r->warnings,
			r->warnings == 1 ? "" : "s");
	/* a policy changed under the programs explains a change in what the tables show */
	if (r->reloads)
		fprintf(out, "policy reloads: %lld, %lld refused\n", r->reloads - r->reload_errors,
			r->reload_errors);
}

static const struct bw_col dest_cols[] = {
	RULE_COL, DEST_COL, FIG("FAIL"), FIG("RETRY"),
	FIG("RECOV"), FIG("GAVEUP"), FIG("REJECT"), FIG("OPENS"),
};

static void destinations(struct bw_report *r, FILE *out)
{
	fputs("\nBY RULE AND DESTINATION (flakiest first)\n", out);
	if (!r->n_groups) {
		fputs("no call events\n", out);
		return;
	}
	struct bw_tab t = { dest_cols, 8, NULL, 0, 0, 8 };
	for (size_t i = 0; i < r->n_groups; i++) {
		const struct bw_rp_group *g = r->groups[i];
		const struct bw_rp_side *s = &g->did;
		char b[6][16];
		const char *cells[8] = {
			g->rule, g->dest, count(b[0], s->errs.total),
			count(b[1], s->count[BW_RP_RETRIES]), count(b[2], s->count[BW_RP_RECOVERED]),
			count(b[3], s->gave_up.total), count(b[4], s->count[BW_RP_REJECTED]),
			count(b[5], s->count[BW_RP_BREAKER_OPENS]),
		};
		bw_tab_row(&t, cells);
	}
	bw_tab_print(out, &t);
	bw_tab_free(&t);
}

static const struct bw_col delay_cols[] = {
	RULE_COL, DEST_COL, FIG("THROT"), FIG("LIMIT"), FIG("FULL"), FIG("SHED"),
	FIG("INJECT"), FIG("ADDED"), FIG("P50"), FIG("P99"),
};

static void delays(struct bw_report *r, FILE *out)
{
	struct bw_tab t = { delay_cols, 10, NULL, 0, 0, 8 };
	for (size_t i = 0; i < r->n_groups; i++) {
		struct bw_rp_group *g = r->groups[i];
		struct bw_rp_side *s = &g->did;
		if (!s->count[BW_RP_THROTTLED] && !s->count[BW_RP_LIMITED] &&
		    !s->count[BW_RP_INJECTED] && !s->count[BW_RP_BULKHEAD_FULL] &&
		    !s->count[BW_RP_SHED] && !s->delays.n)
			continue;
		char b[5][16], d[3][16] = { "-", "-", "-" };
		if (s->delays.n) {
			bw_rp_fmt_dur(d[0], sizeof d[0], s->delays.total_us);
			bw_rp_fmt_dur(d[1], sizeof d[1], bw_rp_quantile(&s->delays, 0.5));
			bw_rp_fmt_dur(d[2], sizeof d[2], bw_rp_quantile(&s->delays, 0.99));
		}
		const char *cells[10] = {
			g->rule, g->dest, count(b[0], s->count[BW_RP_THROTTLED]),
			count(b[1], s->count[BW_RP_LIMITED]),
			count(b[3], s->count[BW_RP_BULKHEAD_FULL]), count(b[4], s->count[BW_RP_SHED]),
			count(b[2], s->count[BW_RP_INJECTED]), d[0], d[1], d[2],
		};
		bw_tab_row(&t, cells);
	}
	if (t.nrows) {
		fputs("\nLIMITS AND ADDED DELAY (retry waits, throttling, bulkheads, injected "
		      "delay)\n", out);
		bw_tab_print(out, &t);
	}
	bw_tab_free(&t);
}

static const struct bw_col observe_cols[] = {
	RULE_COL, DEST_COL, FIG("FAIL"), FIG("RETRY"),
	FIG("GAVEUP"), FIG("REJECT"), FIG("OPENS"), FIG("THROT"),
	FIG("LIMIT"), FIG("INJECT"),
};

static void observed(struct bw_report *r, FILE *out)
{
	struct bw_tab t = { observe_cols, 10, NULL, 0, 0, 8 };
	for (size_t i = 0; i < r->n_groups; i++) {
		const struct bw_rp_group *g = r->groups[i];
		const struct bw_rp_side *s = &g->observed;
		if (bw_rp_side_empty(s))
			continue;
		char b[8][16];
		const char *cells[10] = {
			g->rule, g->dest, count(b[0], s->errs.total),
			count(b[1], s->count[BW_RP_RETRIES]), count(b[2], s->gave_up.total),
			count(b[3], s->count[BW_RP_REJECTED]),
			count(b[4], s->count[BW_RP_BREAKER_OPENS]),
			count(b[5], s->count[BW_RP_THROTTLED]), count(b[6], s->count[BW_RP_LIMITED]),
			count(b[7], s->count[BW_RP_INJECTED]),
		};
		bw_tab_row(&t, cells);
	}
	if (t.nrows) {
		fputs("\nWOULD HAVE (observe mode: decided and logged, nothing changed)\n", out);
		bw_tab_print(out, &t);
	}
	bw_tab_free(&t);
}

static const struct bw_col err_cols[] = {
	{ "ERROR", 1, 0, 0 }, FIG("COUNT"), FIG("SHARE"), FIG("DESTS"),
};

static void errors(struct bw_report *r, FILE *out)
{
	long long timeouts = 0, failovers = 0;
	for (size_t i = 0; i < r->n_groups; i++) {
		timeouts += r->groups[i]->did.count[BW_RP_TIMEOUTS];
		failovers += r->groups[i]->did.count[BW_RP_FAILOVERS];
	}
	if (r->top_errs.n) {
		fputs("\nTOP ERRORS (fail events)\n", out);
		struct bw_tab t = { err_cols, 4, NULL, 0, 0, 8 };
		for (size_t i = 0; i < r->top_errs.n && i < TOP_ERRORS; i++) {
			char b[2][16], share[16];
			snprintf(share, sizeof share, "%.0f%%",
				 100.0 * (double)r->top_errs.v[i].n / (double)r->top_errs.total);
			const char *cells[4] = {
				r->top_errs.v[i].name, count(b[0], r->top_errs.v[i].n), share,
				count(b[1], r->top_errs_dests[i]),
			};
			bw_tab_row(&t, cells);
		}
		bw_tab_print(out, &t);
		bw_tab_free(&t);
		if (r->top_errs.n > TOP_ERRORS)
			fprintf(out, "and %zu more\n", r->top_errs.n - TOP_ERRORS);
	}
	/* Gave-up reasons over all destinations, on one line: there are only four. */
	const struct bw_rp_tally *g = &r->gave_up_reasons;
	if (g->n) {
		char line[256] = "gave up by reason:";
		size_t len = strlen(line);
		for (size_t k = 0; k < g->n && len < sizeof line; k++) {
			char c[16];
			len += (size_t)snprintf(line + len, sizeof line - len, "%s %s %s",
						k ? "," : "", g->v[k].name, count(c, g->v[k].n));
		}
		char fit[512];
		bw_rp_fit(fit, sizeof fit, line, bw_tab_wide ? sizeof fit : BW_LINE_MAX, 0);
		fprintf(out, "%s\n", fit);
	}
	if (timeouts || failovers)
		fprintf(out, "also: %lld timeout%s, %lld failover%s (per destination in --format json)\n",
			timeouts, timeouts == 1 ? "" : "s", failovers, failovers == 1 ? "" : "s");
}

static const struct bw_col rule_cols[] = {
	RULE_COL, FIG("PROCS"), FIG("CALLS"), FIG("FAIL"),
	FIG("RETRY"), FIG("RECOV"), FIG("GAVEUP"), FIG("REJECT"),
	FIG("THROT"), FIG("LIMIT"), FIG("INJECT"), FIG("FULL"), FIG("SHED"),
};

static void rules(struct bw_report *r, FILE *out)
{
	fputs("\nPER RULE (counters of the processes' exit events)\n", out);
	if (!r->n_rules) {
		fputs(r->n_notes ? "no exit events (see NOTES)\n" : "no exit events\n", out);
		return;
	}
	struct bw_tab t = { rule_cols, 13, NULL, 0, 0, 8 };
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct bw_rp_rule *x = &r->rules[i];
		char b[12][16];
		const char *cells[13] = { x->name, count(b[0], x->processes) };
		for (int s = 0; s < BW_RP_NSTAT; s++)
			cells[2 + s] = count(b[1 + s], x->stat[s]);
		bw_tab_row(&t, cells);
	}
	bw_tab_print(out, &t);
	bw_tab_free(&t);
}

int bw_report_print_table(struct bw_report *r, FILE *out)
{
	bw_tab_wide = r->wide;
	header(r, out);
	destinations(r, out);
	delays(r, out);
	observed(r, out);
	errors(r, out);
	rules(r, out);
	if (r->n_notes) {
		fputs("\nNOTES (what is missing, and why)\n", out);
		bw_report_print_notes(r, out);
	}
	return 0;
}
