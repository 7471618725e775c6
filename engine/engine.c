/* The decision engine: one call through its rule's retry loop, with deadline and budget,
 * and the events that tell the story. Time, sleep and output come from bw_env. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backoff.h"
#include "engine.h"
#include "errnames.h"
#include "ops.h"
#include "shared.h"

static int init(struct bw_engine *e, const struct bw_config *cfg, const struct bw_env *env,
		long pid, const char *prog, uint64_t seed, struct bw_store *store, unsigned gen);

int bw_engine_init(struct bw_engine *e, const struct bw_config *cfg, const struct bw_env *env,
		   long pid, const char *prog, uint64_t seed)
{
	return init(e, cfg, env, pid, prog, seed, NULL, 1);
}

int bw_engine_init_next(struct bw_engine *e, const struct bw_engine *prev,
			const struct bw_config *cfg, uint64_t seed)
{
	if (init(e, cfg, &prev->env, prev->pid, prev->prog, seed, prev->store, prev->gen + 1) < 0)
		return -1;
	e->prev = prev;
	if (prev->cmd_hash || prev->ppid)
		bw_engine_set_proc(e, prev->cmd_hash, prev->ppid);
	return 0;
}

/* The command-line hash as match.cmd_hash writes it; buf holds BW_CMD_HASH_DIGITS + 1. */
static void cmd_hex(uint64_t h, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = BW_CMD_HASH_DIGITS - 1; i >= 0; i--, h >>= 4)
		buf[i] = hex[h & 15];
	buf[BW_CMD_HASH_DIGITS] = '\0';
}

/* Which rules apply to this process (match.prog, match.cmd_hash), and the ops they
 * cover. A rule that names command lines applies to none while the process's own is not
 * known. */
static void activate(struct bw_engine *e)
{
	const struct bw_config *cfg = e->cfg;
	char cmd[BW_CMD_HASH_DIGITS + 1];
	cmd_hex(e->cmd_hash, cmd);
	e->ops = 0;
	for (int i = 0; i < cfg->n_rules; i++) {
		const struct bw_match *m = &cfg->rules[i].match;
		int hit = m->n_prog == 0;
		for (int j = 0; j < m->n_prog && !hit; j++)
			hit = bw_glob(m->prog[j], e->prog);
		if (hit && m->n_cmd_hash) {
			hit = 0;
			for (int j = 0; j < m->n_cmd_hash && !hit && e->cmd_hash; j++)
				hit = strcmp(m->cmd_hash[j], cmd) == 0;
		}
		e->active[i] = (unsigned char)hit;
		if (hit)
			e->ops |= m->ops;
		/* a connect breaker judges a connection by its first byte in (or its failure
		 * before it): the transfers of a watched socket must reach the library */
		if (hit && (m->ops & BW_OPBIT(BW_OP_CONNECT)) && cfg->rules[i].breaker.enabled)
			e->ops |= BW_OPBIT(BW_OP_SEND) | BW_OPBIT(BW_OP_RECV);
	}
}

void bw_engine_set_proc(struct bw_engine *e, uint64_t cmd_hash, long ppid)
{
	e->cmd_hash = cmd_hash;
	e->ppid = ppid;
	activate(e);
}

uint64_t bw_cmd_hash(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * UINT64_C(1099511628211);
	return h;
}

