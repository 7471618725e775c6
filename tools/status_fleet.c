/* `bulwark status --fleet` (bulwark(1), STATUS): what each live group's fleet syncer last
 * wrote beside its state file (<group>.fleet, JSON, replaced whole by rename): the host,
 * the mode (fleet, or on_unreachable's while Redis cannot be reached), the hosts seen,
 * each fleet bucket's lease and each breaker as this host and the fleet see it. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "status_model.h"

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static long long num(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static json_t *load(const struct bw_st_group *g)
{
	char path[4200];
	size_t n = strlen(g->file);
	if (n < 6 || strcmp(g->file + n - 6, ".state") != 0)
		return NULL;
	snprintf(path, sizeof path, "%.*s.fleet", (int)(n - 6), g->file);
	return json_load_file(path, 0, NULL);
}

static void print_one(const struct bw_st_group *g, json_t *f, int64_t now_wall, FILE *out)
{
	char since[32];
	bw_st_fmt_time(since, sizeof since, num(f, "since_us"));
	fprintf(out, "\ngroup %s: fleet host %s, leader pid %lld\n", g->group, str(f, "host"),
		num(f, "leader_pid"));
	fprintf(out, "redis: %s (keys %s*), mode %s since %s", str(f, "redis"),
		str(f, "key_prefix"), str(f, "mode"), since);
	if (strcmp(str(f, "mode"), "fleet") != 0)
		fprintf(out, " (%s)", str(f, "last_error"));
	fprintf(out, "\nhosts seen %lld of %lld, quorum %lld, sync %lld ms, written %.1fs ago; "
		"%lld syncs, %lld failed, %lld script loads, %lld tokens granted\n",
		num(f, "hosts_seen"), num(f, "hosts"), num(f, "quorum"), num(f, "sync_ms"),
		(double)(now_wall - num(f, "updated_us")) / 1e6, num(f, "syncs"),
		num(f, "failures"), num(f, "script_loads"), num(f, "granted"));
	json_t *b = json_object_get(f, "buckets"), *x;
	size_t i;
	if (json_array_size(b)) {
		fprintf(out, "  %-16s %-24s %6s %6s\n", "RULE", "DEST", "LEASE", "TOKENS");
		json_array_foreach(b, i, x)
			fprintf(out, "  %-16s %-24s %6lld %6lld\n", str(x, "rule"), str(x, "dest"),
				num(x, "lease"), num(x, "tokens"));
	}
	b = json_object_get(f, "breakers");
	if (json_array_size(b)) {
		fprintf(out, "  %-16s %-24s %-9s %-7s %10s %s\n", "RULE", "DEST", "HERE", "FLEET",
			"HOSTS_OPEN", "PROBE");
		json_array_foreach(b, i, x)
			fprintf(out, "  %-16s %-24s %-9s %-7s %10lld %s\n", str(x, "rule"),
				str(x, "dest"), str(x, "here"), str(x, "fleet"),
				num(x, "hosts_open"),
				json_is_true(json_object_get(x, "probe")) ? "this host" : "-");
	}
}

int bw_status_print_fleet(const struct bw_status *st, int as_json, FILE *out)
{
	json_t *all = json_array();
	int seen = 0, degraded = 0;
	if (!as_json)
		fprintf(out, "bulwark status --fleet: %s\n", st->dir);
	for (size_t k = 0; k < st->n_groups; k++) {
		const struct bw_st_group *g = &st->groups[k];
		json_t *f = g->live ? load(g) : NULL;
		if (!f)
			continue;
		seen++;
		degraded |= strcmp(str(f, "mode"), "fleet") != 0;
		if (as_json) {
			json_object_set_new(f, "group", json_string(g->group));
			json_array_append(all, f);
		} else {
			print_one(g, f, st->now_wall_us, out);
		}
		json_decref(f);
	}
	if (as_json) {
		json_dumpf(all, out, JSON_INDENT(2));
		fputc('\n', out);
	} else if (!seen) {
		fprintf(out, "no live group in fleet mode\n");
	}
	json_decref(all);
	/* the health-check convention: Redis out of reach is degraded */
	return !seen ? BW_UNKNOWN : degraded ? BW_DEGRADED : BW_HEALTHY;
}
