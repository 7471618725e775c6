/* The policy sections of a rule or of `defaults`: retry, timeout, breaker, rate_limit.
 * Values land in the draft with a "given" bit each. What a rule writes is checked against
 * its ops here; what it inherits from defaults is sorted out at merge. */
#include <stdio.h>
#include <string.h>
#include "config_int.h"
#include "errnames.h"
#include "units.h"
#include "builtin.h"
#include "vocab.h"

static void *slot(struct cf_draft *d, enum cf_field f)
{
	return (char *)&d->r + cf_slots[f].off;
}

/* Runs each key present in a mapping, with the key's own path. A key about other ops
 * than the rule's is refused; one read without error counts as written. */
static void each_key(struct cf_loader *l, struct cf_draft *d, yaml_node_t *map,
		     const char *path, const struct cf_key *keys)
{
	const char *names[CF_MAX_KEYS + 1];
	yaml_node_t *kn[CF_MAX_KEYS], *vn[CF_MAX_KEYS];
	char p[CF_PATH_MAX];
	int n = 0;
	for (; keys[n].name; n++)
		names[n] = keys[n].name;
	names[n] = NULL;
	if (cf_map(l, map, path, names, kn, vn) < 0)
		return;
	for (int i = 0; i < n; i++) {
		const struct cf_key *key = &keys[i];
		if (!vn[i])
			continue;
		cf_sub(p, path, key->name);
		if (key->ops && !d->is_defaults && !(d->r.match.ops & key->ops))
			cf_not_applicable(l, d, kn[i], p, NULL);
		else if (key->read(l, d, key, kn[i], vn[i], p) == 0 && key->field != F_NONE)
			cf_own(d, key->field, kn[i]);
	}
}

static void section(struct cf_draft *d, int s, yaml_node_t *k, const char *name, char *path)
{
	d->sections |= SBIT(s);
	d->section_at[s] = cf_mark_of(k);
	cf_sub(path, d->path, name);
}

int cf_check_err(struct cf_loader *l, struct cf_draft *d, yaml_node_t *n, const char *path,
		 unsigned ops, int *out)
{
	const char *s = cf_scalar(l, n, path, "an error name such as ECONNREFUSED");
	char rule_ops[64];
	int code = s ? bw_err_parse(s) : 0;
	if (!s)
		return -1;
	if (!code) {
		cf_error(l, cf_mark_of(n), "%s: unknown error name '%s'; expected an errno name "
			 "such as ECONNREFUSED, an EAI_* or a SQLITE_* name", path, s);
		return -1;
	}
	if (!d->is_defaults && !(cf_err_ops(code) & ops)) {
		cf_ops_text(d->r.match.ops, rule_ops, sizeof rule_ops);
		cf_error(l, cf_mark_of(n), "%s: %s does not apply: rule '%s' matches only [%s]; %s",
			 path, s, cf_rule_name(d), rule_ops, cf_err_class(code));
		return -1;
	}
	*out = code;
	return 0;
}

/* ---- readers of one value into its field ---- */

static int read_duration(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
			 yaml_node_t *k, yaml_node_t *v, const char *path)
{
	(void)k;
	return cf_duration(l, v, path, slot(d, key->field));
}

static int read_int(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
		    yaml_node_t *k, yaml_node_t *v, const char *path)
{
	long n;
	(void)k;
	if (cf_int(l, v, path, key->lo, key->hi, &n) < 0)
		return -1;
	int i = (int)n;
	memcpy(slot(d, key->field), &i, sizeof i);
	return 0;
}

static int read_ratio(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
		      yaml_node_t *k, yaml_node_t *v, const char *path)
{
	(void)k;
	return cf_ratio(l, v, path, 1, slot(d, key->field));
}

static int read_enum(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
		     yaml_node_t *k, yaml_node_t *v, const char *path)
{
	int e;
	(void)k;
	if (cf_enum(l, v, path, key->names, &e) < 0)
		return -1;
	memcpy(slot(d, key->field), &e, sizeof e);
	return 0;
}

/* A mapping of keys counts as written even when what is inside is wrong (budget: {}
 * turns the budget on). */
static int read_keys(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
		     yaml_node_t *k, yaml_node_t *v, const char *path)
{
	(void)k;
	each_key(l, d, v, path, key->keys);
	return 0;
}

static int read_multiplier(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
			   yaml_node_t *k, yaml_node_t *v, const char *path)
{
	char err[128];
	double *out = slot(d, key->field);
	const char *s = cf_scalar(l, v, path, "a number");
	(void)k;
	if (s && (bw_parse_number(s, out, err, sizeof err) < 0 || *out < 1)) {
		cf_error(l, cf_mark_of(v), "%s: expected a number of at least 1, got %s", path, s);
		return -1;
	}
	return s ? 0 : -1;
}

