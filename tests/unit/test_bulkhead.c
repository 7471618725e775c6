/* Bulkheads, adaptive throttling and the slow-call breaker in the engine, with a fake
 * clock: a full bulkhead waits and refuses (or, for an op that may only wait, goes over);
 * slots come back with outcomes; the throttle rejects at the rate of its formula; slow
 * calls open a breaker. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include "errnames.h"
#include "fake_env.h"

#define MS 1000LL
#define S 1000000LL

static struct bw_rule rule;
static struct bw_config cfg;
static struct bw_engine eng;
static int result;           /* what every attempt returns */
static int calls;
static int64_t attempt_takes;   /* how long each attempt takes on the fake clock */
static int (*inside)(void);     /* run inside each attempt, when set */

static int attempt(void *arg, int n, int64_t deadline)
{
	(void)arg, (void)n, (void)deadline;
	calls++;
	fake_now += attempt_takes;
	if (inside)
		inside();
	return result;
}

static int setup(void **s)
{
	(void)s;
	fake_reset();
	memset(&rule, 0, sizeof rule);
	strcpy(rule.name, "r");
	rule.match.ops = BW_OPS_ALL;
	rule.max_keys = 64;
	memset(&cfg, 0, sizeof cfg);
	cfg.rules = &rule;
	cfg.n_rules = 1;
	cfg.log.level = BW_LVL_DEBUG;
	cfg.ops = BW_OPS_ALL;
	result = 0;
	calls = 0;
	attempt_takes = 0;
	inside = NULL;
	return 0;
}

static void start(void)
{
	assert_int_equal(bw_engine_init(&eng, &cfg, &fake_env, 1, "prog", 1), 0);
}

static int teardown(void **s)
{
	(void)s;
	bw_engine_fini(&eng);
	return 0;
}

static void bulkhead(int max, bw_usec max_wait, enum bw_scope scope)
{
	rule.concurrency = (struct bw_concurrency){ .enabled = 1, .scope = scope, .max = max,
						    .max_wait = max_wait };
}

static struct bw_call call_of(uint64_t key, int op)
{
	struct bw_call c = { .rule = &rule, .op = op, .call = "connect", .dest = "d", .fd = 3,
			     .key = key, .attempt = attempt };
	return c;
}

static int run(struct bw_call *c)
{
	struct bw_rng rng = { 3 };
	return bw_engine_run(&eng, c, &rng);
}

static int32_t in_use(uint64_t key)
{
	struct bw_call c = call_of(key, BW_OP_CONNECT);
	struct bw_ref ref = bw_engine_slot_ref(&eng, &c);
	int set;
	struct bw_rule_cells *rc = &eng.store->rules[ref.slot];
	if (ref.scope != BW_SCOPE_DEST) {
		return rc->whole->bulk.in_use;
	}
	struct bw_dest_state *st = bw_keyed_lock(&rc->dests, key, fake_now, &set);
	int32_t n = st ? st->bulk.in_use : -1;
	if (st)
		bw_keyed_unlock(&rc->dests, set);
	return n;
}

/* ---- bulkhead ---- */

static void test_connections_hold_slots_and_a_full_bulkhead_refuses(void **s)
{
	(void)s;
	bulkhead(2, 100 * MS, BW_SCOPE_DEST);
	start();
	struct bw_call a = call_of(7, BW_OP_CONNECT), b = a, c = a;
	assert_int_equal(run(&a), 0);
	assert_int_equal(run(&b), 0);
	/* a connection keeps its slot past the call, for its descriptor */
	assert_int_equal(a.slot_held, 1);
	assert_int_equal(b.slot_held, 1);
	assert_int_equal(in_use(7), 2);
	int64_t t0 = fake_now;
	assert_int_equal(run(&c), ECONNREFUSED);
	assert_int_equal(calls, 2);                          /* refused: not made */
	assert_true(fake_now - t0 >= 100 * MS && fake_now - t0 < 130 * MS);
	assert_int_equal(c.slot_held, 0);
	assert_int_equal(fake_count("\"event\":\"bulkhead_full\""), 1);
	assert_int_equal(fake_count("\"reason\":\"refused\""), 1);
	assert_int_equal(fake_count("\"max\":2"), 1);
	assert_int_equal(fake_count("\"lvl\":\"warn\",\"event\":\"bulkhead_full\""), 1);
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_BULKHEAD_FULL), 1);
	/* another destination has its own */
	struct bw_call d = call_of(8, BW_OP_CONNECT);
	assert_int_equal(run(&d), 0);
	/* a slot given back is free at once */
	bw_engine_give_slot(&eng, &a);
	assert_int_equal(in_use(7), 1);
	t0 = fake_now;
	assert_int_equal(run(&c), 0);
	assert_int_equal(fake_now, t0);
	assert_int_equal(in_use(7), 2);
}

