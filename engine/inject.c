/* Fault injection decisions (bulwark.yaml(5), INJECT). With a non-zero seed, whether call k of a rule is
 * hit depends only on the seed, the rule, the inject entry and k: the counter is per entry
 * and the draw is a hash of those, not a stream shared with other rules or threads. */
#include <string.h>
#include "engine.h"
#include "keyed.h"

static uint64_t draw(const struct bw_engine *e, const struct bw_rule *r, int entry, long k,
		     struct bw_rng *fallback)
{
	if (!e->cfg->seed)
		return bw_rng_next(fallback);
	uint64_t h = bw_key_bytes(r->name, strlen(r->name), e->seed);
	return bw_mix(bw_mix(h, (uint64_t)entry), (uint64_t)k);
}

/* A uniform number in [0, 1) from 53 bits of d. */
static double unit(uint64_t d)
{
	return (double)(d >> 11) * (1.0 / 9007199254740992.0);
}

/* The natural logarithm of x in (0, 1], without libm (the library links none): x =
 * m 2^k with m in [1, 2), ln m = 2 atanh((m - 1) / (m + 1)), whose series converges fast
 * for m - 1 < 1. */
static double ln_unit(double x)
{
	int k = 0;
	while (x < 1.0) {
		x *= 2;
		k--;
	}
	double z = (x - 1) / (x + 1), z2 = z * z, term = z, sum = 0;
	for (int i = 1; i < 40; i += 2) {
		sum += term / i;
		term *= z2;
	}
	return 2 * sum + k * 0.69314718055994530942;
}

bw_usec bw_inject_latency(const struct bw_inject *in, uint64_t d)
{
	double j = (double)in->jitter, v = (double)in->latency;
	switch (in->distribution) {
	case BW_DIST_NORMAL: {
		/* a standard normal from the sum of 12 uniforms (Irwin-Hall, mean 6, variance
		 * 1): within 6 sigma, no libm */
		double sum = 0;
		for (int i = 0; i < 12; i++)
			sum += unit(bw_mix(d, (uint64_t)i + 1));
		v += j * (sum - 6);
		break;
	}
	case BW_DIST_EXPONENTIAL:
		/* the long tail: most hits near latency, a few far beyond; jitter is the mean
		 * of what is added */
		v += -j * ln_unit(1.0 - unit(bw_mix(d, 1)));
		break;
	default:
		v += j * (2 * unit(bw_mix(d, 1)) - 1);
	}
	return v > 0 ? (bw_usec)(v + 0.5) : 0;
}

/* A hit of entry in: what it adds to the fault. */
static void add_fault(struct bw_fault *f, const struct bw_inject *in, uint64_t d)
{
	/* entries add up: a delay from one, an error from another */
	if (in->err && !f->err)
		f->err = in->err;
	f->delay += in->delay;
	if (in->latency || in->jitter)
		f->delay += bw_inject_latency(in, d);
	f->partial |= in->partial;
	f->eof |= in->eof;
	f->reset |= in->reset;
	if (in->limit_data && (!f->limit_data || in->limit_data < f->limit_data))
		f->limit_data = in->limit_data;
	f->stall |= in->stall;
	if (in->slow_close > f->slow_close)
		f->slow_close = in->slow_close;
	f->loss |= in->loss;
	f->duplicate |= in->duplicate;
	f->reorder |= in->reorder;
	f->draw = bw_mix(d, 0x5bd1e995);
}

/* The entry does nothing but what the connection already keeps (engine.h, latched). */
static int already(const struct bw_inject *in, unsigned latched)
{
	if (in->err || in->delay || in->latency || in->jitter || in->partial || in->eof ||
	    in->reset || in->loss || in->duplicate || in->reorder)
		return 0;
	return (!in->limit_data || (latched & BW_LATCHED_LIMIT)) &&
	       (!in->stall || (latched & BW_LATCHED_STALL)) &&
	       (!in->slow_close || (latched & BW_LATCHED_SLOW_CLOSE));
}

static const char *fault_reason(const struct bw_fault *f)
{
	return f->partial ? "partial" : f->eof ? "eof" : f->reset ? "reset" :
	       f->limit_data ? "limit_data" : f->stall ? "stall" : f->slow_close ? "slow_close" :
	       f->loss ? "loss" : f->duplicate ? "duplicate" : f->reorder ? "reorder" : NULL;
}

double bw_engine_draw(const struct bw_engine *e, const struct bw_rule *r, int stream, long k)
{
	struct bw_rng local = { bw_mix((uint64_t)k ^ e->seed, (uint64_t)(int64_t)stream) };
	uint64_t d = draw(e, r, stream, k, &local);
	return (double)(d >> 11) * (1.0 / 9007199254740992.0);
}

