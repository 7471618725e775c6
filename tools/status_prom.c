/* `bulwark status --format prometheus`: the text exposition format (0.0.4), for
 * node_exporter's textfile collector or a scrape wrapper. Each family is written whole
 * after its # HELP and # TYPE lines. Per-destination figures are of live groups only:
 * a stale group's breakers say nothing about the destinations now. Breaker positions are
 * one 0/1 gauge per state (label `state`), as Prometheus writes an enumeration. */
#include <stdio.h>
#include <string.h>
#include "breaker.h"
#include "status_model.h"
#include "promout.h"

/* name{group="..",rule="..",dest="..",k="v"}: rule and dest only with d, k may be NULL.
 * Ends before the value. */
static void sample(FILE *out, const char *name, const struct bw_st_group *g,
		   const struct bw_st_dest *d, const char *k, const char *v)
{
	fprintf(out, "%s{group=", name);
	bw_prom_label(out, g->group);
	if (d) {
		fputs(",rule=", out);
		bw_prom_label(out, g->rules[d->rule].name);
		fputs(",dest=", out);
		bw_prom_label(out, d->dest);
	}
	if (k) {
		fprintf(out, ",%s=", k);
		bw_prom_label(out, v);
	}
	fputs("} ", out);
}

/* A float as Prometheus reads it, short: 3, 2.5, 0.125. */
static void value(FILE *out, double v)
{
	fprintf(out, "%.15g\n", v);
}

typedef int (*dest_pred)(const struct bw_st_dest *d);

static int with_breaker(const struct bw_st_dest *d)
{
	return d->has_breaker && d->pos >= 0;
}

static int with_bucket(const struct bw_st_dest *d)
{
	return d->has_bucket;
}

static int with_burst(const struct bw_st_dest *d)
{
	return d->has_bucket && d->bucket_known;
}

enum dest_fig { F_HEALTH, F_CONSEC, F_WFAILS, F_WCALLS, F_OPEN_LEFT, F_TOKENS, F_BURST };

static double fig(const struct bw_st_dest *d, enum dest_fig f)
{
	switch (f) {
	case F_HEALTH: return (double)d->health;
	case F_CONSEC: return d->consecutive;
	case F_WFAILS: return (double)d->window_fails;
	case F_WCALLS: return (double)d->window_calls;
	case F_OPEN_LEFT:
		if (d->pos != BW_BRK_OPEN || d->open_left_us <= 0)
			return 0;
		return (double)d->open_left_us / 1e6;
	case F_TOKENS: return d->tokens;
	case F_BURST: return d->burst;
	}
	return 0;
}

/* One gauge family with a sample per destination of every live group that has it. */
static void dest_family(FILE *out, const struct bw_status *st, const char *name,
			const char *help, dest_pred has, enum dest_fig f)
{
	bw_prom_family(out, name, "gauge", help);
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		for (size_t j = 0; g->live && j < g->n_dests; j++) {
			if (!has(&g->dests[j]))
				continue;
			sample(out, name, g, &g->dests[j], NULL, NULL);
			value(out, fig(&g->dests[j], f));
		}
	}
}

int bw_status_print_prom(const struct bw_status *st, FILE *out)
{
	bw_prom_family(out, "bulwark_health", "gauge",
	       "Overall health of the live groups, as the exit status of bulwark status: "
	       "0 healthy, 1 degraded, 2 unhealthy, 3 unknown (no live group).");
	fprintf(out, "bulwark_health %d\n", (int)st->health);

	bw_prom_family(out, "bulwark_groups", "gauge",
	       "Group state files, by state: live (a process alive) or stale (all gone).");
	fprintf(out, "bulwark_groups{state=\"live\"} %zu\n", st->live);
	fprintf(out, "bulwark_groups{state=\"stale\"} %zu\n", st->stale);

	bw_prom_family(out, "bulwark_group_health", "gauge",
	       "Health of a live group: 0 healthy, 1 degraded, 2 unhealthy.");
	for (size_t i = 0; i < st->n_groups; i++) {
		if (!st->groups[i].live)
			continue;
		sample(out, "bulwark_group_health", &st->groups[i], NULL, NULL, NULL);
		fprintf(out, "%d\n", (int)st->groups[i].health);
	}

	bw_prom_family(out, "bulwark_group_processes", "gauge", "Live processes of a group.");
	for (size_t i = 0; i < st->n_groups; i++) {
		if (!st->groups[i].live)
			continue;
		sample(out, "bulwark_group_processes", &st->groups[i], NULL, NULL, NULL);
		fprintf(out, "%zu\n", st->groups[i].alive);
	}

	static const int order[] = { BW_BRK_CLOSED, BW_BRK_HALF_OPEN, BW_BRK_OPEN };
	bw_prom_family(out, "bulwark_breaker_state", "gauge",
	       "Breaker position: 1 for the state it is in, 0 for the others.");
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		for (size_t j = 0; g->live && j < g->n_dests; j++) {
			const struct bw_st_dest *d = &g->dests[j];
			if (!with_breaker(d))
				continue;
			for (int k = 0; k < 3; k++) {
				sample(out, "bulwark_breaker_state", g, d, "state",
				       bw_brk_name(order[k]));
				fprintf(out, "%d\n", d->pos == order[k]);
			}
		}
	}
	dest_family(out, st, "bulwark_dest_health",
		    "Health of a destination by its breaker: 0 healthy (closed), 1 degraded "
		    "(half_open), 2 unhealthy (open).", with_breaker, F_HEALTH);
	dest_family(out, st, "bulwark_breaker_consecutive_failures",
		    "Failed attempts in a row seen by the breaker.", with_breaker, F_CONSEC);
	dest_family(out, st, "bulwark_breaker_window_failures",
		    "Failed attempts within the breaker's rate window.", with_breaker, F_WFAILS);
	dest_family(out, st, "bulwark_breaker_window_calls",
		    "Attempts within the breaker's rate window.", with_breaker, F_WCALLS);
	dest_family(out, st, "bulwark_breaker_probe_in_seconds",
		    "Open breaker: seconds until a call may probe the destination (0 when due, "
		    "or not open).", with_breaker, F_OPEN_LEFT);
	dest_family(out, st, "bulwark_tokens",
		    "Rate limit tokens left now (calls or bytes); as last stored when the "
		    "policy cannot be read.", with_bucket, F_TOKENS);
	dest_family(out, st, "bulwark_tokens_burst",
		    "Rate limit bucket size (burst).", with_burst, F_BURST);
	return 0;
}
