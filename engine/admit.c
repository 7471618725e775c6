/* Admission: breakers, adaptive throttling, rate limits and bulkheads around each
 * attempt, through the store (store.h), which keeps their state per destination or per
 * rule. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include "engine.h"
#include "errnames.h"
#include "ops.h"

#define MAX_WAITS 10000     /* bounds the wait loop whatever the clock does */
/* A full bulkhead is looked at again after naps that grow from the first to the last:
 * a slot given back is seen within a few milliseconds, and a long wait costs little. */
#define SLOT_NAP_FIRST (1 * BW_MS)
#define SLOT_NAP_LAST (20 * BW_MS)
/* ... and every this many looks, the slots of processes that died are counted back */
#define SLOT_RECLAIM_EVERY 8
#define THROTTLE_STREAM (-1)   /* the throttle's draws, apart from every inject entry's */

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

/* ---- adaptive throttling ---- */

static int throttles(const struct bw_rule *r, int op)
{
	return r->throttle.enabled && bw_op_has(op, BW_OPF_THROTTLE);
}

static int throttle_admit(struct bw_engine *e, const struct bw_call *c)
{
	const struct bw_rule *r = c->rule;
	struct bw_rule_rt *rt = &e->rt[r - e->cfg->rules];
	long k = __atomic_add_fetch(&rt->thr_seen, 1, __ATOMIC_RELAXED);
	double draw = bw_engine_draw(e, r, THROTTLE_STREAM, k), p;
	struct bw_ref ref = ref_of(e, c, r->throttle.scope);
	if (!bw_store_throttle(e->store, &ref, &r->throttle, e->env.mono_us(), draw, &p))
		return 0;
	int err = refusal(0, c->op);
	char extra[48];
	size_t n = 0;
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"p\":");
	bw_json_ms(extra, sizeof extra, &n, p);
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_SHED, BW_LVL_WARN);
	ev.err = err;
	ev.extra = extra;
	bw_engine_emit(e, c, &ev);
	/* observe mode makes the call, whose outcome counts it */
	if (e->mode == BW_MODE_OBSERVE)
		return 0;
	bw_store_thr_outcome(e->store, &ref, &r->throttle, e->env.mono_us(), 0);
	bw_engine_count(e, r, BW_ST_SHED);
	return err;
}

/* An outcome the destination gave is an accept: a connection made, or, for an op whose
 * errors may be the application's, any error its default retry list does not name. */
static int answered(const struct bw_call *c, int err)
{
	if (err == 0)
		return 1;
	const struct bw_op_def *op = bw_op(c->op);
	return (op->flags & BW_OPF_ANSWERS) && !bw_err_listed(op->retry_on, err) &&
	       !bw_attempt_injected;
}

/* ---- bulkheads ---- */

static int bulkheads(const struct bw_rule *r, int op)
{
	return r->concurrency.enabled && bw_op_has(op, BW_OPF_BULKHEAD);
}

struct bw_ref bw_engine_slot_ref(const struct bw_engine *e, const struct bw_call *c)
{
	return ref_of(e, c, c->rule->concurrency.scope);
}

static void bulkhead_event(struct bw_engine *e, const struct bw_call *c, const char *what,
			   int err, int64_t waited)
{
	char extra[48];
	size_t n = 0;
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"max\":");
	bw_json_int(extra, sizeof extra, &n, c->rule->concurrency.max);
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_BULKHEAD_FULL, BW_LVL_WARN);
	ev.reason = what;
	ev.err = err;
	ev.delay_ms = (double)waited / 1000.0;
	ev.extra = extra;
	bw_engine_emit(e, c, &ev);
	if (e->mode != BW_MODE_OBSERVE)
		bw_engine_count(e, c->rule, BW_ST_BULKHEAD_FULL);
}

/* A slot for the call, waiting up to max_wait for one; then an op that may be refused is
 * (the op's own refusal, as a breaker's), and one that may only wait goes ahead beyond
 * max, counted: refusing it would be a made-up error on a ready descriptor (H14), and
 * waiting on could wait for the program's own connections to close. Observe mode waits
 * for nothing and says what it would have done. */