/* Written even when an error name is wrong: an `on` list that failed must not let one
 * from defaults stand in for it. */
static int read_on(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
		   yaml_node_t *k, yaml_node_t *v, const char *path)
{
	struct cf_list ls;
	struct bw_retry *r = &d->r.retry;
	char ip[CF_PATH_MAX];
	int code;
	(void)key, (void)k;
	if (cf_list(l, v, path, &ls) < 0)
		return 0;
	if (ls.n == 0 || ls.n > BW_MAX_ON) {
		cf_error(l, cf_mark_of(v), "%s: expected 1 to %d error names%s", path, BW_MAX_ON,
			 ls.n ? "" : "; to never retry, write retry: off");
		return 0;
	}
	for (int i = 0; i < ls.n; i++) {
		yaml_node_t *it = cf_list_at(l, &ls, i);
		cf_item_path(ip, path, &ls, i);
		if (cf_check_err(l, d, it, ip, d->r.match.ops, &code) < 0)
			continue;
		if (!d->is_defaults && (d->r.match.ops & CF_DATA_OPS) && cf_unsafe_stream_err(code))
			cf_error(l, cf_mark_of(it), "%s: %s cannot be retried on send or recv: the "
				 "connection is gone; retrying would lose or duplicate bytes", ip,
				 cf_text(it));
		else
			r->on[r->n_on++] = code;
	}
	return 0;
}

static int read_breaker_err(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
			    yaml_node_t *k, yaml_node_t *v, const char *path)
{
	(void)k;
	return cf_check_err(l, d, v, path, d->r.match.ops & CF_BREAKER_OPS, slot(d, key->field));
}

static int read_limit_err(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
			  yaml_node_t *k, yaml_node_t *v, const char *path)
{
	(void)k;
	return cf_check_err(l, d, v, path, d->r.match.ops & CF_FAIL_OPS, slot(d, key->field));
}

static int read_rate(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
		     yaml_node_t *k, yaml_node_t *v, const char *path)
{
	struct bw_rate_limit *rl = &d->r.rate_limit;
	char err[160], ops[64];
	const char *s = cf_scalar(l, v, path, "a rate like 50/s or 1MiB/s");
	(void)key;
	d->field_at[F_L_RATE] = cf_mark_of(k);   /* written, even if wrong */
	if (!s)
		return -1;
	if (bw_parse_rate(s, &rl->rate, &rl->bytes, err, sizeof err) < 0) {
		cf_error(l, cf_mark_of(v), "%s: %s", path, err);
		return -1;
	}
	/* a byte rate paces the rule's send and recv; its other ops are not limited */
	if (!d->is_defaults && rl->bytes && !(d->r.match.ops & CF_DATA_OPS)) {
		cf_ops_text(d->r.match.ops, ops, sizeof ops);
		cf_error(l, cf_mark_of(v), "%s: a byte rate applies only to send and recv, but rule "
			 "'%s' matches [%s]; use a call rate such as 50/s", path, cf_rule_name(d),
			 ops);
		return -1;
	}
	return 0;
}

static int read_on_limit(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
			 yaml_node_t *k, yaml_node_t *v, const char *path)
{
	char ops[64];
	int e;
	(void)key, (void)k;
	if (cf_enum(l, v, path, bw_onlimit_names, &e) < 0)
		return -1;
	if (!d->is_defaults && e == BW_LIMIT_FAIL && (d->r.match.ops & ~CF_FAIL_OPS)) {
		cf_ops_text(d->r.match.ops & ~CF_FAIL_OPS, ops, sizeof ops);
		cf_error(l, cf_mark_of(v), "%s: fail is refused for %s: a made-up EAGAIN on a ready "
			 "descriptor stalls edge-triggered event loops; use wait", path, ops);
		return -1;
	}
	d->r.rate_limit.on_limit = (enum bw_on_limit)e;
	return 0;
}

/* A byte bucket's burst takes the size units of byte rates; a plain number counts what the
 * rate counts. Whether the rate counts bytes may be known only once defaults are merged:
 * a size on a call rate is refused there. */
static int read_burst(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
		      yaml_node_t *k, yaml_node_t *v, const char *path)
{
	char err[160];
	const char *s = cf_scalar(l, v, path, "a number, or a size such as 64KiB");
	(void)key, (void)k;
	if (!s)
		return -1;
	if (bw_parse_size(s, &d->r.rate_limit.burst, &d->burst_sized, err, sizeof err) < 0) {
		cf_error(l, cf_mark_of(v), "%s: %s", path, err);
		return -1;
	}
	if (d->r.rate_limit.burst < 1) {
		cf_error(l, cf_mark_of(v), "%s: expected a number of at least 1, got %s", path, s);
		return -1;
	}
	d->burst_text = s;
	d->burst_at = cf_mark_of(v);
	return 0;
}