static void test_a_failed_connect_gives_its_slot_back(void **s)
{
	(void)s;
	bulkhead(1, 50 * MS, BW_SCOPE_RULE);
	rule.has_retry = 1;
	rule.retry = (struct bw_retry){ .attempts = 3, .base = 10 * MS, .max = 10 * MS,
					.multiplier = 1, .jitter = BW_JITTER_NONE };
	start();
	result = ECONNREFUSED;
	struct bw_call a = call_of(7, BW_OP_CONNECT);
	assert_int_equal(run(&a), ECONNREFUSED);
	assert_int_equal(calls, 3);                    /* each retry found the slot free */
	assert_int_equal(a.slot_held, 0);
	assert_int_equal(in_use(7), 0);
	assert_int_equal(fake_count("bulkhead_full"), 0);
	/* an attempt that is the program's own business (EISCONN) gives it back too */
	result = EISCONN;
	assert_int_equal(run(&a), EISCONN);
	assert_int_equal(in_use(7), 0);
	/* one left in progress keeps it, for the hook to hand to the descriptor */
	result = EINPROGRESS;
	assert_int_equal(run(&a), EINPROGRESS);
	assert_int_equal(a.slot_held, 1);
	assert_int_equal(in_use(7), 1);
}

static struct bw_call waiter;
static int given_at_ms;

/* The slot comes back while the call waits (another thread closed its connection). */
static int64_t nap_and_give(int64_t us)
{
	fake_now += us;
	fake_slept_total += us;
	fake_sleeps++;
	if (waiter.slot_held && fake_slept_total >= given_at_ms * MS)
		bw_engine_give_slot(&eng, &waiter);
	return 0;
}

static int on_signal_never(void *arg, int where, int *result_)
{
	(void)arg, (void)where, (void)result_;
	return 0;
}

static void test_a_call_waits_for_a_slot_given_back(void **s)
{
	(void)s;
	bulkhead(1, 1 * S, BW_SCOPE_RULE);
	start();
	eng.env.nap_us = nap_and_give;
	waiter = call_of(7, BW_OP_CONNECT);
	assert_int_equal(run(&waiter), 0);
	given_at_ms = 30;
	struct bw_call b = call_of(7, BW_OP_CONNECT);
	b.on_signal = on_signal_never;
	assert_int_equal(run(&b), 0);
	assert_int_equal(b.slot_held, 1);
	/* seen within a nap of its coming back, not at the end of max_wait */
	assert_true(fake_slept_total >= 30 * MS && fake_slept_total <= 60 * MS);
	assert_int_equal(fake_count("\"reason\":\"waited\""), 1);
	assert_int_equal(in_use(7), 1);
}

static struct bw_call nested;
static int nested_result;

static int call_again(void)
{
	nested = call_of(7, BW_OP_SQLITE);
	nested.call = "sqlite3_step";
	nested_result = run(&nested);
	return 0;
}

/* A statement holds its slot while it runs, and only then. */
static void test_calls_hold_a_slot_while_they_run(void **s)
{
	(void)s;
	bulkhead(1, 10 * MS, BW_SCOPE_RULE);
	start();
	struct bw_call a = call_of(7, BW_OP_SQLITE);
	inside = call_again;
	assert_int_equal(run(&a), 0);
	inside = NULL;
	assert_int_equal(nested_result, bw_err_sqlite(5));   /* SQLITE_BUSY: the op's refusal */
	assert_int_equal(a.slot_held, 0);
	assert_int_equal(in_use(7), 0);
	/* one that fails gives it back as well */
	result = bw_err_sqlite(19);
	assert_int_equal(run(&a), bw_err_sqlite(19));
	assert_int_equal(in_use(7), 0);
}