static void injected_event(struct bw_engine *e, const struct bw_call *c, const struct bw_fault *f)
{
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_INJECTED, BW_LVL_INFO);
	ev.err = f->err;
	ev.delay_ms = f->delay ? (double)f->delay / 1000.0 : -1;
	ev.reason = fault_reason(f);
	ev.injected = 1;
	ev.n = bw_attempt_n ? bw_attempt_n : -1;
	bw_engine_emit(e, c, &ev);
}

__thread int bw_attempt_injected __attribute__((tls_model("initial-exec")));
__thread long bw_attempt_n __attribute__((tls_model("initial-exec")));
__thread uint64_t bw_inject_conn_sel __attribute__((tls_model("initial-exec")));
__thread unsigned bw_inject_latched __attribute__((tls_model("initial-exec")));

int bw_engine_inject(struct bw_engine *e, const struct bw_call *c, struct bw_fault *f)
{
	const struct bw_rule *r = c->rule;
	uint64_t conn_sel = bw_inject_conn_sel;
	unsigned latched = bw_inject_latched;
	bw_inject_conn_sel = 0;
	bw_inject_latched = 0;
	memset(f, 0, sizeof *f);
	/* every attempt passes here: observe mode numbers them where inject entries count
	 * them, so that a fail event's n is the count an entry's `after` would see */
	bw_attempt_n = e->tally ? bw_tally_begin(e, c) : 0;
	if (!r->n_inject)
		return 0;
	struct bw_rule_rt *rt = &e->rt[r - e->cfg->rules];
	int any = 0;
	for (int i = 0; i < r->n_inject; i++) {
		const struct bw_inject *in = &r->inject[i];
		if (!(in->ops & BW_OPBIT(c->op)))
			continue;
		if (in->per == BW_PER_CONNECTION) {
			/* chosen with the connection; each call draws its own latency */
			if (!(i < BW_INJECT_CONN_MAX && (conn_sel >> i) & 1) ||
			    already(in, latched))
				continue;
			long k = __atomic_add_fetch(&rt->inj_seen[r->n_inject + i], 1,
						    __ATOMIC_RELAXED);
			struct bw_rng local = { (uint64_t)k ^ e->seed };
			add_fault(f, in, bw_mix(draw(e, r, i, k, &local), 0xc0de));
			any = 1;
			continue;
		}
		long k = __atomic_add_fetch(&rt->inj_seen[i], 1, __ATOMIC_RELAXED);
		if (!bw_attempt_n)
			bw_attempt_n = k;
		if (k <= in->after || already(in, latched))
			continue;
		struct bw_rng local = { (uint64_t)k ^ e->seed };
		uint64_t d = draw(e, r, i, k, &local);
		if (unit(d) >= in->probability)
			continue;
		if (in->count >= 0 &&
		    __atomic_add_fetch(&rt->inj_done[i], 1, __ATOMIC_RELAXED) > in->count)
			continue;
		add_fault(f, in, d);
		any = 1;
	}
	if (!any)
		return 0;
	injected_event(e, c, f);
	if (e->mode == BW_MODE_OBSERVE) {
		memset(f, 0, sizeof *f);
		return 0;
	}
	bw_engine_count(e, r, BW_ST_INJECTED);
	bw_attempt_injected = 1;
	int ended = 0;
	if (f->delay && bw_engine_wait(e, c, f->delay, BW_WAIT_DELAY, &ended)) {
		uint64_t d = f->draw;
		memset(f, 0, sizeof *f);
		f->err = ended;
		f->draw = d;
	}
	return 1;
}

uint64_t bw_engine_conn_select(struct bw_engine *e, const struct bw_rule *r)
{
	struct bw_rule_rt *rt = &e->rt[r - e->cfg->rules];
	uint64_t sel = 0;
	for (int i = 0; i < r->n_inject && i < BW_INJECT_CONN_MAX; i++) {
		const struct bw_inject *in = &r->inject[i];
		if (in->per != BW_PER_CONNECTION)
			continue;
		long k = __atomic_add_fetch(&rt->inj_seen[i], 1, __ATOMIC_RELAXED);
		if (k <= in->after)
			continue;
		struct bw_rng local = { (uint64_t)k ^ e->seed };
		if (unit(draw(e, r, i, k, &local)) >= in->probability)
			continue;
		if (in->count >= 0 &&
		    __atomic_add_fetch(&rt->inj_done[i], 1, __ATOMIC_RELAXED) > in->count)
			continue;
		sel |= UINT64_C(1) << i;
	}
	return sel;
}
