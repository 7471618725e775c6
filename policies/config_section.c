/* The policy sections of a rule or of `defaults`: retry, timeout, breaker, rate_limit.
 * Values land in the draft with a "given" bit each. What a rule writes is checked against
 * its ops here; what it inherits from defaults is sorted out at merge. */
#include <stdio.h>
#include <string.h>
#include "config_int.h"
#include "errnames.h"
#include "units.h"

static const char *const retry_keys[] = { "attempts", "on", "backoff", "deadline", "budget",
					  NULL };
static const char *const backoff_keys[] = { "base", "max", "multiplier", "jitter", NULL };
static const char *const budget_keys[] = { "ratio", "min_per_sec", NULL };
static const char *const timeout_keys[] = { "connect", "recv", "send", NULL };
static const char *const breaker_keys[] = { "scope", "trip", "open_for", "open_for_max",
					    "half_open_probes", "errno", NULL };
static const char *const trip_keys[] = { "consecutive", "rate", "window", "min_calls", NULL };
static const char *const limit_keys[] = { "scope", "rate", "burst", "on_limit", "max_wait",
					  "errno", NULL };
static const char *const breaker_scopes[] = { "dest", "rule", NULL };

static const char *const presets[] = { "quick", "conservative", "aggressive", "off", NULL };
static const struct {
	int attempts;
	bw_usec base, max;
} preset_values[] = {
	{ 2, 100000, 1000000 }, { 3, 1000000, 5000000 }, { 5, 200000, 10000000 },
};

#define MAX_KEYS 6   /* each_key's arrays: the most keys any of these mappings has */
#define FITS(keys) _Static_assert(sizeof keys / sizeof keys[0] - 1 <= MAX_KEYS, #keys)
FITS(retry_keys);
FITS(backoff_keys);
FITS(budget_keys);
FITS(timeout_keys);
FITS(breaker_keys);
FITS(trip_keys);
FITS(limit_keys);

/* Calls fn for each key present in a mapping, with the key's own path. */
typedef void (*field_fn)(struct cf_loader *l, struct cf_draft *d, int i, yaml_node_t *k,
			 yaml_node_t *v, const char *path);