static int init(struct bw_engine *e, const struct bw_config *cfg, const struct bw_env *env,
		long pid, const char *prog, uint64_t seed, struct bw_store *store, unsigned gen)
{
	memset(e, 0, sizeof *e);
	e->cfg = cfg;
	e->env = *env;
	e->pid = pid;
	e->prog = prog ? prog : "";
	e->seed = seed ? seed : 1;
	e->gen = gen;
	e->level = cfg->log.level;
	e->mode = cfg->mode;
	int n = cfg->n_rules > 0 ? cfg->n_rules : 1;
	e->active = calloc((size_t)n, 1);
	e->rt = calloc((size_t)n, sizeof *e->rt);
	if (!e->active || !e->rt) {
		bw_engine_fini(e);
		return -1;
	}
	if (!store && bw_store_init(&e->own_store, cfg) < 0) {
		bw_engine_fini(e);
		return -1;
	}
	e->store = store ? store : &e->own_store;
	activate(e);
	/* observe mode measures what it sees (tally.h): every call goes the general way,
	 * where it is counted and timed; enforcing, nothing is paid for it */
	if (e->mode == BW_MODE_OBSERVE && !(e->tally = bw_tally_new())) {
		bw_engine_fini(e);
		return -1;
	}
	for (int i = 0; i < cfg->n_rules; i++) {
		const struct bw_rule *r = &cfg->rules[i];
		if (r->n_inject) {
			e->rt[i].inj_seen = calloc(2 * (size_t)r->n_inject, sizeof(long));
			e->rt[i].inj_done = calloc((size_t)r->n_inject, sizeof(long));
			if (!e->rt[i].inj_seen || !e->rt[i].inj_done) {
				bw_engine_fini(e);
				return -1;
			}
		}
		for (int op = 0; op < BW_OP_COUNT; op++)
			if (bw_engine_direct(r, op) && !e->tally)
				e->rt[i].direct_ops |= BW_OPBIT(op);
		if (!(r->rate_limit.enabled && r->rate_limit.bytes))
			e->rt[i].plain_ops = e->rt[i].direct_ops;
		else if (e->mode != BW_MODE_OBSERVE)
			/* observe mode takes no tokens: its transfers go the general way, which
			 * says what the bucket would have done */
			e->rt[i].paced_ops = e->rt[i].direct_ops;
		e->rt[i].piece = bw_engine_piece(&r->rate_limit);
		e->rt[i].rate_limit = &r->rate_limit;
		e->rt[i].slot = bw_store_adopt(e->store, r);
		if (e->rt[i].slot < 0) {
			bw_engine_fini(e);
			return -1;
		}
	}
	return 0;
}

void bw_engine_fini(struct bw_engine *e)
{
	if (e->store == &e->own_store)
		bw_store_fini(&e->own_store);
	e->store = NULL;
	for (int i = 0; e->rt && i < e->cfg->n_rules; i++) {
		free(e->rt[i].inj_seen);
		free(e->rt[i].inj_done);
	}
	bw_tally_free(e->tally);
	e->tally = NULL;
	free(e->active);
	free(e->rt);
	e->active = NULL;
	e->rt = NULL;
	e->ops = 0;
}

const struct bw_rule *bw_engine_match(struct bw_engine *e, const struct bw_target *t,
				      const char **host_out)
{
	if (!(e->ops & BW_OPBIT(t->op)))
		return NULL;
	return bw_match(e->cfg, e->active, t, host_out);
}

static struct bw_rule_rt *rt_of(struct bw_engine *e, const struct bw_rule *r)
{
	return &e->rt[bw_engine_rule_no(e, r) - 1];
}
/* Each thread counts calls on its own stripe, so threads sending on the same rule do not
 * bounce one cache line between cores on every call. */
__thread unsigned bw_call_stripe __attribute__((tls_model("initial-exec")));
static unsigned stripes_given;

unsigned bw_call_stripe_slow(void)
{
	bw_call_stripe = __atomic_add_fetch(&stripes_given, 1, __ATOMIC_RELAXED);
	if (!bw_call_stripe)
		bw_call_stripe = __atomic_add_fetch(&stripes_given, 1, __ATOMIC_RELAXED);
	return bw_call_stripe;
}

void bw_engine_count(struct bw_engine *e, const struct bw_rule *r, enum bw_stat st)
{
	struct bw_rule_rt *rt = rt_of(e, r);
	if (st == BW_ST_CALLS)
		bw_engine_count_call(e, (int)(rt - e->rt));
	else
		__atomic_add_fetch(&rt->stats[st], 1, __ATOMIC_RELAXED);
}

long bw_engine_stat(const struct bw_engine *e, int rule, enum bw_stat st)
{
	const struct bw_rule_rt *rt = &e->rt[rule];
	if (st != BW_ST_CALLS)
		return __atomic_load_n(&rt->stats[st], __ATOMIC_RELAXED);
	long n = 0;
	for (int i = 0; i < BW_CALL_STRIPES; i++)
		n += __atomic_load_n(&rt->calls[i].n, __ATOMIC_RELAXED);
	return n;
}

