/* Completing a rule: fields from `defaults` where the rule left them out, then built-in
 * values, then the checks that involve more than one field. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "builtin.h"
#include "config_int.h"
#include "dest.h"
#include "units.h"

#define RANGE(a, b) ((FBIT((b) + 1) - 1) & ~(FBIT(a) - 1))
#define RETRY_FIELDS RANGE(F_ATTEMPTS, F_BUDGET_MIN)
#define BREAKER_FIELDS RANGE(F_B_SCOPE, F_B_ERR)
#define LIMIT_FIELDS RANGE(F_L_SCOPE, F_L_ERR)
#define SLOW_FIELDS RANGE(F_B_SLOW_OVER, F_B_SLOW_RATE)
#define CONCURRENCY_FIELDS RANGE(F_C_SCOPE, F_C_MAXWAIT)
#define THROTTLE_FIELDS RANGE(F_TH_SCOPE, F_TH_MAXREJ)

#define SLOT(m) { offsetof(struct bw_rule, m), sizeof(((struct bw_rule *)0)->m) }
/* Members first to last, together. */
#define SPAN(first, last) { offsetof(struct bw_rule, first), \
			    offsetof(struct bw_rule, last) + sizeof(((struct bw_rule *)0)->last) - \
			    offsetof(struct bw_rule, first) }
const struct cf_slot cf_slots[F_COUNT] = {
	[F_ATTEMPTS] = SLOT(retry.attempts),        [F_ON] = SPAN(retry.on, retry.n_on),
	[F_BASE] = SLOT(retry.base),                [F_MAX] = SLOT(retry.max),
	[F_MULT] = SLOT(retry.multiplier),          [F_JITTER] = SLOT(retry.jitter),
	[F_DEADLINE] = SLOT(retry.deadline),        [F_BUDGET_RATIO] = SLOT(retry.budget_ratio),
	[F_BUDGET_MIN] = SLOT(retry.budget_min_per_sec),
	[F_T_CONNECT] = SLOT(timeout.connect),      [F_T_RECV] = SLOT(timeout.recv),
	[F_T_SEND] = SLOT(timeout.send),
	[F_B_SCOPE] = SLOT(breaker.scope),          [F_B_CONSEC] = SLOT(breaker.consecutive),
	[F_B_RATE] = SLOT(breaker.rate),            [F_B_WINDOW] = SLOT(breaker.window),
	[F_B_MINCALLS] = SLOT(breaker.min_calls),
	[F_B_SLOW_OVER] = SLOT(breaker.slow_over),  [F_B_SLOW_RATE] = SLOT(breaker.slow_rate),
	[F_B_OPEN] = SLOT(breaker.open_for),
	[F_B_OPENMAX] = SLOT(breaker.open_for_max), [F_B_PROBES] = SLOT(breaker.half_open_probes),
	[F_B_ERR] = SLOT(breaker.err),
	[F_L_SCOPE] = SLOT(rate_limit.scope),
	[F_L_RATE] = SPAN(rate_limit.rate, rate_limit.bytes),
	[F_L_BURST] = SLOT(rate_limit.burst),       [F_L_ONLIMIT] = SLOT(rate_limit.on_limit),
	[F_L_MAXWAIT] = SLOT(rate_limit.max_wait),  [F_L_ERR] = SLOT(rate_limit.err),
	[F_C_SCOPE] = SLOT(concurrency.scope),      [F_C_MAX] = SLOT(concurrency.max),
	[F_C_MAXWAIT] = SLOT(concurrency.max_wait),
	[F_TH_SCOPE] = SLOT(throttle.scope),        [F_TH_K] = SLOT(throttle.k),
	[F_TH_WINDOW] = SLOT(throttle.window),      [F_TH_MAXREJ] = SLOT(throttle.max_reject),
	[F_NONBLOCKING] = SLOT(nonblocking),        [F_MAXKEYS] = SLOT(max_keys),
};
#undef SLOT
#undef SPAN

static int has(uint64_t mask, int f)
{
	return (mask & FBIT(f)) != 0;
}