/* ---- the keys of each section ---- */

#define DURATION(key, f) { .name = key, .field = f, .read = read_duration }
#define INT(key, f, min, max) { .name = key, .field = f, .read = read_int, .lo = min, .hi = max }
#define RATIO(key, f) { .name = key, .field = f, .read = read_ratio }
#define ENUM(key, f, list) { .name = key, .field = f, .read = read_enum, .names = list }
#define KEYS(key, f, inner) { .name = key, .field = f, .read = read_keys, .keys = inner }
#define CUSTOM(key, f, fn) { .name = key, .field = f, .read = fn }
#define END { .name = NULL }

static const struct cf_key backoff_keys[] = {
	DURATION("base", F_BASE),
	DURATION("max", F_MAX),
	CUSTOM("multiplier", F_MULT, read_multiplier),
	ENUM("jitter", F_JITTER, bw_jitter_names),
	END
};

static const struct cf_key budget_keys[] = {
	RATIO("ratio", F_BUDGET_RATIO),
	INT("min_per_sec", F_BUDGET_MIN, 0, 1000000),
	END
};

static const struct cf_key retry_keys[] = {
	INT("attempts", F_ATTEMPTS, 1, 100),
	CUSTOM("on", F_ON, read_on),
	KEYS("backoff", F_NONE, backoff_keys),
	DURATION("deadline", F_DEADLINE),
	KEYS("budget", F_BUDGET, budget_keys),
	END
};

const struct cf_key cf_timeout_keys[] = {
	{ .name = "connect", .field = F_T_CONNECT, .read = read_duration,
	  .ops = BW_OPBIT(BW_OP_CONNECT) },
	{ .name = "recv", .field = F_T_RECV, .read = read_duration, .ops = BW_OPBIT(BW_OP_RECV) },
	{ .name = "send", .field = F_T_SEND, .read = read_duration, .ops = BW_OPBIT(BW_OP_SEND) },
	END
};

static const struct cf_key slow_keys[] = {
	DURATION("over", F_B_SLOW_OVER),
	RATIO("rate", F_B_SLOW_RATE),
	END
};

/* trip.slow times calls: only the ops whose duration is the destination's (the op
 * table's BW_OPF_SLOW) can be slow. Written even when wrong, so that a `slow` that
 * failed does not let one from defaults stand in for it. */
static int read_slow(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
		     yaml_node_t *k, yaml_node_t *v, const char *path)
{
	char why[96], ops[64];
	d->slow_given = 1;
	d->slow_at = cf_mark_of(k);
	if (!d->is_defaults && !(d->r.match.ops & CF_SLOW_OPS)) {
		bw_ops_phrase(CF_SLOW_OPS, ops, sizeof ops);
		snprintf(why, sizeof why, "slow calls are timed for %s", ops);
		cf_not_applicable(l, d, k, path, why);
		return 0;
	}
	each_key(l, d, v, path, key->keys);
	return 0;
}

static const struct cf_key trip_keys[] = {
	INT("consecutive", F_B_CONSEC, 1, 10000),
	RATIO("rate", F_B_RATE),
	DURATION("window", F_B_WINDOW),
	INT("min_calls", F_B_MINCALLS, 1, 1000000),
	{ .name = "slow", .field = F_NONE, .read = read_slow, .keys = slow_keys },
	END
};

static const struct cf_key breaker_keys[] = {
	ENUM("scope", F_B_SCOPE, bw_breaker_scope_names),
	KEYS("trip", F_NONE, trip_keys),
	DURATION("open_for", F_B_OPEN),
	DURATION("open_for_max", F_B_OPENMAX),
	INT("half_open_probes", F_B_PROBES, 1, 1000),
	CUSTOM("errno", F_B_ERR, read_breaker_err),
	END
};

static const struct cf_key limit_keys[] = {
	ENUM("scope", F_L_SCOPE, bw_scope_names),
	CUSTOM("rate", F_L_RATE, read_rate),
	CUSTOM("burst", F_L_BURST, read_burst),
	CUSTOM("on_limit", F_L_ONLIMIT, read_on_limit),
	DURATION("max_wait", F_L_MAXWAIT),
	CUSTOM("errno", F_L_ERR, read_limit_err),
	END
};