/* accept may only wait: after max_wait it goes ahead over max, counted. */
static void test_accept_waits_then_goes_over(void **s)
{
	(void)s;
	bulkhead(1, 40 * MS, BW_SCOPE_RULE);
	start();
	struct bw_call a = call_of(7, BW_OP_ACCEPT), b = a;
	assert_int_equal(run(&a), 0);
	assert_int_equal(run(&b), 0);
	assert_int_equal(calls, 2);
	assert_int_equal(b.slot_held, 1);
	assert_int_equal(in_use(7), 2);
	assert_true(fake_slept_total >= 40 * MS);
	assert_int_equal(fake_count("\"reason\":\"over\""), 1);
}

static void test_observe_counts_and_never_waits(void **s)
{
	(void)s;
	bulkhead(1, 1 * S, BW_SCOPE_RULE);
	cfg.mode = BW_MODE_OBSERVE;
	start();
	struct bw_call a = call_of(7, BW_OP_CONNECT), b = a;
	assert_int_equal(run(&a), 0);
	assert_int_equal(run(&b), 0);
	assert_int_equal(fake_slept_total, 0);
	assert_int_equal(fake_count("\"event\":\"bulkhead_full\""), 1);
	assert_int_equal(fake_count("\"observe\":true"), 1);
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_BULKHEAD_FULL), 0);
	assert_int_equal(in_use(7), 2);
}

/* A destination with slots taken keeps its entry: a table full of busy ones leaves a new
 * destination uncounted rather than losing the count of an old one. */
static void test_busy_destinations_are_never_evicted(void **s)
{
	(void)s;
	bulkhead(1, 10 * MS, BW_SCOPE_DEST);
	rule.max_keys = 8;                   /* one set of 8 ways */
	start();
	struct bw_call held[8];
	for (int i = 0; i < 8; i++) {
		held[i] = call_of(100 + (uint64_t)i, BW_OP_CONNECT);
		assert_int_equal(run(&held[i]), 0);
		assert_int_equal(held[i].slot_held, 1);
	}
	struct bw_call extra = call_of(999, BW_OP_CONNECT);
	assert_int_equal(run(&extra), 0);
	assert_int_equal(extra.slot_held, 0);          /* uncounted */
	for (int i = 0; i < 8; i++)
		assert_int_equal(in_use(100 + (uint64_t)i), 1);
	bw_engine_give_slot(&eng, &held[3]);
	assert_int_equal(run(&extra), 0);
	assert_int_equal(extra.slot_held, 1);
}

/* ---- adaptive throttling ---- */

static uint64_t backend;             /* the fake destination's own random source */
static double backend_accepts;       /* the share of calls it answers */

static int flaky_attempt(void *arg, int n, int64_t deadline)
{
	(void)arg, (void)n, (void)deadline;
	calls++;
	struct bw_rng r = { backend++ };
	return bw_rng_unit(&r) < backend_accepts ? 0 : ECONNREFUSED;
}

static double throttle_p_now(uint64_t key)
{
	struct bw_call c = call_of(key, BW_OP_CONNECT);
	struct bw_ref ref = { eng.rt[0].slot, rule.throttle.scope, key, NULL, NULL };
	(void)c;
	struct bw_rule_cells *rc = &eng.store->rules[ref.slot];
	return bw_throttle_p(&rule.throttle, &rc->whole->thr, fake_now);
}

/* Over 10000 calls the share rejected is the mean of the formula's probability at each
 * call, within 2 points; and a seed makes it the same every run. */
static long shed_counted;

static long throttled_run(uint64_t seed, double *expected)
{
	rule.throttle = (struct bw_throttle){ .enabled = 1, .scope = BW_SCOPE_RULE, .k = 2,
					      .window = 60 * S, .max_reject = 0.9 };
	cfg.seed = seed;
	assert_int_equal(bw_engine_init(&eng, &cfg, &fake_env, 1, "prog", seed), 0);
	backend = 1;
	backend_accepts = 0.3;
	double sum = 0;
	long rejected = 0;
	for (int i = 0; i < 10000; i++) {
		sum += throttle_p_now(7);
		struct bw_call c = call_of(7, BW_OP_CONNECT);
		c.attempt = flaky_attempt;
		int before = calls;
		run(&c);
		rejected += calls == before;
		fake_now += 1 * MS;          /* 10 s in all: inside the window */
	}
	*expected = sum / 10000;
	shed_counted = bw_engine_stat(&eng, 0, BW_ST_SHED);
	bw_engine_fini(&eng);
	return rejected;
}