long bw_engine_stat_all(const struct bw_engine *e, int rule, enum bw_stat st)
{
	const char *name = e->cfg->rules[rule].name;
	long n = bw_engine_stat(e, rule, st);
	for (const struct bw_engine *p = e->prev; p; p = p->prev)
		for (int i = 0; i < p->cfg->n_rules; i++)
			if (strcmp(p->cfg->rules[i].name, name) == 0)
				n += bw_engine_stat(p, i, st);
	return n;
}

int bw_retryable(const struct bw_rule *r, const struct bw_call *c, int err)
{
	/* a real EINTR means a signal handler ran: the program sees it as the kernel gave
	 * it, whatever `on` says; only an injected one can be retried */
	if (err == EINTR && !bw_attempt_injected)
		return 0;
	if (r->retry.n_on > 0) {
		for (int i = 0; i < r->retry.n_on; i++)
			if (bw_err_matches(r->retry.on[i], err))
				return 1;
		return 0;
	}
	const struct bw_op_def *op = bw_op(c->op);
	return bw_err_listed(op->retry_on, err) ||
	       (c->unix_dest && bw_err_listed(op->retry_on_unix, err));
}

/* Retry budget: per-second slots over the last BW_BUDGET_SLOTS seconds. Counts are
 * approximate under races, which is all a budget needs. */
static struct bw_budget_slot *budget_slot(struct bw_rule_rt *rt, int64_t sec)
{
	struct bw_budget_slot *s = &rt->budget[sec % BW_BUDGET_SLOTS];
	int64_t old = __atomic_load_n(&s->sec, __ATOMIC_RELAXED);
	if (old != sec && __atomic_compare_exchange_n(&s->sec, &old, sec, 0, __ATOMIC_RELAXED,
						      __ATOMIC_RELAXED)) {
		__atomic_store_n(&s->calls, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->retries, 0, __ATOMIC_RELAXED);
	}
	return s;
}

static void budget_note(struct bw_rule_rt *rt, int64_t now_us, int retry)
{
	struct bw_budget_slot *s = budget_slot(rt, now_us / 1000000);
	__atomic_add_fetch(retry ? &s->retries : &s->calls, 1, __ATOMIC_RELAXED);
}

/* A retry is allowed while retries stay under ratio x calls over the window, or while
 * this second has seen fewer than min_per_sec retries. */
static int budget_allows(const struct bw_retry *r, struct bw_rule_rt *rt, int64_t now_us)
{
	if (r->budget_ratio <= 0)
		return 1;
	int64_t sec = now_us / 1000000;
	long calls = 0, retries = 0, now_retries = 0;
	for (int i = 0; i < BW_BUDGET_SLOTS; i++) {
		struct bw_budget_slot *s = &rt->budget[i];
		int64_t ss = __atomic_load_n(&s->sec, __ATOMIC_RELAXED);
		if (ss <= sec - BW_BUDGET_SLOTS || ss > sec)
			continue;
		long c = __atomic_load_n(&s->calls, __ATOMIC_RELAXED);
		long rr = __atomic_load_n(&s->retries, __ATOMIC_RELAXED);
		calls += c;
		retries += rr;
		if (ss == sec)
			now_retries = rr;
	}
	return (double)retries < r->budget_ratio * (double)calls ||
	       now_retries < r->budget_min_per_sec;
}

int bw_engine_wants(const struct bw_engine *e, enum bw_level lvl)
{
	return lvl <= e->level;
}