static const struct cf_key concurrency_keys[] = {
	ENUM("scope", F_C_SCOPE, bw_breaker_scope_names),
	INT("max", F_C_MAX, 1, 1000000),
	DURATION("max_wait", F_C_MAXWAIT),
	END
};

static const struct cf_key throttle_keys[] = {
	ENUM("scope", F_TH_SCOPE, bw_breaker_scope_names),
	CUSTOM("k", F_TH_K, read_multiplier),
	DURATION("window", F_TH_WINDOW),
	RATIO("max_reject", F_TH_MAXREJ),
	END
};

const struct cf_section_keys cf_sections[] = {
	{ "retry", retry_keys },             { "retry.backoff", backoff_keys },
	{ "retry.budget", budget_keys },     { "timeout", cf_timeout_keys },
	{ "breaker", breaker_keys },         { "breaker.trip", trip_keys },
	{ "breaker.trip.slow", slow_keys },  { "rate_limit", limit_keys },
	{ "concurrency", concurrency_keys }, { "throttle", throttle_keys },
	{ NULL, NULL },
};

#define FITS(keys) _Static_assert(sizeof keys / sizeof keys[0] - 1 <= CF_MAX_KEYS, #keys)
FITS(retry_keys);
FITS(backoff_keys);
FITS(budget_keys);
FITS(trip_keys);
FITS(breaker_keys);
FITS(limit_keys);
FITS(slow_keys);
FITS(concurrency_keys);
FITS(throttle_keys);
FITS(cf_timeout_keys);

/* ---- the sections ---- */

/* A preset writes these fields, as a mapping that gave them all would. */
#define PRESET_FIELDS (FBIT(F_ATTEMPTS) | FBIT(F_BASE) | FBIT(F_MAX) | FBIT(F_MULT) | \
		       FBIT(F_JITTER))

static void parse_preset(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			 yaml_node_t *v, const char *path)
{
	struct bw_retry *r = &d->r.retry;
	char all[80];
	int p;
	if (!cf_text(v)) {
		bw_join_names(bw_preset_names, all, sizeof all);
		cf_error(l, cf_mark_of(v), "%s: expected a mapping or one of %s, got nothing", path,
			 all);
		return;
	}
	if (cf_enum(l, v, path, bw_preset_names, &p) < 0)
		return;
	if (p == BW_PRESET_OFF) {
		d->retry_off = 1;
		return;
	}
	r->attempts = bw_presets[p].attempts;
	r->base = bw_presets[p].base;
	r->max = bw_presets[p].max;
	r->multiplier = bw_builtin_rule.retry.multiplier;
	r->jitter = bw_builtin_rule.retry.jitter;
	for (int f = 0; f < F_COUNT; f++)
		if (PRESET_FIELDS & FBIT(f))
			cf_own(d, f, k);
}

void cf_parse_retry(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_RETRY, k, "retry", path);
	if (v->type == YAML_SCALAR_NODE)
		parse_preset(l, d, k, v, path);
	else
		each_key(l, d, v, path, retry_keys);
}

void cf_parse_timeout(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_TIMEOUT, k, "timeout", path);
	each_key(l, d, v, path, cf_timeout_keys);
}

void cf_parse_breaker(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_BREAKER, k, "breaker", path);
	if (!d->is_defaults && !(d->r.match.ops & CF_BREAKER_OPS))
		cf_not_applicable(l, d, k, path, "a breaker needs connect, send, recv, resolve or "
				  "sqlite");
	else
		each_key(l, d, v, path, breaker_keys);
}

void cf_parse_rate_limit(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			 yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_RATE_LIMIT, k, "rate_limit", path);
	each_key(l, d, v, path, limit_keys);
}

/* The ops a section can serve, for the message of a rule it cannot apply to. */
static void not_for(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, const char *path,
		    unsigned ops, const char *what)
{
	char list[80], why[160];
	bw_ops_phrase(ops, list, sizeof list);
	snprintf(why, sizeof why, "%s %s", what, list);
	cf_not_applicable(l, d, k, path, why);
}

void cf_parse_concurrency(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			  yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_CONCURRENCY, k, "concurrency", path);
	if (!d->is_defaults && !(d->r.match.ops & CF_BULKHEAD_OPS))
		not_for(l, d, k, path, CF_BULKHEAD_OPS, "concurrency counts the connections or "
			"calls of");
	else
		each_key(l, d, v, path, concurrency_keys);
}

void cf_parse_throttle(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_THROTTLE, k, "throttle", path);
	if (!d->is_defaults && !(d->r.match.ops & CF_THROTTLE_OPS))
		not_for(l, d, k, path, CF_THROTTLE_OPS, "throttling rejects calls, which only "
			"these ops can be:");
	else
		each_key(l, d, v, path, throttle_keys);
}