static void each_key(struct cf_loader *l, struct cf_draft *d, yaml_node_t *map,
		     const char *path, const char *const *keys, field_fn fn)
{
	yaml_node_t *kn[MAX_KEYS], *vn[MAX_KEYS];
	char p[CF_PATH_MAX];
	if (cf_map(l, map, path, keys, kn, vn) < 0)
		return;
	for (int i = 0; keys[i]; i++) {
		if (!vn[i])
			continue;
		cf_sub(p, path, keys[i]);
		fn(l, d, i, kn[i], vn[i], p);
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

static int get_number(struct cf_loader *l, yaml_node_t *v, const char *path, double *out)
{
	char err[128];
	const char *s = cf_scalar(l, v, path, "a number");
	if (s && (bw_parse_number(s, out, err, sizeof err) < 0 || *out < 1)) {
		cf_error(l, cf_mark_of(v), "%s: expected a number of at least 1, got %s", path, s);
		return -1;
	}
	return s ? 0 : -1;
}

static void parse_preset(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			 yaml_node_t *v, const char *path)
{
	struct bw_retry *r = &d->r.retry;
	int p;
	if (!cf_text(v)) {
		cf_error(l, cf_mark_of(v), "%s: expected a mapping or one of quick, conservative, "
			 "aggressive, off, got nothing", path);
		return;
	}
	if (cf_enum(l, v, path, presets, &p) < 0)
		return;
	if (strcmp(presets[p], "off") == 0) {
		d->retry_off = 1;
		return;
	}
	r->attempts = preset_values[p].attempts;
	r->base = preset_values[p].base;
	r->max = preset_values[p].max;
	r->multiplier = 2;
	r->jitter = BW_JITTER_FULL;
	for (int f = F_ATTEMPTS; f <= F_JITTER; f++)
		if (f != F_ON)
			cf_own(d, f, k);
}

static void parse_on(struct cf_loader *l, struct cf_draft *d, yaml_node_t *v, const char *path)
{
	struct cf_list ls;
	struct bw_retry *r = &d->r.retry;
	char ip[CF_PATH_MAX];
	int code;
	if (cf_list(l, v, path, &ls) < 0)
		return;
	if (ls.n == 0 || ls.n > BW_MAX_ON) {
		cf_error(l, cf_mark_of(v), "%s: expected 1 to %d error names%s", path, BW_MAX_ON,
			 ls.n ? "" : "; to never retry, write retry: off");
		return;
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
}

static void backoff_field(struct cf_loader *l, struct cf_draft *d, int i, yaml_node_t *k,
			  yaml_node_t *v, const char *path)
{
	static const int fields[] = { F_BASE, F_MAX, F_MULT, F_JITTER };
	struct bw_retry *r = &d->r.retry;
	int ok, j;
	switch (i) {
	case 0:
		ok = cf_duration(l, v, path, &r->base) == 0;
		break;
	case 1:
		ok = cf_duration(l, v, path, &r->max) == 0;
		break;
	case 2:
		ok = get_number(l, v, path, &r->multiplier) == 0;
		break;
	default:
		if ((ok = cf_enum(l, v, path, cf_jitter_names, &j) == 0))
			r->jitter = (enum bw_jitter)j;
	}
	if (ok)
		cf_own(d, fields[i], k);
}

static void budget_field(struct cf_loader *l, struct cf_draft *d, int i, yaml_node_t *k,
			 yaml_node_t *v, const char *path)
{
	long n;
	if (i == 0 && cf_ratio(l, v, path, 1, &d->r.retry.budget_ratio) == 0) {
		cf_own(d, F_BUDGET_RATIO, k);
	} else if (i == 1 && cf_int(l, v, path, 0, 1000000, &n) == 0) {
		d->r.retry.budget_min_per_sec = (int)n;
		cf_own(d, F_BUDGET_MIN, k);
	}
}

static void retry_field(struct cf_loader *l, struct cf_draft *d, int i, yaml_node_t *k,
			yaml_node_t *v, const char *path)
{
	long n;
	switch (i) {
	case 0:
		if (cf_int(l, v, path, 1, 100, &n) == 0) {
			d->r.retry.attempts = (int)n;
			cf_own(d, F_ATTEMPTS, k);
		}
		break;
	case 1:
		cf_own(d, F_ON, k);
		parse_on(l, d, v, path);
		break;
	case 2:
		each_key(l, d, v, path, backoff_keys, backoff_field);
		break;
	case 3:
		if (cf_duration(l, v, path, &d->r.retry.deadline) == 0)
			cf_own(d, F_DEADLINE, k);
		break;
	default:
		cf_own(d, F_BUDGET, k);
		each_key(l, d, v, path, budget_keys, budget_field);
	}
}

void cf_parse_retry(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_RETRY, k, "retry", path);
	if (v->type == YAML_SCALAR_NODE)
		parse_preset(l, d, k, v, path);
	else
		each_key(l, d, v, path, retry_keys, retry_field);
}

static void timeout_field(struct cf_loader *l, struct cf_draft *d, int i, yaml_node_t *k,
			  yaml_node_t *v, const char *path)
{
	static const int ops[] = { BW_OP_CONNECT, BW_OP_RECV, BW_OP_SEND };
	bw_usec *dst[] = { &d->r.timeout.connect, &d->r.timeout.recv, &d->r.timeout.send };
	if (!d->is_defaults && !(d->r.match.ops & BW_OPBIT(ops[i])))
		cf_not_applicable(l, d, k, path, NULL);
	else if (cf_duration(l, v, path, dst[i]) == 0)
		cf_own(d, F_T_CONNECT + i, k);
}

void cf_parse_timeout(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_TIMEOUT, k, "timeout", path);
	each_key(l, d, v, path, timeout_keys, timeout_field);
}

static void trip_field(struct cf_loader *l, struct cf_draft *d, int i, yaml_node_t *k,
		       yaml_node_t *v, const char *path)
{
	static const int fields[] = { F_B_CONSEC, F_B_RATE, F_B_WINDOW, F_B_MINCALLS };
	struct bw_breaker *b = &d->r.breaker;
	long n;
	int ok = 0;
	switch (i) {
	case 0:
		if ((ok = cf_int(l, v, path, 1, 10000, &n) == 0))
			b->consecutive = (int)n;
		break;
	case 1:
		ok = cf_ratio(l, v, path, 1, &b->rate) == 0;
		break;
	case 2:
		ok = cf_duration(l, v, path, &b->window) == 0;
		break;
	default:
		if ((ok = cf_int(l, v, path, 1, 1000000, &n) == 0))
			b->min_calls = (int)n;
	}
	if (ok)
		cf_own(d, fields[i], k);
}

static void breaker_field(struct cf_loader *l, struct cf_draft *d, int i, yaml_node_t *k,
			  yaml_node_t *v, const char *path)
{
	static const int fields[] = { F_B_SCOPE, -1, F_B_OPEN, F_B_OPENMAX, F_B_PROBES, F_B_ERR };
	struct bw_breaker *b = &d->r.breaker;
	long n;
	int ok = 0, e;
	switch (i) {
	case 0:
		if ((ok = cf_enum(l, v, path, breaker_scopes, &e) == 0))
			b->scope = (enum bw_scope)e;
		break;
	case 1:
		each_key(l, d, v, path, trip_keys, trip_field);
		break;
	case 2:
		ok = cf_duration(l, v, path, &b->open_for) == 0;
		break;
	case 3:
		ok = cf_duration(l, v, path, &b->open_for_max) == 0;
		break;
	case 4:
		if ((ok = cf_int(l, v, path, 1, 1000, &n) == 0))
			b->half_open_probes = (int)n;
		break;
	default:
		ok = cf_check_err(l, d, v, path, d->r.match.ops & CF_BREAKER_OPS, &b->err) == 0;
	}
	if (ok)
		cf_own(d, fields[i], k);
}

void cf_parse_breaker(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_BREAKER, k, "breaker", path);
	if (!d->is_defaults && !(d->r.match.ops & CF_BREAKER_OPS))
		cf_not_applicable(l, d, k, path, "a breaker needs connect, send, recv, resolve or "
				  "sqlite");
	else
		each_key(l, d, v, path, breaker_keys, breaker_field);
}