static void test_throttle_rejects_at_the_formulas_rate(void **s)
{
	(void)s;
	double expected;
	long rejected = throttled_run(12345, &expected);
	double rate = (double)rejected / 10000;
	assert_true(expected > 0.5);                 /* it had something to reject */
	if (fabs(rate - expected) > 0.02)
		fail_msg("rejected %.4f of the calls, the formula says %.4f", rate, expected);
	assert_int_equal(shed_counted, rejected);
	/* reproducible with the seed */
	fake_reset();
	calls = 0;
	double again;
	assert_int_equal(throttled_run(12345, &again), rejected);
	assert_true(again == expected);
	/* the formula's values, at the counts it sees */
	rule.throttle.k = 2;
	rule.throttle.max_reject = 0.9;
	struct bw_throttle_state st;
	memset(&st, 0, sizeof st);
	for (int i = 0; i < 100; i++)
		bw_throttle_request(&rule.throttle, &st, 5 * S);
	for (int i = 0; i < 30; i++)
		bw_throttle_accept(&rule.throttle, &st, 5 * S);
	assert_true(fabs(bw_throttle_p(&rule.throttle, &st, 5 * S) - 40.0 / 101) < 1e-9);
	for (int i = 0; i < 30; i++)
		bw_throttle_accept(&rule.throttle, &st, 5 * S);
	assert_true(bw_throttle_p(&rule.throttle, &st, 5 * S) == 0);
	/* counts older than the window are gone */
	assert_true(bw_throttle_p(&rule.throttle, &st, 5 * S + 61 * S) == 0);
	long r, a;
	bw_throttle_counts(&rule.throttle, &st, 5 * S + 61 * S, &r, &a);
	assert_int_equal(r, 0);
	/* capped */
	memset(&st, 0, sizeof st);
	for (int i = 0; i < 1000; i++)
		bw_throttle_request(&rule.throttle, &st, 5 * S);
	assert_true(bw_throttle_p(&rule.throttle, &st, 5 * S) == 0.9);
	setup(NULL);
	start();
}

/* A destination that answers, even with an error of the application's, is accepting. */
static void test_throttle_counts_application_errors_as_accepts(void **s)
{
	(void)s;
	rule.throttle = (struct bw_throttle){ .enabled = 1, .scope = BW_SCOPE_RULE, .k = 1,
					      .window = 60 * S, .max_reject = 1 };
	start();
	result = bw_err_sqlite(19);                  /* SQLITE_CONSTRAINT */
	for (int i = 0; i < 50; i++) {
		struct bw_call c = call_of(7, BW_OP_SQLITE);
		assert_int_equal(run(&c), bw_err_sqlite(19));
	}
	assert_int_equal(fake_count("\"event\":\"shed\""), 0);
	result = bw_err_sqlite(5);                   /* SQLITE_BUSY: not an answer */
	for (int i = 0; i < 200; i++) {
		struct bw_call c = call_of(7, BW_OP_SQLITE);
		run(&c);
	}
	assert_true(fake_count("\"event\":\"shed\"") > 50);
	assert_true(bw_engine_stat(&eng, 0, BW_ST_SHED) > 50);
	/* a rejected attempt of a retried call ends the retry loop, named */
	rule.has_retry = 1;
	rule.retry = (struct bw_retry){ .attempts = 50, .base = 1 * MS, .max = 1 * MS,
					.multiplier = 1, .jitter = BW_JITTER_NONE };
	struct bw_call c = call_of(7, BW_OP_SQLITE);
	run(&c);
	assert_true(fake_count("\"reason\":\"throttle\"") == 1);
}

/* Calls in flight are not requests yet: 30 calls admitted at once, none answered yet,
 * are not a destination that fails (a burst of concurrent calls, or a queue at a
 * bulkhead, would otherwise be shed from its second call on). */