void bw_engine_emit(struct bw_engine *e, const struct bw_call *c, struct bw_event *ev)
{
	if (!bw_engine_wants(e, ev->lvl) || !e->env.emit)
		return;
	char dest[BW_DEST_NAME_MAX];
	if (c) {
		if (!ev->dest && !c->dest && c->dest_of) {
			c->dest_of(c, dest, sizeof dest);
			/* a peer that is already gone has no name: leave dest out */
			ev->dest = dest[0] ? dest : NULL;
		}
		if (!ev->rule && c->rule)
			ev->rule = c->rule->name;
		if (ev->op < 0)
			ev->op = c->op;
		if (!ev->call)
			ev->call = c->call;
		if (!ev->dest)
			ev->dest = c->dest;
		if (!ev->host)
			ev->host = c->host;
		if (!ev->db)
			ev->db = c->db;
		if (ev->fd < 0)
			ev->fd = c->fd;
	}
	if (e->mode == BW_MODE_OBSERVE && ev->kind != BW_EV_START && ev->kind != BW_EV_EXIT &&
	    ev->kind != BW_EV_CONFIG_ERROR && ev->kind != BW_EV_WARNING &&
	    ev->kind != BW_EV_RELOAD)
		ev->observe = 1;
	struct bw_event_ctx ctx = {
		.wall_us = e->env.wall_us ? e->env.wall_us() : 0,
		.pid = e->pid,
		.tid = e->env.tid ? e->env.tid() : e->pid,
		.prog = e->prog,
	};
	char line[BW_EVENT_MAX];
	size_t n = bw_event_format(line, sizeof line, &ctx, ev);
	e->env.emit(ev->lvl, line, n);
}

void bw_engine_timed_out(struct bw_engine *e, const struct bw_call *c, bw_usec after)
{
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_TIMEOUT, BW_LVL_WARN);
	ev.err = ETIMEDOUT;
	ev.elapsed_ms = (double)after / 1000.0;
	bw_engine_emit(e, c, &ev);
}

void bw_engine_gave_up(struct bw_engine *e, const struct bw_call *c, struct bw_gave_up *g,
		       enum bw_level lvl)
{
	if (!g->reason)
		return;
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_GAVE_UP, lvl);
	ev.reason = g->reason;
	ev.msg = g->advice;
	ev.err = g->err;
	ev.attempts = g->attempts;
	g->reason = NULL;
	bw_engine_emit(e, c, &ev);
}

static void gave_up_advice(struct bw_engine *e, const struct bw_call *c, const char *reason,
			   const char *advice, int err, int attempts)
{
	struct bw_gave_up g = { reason, advice, err, attempts };
	bw_engine_count(e, c->rule, BW_ST_GAVE_UP);
	if (c->held)
		*c->held = g;
	else
		bw_engine_gave_up(e, c, &g, BW_LVL_ERROR);
}

static void gave_up(struct bw_engine *e, const struct bw_call *c, const char *reason, int err,
		    int attempts)
{
	gave_up_advice(e, c, reason, NULL, err, attempts);
}

void bw_engine_failed(struct bw_engine *e, const struct bw_call *c, int err, int attempt,
		      int injected)
{
	bw_engine_count(e, c->rule, BW_ST_FAILURES);
	struct bw_event fev;
	bw_event_init(&fev, BW_EV_FAIL, BW_LVL_INFO);
	fev.err = err;
	fev.attempt = attempt;
	fev.injected = injected;
	fev.n = bw_attempt_n ? bw_attempt_n : -1;
	bw_engine_emit(e, c, &fev);
}

int bw_engine_direct(const struct bw_rule *r, int op)
{
	return !r->n_inject && !(r->has_retry && r->retry.attempts > 1) &&
	       !bw_engine_admits(r, op);
}

/* The reason a give-up names when admission refused a retry. */
static const char *refused_by(int by)
{
	switch (by) {
	case BW_BY_BREAKER: return "breaker";
	case BW_BY_THROTTLE: return "throttle";
	case BW_BY_BULKHEAD: return "bulkhead";
	}
	return NULL;
}

static int run(struct bw_engine *e, struct bw_call *c, struct bw_rng *rng);

static struct bw_shm_met *metrics_of(const struct bw_engine *e, int slot)
{
	if (!e->store->file || slot < 0 || slot >= e->store->n_rules)
		return NULL;
	return __atomic_load_n(&e->store->rules[slot].met, __ATOMIC_ACQUIRE);
}

