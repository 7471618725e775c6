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
	ev.reason = f->partial ? "partial" : f->eof ? "eof" : f->reset ? "reset" : NULL;
	ev.injected = 1;
	bw_engine_emit(e, c, &ev);
}

__thread int bw_attempt_injected __attribute__((tls_model("initial-exec")));

int bw_engine_inject(struct bw_engine *e, const struct bw_call *c, struct bw_fault *f)
{
	const struct bw_rule *r = c->rule;
	memset(f, 0, sizeof *f);
	if (!r->n_inject)
		return 0;
	struct bw_rule_rt *rt = &e->rt[r - e->cfg->rules];
	int any = 0;
	for (int i = 0; i < r->n_inject; i++) {
		const struct bw_inject *in = &r->inject[i];
		if (!(in->ops & BW_OPBIT(c->op)))
			continue;
		long k = __atomic_add_fetch(&rt->inj_seen[i], 1, __ATOMIC_RELAXED);
		if (k <= in->after)
			continue;
		struct bw_rng local = { (uint64_t)k ^ e->seed };
		uint64_t d = draw(e, r, i, k, &local);
		if ((double)(d >> 11) * (1.0 / 9007199254740992.0) >= in->probability)
			continue;
		if (in->count >= 0 &&
		    __atomic_add_fetch(&rt->inj_done[i], 1, __ATOMIC_RELAXED) > in->count)
			continue;
		/* entries add up: a delay from one, an error from another */
		if (in->err && !f->err)
			f->err = in->err;
		f->delay += in->delay;
		f->partial |= in->partial;
		f->eof |= in->eof;
		f->reset |= in->reset;
		f->draw = bw_mix(d, 0x5bd1e995);
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
