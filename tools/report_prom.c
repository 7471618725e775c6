/* `bulwark report --format prometheus`: the text exposition format (version 0.0.4), as
 * node_exporter's textfile collector reads it. Every family gets its # HELP and # TYPE
 * lines before its samples, and each family is written in one piece: the format forbids
 * a family's samples to be split. */
#include <stdio.h>
#include <string.h>
#include "report.h"
#include "promout.h"

/* name{rule="..",dest="..",k="v"} -- dest, k may be NULL. Ends before the value. */
static void sample(FILE *out, const char *name, const char *rule, const char *dest,
		   const char *k, const char *v)
{
	fprintf(out, "%s{rule=", name);
	bw_prom_label(out, rule);
	if (dest) {
		fputs(",dest=", out);
		bw_prom_label(out, dest);
	}
	if (k) {
		fprintf(out, ",%s=", k);
		bw_prom_label(out, v);
	}
	fputs("} ", out);
}

static void ms_value(FILE *out, int64_t us)
{
	char b[32];
	bw_rp_fmt_ms(b, sizeof b, us);
	fprintf(out, "%s\n", b);
}

/* What each per-destination counter means, for its HELP line. */
static const char *const count_help[BW_RP_NCOUNT] = {
	[BW_RP_RETRIES] = "Retries (retry events)",
	[BW_RP_RECOVERED] = "Calls that succeeded after retries (recovered events)",
	[BW_RP_REJECTED] = "Calls refused by an open breaker (rejected events)",
	[BW_RP_THROTTLED] = "Calls a rate limit delayed (throttled events)",
	[BW_RP_LIMITED] = "Calls a rate limit failed (limited events)",
	[BW_RP_INJECTED] = "Injected faults (injected events)",
	[BW_RP_BREAKER_OPENS] = "Breaker transitions to open (breaker events with to=open)",
	[BW_RP_TIMEOUTS] = "Timeouts that fired (timeout events)",
	[BW_RP_FAILOVERS] = "Connects moved to a fallback, by the destination left (failover events)",
	[BW_RP_BULKHEAD_FULL] = "Calls that found their bulkhead full (bulkhead_full events)",
	[BW_RP_SHED] = "Calls adaptive throttling rejected (shed events)",
};

/* A counter family with one sample per destination and tallied name (an error, a
 * reason) of one side: its errors, or its reasons for giving up. */
static void tally_family(FILE *out, struct bw_report *r, int observe, const char *name,
			 const char *help, const char *label, int gave_up)
{
	bw_prom_family(out, name, "counter", help);
	for (size_t i = 0; i < r->n_groups; i++) {
		const struct bw_rp_group *g = r->groups[i];
		const struct bw_rp_side *sd = observe ? &g->observed : &g->did;
		const struct bw_rp_tally *t = gave_up ? &sd->gave_up : &sd->errs;
		for (size_t j = 0; j < t->n; j++) {
			sample(out, name, g->rule, g->dest, label, t->v[j].name);
			fprintf(out, "%lld\n", t->v[j].n);
		}
	}
}

/* The per-destination families of one side; prefix "bulwark_" for what was done,
 * "bulwark_observe_" for what observe mode would have done. */