static int err_fits(int code, unsigned ops)
{
	return code == 0 || (cf_err_ops(code) & ops) != 0;
}

/* Defaults are generic: what cannot apply to this rule's ops is left out, quietly. */
static uint64_t applicable(const struct cf_draft *defs, unsigned ops)
{
	const struct bw_rule *r = &defs->r;
	uint64_t m = defs->own;
	for (const struct cf_key *k = cf_timeout_keys; k->name; k++)
		if (!(ops & k->ops))
			m &= ~FBIT(k->field);
	if (!(ops & CF_FALLBACK_OPS))
		m &= ~FBIT(F_FALLBACK);
	if (!(ops & CF_NONBLOCKING_OPS))
		m &= ~FBIT(F_NONBLOCKING);
	if (!(ops & CF_BREAKER_OPS))
		m &= ~BREAKER_FIELDS;
	if (!(ops & CF_SLOW_OPS))
		m &= ~SLOW_FIELDS;
	if (!(ops & CF_BULKHEAD_OPS))
		m &= ~CONCURRENCY_FIELDS;
	if (!(ops & CF_THROTTLE_OPS))
		m &= ~THROTTLE_FIELDS;
	if (!err_fits(r->breaker.err, ops & CF_BREAKER_OPS))
		m &= ~FBIT(F_B_ERR);
	if (r->rate_limit.bytes && !(ops & CF_DATA_OPS))
		m &= ~FBIT(F_L_RATE);
	if (r->rate_limit.on_limit == BW_LIMIT_FAIL && (ops & ~CF_FAIL_OPS))
		m &= ~FBIT(F_L_ONLIMIT);
	if (!err_fits(r->rate_limit.err, ops & CF_FAIL_OPS))
		m &= ~FBIT(F_L_ERR);
	return m;
}

/* Inherited retry.on keeps the names that fit the rule's ops. */
static void filter_on(struct bw_retry *r, unsigned ops)
{
	int n = 0;
	for (int i = 0; i < r->n_on; i++) {
		int code = r->on[i];
		if (err_fits(code, ops) && !((ops & CF_DATA_OPS) && cf_unsafe_stream_err(code)))
			r->on[n++] = code;
	}
	memset(r->on + n, 0, sizeof r->on - (size_t)n * sizeof r->on[0]);
	r->n_on = n;
}

static int copy_dests(struct bw_rule *r, const struct bw_dest *src, int n)
{
	if (!(r->fallback = calloc((size_t)n + 1, sizeof *r->fallback)))
		return -1;
	for (; r->n_fallback < n; r->n_fallback++) {
		struct bw_dest *d = &r->fallback[r->n_fallback];
		*d = src[r->n_fallback];
		d->pattern = d->pattern ? strdup(d->pattern) : NULL;
		d->text = strdup(d->text);
		if (!d->text || (src[r->n_fallback].pattern && !d->pattern)) {
			bw_dest_free(d);
			return -1;
		}
	}
	return 0;
}

/* Inherited faults narrow to the rule's ops they fit; those fitting none are dropped. */
static int copy_injects(struct bw_rule *r, const struct bw_inject *src, int n)
{
	if (!(r->inject = calloc((size_t)n + 1, sizeof *r->inject)))
		return -1;
	for (int i = 0; i < n; i++) {
		unsigned ops = (src[i].ops ? src[i].ops : BW_OPS_ALL) & r->match.ops &
			       cf_inject_fits(&src[i]);
		if (ops) {
			r->inject[r->n_inject] = src[i];
			r->inject[r->n_inject++].ops = ops;
		}
	}
	return 0;
}

