/* Completing a rule: fields from `defaults` where the rule left them out, then built-in
 * values, then the checks that involve more than one field. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "config_int.h"
#include "dest.h"
#include "units.h"

#define MS 1000LL
#define SEC 1000000LL


#define RANGE(a, b) ((FBIT((b) + 1) - 1) & ~(FBIT(a) - 1))
#define RETRY_FIELDS RANGE(F_ATTEMPTS, F_BUDGET_MIN)
#define BREAKER_FIELDS RANGE(F_B_SCOPE, F_B_ERR)
#define LIMIT_FIELDS RANGE(F_L_SCOPE, F_L_ERR)

/* Where each plain field lives, so that inheriting is a copy. */
static const struct {
	int f;
	size_t off, len;
} slots[] = {
#define SLOT(f, m) { f, offsetof(struct bw_rule, m), sizeof(((struct bw_rule *)0)->m) }
	SLOT(F_ATTEMPTS, retry.attempts), SLOT(F_ON, retry.on), SLOT(F_ON, retry.n_on),
	SLOT(F_BASE, retry.base), SLOT(F_MAX, retry.max), SLOT(F_MULT, retry.multiplier),
	SLOT(F_JITTER, retry.jitter), SLOT(F_DEADLINE, retry.deadline),
	SLOT(F_BUDGET_RATIO, retry.budget_ratio), SLOT(F_BUDGET_MIN, retry.budget_min_per_sec),
	SLOT(F_T_CONNECT, timeout.connect), SLOT(F_T_RECV, timeout.recv),
	SLOT(F_T_SEND, timeout.send),
	SLOT(F_B_SCOPE, breaker.scope), SLOT(F_B_CONSEC, breaker.consecutive),
	SLOT(F_B_RATE, breaker.rate), SLOT(F_B_WINDOW, breaker.window),
	SLOT(F_B_MINCALLS, breaker.min_calls), SLOT(F_B_OPEN, breaker.open_for),
	SLOT(F_B_OPENMAX, breaker.open_for_max), SLOT(F_B_PROBES, breaker.half_open_probes),
	SLOT(F_B_ERR, breaker.err),
	SLOT(F_L_SCOPE, rate_limit.scope), SLOT(F_L_RATE, rate_limit.rate),
	SLOT(F_L_RATE, rate_limit.bytes), SLOT(F_L_BURST, rate_limit.burst),
	SLOT(F_L_ONLIMIT, rate_limit.on_limit), SLOT(F_L_MAXWAIT, rate_limit.max_wait),
	SLOT(F_L_ERR, rate_limit.err),
	SLOT(F_NONBLOCKING, nonblocking), SLOT(F_MAXKEYS, max_keys),
#undef SLOT
};

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
	if (!(ops & BW_OPBIT(BW_OP_CONNECT)))
		m &= ~FBIT(F_T_CONNECT);
	if (!(ops & CF_FALLBACK_OPS))
		m &= ~FBIT(F_FALLBACK);
	if (!(ops & CF_NONBLOCKING_OPS))
		m &= ~FBIT(F_NONBLOCKING);
	if (!(ops & BW_OPBIT(BW_OP_RECV)))
		m &= ~FBIT(F_T_RECV);
	if (!(ops & BW_OPBIT(BW_OP_SEND)))
		m &= ~FBIT(F_T_SEND);
	if (!(ops & CF_BREAKER_OPS))
		m &= ~BREAKER_FIELDS;
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
	for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
		if (has(m, slots[i].f))
			memcpy((char *)&d->r + slots[i].off, (const char *)&defs->r + slots[i].off,
			       slots[i].len);
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
	d->inherited = m;
}

static void fill_retry(struct bw_retry *r, uint64_t have)
{
	if (!has(have, F_ATTEMPTS))
		r->attempts = 3;
	if (!has(have, F_BASE))
		r->base = 100 * MS;
	if (!has(have, F_MAX))
		r->max = r->base > 5 * SEC ? r->base : 5 * SEC;
	if (!has(have, F_MULT))
		r->multiplier = 2;
	if (!has(have, F_JITTER))
		r->jitter = BW_JITTER_FULL;
	if (!has(have, F_BUDGET))
		r->budget_ratio = r->budget_min_per_sec = 0;
	else if (!has(have, F_BUDGET_RATIO))
		r->budget_ratio = 0.2;
	if (has(have, F_BUDGET) && !has(have, F_BUDGET_MIN))
		r->budget_min_per_sec = 5;
}

static void fill_breaker(struct bw_breaker *b, uint64_t have)
{
	if (!has(have, F_B_CONSEC) && !has(have, F_B_RATE))
		b->consecutive = 5;
	if (!has(have, F_B_WINDOW))
		b->window = 30 * SEC;
	if (!has(have, F_B_MINCALLS))
		b->min_calls = 20;
	if (!has(have, F_B_OPEN))
		b->open_for = 10 * SEC;
	if (!has(have, F_B_OPENMAX))
		b->open_for_max = b->open_for > 300 * SEC ? b->open_for : 300 * SEC;
	if (!has(have, F_B_PROBES))
		b->half_open_probes = 1;
}

static void fill_rate_limit(struct bw_rate_limit *rl, uint64_t have)
{
	if (!has(have, F_L_BURST))
		rl->burst = rl->rate > 1 ? rl->rate : 1;   /* one second's worth */
	if (!has(have, F_L_MAXWAIT))
		rl->max_wait = 1 * SEC;
}

static void fill(struct bw_rule *r, uint64_t have)
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
	if (!has(have, F_MAXKEYS))
		r->max_keys = CF_DEFAULT_MAX_KEYS;
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

void cf_check_defaults(struct cf_loader *l, struct cf_draft *defs)
{
	struct cf_draft tmp = *defs;   /* shallow: only plain fields are filled and read */
	tmp.r.has_retry = (defs->sections & SBIT(S_RETRY)) && !defs->retry_off;
	tmp.r.breaker.enabled = (defs->sections & SBIT(S_BREAKER)) != 0;
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
	if (d->r.rate_limit.enabled && !has(have, F_L_RATE)) {
		/* a rate that was written but wrong has been reported already */
		if ((d->sections & SBIT(S_RATE_LIMIT)) && !d->field_at[F_L_RATE].line)
			cf_error(l, d->section_at[S_RATE_LIMIT], "%s.rate_limit: missing required key "
				 "'rate'", d->path);
		d->r.rate_limit.enabled = 0;
	}
	fill(&d->r, have);
	cross_check(l, d);
}