static void side_families(FILE *out, struct bw_report *r, int observe)
{
	const char *pre = observe ? "bulwark_observe_" : "bulwark_";
	const char *note = observe ? " in observe mode, where nothing was changed" : "";
	char name[96], help[192];
#define SIDE(g) (observe ? &(g)->observed : &(g)->did)

	snprintf(name, sizeof name, "%sfailures_total", pre);
	snprintf(help, sizeof help, "Failed calls (fail events), by error%s.", note);
	tally_family(out, r, observe, name, help, "err", 0);
	snprintf(name, sizeof name, "%sgave_up_total", pre);
	snprintf(help, sizeof help, "Calls given up (gave_up events), by reason%s.", note);
	tally_family(out, r, observe, name, help, "reason", 1);

	for (int c = 0; c < BW_RP_NCOUNT; c++) {
		snprintf(name, sizeof name, "%s%s_total", pre, bw_rp_count_keys[c]);
		snprintf(help, sizeof help, "%s%s.", count_help[c], note);
		bw_prom_family(out, name, "counter", help);
		for (size_t i = 0; i < r->n_groups; i++) {
			sample(out, name, r->groups[i]->rule, r->groups[i]->dest, NULL, NULL);
			fprintf(out, "%lld\n", SIDE(r->groups[i])->count[c]);
		}
	}

	snprintf(name, sizeof name, "%sdelay_ms_total", pre);
	snprintf(help, sizeof help, "Delay added, in milliseconds: retry waits, throttling and "
		 "injected delay%s.", note);
	bw_prom_family(out, name, "counter", help);
	for (size_t i = 0; i < r->n_groups; i++) {
		sample(out, name, r->groups[i]->rule, r->groups[i]->dest, NULL, NULL);
		ms_value(out, SIDE(r->groups[i])->delays.total_us);
	}

	/* A summary: quantiles, _sum and _count, all in one family. Without any delay
	 * the quantiles are NaN, as client libraries write them. */
	snprintf(name, sizeof name, "%sdelay_ms", pre);
	snprintf(help, sizeof help, "Each added delay, in milliseconds (nearest-rank "
		 "quantiles over the whole log)%s.", note);
	bw_prom_family(out, name, "summary", help);
	for (size_t i = 0; i < r->n_groups; i++) {
		struct bw_rp_group *g = r->groups[i];
		struct bw_rp_delays *d = &SIDE(g)->delays;
		static const struct { const char *label; double q; } qs[] = {
			{ "0.5", 0.5 }, { "0.99", 0.99 },
		};
		for (size_t k = 0; k < 2; k++) {
			sample(out, name, g->rule, g->dest, "quantile", qs[k].label);
			if (d->n)
				ms_value(out, bw_rp_quantile(d, qs[k].q));
			else
				fputs("NaN\n", out);
		}
		char sub[112];
		snprintf(sub, sizeof sub, "%s_sum", name);
		sample(out, sub, g->rule, g->dest, NULL, NULL);
		ms_value(out, d->total_us);
		snprintf(sub, sizeof sub, "%s_count", name);
		sample(out, sub, g->rule, g->dest, NULL, NULL);
		fprintf(out, "%zu\n", d->n);
	}
#undef SIDE
}

static void rule_families(FILE *out, struct bw_report *r)
{
	char name[96], help[192];
	bw_prom_family(out, "bulwark_rule_processes", "gauge",
	       "Processes whose exit event reported the rule.");
	for (size_t i = 0; i < r->n_rules; i++) {
		sample(out, "bulwark_rule_processes", r->rules[i].name, NULL, NULL, NULL);
		fprintf(out, "%lld\n", r->rules[i].processes);
	}
	for (int s = 0; s < BW_RP_NSTAT; s++) {
		snprintf(name, sizeof name, "bulwark_rule_%s_total", bw_rp_stat_keys[s]);
		snprintf(help, sizeof help, "The rule's %s counter, summed over the processes' "
			 "exit events.", bw_rp_stat_keys[s]);
		bw_prom_family(out, name, "counter", help);
		for (size_t i = 0; i < r->n_rules; i++) {
			sample(out, name, r->rules[i].name, NULL, NULL, NULL);
			fprintf(out, "%lld\n", r->rules[i].stat[s]);
		}
	}
}

static void gauge(FILE *out, const char *name, const char *help, long long v)
{
	bw_prom_family(out, name, "gauge", help);
	fprintf(out, "%s %lld\n", name, v);
}

static void seconds(FILE *out, int64_t us)
{
	const char *sign = us < 0 ? "-" : "";
	uint64_t mag = us < 0 ? 0 - (uint64_t)us : (uint64_t)us;
	fprintf(out, "%s%llu.%06llu\n", sign, (unsigned long long)(mag / 1000000),
		(unsigned long long)(mag % 1000000));
}

int bw_report_print_prom(struct bw_report *r, FILE *out)
{
	gauge(out, "bulwark_report_events", "Events read.", r->events);
	gauge(out, "bulwark_report_processes", "Distinct pids in the events read.",
	      (long long)r->n_pids);
	gauge(out, "bulwark_report_files", "Logs read.", r->files);
	gauge(out, "bulwark_report_skipped_lines", "Lines that were not events.", r->skipped);
	if (r->have_ts) {
		bw_prom_family(out, "bulwark_report_first_event_timestamp_seconds", "gauge",
		       "Time of the earliest event, in seconds since the epoch.");
		fputs("bulwark_report_first_event_timestamp_seconds ", out);
		seconds(out, r->first_us);
		bw_prom_family(out, "bulwark_report_last_event_timestamp_seconds", "gauge",
		       "Time of the latest event, in seconds since the epoch.");
		fputs("bulwark_report_last_event_timestamp_seconds ", out);
		seconds(out, r->last_us);
	}
	side_families(out, r, 0);
	int observed = 0;
	for (size_t i = 0; i < r->n_groups && !observed; i++)
		observed = !bw_rp_side_empty(&r->groups[i]->observed);
	if (observed)
		side_families(out, r, 1);
	rule_families(out, r);
	return 0;
}