static void inherit(struct cf_loader *l, struct cf_draft *d, const struct cf_draft *defs)
{
	uint64_t m = applicable(defs, d->r.match.ops) & ~d->own;
	if (d->retry_off)
		m &= ~RETRY_FIELDS;
	/* a burst given as a size is for byte rates: a rule whose rate counts calls keeps its
	 * own default burst */
	int bytes = has(d->own, F_L_RATE) ? d->r.rate_limit.bytes
					  : has(m, F_L_RATE) && defs->r.rate_limit.bytes;
	if (defs->burst_sized && !bytes)
		m &= ~FBIT(F_L_BURST);
	for (int f = 0; f < F_COUNT; f++)
		if (has(m, f))
			memcpy((char *)&d->r + cf_slots[f].off, (const char *)&defs->r + cf_slots[f].off,
			       cf_slots[f].len);
	if (has(m, F_ON))
		filter_on(&d->r.retry, d->r.match.ops);
	/* each rule gets copies of these: many rules under long lists would multiply them */
	long before = l->inherited;
	l->inherited += (has(m, F_FALLBACK) ? defs->r.n_fallback : 0) +
			(has(m, F_INJECT) ? defs->r.n_inject : 0);
	if (l->inherited > BW_POLICY_MAX_INHERITED) {
		if (before <= BW_POLICY_MAX_INHERITED)   /* said once */
			cf_error(l, d->at, "%s: rules inherit more than %d fallback and inject entries "
				 "from defaults in all (each rule gets a copy)", d->path,
				 BW_POLICY_MAX_INHERITED);
		m &= ~(FBIT(F_FALLBACK) | FBIT(F_INJECT));
	}
	if ((has(m, F_FALLBACK) && copy_dests(&d->r, defs->r.fallback, defs->r.n_fallback) < 0) ||
	    (has(m, F_INJECT) && copy_injects(&d->r, defs->r.inject, defs->r.n_inject) < 0))
		cf_error(l, d->at, "%s: out of memory", d->path);
	d->r.has_retry = !d->retry_off && ((d->sections & SBIT(S_RETRY)) ||
					   ((defs->sections & SBIT(S_RETRY)) && !defs->retry_off));
	d->r.breaker.enabled = (d->sections & SBIT(S_BREAKER)) ||
			       ((defs->sections & SBIT(S_BREAKER)) && (d->r.match.ops & CF_BREAKER_OPS));
	d->r.rate_limit.enabled = (d->sections | defs->sections) & SBIT(S_RATE_LIMIT) ? 1 : 0;
	d->r.concurrency.enabled = (d->sections & SBIT(S_CONCURRENCY)) ||
				   ((defs->sections & SBIT(S_CONCURRENCY)) &&
				    (d->r.match.ops & CF_BULKHEAD_OPS));
	d->r.throttle.enabled = (d->sections & SBIT(S_THROTTLE)) ||
				((defs->sections & SBIT(S_THROTTLE)) &&
				 (d->r.match.ops & CF_THROTTLE_OPS));
	d->inherited = m;
}

static bw_usec at_least(bw_usec v, bw_usec floor)
{
	return v > floor ? v : floor;
}

static void fill_retry(struct bw_retry *r, uint64_t have)
{
	const struct bw_retry *b = &bw_builtin_rule.retry;
	if (!has(have, F_ATTEMPTS))
		r->attempts = b->attempts;
	if (!has(have, F_BASE))
		r->base = b->base;
	if (!has(have, F_MAX))
		r->max = at_least(b->max, r->base);
	if (!has(have, F_MULT))
		r->multiplier = b->multiplier;
	if (!has(have, F_JITTER))
		r->jitter = b->jitter;
	if (!has(have, F_BUDGET))
		r->budget_ratio = r->budget_min_per_sec = 0;
	else if (!has(have, F_BUDGET_RATIO))
		r->budget_ratio = b->budget_ratio;
	if (has(have, F_BUDGET) && !has(have, F_BUDGET_MIN))
		r->budget_min_per_sec = b->budget_min_per_sec;
}

