/* Admission: breakers and rate limits around each attempt, through the store (store.h),
 * which keeps their state per destination or per rule. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include "engine.h"
#include "errnames.h"
#include "ops.h"

#define MAX_WAITS 10000     /* bounds the wait loop whatever the clock does */

/* The label of a call's destination, for `bulwark status`: asked only when a store cell
 * is first used. */
static void call_label(const void *arg, char *buf, size_t cap)
{
	const struct bw_call *c = arg;
	const char *name = c->dest ? c->dest : c->db ? c->db : c->host;
	if (name) {
		size_t n = strnlen(name, cap - 1);
		memcpy(buf, name, n);
		buf[n] = '\0';
	} else if (c->dest_of) {
		c->dest_of(c, buf, cap);
	}
}

/* The store cell a call's section (breaker or rate limit) works on. */
static struct bw_ref ref_of(const struct bw_engine *e, const struct bw_call *c, int scope)
{
	struct bw_ref ref = { e->rt[c->rule - e->cfg->rules].slot, scope, c->key, call_label, c };
	return ref;
}

/* What a refused call returns: the configured code where it fits the op, else the op's. */
static int refusal(int configured, int op)
{
	if (configured && (bw_err_space(configured) & bw_op(op)->spaces))
		return configured;
	return bw_op(op)->refusal;
}

static int breaker_guards(const struct bw_rule *r, int op)
{
	return r->breaker.enabled && bw_op_has(op, BW_OPF_BREAKER);
}

static void breaker_event(struct bw_engine *e, const struct bw_call *c, struct bw_brk_move mv)
{
	if (mv.from == mv.to)
		return;
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_BREAKER, BW_LVL_WARN);
	ev.from = bw_brk_name(mv.from);
	ev.to = bw_brk_name(mv.to);
	bw_engine_emit(e, c, &ev);
}

static void simple_event(struct bw_engine *e, const struct bw_call *c, enum bw_event_kind kind,
			 int err, double delay_ms)
{
	struct bw_event ev;
	bw_event_init(&ev, kind, bw_event_default_level(kind));
	ev.err = err;
	ev.delay_ms = delay_ms;
	bw_engine_emit(e, c, &ev);
}

static int breaker_admit(struct bw_engine *e, const struct bw_call *c)
{
	const struct bw_rule *r = c->rule;
	struct bw_brk_move mv;
	struct bw_ref ref = ref_of(e, c, r->breaker.scope);
	int allowed = bw_store_admit(e->store, &ref, &r->breaker, e->env.mono_us(), &mv);
	breaker_event(e, c, mv);
	if (allowed)
		return 0;
	int err = refusal(r->breaker.err, c->op);
	simple_event(e, c, BW_EV_REJECTED, err, -1);
	if (e->mode == BW_MODE_OBSERVE)
		return 0;
	bw_engine_count(e, r, BW_ST_REJECTED);
	return err;
}

/* One try at the bucket: the tokens taken (0: none, *wait says how long until there are
 * enough); `want` when the cell cannot be had, as the call then goes unguarded. */
static double try_take(struct bw_engine *e, const struct bw_call *c, double want, double least,
		       int64_t *wait)
{
	const struct bw_rate_limit *rl = &c->rule->rate_limit;
	struct bw_ref ref = ref_of(e, c, rl->scope);
	/* read before locking: the lock is held for arithmetic only */
	return bw_store_take(e->store, &ref, rl, e->env.mono_us(), want, least, wait);
}

/* Take `want` tokens (at least `least`), waiting as the policy allows. Returns the tokens
 * taken, or 0 when the call is refused (*err set). */
static double take_tokens(struct bw_engine *e, const struct bw_call *c, double want,
			  double least, int *err)
{
	int64_t wait = 0, waited = 0;
	double got = try_take(e, c, want, least, &wait);
	*err = 0;
	if (got > 0)                     /* the usual case: tokens to spare */
		return got;
	const struct bw_rate_limit *rl = &c->rule->rate_limit;
	int refusable = bw_op_has(c->op, BW_OPF_REFUSE);
	for (int i = 0; i < MAX_WAITS; i++) {
		if (i > 0) {
			got = try_take(e, c, want, least, &wait);
			if (got > 0)
				break;
		}
		if (refusable && (rl->on_limit == BW_LIMIT_FAIL || waited + wait > rl->max_wait)) {
			*err = refusal(rl->err, c->op);
			simple_event(e, c, BW_EV_LIMITED, *err, -1);
			if (e->mode == BW_MODE_OBSERVE) {
				*err = 0;
				return want;
			}
			bw_engine_count(e, c->rule, BW_ST_LIMITED);
			return 0;
		}
		if (e->mode == BW_MODE_OBSERVE) {
			waited = wait;
			got = want;
			break;
		}
		if (bw_engine_wait(e, c, wait, BW_WAIT_LIMIT, err))
			return 0;        /* a signal handler ended the call while it waited */
		waited += wait;
	}
	if (waited > 0) {
		simple_event(e, c, BW_EV_THROTTLED, 0, (double)waited / 1000.0);
		if (e->mode != BW_MODE_OBSERVE)
			bw_engine_count(e, c->rule, BW_ST_THROTTLED);
	}
	return got > 0 ? got : want;
}