static int bulkhead_admit(struct bw_engine *e, struct bw_call *c)
{
	const struct bw_concurrency *cc = &c->rule->concurrency;
	struct bw_ref ref = ref_of(e, c, cc->scope);
	int observe = e->mode == BW_MODE_OBSERVE;
	int got = bw_store_take_slot(e->store, &ref, cc, e->env.mono_us(), observe, 1);
	if (got > 0 && !observe) {
		c->slot_held = 1;
		return 0;
	}
	if (got < 0)
		return 0;        /* the cell cannot be had: the call goes uncounted */
	if (observe) {
		/* counted, so that it says when the bulkhead would be full; over max it was */
		c->slot_held = 1;
		if (got == 2)
			bulkhead_event(e, c, bw_op_has(c->op, BW_OPF_REFUSE) ? "refused" : "over",
				       bw_op_has(c->op, BW_OPF_REFUSE) ? refusal(0, c->op) : 0, 0);
		return 0;
	}
	int64_t start = e->env.mono_us(), waited = 0, nap = SLOT_NAP_FIRST;
	for (int i = 1; i < MAX_WAITS && waited < cc->max_wait; i++) {
		int64_t left = cc->max_wait - waited;
		int err = 0;
		if (bw_engine_wait(e, c, nap < left ? nap : left, BW_WAIT_LIMIT, &err))
			return err;      /* a signal handler ended the call while it waited */
		nap = nap * 2 < SLOT_NAP_LAST ? nap * 2 : SLOT_NAP_LAST;
		int64_t now = e->env.mono_us();
		waited = now - start;
		got = bw_store_take_slot(e->store, &ref, cc, now, 0, i % SLOT_RECLAIM_EVERY == 0);
		if (got < 0)
			return 0;
		if (got > 0) {
			c->slot_held = 1;
			bulkhead_event(e, c, "waited", 0, waited);
			return 0;
		}
	}
	if (bw_op_has(c->op, BW_OPF_REFUSE)) {
		int err = refusal(0, c->op);
		bulkhead_event(e, c, "refused", err, waited);
		return err;
	}
	c->slot_held = bw_store_take_slot(e->store, &ref, cc, e->env.mono_us(), 1, 0) > 0;
	bulkhead_event(e, c, "over", 0, waited);
	return 0;
}

void bw_engine_give_slot(struct bw_engine *e, struct bw_call *c)
{
	if (!c->slot_held)
		return;
	struct bw_ref ref = ref_of(e, c, c->rule->concurrency.scope);
	bw_store_give_slot(e->store, &ref);
	c->slot_held = 0;
}

/* ---- breakers ---- */

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
	return breaker_guards(r, op) || (r->rate_limit.enabled && !r->rate_limit.bytes) ||
	       throttles(r, op) || bulkheads(r, op);
}

/* trip.slow times the attempts of this call. */
static int timed(const struct bw_rule *r, int op)
{
	return breaker_guards(r, op) && r->breaker.slow_over > 0 && bw_op_has(op, BW_OPF_SLOW);
}

int bw_engine_admit(struct bw_engine *e, struct bw_call *c, int *by_breaker)
{
	const struct bw_rule *r = c->rule;
	*by_breaker = BW_BY_NONE;
	c->slot_held = 0;
	c->slow = 0;
	if (breaker_guards(r, c->op)) {
		int err = breaker_admit(e, c);
		if (err) {
			*by_breaker = BW_BY_BREAKER;
			return err;
		}
	}
	/* counted before the call is made, and a call the throttle rejects never waits for
	 * tokens or a slot */
	if (throttles(r, c->op)) {
		int err = throttle_admit(e, c);
		if (err) {
			bw_engine_release(e, c);        /* a half-open probe it held */
			*by_breaker = BW_BY_THROTTLE;
			return err;
		}
	}
	if (r->rate_limit.enabled && !r->rate_limit.bytes) {
		int err;
		take_tokens(e, c, 1, 1, &err);
		if (err) {
			bw_engine_release(e, c);
			return err;
		}
	}
	/* last: a slot is not held while the call waits for anything else */
	if (bulkheads(r, c->op)) {
		int err = bulkhead_admit(e, c);
		if (err) {
			bw_engine_release(e, c);
			*by_breaker = BW_BY_BULKHEAD;
			return err;
		}
	}
	c->started = timed(r, c->op) ? e->env.mono_us() : 0;
	return 0;
}