static void fill_breaker(struct bw_breaker *r, uint64_t have)
{
	const struct bw_breaker *b = &bw_builtin_rule.breaker;
	if (!has(have, F_B_SCOPE))
		r->scope = b->scope;
	if (!has(have, F_B_CONSEC) && !has(have, F_B_RATE) && !has(have, F_B_SLOW_OVER))
		r->consecutive = b->consecutive;
	if (!has(have, F_B_SLOW_OVER))
		r->slow_over = 0, r->slow_rate = 0;
	else if (!has(have, F_B_SLOW_RATE))
		r->slow_rate = b->slow_rate;
	if (!has(have, F_B_WINDOW))
		r->window = b->window;
	if (!has(have, F_B_MINCALLS))
		r->min_calls = b->min_calls;
	if (!has(have, F_B_OPEN))
		r->open_for = b->open_for;
	if (!has(have, F_B_OPENMAX))
		r->open_for_max = at_least(b->open_for_max, r->open_for);
	if (!has(have, F_B_PROBES))
		r->half_open_probes = b->half_open_probes;
}

static void fill_rate_limit(struct bw_rate_limit *rl, uint64_t have)
{
	const struct bw_rate_limit *b = &bw_builtin_rule.rate_limit;
	if (!has(have, F_L_SCOPE))
		rl->scope = b->scope;
	if (!has(have, F_L_ONLIMIT))
		rl->on_limit = b->on_limit;
	if (!has(have, F_L_BURST))
		rl->burst = rl->rate > 1 ? rl->rate : 1;   /* one second's worth */
	if (!has(have, F_L_MAXWAIT))
		rl->max_wait = b->max_wait;
}

static void fill_concurrency(struct bw_concurrency *c, uint64_t have)
{
	const struct bw_concurrency *b = &bw_builtin_rule.concurrency;
	if (!has(have, F_C_SCOPE))
		c->scope = b->scope;
	if (!has(have, F_C_MAXWAIT))
		c->max_wait = b->max_wait;
}

static void fill_throttle(struct bw_throttle *t, uint64_t have)
{
	const struct bw_throttle *b = &bw_builtin_rule.throttle;
	if (!has(have, F_TH_SCOPE))
		t->scope = b->scope;
	if (!has(have, F_TH_K))
		t->k = b->k;
	if (!has(have, F_TH_WINDOW))
		t->window = b->window;
	if (!has(have, F_TH_MAXREJ))
		t->max_reject = b->max_reject;
}

void cf_fill(struct bw_rule *r, uint64_t have)
{
	if (r->has_retry)
		fill_retry(&r->retry, have);
	else
		memset(&r->retry, 0, sizeof r->retry);
	if (r->breaker.enabled)
		fill_breaker(&r->breaker, have);
	else
		memset(&r->breaker, 0, sizeof r->breaker);
	if (r->rate_limit.enabled)
		fill_rate_limit(&r->rate_limit, have);
	else
		memset(&r->rate_limit, 0, sizeof r->rate_limit);
	if (r->concurrency.enabled)
		fill_concurrency(&r->concurrency, have);
	else
		memset(&r->concurrency, 0, sizeof r->concurrency);
	if (r->throttle.enabled)
		fill_throttle(&r->throttle, have);
	else
		memset(&r->throttle, 0, sizeof r->throttle);
	if (!has(have, F_NONBLOCKING))
		r->nonblocking = bw_builtin_rule.nonblocking;
	if (!has(have, F_MAXKEYS))
		r->max_keys = bw_builtin_rule.max_keys;
}

/* lo must not exceed hi; said at whichever of the two was written here. */
static void check_order(struct cf_loader *l, const struct cf_draft *d, int flo, int fhi,
			bw_usec lo, bw_usec hi, const char *lo_name, const char *hi_name)
{
	char a[32], b[32];
	if (lo <= hi)
		return;
	bw_format_duration(lo, a, sizeof a);
	bw_format_duration(hi, b, sizeof b);
	if (has(d->own, fhi))
		cf_error(l, d->field_at[fhi], "%s.%s: %s is less than %s (%s)", d->path, hi_name, b,
			 lo_name, a);
	else if (has(d->own, flo))
		cf_error(l, d->field_at[flo], "%s.%s: %s is more than %s (%s)", d->path, lo_name, a,
			 hi_name, b);
}