int bw_engine_admits(const struct bw_rule *r, int op)
{
	return breaker_guards(r, op) || (r->rate_limit.enabled && !r->rate_limit.bytes);
}

int bw_engine_admit(struct bw_engine *e, const struct bw_call *c, int *by_breaker)
{
	const struct bw_rule *r = c->rule;
	*by_breaker = 0;
	if (breaker_guards(r, c->op)) {
		int err = breaker_admit(e, c);
		if (err) {
			*by_breaker = 1;
			return err;
		}
	}
	if (r->rate_limit.enabled && !r->rate_limit.bytes) {
		int err;
		take_tokens(e, c, 1, 1, &err);
		if (err)
			return err;
	}
	return 0;
}

/* Outcomes that say nothing about the destination's health do not move the breaker. */
static int counts_as_failure(const struct bw_call *c, int err)
{
	return err != 0 && !bw_err_listed(bw_op(c->op)->healthy, err);
}

static void record(struct bw_engine *e, const struct bw_call *c, enum bw_outcome out)
{
	const struct bw_rule *r = c->rule;
	struct bw_brk_move mv;
	struct bw_ref ref = ref_of(e, c, r->breaker.scope);
	bw_store_record(e->store, &ref, &r->breaker, e->env.mono_us(), out, &mv);
	breaker_event(e, c, mv);
}

void bw_engine_settle(struct bw_engine *e, const struct bw_call *c, int err)
{
	if (!breaker_guards(c->rule, c->op))
		return;
	/* a connection just made closes a half-open breaker as a probe that worked (the
	 * server accepts connections again), but a closed breaker's count of failures in a
	 * row waits for its first byte: a server that accepts and then resets every
	 * connection must still trip it (design.md §4.7) */
	record(e, c, err == 0 && c->confirm_later ? BW_OUT_CONNECTED
		     : counts_as_failure(c, err) ? BW_OUT_FAILED : BW_OUT_OK);
}

void bw_engine_release(struct bw_engine *e, const struct bw_call *c)
{
	if (breaker_guards(c->rule, c->op))
		record(e, c, BW_OUT_NONE);
}

void bw_engine_confirm(struct bw_engine *e, const struct bw_call *c, int failed)
{
	if (breaker_guards(c->rule, c->op))
		record(e, c, failed ? BW_OUT_FAILED : BW_OUT_OK);
}

/* A connection that broke: the failures of an established connection that speak of the
 * destination (the program's own errors and its timeouts' EAGAIN do not). */
static int connection_broke(int err)
{
	return err == ECONNRESET || err == EPIPE || err == ETIMEDOUT;
}

void bw_engine_count_failure(struct bw_engine *e, const struct bw_call *c, int err)
{
	if (c->rule->breaker.enabled && bw_op_has(c->op, BW_OPF_BREAKER_COUNTS) &&
	    connection_broke(err))
		record(e, c, BW_OUT_FAILED);
}

double bw_engine_piece(const struct bw_rate_limit *rl)
{
	/* a stream send that may be cut waits for a useful piece (10 ms of the rate) rather
	 * than spinning on one-byte writes */
	double least = rl->rate / 100;
	if (least > rl->burst)
		least = rl->burst;
	return least < 1 ? 1 : least;
}

size_t bw_engine_bytes(struct bw_engine *e, const struct bw_call *c, size_t want, int whole)
{
	int err;
	return bw_engine_take_bytes(e, c, want, whole, &err);
}

size_t bw_engine_take_bytes(struct bw_engine *e, const struct bw_call *c, size_t want,
			    int whole, int *err)
{
	*err = 0;
	const struct bw_rate_limit *rl = &c->rule->rate_limit;
	if (!rl->enabled || !rl->bytes || want == 0)
		return want;
	double least = whole ? (double)want : bw_engine_piece(rl);
	if (least > rl->burst)
		least = rl->burst;
	if (least > (double)want)
		least = (double)want;
	int64_t wait;
	double got = try_take(e, c, (double)want, least, &wait);
	if (got <= 0) {
		got = take_tokens(e, c, (double)want, least, err);
		if (*err)
			return 0;
	}
	/* observe mode logs the wait it would make, and never cuts a transfer short */
	return got >= (double)want || e->mode == BW_MODE_OBSERVE ? want : (size_t)got;
}

void bw_engine_unbytes(struct bw_engine *e, const struct bw_call *c, size_t n)
{
	const struct bw_rate_limit *rl = &c->rule->rate_limit;
	if (!rl->enabled || !rl->bytes || n == 0)
		return;
	struct bw_ref ref = ref_of(e, c, rl->scope);
	bw_store_give(e->store, &ref, rl, (double)n);
}

void bw_engine_after_fork(struct bw_engine *e)
{
	e->store->ops->after_fork(e->store, e->pid);
}