void bw_engine_flush(struct bw_engine *e)
{
	for (; e; e = (struct bw_engine *)e->prev) {
		for (int i = 0; e->rt && i < e->cfg->n_rules; i++) {
			struct bw_shm_met *m = metrics_of(e, e->rt[i].slot);
			if (!m)
				continue;
			for (int st = 0; st < BW_ST_COUNT; st++) {
				long now = bw_engine_stat(e, i, (enum bw_stat)st);
				long was = __atomic_load_n(&e->rt[i].flushed[st], __ATOMIC_ACQUIRE);
				/* the thread that moves `flushed` adds the difference: once */
				if (now > was &&
				    __atomic_compare_exchange_n(&e->rt[i].flushed[st], &was, now, 0,
								__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
					__atomic_add_fetch(&m->stats[st], (uint64_t)(now - was),
							   __ATOMIC_RELAXED);
			}
		}
	}
}

/* The label of a call's destination for a metrics row, asked when the row is new. */
static void met_label(const void *arg, char *buf, size_t cap)
{
	const struct bw_call *c = arg;
	const char *name = c->dest ? c->dest : c->db ? c->db : c->host;
	buf[0] = '\0';
	if (name)
		snprintf(buf, cap, "%s", name);
	else if (c->dest_of)
		c->dest_of(c, buf, cap);
}

int bw_engine_run(struct bw_engine *e, struct bw_call *c, struct bw_rng *rng)
{
	c->slot_held = 0;
	/* in a group, the call's time goes to the rule's metrics, per destination */
	struct bw_shm_met *m = metrics_of(e, rt_of(e, c->rule)->slot);
	c->admitted = m ? e->env.mono_us() : 0;
	int err = run(e, c, rng);
	/* a connect left to finish in the background is timed when its outcome comes
	 * (bw_engine_outcome, through the pending entry that keeps c->admitted) */
	if (m && !(err && bw_op_has(c->op, BW_OPF_SOCKET) && bw_engine_unfinished(err, 0))) {
		bw_met_call(m, c->key, met_label, c, e->env.mono_us() - c->admitted, err != 0);
		c->admitted = 0;
	}
	/* a call's slot is the attempt's: only a connection keeps one past the call */
	if (c->slot_held && !bw_op_has(c->op, BW_OPF_SOCKET))
		bw_engine_give_slot(e, c);
	return err;
}

static int run(struct bw_engine *e, struct bw_call *c, struct bw_rng *rng)
{
	const struct bw_rule *r = c->rule;
	struct bw_rule_rt *rt = rt_of(e, r);
	int retrying = r->has_retry && r->retry.attempts > 1;
	/* the clock is read only when a deadline, a budget or a recovery needs it: a send
	 * or recv that succeeds at once should cost no more than it must */
	int budget = retrying && r->retry.budget_ratio > 0;
	int64_t start = retrying && (r->retry.deadline || budget) ? e->env.mono_us() : 0;
	int64_t deadline = retrying && r->retry.deadline ? start + r->retry.deadline : 0;
	bw_usec prev = 0;
	int admits = !c->unguarded && bw_engine_admits(r, c->op);

	bw_engine_count(e, r, BW_ST_CALLS);
	if (budget)
		budget_note(rt, start, 0);
	for (int n = 1;; n++) {
		int by_breaker = 0;
		int err = admits ? bw_engine_admit(e, c, &by_breaker) : 0;
		if (err) {
			if (c->refuse)
				err = c->refuse(c->arg, err);
			/* an open breaker (a throttle, a full bulkhead) ends a retry loop early;
			 * its rejection is the error */
			if (n > 1 && refused_by(by_breaker))
				gave_up(e, c, refused_by(by_breaker), err, n - 1);
			return err;
		}
		bw_attempt_injected = 0;
		bw_attempt_n = 0;
		bw_tally_cur.slot = -1;
		err = c->attempt(c->arg, n, deadline);
		if (bw_engine_unfinished(err, bw_attempt_injected)) {
			if (!bw_engine_later(err) && admits)
				bw_engine_release(e, c);
			return err;
		}
		if (e->tally)
			bw_tally_end(e, c, err);
		if (!c->unguarded)
			bw_engine_settle(e, c, err);
		if (err == 0) {
			if (n > 1) {
				struct bw_event ev;
				bw_event_init(&ev, BW_EV_RECOVERED, BW_LVL_WARN);
				ev.attempts = n;
				ev.elapsed_ms = (double)(e->env.mono_us() - start) / 1000.0;
				bw_engine_count(e, r, BW_ST_RECOVERED);
				bw_engine_emit(e, c, &ev);
			}
			return 0;
		}
		bw_engine_failed(e, c, err, n, bw_attempt_injected);
		if (c->stop && c->stop->now) {
			if (c->stop->reason)
				gave_up_advice(e, c, c->stop->reason, c->stop->advice, err, n);
			return err;
		}
		if (!retrying || !bw_retryable(r, c, err))
			return err;
		if (!start)
			start = e->env.mono_us();
		if (n >= r->retry.attempts) {
			gave_up(e, c, "attempts", err, n);
			return err;
		}
		bw_usec delay = bw_backoff_delay(&r->retry, n, prev, rng);
		prev = delay;
		int64_t now = e->env.mono_us();
		if (deadline && now + delay >= deadline) {
			gave_up(e, c, "deadline", err, n);
			return err;
		}
		if (!budget_allows(&r->retry, rt, now)) {
			gave_up(e, c, "budget", err, n);
			return err;
		}
		struct bw_event ev;
		bw_event_init(&ev, BW_EV_RETRY, BW_LVL_WARN);
		ev.attempt = n + 1;
		ev.delay_ms = (double)delay / 1000.0;
		ev.err = err;
		bw_engine_emit(e, c, &ev);
		if (e->mode == BW_MODE_OBSERVE)
			return err;
		bw_engine_count(e, r, BW_ST_RETRIES);
		if (budget)
			budget_note(rt, now, 1);
		if (c->before_retry)
			c->before_retry(c->arg);
		if (bw_engine_wait(e, c, delay, BW_WAIT_BACKOFF, &err)) {
			/* a signal handler ended the call in its backoff: what the hook made of
			 * it may be an outcome (an attempt that finished at once) */
			if (!bw_engine_unfinished(err, 0))
				bw_engine_settle(e, c, err);
			return err;
		}
	}
}

int bw_engine_wait(struct bw_engine *e, const struct bw_call *c, int64_t us, int where,
		   int *result)
{
	if (!c->on_signal || !e->env.nap_us) {
		e->env.sleep_us(us);
		return 0;
	}
	while (us > 0 && (us = e->env.nap_us(us)) > 0)
		if (c->on_signal(c->arg, where, result))
			return 1;
	return 0;
}

int bw_engine_admit_call(struct bw_engine *e, struct bw_call *c)
{
	/* a call begins: nothing of an earlier one's attempt may be taken for its own */
	bw_attempt_n = 0;
	bw_tally_cur.slot = -1;
	c->slot_held = 0;
	c->started = 0;
	bw_engine_count(e, c->rule, BW_ST_CALLS);
	struct bw_shm_met *m = metrics_of(e, rt_of(e, c->rule)->slot);
	c->admitted = m ? e->env.mono_us() : 0;
	if (!bw_engine_admits(c->rule, c->op))
		return 0;
	int by_breaker;
	int err = bw_engine_admit(e, c, &by_breaker);
	if (err && c->refuse)
		err = c->refuse(c->arg, err);
	if (err && m) {
		/* refused: the call ends here */
		bw_met_call(m, c->key, met_label, c, e->env.mono_us() - c->admitted, 1);
		c->admitted = 0;
	}
	return err;
}

void bw_engine_outcome(struct bw_engine *e, struct bw_call *c, int err)
{
	const struct bw_rule *r = c->rule;
	if (e->tally)
		bw_tally_end(e, c, err);
	struct bw_shm_met *m = c->admitted ? metrics_of(e, rt_of(e, r)->slot) : NULL;
	if (m) {
		bw_met_call(m, c->key, met_label, c, e->env.mono_us() - c->admitted, err != 0);
		c->admitted = 0;
	}
	bw_engine_settle(e, c, err);
	if (err == 0)
		return;
	bw_engine_failed(e, c, err, 1, bw_attempt_injected);
	/* in observe mode, say what enforcing would have done */
	if (e->mode == BW_MODE_OBSERVE && r->has_retry && r->retry.attempts > 1 &&
	    bw_retryable(r, c, err)) {
		struct bw_event ev;
		bw_event_init(&ev, BW_EV_RETRY, BW_LVL_WARN);
		ev.attempt = 2;
		ev.err = err;
		bw_engine_emit(e, c, &ev);
	}
}

void bw_engine_start_event(struct bw_engine *e, const char *version)
{
	char extra[1024];
	size_t n = 0;
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"version\":");
	bw_json_str(extra, sizeof extra, &n, version);
	bw_json_raw(extra, sizeof extra, &n, ",\"config\":");
	bw_json_str(extra, sizeof extra, &n, e->cfg->path ? e->cfg->path : "");
	bw_json_raw(extra, sizeof extra, &n, ",\"rules\":");
	bw_json_int(extra, sizeof extra, &n, e->cfg->n_rules);
	bw_json_raw(extra, sizeof extra, &n, ",\"mode\":");
	bw_json_str(extra, sizeof extra, &n, e->mode == BW_MODE_OBSERVE ? "observe" : "enforce");
	bw_json_raw(extra, sizeof extra, &n, ",\"seed\":");
	bw_json_uint(extra, sizeof extra, &n, e->seed);
	/* which program this is, where several run the same binary, without its arguments
	 * (they may hold secrets): `bulwark report --replay` keys its rules by it */
	if (e->cmd_hash) {
		char cmd[BW_CMD_HASH_DIGITS + 1];
		cmd_hex(e->cmd_hash, cmd);
		bw_json_raw(extra, sizeof extra, &n, ",\"cmd_hash\":");
		bw_json_str(extra, sizeof extra, &n, cmd);
	}
	if (e->ppid > 0) {
		bw_json_raw(extra, sizeof extra, &n, ",\"ppid\":");
		bw_json_int(extra, sizeof extra, &n, e->ppid);
	}
	/* whether an exit event is to come: a report tells a process killed from one that
	 * was never to sum up */
	bw_json_raw(extra, sizeof extra, &n, e->cfg->log.summary ? ",\"summary\":true"
								  : ",\"summary\":false");
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_START, BW_LVL_INFO);
	ev.extra = extra;
	bw_engine_emit(e, NULL, &ev);
}