/* A size is a number of bytes: a bucket that counts calls has no use for it. */
static void check_burst(struct cf_loader *l, const struct cf_draft *d)
{
	const struct bw_rate_limit *rl = &d->r.rate_limit;
	char rate[64];
	if (!d->burst_sized || !has(d->own, F_L_BURST) || !has(d->own | d->inherited, F_L_RATE) ||
	    rl->bytes)
		return;
	bw_format_rate(rl->rate, 0, rate, sizeof rate);
	cf_error(l, d->burst_at, "%s.rate_limit.burst: %s is a size in bytes, but the rate %s "
		 "counts calls; give the burst as a number of calls, such as 10", d->path,
		 d->burst_text, rate);
}

static void cross_check(struct cf_loader *l, const struct cf_draft *d)
{
	const struct bw_rule *r = &d->r;
	if (r->rate_limit.enabled || d->is_defaults)
		check_burst(l, d);
	if (r->has_retry)
		check_order(l, d, F_BASE, F_MAX, r->retry.base, r->retry.max, "retry.backoff.base",
			    "retry.backoff.max");
	if (r->breaker.enabled)
		check_order(l, d, F_B_OPEN, F_B_OPENMAX, r->breaker.open_for, r->breaker.open_for_max,
			    "breaker.open_for", "breaker.open_for_max");
}

/* A section whose one required key is missing: said at the section (or at the mapping
 * that holds it), unless the key was written and is wrong, which was said already. */
static void required(struct cf_loader *l, const struct cf_draft *d, int f, struct cf_mark at,
		     const char *where, const char *key)
{
	if (!d->field_at[f].line)
		cf_error(l, at, "%s.%s: missing required key '%s'", d->path, where, key);
}

void cf_check_defaults(struct cf_loader *l, struct cf_draft *defs)
{
	struct cf_draft tmp = *defs;   /* shallow: only plain fields are filled and read */
	tmp.r.has_retry = (defs->sections & SBIT(S_RETRY)) && !defs->retry_off;
	tmp.r.breaker.enabled = (defs->sections & SBIT(S_BREAKER)) != 0;
	if (defs->slow_given && !has(defs->own, F_B_SLOW_OVER))
		required(l, defs, F_B_SLOW_OVER, defs->slow_at, "breaker.trip.slow", "over");
	if (tmp.r.has_retry)
		fill_retry(&tmp.r.retry, defs->own);
	if (tmp.r.breaker.enabled)
		fill_breaker(&tmp.r.breaker, defs->own);
	cross_check(l, &tmp);
}

void cf_finish_rule(struct cf_loader *l, struct cf_draft *d, const struct cf_draft *defs)
{
	static const struct cf_draft none;
	inherit(l, d, defs ? defs : &none);
	uint64_t have = d->own | d->inherited;
	if (d->r.concurrency.enabled && !has(have, F_C_MAX)) {
		if ((d->sections & SBIT(S_CONCURRENCY)) && (d->r.match.ops & CF_BULKHEAD_OPS))
			required(l, d, F_C_MAX, d->section_at[S_CONCURRENCY], "concurrency", "max");
		d->r.concurrency.enabled = 0;
	}
	/* a slow trip needs its threshold; a rate alone says nothing */
	if (d->slow_given && !has(have, F_B_SLOW_OVER) && (d->r.match.ops & CF_SLOW_OPS))
		required(l, d, F_B_SLOW_OVER, d->slow_at, "breaker.trip.slow", "over");
	if (d->r.rate_limit.enabled && !has(have, F_L_RATE)) {
		/* a rate that was written but wrong has been reported already */
		if ((d->sections & SBIT(S_RATE_LIMIT)) && !d->field_at[F_L_RATE].line)
			cf_error(l, d->section_at[S_RATE_LIMIT], "%s.rate_limit: missing required key "
				 "'rate'", d->path);
		d->r.rate_limit.enabled = 0;
	}
	cf_fill(&d->r, have);
	cross_check(l, d);
}
