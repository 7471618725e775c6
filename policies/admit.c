/* Admission: breakers and rate limits around each attempt. State lives per destination
 * (a bounded table) or per rule, each behind a short spin lock that is never held across
 * a system call or a sleep. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include "engine.h"
#include "errnames.h"
#include "ops.h"

#define MAX_WAITS 10000     /* bounds the wait loop whatever the clock does */

static struct bw_rule_rt *rt_of(struct bw_engine *e, const struct bw_rule *r)
{
	return &e->rt[r - e->cfg->rules];
}

/* The state for this call under `scope`, locked; NULL if the lock cannot be had (a hook
 * in a signal handler that interrupted the holder): the call then goes unguarded. */
static struct bw_dest_state *lock_state(struct bw_engine *e, const struct bw_call *c,
					enum bw_scope scope, int64_t now, int *set)
{
	struct bw_rule_rt *rt = rt_of(e, c->rule);
	if (scope == BW_SCOPE_DEST && rt->dests.mem)
		return bw_keyed_lock(&rt->dests, c->key, now, set);
	if (bw_spin_lock(rt->lock, rt->dests.self ? rt->dests.self : 1, rt->dests.alive) < 0)
		return NULL;
	*set = -1;
	return rt->whole;
}

/* Name a new destination for `bulwark status`. Outside the lock, since the peer's name
 * may take a system call; "?" when it has none (an unconnected datagram socket), so
 * that it is asked once per entry, not on every call. */
static __attribute__((noinline, cold)) void
name_entry(struct bw_engine *e, struct bw_rule_rt *rt, const struct bw_call *c)
{
	char buf[BW_LABEL_MAX];
	const char *name = c->dest ? c->dest : c->db ? c->db : c->host;
	if (!name && c->dest_of) {
		c->dest_of(c, buf, sizeof buf);
		name = buf;
	}
	if (!name || !*name)
		name = "?";
	int set;
	struct bw_dest_state *st = bw_keyed_lock(&rt->dests, c->key, e->env.mono_us(), &set);
	if (!st)
		return;
	if (!st->label[0]) {
		size_t n = strnlen(name, BW_LABEL_MAX - 1);
		memcpy(st->label, name, n);
		st->label[n] = '\0';
	}
	bw_keyed_unlock(&rt->dests, set);
}

/* Inlined: it runs after every bucket take and breaker check. */
static inline __attribute__((always_inline)) void
unlock_state(struct bw_engine *e, const struct bw_call *c, int set,
	     const struct bw_dest_state *st)
{
	struct bw_rule_rt *rt = rt_of(e, c->rule);
	if (set < 0) {
		bw_spin_unlock(rt->lock);
		return;
	}
	int unnamed = !st->label[0];
	bw_keyed_unlock(&rt->dests, set);
	if (unnamed)
		name_entry(e, rt, c);
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
	int set, allowed = 1;
	struct bw_brk_move mv = { 0, 0 };
	int64_t now = e->env.mono_us();
	struct bw_dest_state *st = lock_state(e, c, r->breaker.scope, now, &set);
	if (!st)
		return 0;
	allowed = bw_breaker_allow(&r->breaker, &st->brk, now, &mv);
	unlock_state(e, c, set, st);
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
 * enough); `want` when the state cannot be had, as the call then goes unguarded. */
static double try_take(struct bw_engine *e, const struct bw_call *c, double want, double least,
		       int64_t *wait)
{
	const struct bw_rate_limit *rl = &c->rule->rate_limit;
	int set;
	/* read before locking: the lock is held for arithmetic only */
	int64_t now = e->env.mono_us();
	struct bw_dest_state *st = lock_state(e, c, rl->scope, now, &set);
	if (!st)
		return want;
	double got = bw_bucket_take(rl, &st->bucket, now, want, least, wait);
	unlock_state(e, c, set, st);
	return got;
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

static void record(struct bw_engine *e, const struct bw_call *c, int failed)
{
	const struct bw_rule *r = c->rule;
	int set;
	struct bw_brk_move mv = { 0, 0 };
	int64_t now = e->env.mono_us();
	struct bw_dest_state *st = lock_state(e, c, r->breaker.scope, now, &set);
	if (!st)
		return;
	bw_breaker_record(&r->breaker, &st->brk, now, failed, &mv);
	unlock_state(e, c, set, st);
	breaker_event(e, c, mv);
}

/* A connection just made: it closes a half-open breaker as a probe that worked (the
 * server accepts connections again), but a closed breaker's count of failures in a row
 * waits for the first byte: a server that accepts and then resets every connection must
 * still trip it. */
static void connected(struct bw_engine *e, const struct bw_call *c)
{
	const struct bw_rule *r = c->rule;
	int set;
	struct bw_brk_move mv = { 0, 0 };
	int64_t now = e->env.mono_us();
	struct bw_dest_state *st = lock_state(e, c, r->breaker.scope, now, &set);
	if (!st)
		return;
	if (st->brk.pos == BW_BRK_HALF_OPEN)
		bw_breaker_record(&r->breaker, &st->brk, now, 0, &mv);
	unlock_state(e, c, set, st);
	breaker_event(e, c, mv);
}

void bw_engine_settle(struct bw_engine *e, const struct bw_call *c, int err)
{
	if (!breaker_guards(c->rule, c->op))
		return;
	if (err == 0 && c->confirm_later)
		connected(e, c);
	else
		record(e, c, counts_as_failure(c, err));
}

void bw_engine_release(struct bw_engine *e, const struct bw_call *c)
{
	const struct bw_rule *r = c->rule;
	if (!breaker_guards(r, c->op))
		return;
	int set;
	struct bw_dest_state *st = lock_state(e, c, r->breaker.scope, e->env.mono_us(), &set);
	if (!st)
		return;
	bw_breaker_release(&st->brk);
	unlock_state(e, c, set, st);
}

void bw_engine_confirm(struct bw_engine *e, const struct bw_call *c, int failed)
{
	if (breaker_guards(c->rule, c->op))
		record(e, c, failed);
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
		record(e, c, 1);
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
	/* a stream send that may be cut waits for a useful piece (10 ms of the rate) rather
	 * than spinning on one-byte writes */
	double least = whole ? (double)want : rl->rate / 100;
	if (least > rl->burst)
		least = rl->burst;
	if (least > (double)want)
		least = (double)want;
	if (least < 1)
		least = 1;
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
	int set;
	struct bw_dest_state *st = lock_state(e, c, rl->scope, e->env.mono_us(), &set);
	if (!st)
		return;
	st->bucket.tokens += (double)n;
	if (st->bucket.tokens > rl->burst)
		st->bucket.tokens = rl->burst;
	unlock_state(e, c, set, st);
}

void bw_engine_after_fork(struct bw_engine *e)
{
	for (int i = 0; i < e->cfg->n_rules; i++) {
		bw_keyed_after_fork(&e->rt[i].dests, (int)e->pid);
		e->rt[i].own_lock = 0;
	}
}