static void test_throttle_does_not_count_calls_in_flight(void **s)
{
	(void)s;
	rule.throttle = (struct bw_throttle){ .enabled = 1, .scope = BW_SCOPE_RULE, .k = 2,
					      .window = 60 * S, .max_reject = 0.9 };
	start();
	struct bw_call c[30];
	for (int i = 0; i < 30; i++) {
		c[i] = call_of(7, BW_OP_CONNECT);
		assert_int_equal(bw_engine_admit_call(&eng, &c[i]), 0);
	}
	assert_int_equal(fake_count("\"event\":\"shed\""), 0);
	for (int i = 0; i < 30; i++)
		bw_engine_outcome(&eng, &c[i], 0);
	struct bw_rule_cells *rc = &eng.store->rules[0];
	long r, a;
	bw_throttle_counts(&rule.throttle, &rc->whole->thr, fake_now, &r, &a);
	assert_int_equal(r, 30);
	assert_int_equal(a, 30);
	/* 30 failures that ended: now the throttle rejects */
	for (int i = 0; i < 30; i++) {
		c[0] = call_of(7, BW_OP_CONNECT);
		if (bw_engine_admit_call(&eng, &c[0]) == 0)
			bw_engine_outcome(&eng, &c[0], ECONNREFUSED);
	}
	bw_throttle_counts(&rule.throttle, &rc->whole->thr, fake_now, &r, &a);
	assert_int_equal(r, 60);
	assert_int_equal(a, 30);
	for (int i = 0; i < 200; i++) {
		c[0] = call_of(7, BW_OP_CONNECT);
		if (bw_engine_admit_call(&eng, &c[0]) == 0)
			bw_engine_outcome(&eng, &c[0], ECONNREFUSED);
	}
	assert_true(fake_count("\"event\":\"shed\"") > 20);
}

/* Observe mode makes the calls it would have rejected: each is one request, counted with
 * its outcome, not a second time for the rejection it only logs. */
static void test_observed_rejections_count_once(void **s)
{
	(void)s;
	rule.throttle = (struct bw_throttle){ .enabled = 1, .scope = BW_SCOPE_RULE, .k = 2,
					      .window = 60 * S, .max_reject = 0.9 };
	cfg.mode = BW_MODE_OBSERVE;
	start();
	for (int i = 0; i < 100; i++) {
		struct bw_call c = call_of(7, BW_OP_CONNECT);
		assert_int_equal(bw_engine_admit_call(&eng, &c), 0);
		bw_engine_outcome(&eng, &c, ECONNREFUSED);
	}
	assert_true(fake_count("\"event\":\"shed\"") > 50);     /* logged, not done */
	long r, a;
	bw_throttle_counts(&rule.throttle, &eng.store->rules[0].whole->thr, fake_now, &r, &a);
	assert_int_equal(r, 100);
	assert_int_equal(a, 0);
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_SHED), 0);
}

/* ---- slow calls ---- */

static void slow_breaker(void)
{
	rule.breaker = (struct bw_breaker){ .enabled = 1, .scope = BW_SCOPE_RULE,
					    .window = 30 * S, .min_calls = 4, .open_for = 10 * S,
					    .open_for_max = 10 * S, .half_open_probes = 1,
					    .slow_over = 2 * S, .slow_rate = 0.5 };
}

static void test_slow_calls_open_the_breaker(void **s)
{
	(void)s;
	slow_breaker();
	start();
	/* fast ones never do */
	attempt_takes = 100 * MS;
	for (int i = 0; i < 10; i++) {
		struct bw_call c = call_of(7, BW_OP_SQLITE);
		assert_int_equal(run(&c), 0);
	}
	assert_int_equal(fake_count("\"to\":\"open\""), 0);
	/* slow successes do, once they are half the window's calls */
	attempt_takes = 3 * S;
	int opened_at = -1;
	for (int i = 0; i < 12 && opened_at < 0; i++) {
		struct bw_call c = call_of(7, BW_OP_SQLITE);
		assert_int_equal(run(&c), 0);
		if (fake_count("\"to\":\"open\""))
			opened_at = i;
	}
	assert_int_equal(opened_at, 9);          /* 10 slow of 20 calls */
	struct bw_call c = call_of(7, BW_OP_SQLITE);
	assert_int_equal(run(&c), bw_err_sqlite(5));     /* refused */
	/* a slow probe opens it again */
	fake_now += 10 * S;
	c = call_of(7, BW_OP_SQLITE);
	assert_int_equal(run(&c), 0);
	assert_int_equal(fake_count("\"from\":\"half_open\",\"to\":\"open\""), 1);
	/* a fast one closes it */
	fake_now += 20 * S;
	attempt_takes = 10 * MS;
	c = call_of(7, BW_OP_SQLITE);
	assert_int_equal(run(&c), 0);
	assert_int_equal(fake_count("\"from\":\"half_open\",\"to\":\"closed\""), 1);
}