static int limit_rate(struct cf_loader *l, struct cf_draft *d, yaml_node_t *v, const char *path)
{
	struct bw_rate_limit *rl = &d->r.rate_limit;
	char err[160], ops[64];
	const char *s = cf_scalar(l, v, path, "a rate like 50/s or 1MiB/s");
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

static int on_limit(struct cf_loader *l, struct cf_draft *d, yaml_node_t *v, const char *path)
{
	char ops[64];
	int e;
	if (cf_enum(l, v, path, cf_onlimit_names, &e) < 0)
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
static int limit_burst(struct cf_loader *l, struct cf_draft *d, yaml_node_t *v, const char *path)
{
	char err[160];
	const char *s = cf_scalar(l, v, path, "a number, or a size such as 64KiB");
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

static void limit_field(struct cf_loader *l, struct cf_draft *d, int i, yaml_node_t *k,
			yaml_node_t *v, const char *path)
{
	static const int fields[] = { F_L_SCOPE, F_L_RATE, F_L_BURST, F_L_ONLIMIT, F_L_MAXWAIT,
				      F_L_ERR };
	struct bw_rate_limit *rl = &d->r.rate_limit;
	int ok, e;
	switch (i) {
	case 0:
		if ((ok = cf_enum(l, v, path, cf_scope_names, &e) == 0))
			rl->scope = (enum bw_scope)e;
		break;
	case 1:
		d->field_at[F_L_RATE] = cf_mark_of(k);   /* written, even if wrong */
		ok = limit_rate(l, d, v, path) == 0;
		break;
	case 2:
		ok = limit_burst(l, d, v, path) == 0;
		break;
	case 3:
		ok = on_limit(l, d, v, path) == 0;
		break;
	case 4:
		ok = cf_duration(l, v, path, &rl->max_wait) == 0;
		break;
	default:
		ok = cf_check_err(l, d, v, path, d->r.match.ops & CF_FAIL_OPS, &rl->err) == 0;
	}
	if (ok)
		cf_own(d, fields[i], k);
}

void cf_parse_rate_limit(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			 yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	section(d, S_RATE_LIMIT, k, "rate_limit", path);
	each_key(l, d, v, path, limit_keys, limit_field);
}