/* Outcomes that say nothing about the destination's health do not move the breaker. */
static int counts_as_failure(const struct bw_call *c, int err)
{
	return err != 0 && !bw_err_listed(bw_op(c->op)->healthy, err);
}

static void record(struct bw_engine *e, const struct bw_call *c, int out)
{
	const struct bw_rule *r = c->rule;
	struct bw_brk_move mv;
	struct bw_ref ref = ref_of(e, c, r->breaker.scope);
	bw_store_record(e->store, &ref, &r->breaker, e->env.mono_us(), (enum bw_outcome)out, &mv);
	breaker_event(e, c, mv);
}

/* A slot held by an attempt that made no connection goes back; a connection made (or
 * still being made, left to the program) keeps its slot until its descriptor closes. */
static void attempt_done(struct bw_engine *e, struct bw_call *c, int err)
{
	if (c->slot_held && (err || !bw_op_has(c->op, BW_OPF_SOCKET)))
		bw_engine_give_slot(e, c);
}

void bw_engine_settle(struct bw_engine *e, struct bw_call *c, int err)
{
	const struct bw_rule *r = c->rule;
	int64_t now = c->started || throttles(r, c->op) ? e->env.mono_us() : 0;
	/* a call that took longer than trip.slow.over was slow whatever its outcome: timed
	 * at its end (design.md §4.7) */
	c->slow = c->started && now - c->started > r->breaker.slow_over;
	c->began = c->started;
	c->started = 0;
	if (throttles(r, c->op)) {
		struct bw_ref ref = ref_of(e, c, r->throttle.scope);
		bw_store_thr_outcome(e->store, &ref, &r->throttle, now, answered(c, err));
	}
	attempt_done(e, c, err);
	if (!breaker_guards(r, c->op))
		return;
	/* a connection just made closes a half-open breaker as a probe that worked (the
	 * server accepts connections again), but a closed breaker's count of failures in a
	 * row waits for its first byte: a server that accepts and then resets every
	 * connection must still trip it (design.md §4.7) */
	record(e, c, (err == 0 && c->confirm_later ? BW_OUT_CONNECTED
		      : counts_as_failure(c, err) ? BW_OUT_FAILED : BW_OUT_OK) |
		     (c->slow ? BW_OUT_SLOW : 0));
}

void bw_engine_release(struct bw_engine *e, struct bw_call *c)
{
	c->started = 0;
	bw_engine_give_slot(e, c);
	if (breaker_guards(c->rule, c->op))
		record(e, c, BW_OUT_NONE);
}

void bw_engine_confirm(struct bw_engine *e, const struct bw_call *c, int failed)
{
	if (!breaker_guards(c->rule, c->op))
		return;
	/* a connection is slow when its connect was, or when its answer came later than
	 * `over` after the connect, or after the request when the program sent one: a
	 * server that accepts at once and answers late is a slow server */
	int slow = c->slow || bw_engine_overdue(e, c->rule, c->started);
	record(e, c, (failed ? BW_OUT_FAILED : BW_OUT_OK) | (slow ? BW_OUT_SLOW : 0));
}

int bw_engine_slow_timed(const struct bw_rule *r)
{
	return timed(r, BW_OP_CONNECT);
}

int bw_engine_overdue(const struct bw_engine *e, const struct bw_rule *r, int64_t t0)
{
	return t0 > 0 && timed(r, BW_OP_CONNECT) && e->env.mono_us() - t0 > r->breaker.slow_over;
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