/* A connect judged later (on its first byte) carries its slowness to the judgement. */
static void test_slow_connect_is_judged_with_its_first_byte(void **s)
{
	(void)s;
	slow_breaker();
	rule.breaker.min_calls = 2;
	rule.breaker.slow_rate = 1;
	start();
	attempt_takes = 3 * S;
	for (int i = 0; i < 2; i++) {
		struct bw_call c = call_of(7, BW_OP_CONNECT);
		c.confirm_later = 1;
		assert_int_equal(run(&c), 0);
		assert_int_equal(c.slow, 1);
		assert_int_equal(fake_count("\"to\":\"open\""), 0);     /* not yet judged */
		bw_engine_confirm(&eng, &c, 0);
	}
	assert_int_equal(fake_count("\"to\":\"open\""), 1);
}

/* A connect made at once whose answer comes late is slow: its wait runs from the connect
 * (c.began, which the hook keeps with the watch) to the first byte; one still waiting
 * past `over` is overdue. */
static void test_a_late_answer_makes_a_fast_connect_slow(void **s)
{
	(void)s;
	slow_breaker();
	rule.breaker.min_calls = 2;
	rule.breaker.slow_rate = 1;
	start();
	attempt_takes = 10 * MS;
	for (int i = 0; i < 2; i++) {
		struct bw_call c = call_of(7, BW_OP_CONNECT);
		c.confirm_later = 1;
		assert_int_equal(run(&c), 0);
		assert_int_equal(c.slow, 0);
		assert_true(c.began > 0);
		int64_t t0 = c.began;
		fake_now += 1 * S;
		assert_false(bw_engine_overdue(&eng, &rule, t0));
		fake_now += 2 * S;                    /* 3 s after the connect: overdue */
		assert_true(bw_engine_overdue(&eng, &rule, t0));
		assert_false(bw_engine_overdue(&eng, &rule, 0));    /* not timed */
		struct bw_call judged = call_of(7, BW_OP_CONNECT);
		judged.started = t0;
		bw_engine_confirm(&eng, &judged, 0);
	}
	assert_int_equal(fake_count("\"to\":\"open\""), 1);
	/* without trip.slow nothing is timed */
	rule.breaker.slow_over = 0;
	assert_false(bw_engine_slow_timed(&rule));
	assert_false(bw_engine_overdue(&eng, &rule, 1));
}

/* A probe the rate limit refuses after the breaker let it through is free again: held,
 * it would keep the breaker half-open and refusing for good. */
static void test_a_probe_refused_by_the_rate_limit_is_released(void **s)
{
	(void)s;
	rule.breaker = (struct bw_breaker){ .enabled = 1, .scope = BW_SCOPE_RULE, .consecutive = 1,
					    .window = 30 * S, .min_calls = 20, .open_for = 1 * S,
					    .open_for_max = 1 * S, .half_open_probes = 1 };
	rule.rate_limit = (struct bw_rate_limit){ .enabled = 1, .scope = BW_SCOPE_RULE,
						  .rate = 0.5, .burst = 1,
						  .on_limit = BW_LIMIT_FAIL };
	start();
	result = ECONNREFUSED;
	struct bw_call c = call_of(7, BW_OP_CONNECT);
	assert_int_equal(run(&c), ECONNREFUSED);              /* opens; the bucket is empty */
	fake_now += 1 * S;                                    /* a probe is due, no token */
	result = 0;
	c = call_of(7, BW_OP_CONNECT);
	assert_int_equal(run(&c), ECONNREFUSED);
	assert_int_equal(fake_count("\"event\":\"limited\""), 1);
	fake_now += 2 * S;                                    /* a token again */
	c = call_of(7, BW_OP_CONNECT);
	assert_int_equal(run(&c), 0);
	assert_int_equal(fake_count("\"from\":\"half_open\",\"to\":\"closed\""), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_connections_hold_slots_and_a_full_bulkhead_refuses),
		T(test_a_failed_connect_gives_its_slot_back),
		T(test_a_call_waits_for_a_slot_given_back),
		T(test_calls_hold_a_slot_while_they_run),
		T(test_accept_waits_then_goes_over),
		T(test_observe_counts_and_never_waits),
		T(test_busy_destinations_are_never_evicted),
		T(test_throttle_rejects_at_the_formulas_rate),
		T(test_throttle_counts_application_errors_as_accepts),
		T(test_throttle_does_not_count_calls_in_flight),
		T(test_observed_rejections_count_once),
		T(test_slow_calls_open_the_breaker),
		T(test_slow_connect_is_judged_with_its_first_byte),
		T(test_a_late_answer_makes_a_fast_connect_slow),
		T(test_a_probe_refused_by_the_rate_limit_is_released),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