static const char *const stat_names[BW_ST_COUNT] = {
	"calls", "failures", "retries", "recovered", "gave_up",
	"rejected", "throttled", "limited", "injected", "bulkhead_full", "shed",
};

void bw_engine_exit_event(struct bw_engine *e)
{
	bw_tally_report(e);
	char extra[BW_EVENT_MAX - 256];
	size_t n = 0;
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"stats\":{");
	int first = 1;
	for (int i = 0; i < e->cfg->n_rules; i++) {
		if (!e->active[i])
			continue;
		char obj[512];
		size_t m = 0;
		obj[0] = '\0';
		if (!first)
			bw_json_raw(obj, sizeof obj, &m, ",");
		bw_json_str(obj, sizeof obj, &m, e->cfg->rules[i].name);
		bw_json_raw(obj, sizeof obj, &m, ":{");
		for (int s = 0; s < BW_ST_COUNT; s++) {
			if (s)
				bw_json_raw(obj, sizeof obj, &m, ",");
			bw_json_str(obj, sizeof obj, &m, stat_names[s]);
			bw_json_raw(obj, sizeof obj, &m, ":");
			bw_json_int(obj, sizeof obj, &m,
				    bw_engine_stat_all(e, i, (enum bw_stat)s));
		}
		bw_json_raw(obj, sizeof obj, &m, "}");
		/* keep the object valid: a rule that does not fit is left out whole */
		if (n + m + 2 < sizeof extra) {
			bw_json_raw(extra, sizeof extra, &n, obj);
			first = 0;
		}
	}
	bw_json_raw(extra, sizeof extra, &n, "}");
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_EXIT, BW_LVL_INFO);
	ev.extra = extra;
	bw_engine_emit(e, NULL, &ev);
}
