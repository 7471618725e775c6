/* The retry driver with a fake clock: attempts, deadline, budget, observe mode, events. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <cmocka.h>
#include "errnames.h"
#include "fake_env.h"

static struct bw_rule rule;
static struct bw_config cfg;
static struct bw_engine eng;

/* scripted attempt results: fails[i] is attempt i+1's result */
static int script[128];
static int script_len;
static int calls;
static int64_t seen_deadline;

static int scripted(void *arg, int n, int64_t deadline)
{
	(void)arg;
	calls++;
	seen_deadline = deadline;
	fake_now += 1000;    /* each attempt takes 1 ms */
	return n <= script_len ? script[n - 1] : 0;
}

static int resets;
static void count_reset(void *arg) { (void)arg; resets++; }

static int setup(void **s)
{
	(void)s;
	fake_reset();
	memset(&rule, 0, sizeof rule);
	strcpy(rule.name, "r");
	rule.match.ops = BW_OPS_ALL;
	rule.has_retry = 1;
	rule.retry = (struct bw_retry){ .attempts = 5, .base = 100000, .max = 1000000,
					.multiplier = 2.0, .jitter = BW_JITTER_NONE };
	memset(&cfg, 0, sizeof cfg);
	cfg.rules = &rule;
	cfg.n_rules = 1;
	cfg.log.level = BW_LVL_DEBUG;
	cfg.path = "test.yaml";
	cfg.ops = BW_OPS_ALL;
	script_len = 0;
	calls = 0;
	resets = 0;
	return bw_engine_init(&eng, &cfg, &fake_env, 1234, "prog", 1);
}

static int teardown(void **s)
{
	(void)s;
	bw_engine_fini(&eng);
	return 0;
}

static int run(int op)
{
	struct bw_call c = { .rule = &rule, .op = op, .call = "connect", .dest = "127.0.0.1:1",
			     .fd = 3, .attempt = scripted, .before_retry = count_reset };
	struct bw_rng rng = { 5 };
	return bw_engine_run(&eng, &c, &rng);
}

static void test_success_first_time_is_silent(void **s)
{
	(void)s;
	assert_int_equal(run(BW_OP_CONNECT), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(fake_log_len, 0);
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_CALLS), 1);
}

static void test_recovers_after_refusals(void **s)
{
	(void)s;
	script[0] = script[1] = ECONNREFUSED;
	script_len = 2;
	assert_int_equal(run(BW_OP_CONNECT), 0);
	assert_int_equal(calls, 3);
	assert_int_equal(resets, 2);
	assert_int_equal(fake_slept_total, 100000 + 200000);
	assert_int_equal(fake_count("\"event\":\"fail\""), 2);
	assert_int_equal(fake_count("\"event\":\"retry\""), 2);
	assert_int_equal(fake_count("\"event\":\"recovered\""), 1);
	assert_non_null(strstr(fake_log, "\"attempts\":3"));
	assert_non_null(strstr(fake_log, "\"err\":\"ECONNREFUSED\""));
	assert_non_null(strstr(fake_log, "\"delay_ms\":100}"));
	assert_int_equal(eng.rt[0].stats[BW_ST_RETRIES], 2);
	assert_int_equal(eng.rt[0].stats[BW_ST_RECOVERED], 1);
}

static void test_gives_up_after_attempts(void **s)
{
	(void)s;
	for (int i = 0; i < 10; i++)
		script[i] = ECONNREFUSED;
	script_len = 10;
	assert_int_equal(run(BW_OP_CONNECT), ECONNREFUSED);
	assert_int_equal(calls, 5);
	assert_int_equal(fake_count("\"event\":\"gave_up\""), 1);
	assert_non_null(strstr(fake_log, "\"reason\":\"attempts\""));
}

static void test_not_retryable_error_returns_at_once(void **s)
{
	(void)s;
	script[0] = EACCES;
	script_len = 1;
	assert_int_equal(run(BW_OP_CONNECT), EACCES);
	assert_int_equal(calls, 1);
	assert_int_equal(fake_sleeps, 0);
	assert_int_equal(fake_count("\"event\":\"gave_up\""), 0);
}

static void test_deadline_stops_before_sleeping_past_it(void **s)
{
	(void)s;
	rule.retry.deadline = 250000;   /* sleeps 100ms, then 200ms would cross it */
	for (int i = 0; i < 10; i++)
		script[i] = ECONNREFUSED;
	script_len = 10;
	int64_t start = fake_now;
	assert_int_equal(run(BW_OP_CONNECT), ECONNREFUSED);
	assert_int_equal(calls, 2);
	assert_int_equal(seen_deadline, start + 250000);
	assert_non_null(strstr(fake_log, "\"reason\":\"deadline\""));
	assert_true(fake_now - start < 250000);
}

static void test_custom_on_list_replaces_default(void **s)
{
	(void)s;
	rule.retry.on[0] = EACCES;
	rule.retry.n_on = 1;
	script[0] = ECONNREFUSED;
	script_len = 1;
	assert_int_equal(run(BW_OP_CONNECT), ECONNREFUSED);
	script[0] = EACCES;
	calls = 0;
	assert_int_equal(run(BW_OP_CONNECT), 0);
	assert_int_equal(calls, 2);
}

static void test_default_lists_per_op(void **s)
{
	(void)s;
	struct bw_call c = { .rule = &rule, .op = BW_OP_CONNECT };
	assert_true(bw_retryable(&rule, &c, ECONNREFUSED));
	assert_false(bw_retryable(&rule, &c, ENOENT));
	c.unix_dest = 1;
	assert_true(bw_retryable(&rule, &c, ENOENT));
	c.op = BW_OP_RESOLVE;
	assert_true(bw_retryable(&rule, &c, bw_err_eai(EAI_AGAIN)));
	assert_false(bw_retryable(&rule, &c, bw_err_eai(EAI_NONAME)));
	c.op = BW_OP_SEND;
	assert_true(bw_retryable(&rule, &c, ENOBUFS));
	/* a signal handler's EINTR and a timeout's EAGAIN belong to the program */
	assert_false(bw_retryable(&rule, &c, EINTR));
	assert_false(bw_retryable(&rule, &c, EAGAIN));
	assert_false(bw_retryable(&rule, &c, ECONNRESET));
	c.op = BW_OP_SQLITE;
	assert_true(bw_retryable(&rule, &c, bw_err_sqlite(5)));
	assert_true(bw_retryable(&rule, &c, bw_err_sqlite(5 | 2 << 8)));
	assert_true(bw_retryable(&rule, &c, bw_err_sqlite(6)));
	assert_false(bw_retryable(&rule, &c, bw_err_sqlite(1)));
}

/* 20% of calls, at least 1 retry a second: the 2nd failing call in the same second finds
 * the budget spent. */
static void test_budget_limits_retries(void **s)
{
	(void)s;
	rule.retry.budget_ratio = 0.2;
	rule.retry.budget_min_per_sec = 1;
	rule.retry.attempts = 2;
	script[0] = ECONNREFUSED;
	script_len = 1;
	assert_int_equal(run(BW_OP_CONNECT), 0);          /* retry allowed by the minimum */
	fake_log_len = 0;
	assert_int_equal(run(BW_OP_CONNECT), ECONNREFUSED);
	assert_non_null(strstr(fake_log, "\"reason\":\"budget\""));
	/* many successful calls earn budget: 10 calls -> 2 retries allowed */
	script_len = 0;
	for (int i = 0; i < 10; i++)
		run(BW_OP_CONNECT);
	script_len = 1;
	fake_log_len = 0;
	assert_int_equal(run(BW_OP_CONNECT), 0);
	/* and 10 seconds later the window has forgotten them */
	fake_now += 11000000;
	fake_log_len = 0;
	assert_int_equal(run(BW_OP_CONNECT), 0);          /* the per-second minimum again */
	assert_int_equal(run(BW_OP_CONNECT), ECONNREFUSED);
}

static void test_observe_mode_logs_and_changes_nothing(void **s)
{
	(void)s;
	eng.mode = BW_MODE_OBSERVE;
	script[0] = script[1] = ECONNREFUSED;
	script_len = 2;
	assert_int_equal(run(BW_OP_CONNECT), ECONNREFUSED);
	assert_int_equal(calls, 1);
	assert_int_equal(fake_sleeps, 0);
	assert_int_equal(resets, 0);
	assert_int_equal(fake_count("\"observe\":true"), 2);
	assert_int_equal(fake_count("\"event\":\"retry\""), 1);
}

static void test_level_filters_events(void **s)
{
	(void)s;
	eng.level = BW_LVL_WARN;
	script[0] = ECONNREFUSED;
	script_len = 1;
	assert_int_equal(run(BW_OP_CONNECT), 0);
	assert_int_equal(fake_count("\"event\":\"fail\""), 0);    /* info */
	assert_int_equal(fake_count("\"event\":\"retry\""), 1);   /* warn */
}

static void test_retry_off_single_attempt(void **s)
{
	(void)s;
	rule.has_retry = 0;
	script[0] = ECONNREFUSED;
	script_len = 1;
	assert_int_equal(run(BW_OP_CONNECT), ECONNREFUSED);
	assert_int_equal(calls, 1);
	assert_int_equal(fake_count("\"event\":\"fail\""), 1);
}

static void test_prog_filter_and_ops(void **s)
{
	(void)s;
	char *progs[] = { "curl" };
	rule.match.prog = progs;
	rule.match.n_prog = 1;
	rule.match.ops = BW_OPBIT(BW_OP_CONNECT);
	bw_engine_fini(&eng);
	bw_engine_init(&eng, &cfg, &fake_env, 1, "python3", 1);
	assert_int_equal(eng.ops, 0);
	bw_engine_fini(&eng);
	bw_engine_init(&eng, &cfg, &fake_env, 1, "curl", 1);
	assert_int_equal(eng.ops, BW_OPBIT(BW_OP_CONNECT));
	rule.match.prog = NULL;
	rule.match.n_prog = 0;
}

static struct bw_stop stop_slot;

static int stopping(void *arg, int n, int64_t deadline)
{
	(void)arg, (void)deadline;
	calls++;
	stop_slot = (struct bw_stop){ n == 1, "upgrade", "roll back" };
	return bw_err_sqlite(5);
}

static void test_stop_gives_up_at_once_with_advice(void **s)
{
	(void)s;
	struct bw_call c = { .rule = &rule, .op = BW_OP_SQLITE, .call = "sqlite3_step",
			     .db = "/x.db", .fd = -1, .attempt = stopping, .stop = &stop_slot };
	struct bw_rng rng = { 5 };
	assert_int_equal(bw_engine_run(&eng, &c, &rng), bw_err_sqlite(5));
	assert_int_equal(calls, 1);
	assert_int_equal(fake_sleeps, 0);
	assert_non_null(strstr(fake_log, "\"reason\":\"upgrade\",\"msg\":\"roll back\""));
	assert_non_null(strstr(fake_log, "\"db\":\"/x.db\""));
	/* a quiet stop: no gave_up, the error goes back */
	fake_log_len = 0;
	calls = 0;
	stop_slot.reason = NULL;
	c.attempt = scripted;
	script[0] = bw_err_sqlite(5);
	script_len = 1;
	c.stop = &(struct bw_stop){ 1, NULL, NULL };
	assert_int_equal(bw_engine_run(&eng, &c, &rng), bw_err_sqlite(5));
	assert_int_equal(calls, 1);
	assert_int_equal(fake_count("\"event\":\"gave_up\""), 0);
}

static int refused_with;
static int refuse_below(void *arg, int err)
{
	(void)arg;
	refused_with = err;
	return bw_err_sqlite(5);
}

static void test_refusal_is_carried_out_by_the_caller(void **s)
{
	(void)s;
	rule.breaker = (struct bw_breaker){ .enabled = 1, .scope = BW_SCOPE_RULE, .consecutive = 1,
					    .window = 1000000, .min_calls = 1, .open_for = 1000000,
					    .open_for_max = 1000000, .half_open_probes = 1 };
	rule.has_retry = 0;
	bw_engine_fini(&eng);
	bw_engine_init(&eng, &cfg, &fake_env, 1, "prog", 1);
	struct bw_call c = { .rule = &rule, .op = BW_OP_SQLITE, .call = "sqlite3_step",
			     .fd = -1, .attempt = scripted, .refuse = refuse_below };
	struct bw_rng rng = { 5 };
	script[0] = bw_err_sqlite(5);
	script_len = 1;
	assert_int_equal(bw_engine_run(&eng, &c, &rng), bw_err_sqlite(5));   /* trips */
	calls = 0;
	assert_int_equal(bw_engine_run(&eng, &c, &rng), bw_err_sqlite(5));
	assert_int_equal(calls, 0);
	assert_int_equal(refused_with, bw_err_sqlite(5));   /* sqlite's default refusal */
	rule.breaker.enabled = 0;
}

/* A call with no effect of its own (a SQLite prepare) goes through an open breaker and an
 * exhausted call limit, and its failures never trip the breaker. */
static void test_unguarded_call_is_neither_admitted_nor_counted(void **s)
{
	(void)s;
	rule.breaker = (struct bw_breaker){ .enabled = 1, .scope = BW_SCOPE_RULE, .consecutive = 1,
					    .window = 1000000, .min_calls = 1, .open_for = 1000000,
					    .open_for_max = 1000000, .half_open_probes = 1 };
	rule.rate_limit = (struct bw_rate_limit){ .enabled = 1, .scope = BW_SCOPE_RULE,
						  .rate = 1, .burst = 1,
						  .on_limit = BW_LIMIT_FAIL };
	rule.has_retry = 0;
	bw_engine_fini(&eng);
	bw_engine_init(&eng, &cfg, &fake_env, 1, "prog", 1);
	struct bw_call prep = { .rule = &rule, .op = BW_OP_SQLITE, .call = "sqlite3_prepare_v2",
				.fd = -1, .attempt = scripted, .unguarded = 1 };
	struct bw_call step = prep;
	step.call = "sqlite3_step";
	step.unguarded = 0;
	struct bw_rng rng = { 5 };
	script[0] = bw_err_sqlite(5);
	script_len = 1;
	/* failing unguarded calls: made, and the breaker learns nothing from them */
	for (int i = 0; i < 3; i++)
		assert_int_equal(bw_engine_run(&eng, &prep, &rng), bw_err_sqlite(5));
	assert_int_equal(calls, 3);
	script_len = 0;
	assert_int_equal(bw_engine_run(&eng, &step, &rng), 0);     /* takes the one token */
	assert_int_equal(calls, 4);
	assert_int_equal(bw_engine_run(&eng, &step, &rng), bw_err_sqlite(5));   /* limited */
	assert_int_equal(calls, 4);
	assert_int_equal(bw_engine_run(&eng, &prep, &rng), 0);     /* still made */
	assert_int_equal(calls, 5);
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_LIMITED), 1);
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_REJECTED), 0);
	assert_null(strstr(fake_log, "\"event\":\"breaker\""));
	rule.breaker.enabled = 0;
	rule.rate_limit.enabled = 0;
}

static void test_start_and_exit_events(void **s)
{
	(void)s;
	bw_engine_start_event(&eng, "9.9");
	assert_non_null(strstr(fake_log, "\"event\":\"start\""));
	assert_non_null(strstr(fake_log, "\"version\":\"9.9\",\"config\":\"test.yaml\",\"rules\":1,"
					 "\"mode\":\"enforce\",\"seed\":1"));
	run(BW_OP_CONNECT);
	bw_engine_exit_event(&eng);
	assert_non_null(strstr(fake_log, "\"stats\":{\"r\":{\"calls\":1,\"failures\":0,"));
}

/* The short path of the send/recv hooks: taken only when nothing is decided before the
 * single attempt, and then it says and counts what bw_engine_run would. */
static void test_direct_path_only_when_nothing_to_decide(void **s)
{
	(void)s;
	assert_false(bw_engine_direct(&rule, BW_OP_SEND));          /* retries */
	rule.has_retry = 0;
	assert_true(bw_engine_direct(&rule, BW_OP_SEND));
	rule.breaker.enabled = 1;                                   /* guards connect only */
	assert_true(bw_engine_direct(&rule, BW_OP_RECV));
	assert_false(bw_engine_direct(&rule, BW_OP_CONNECT));
	rule.breaker.enabled = 0;
	rule.rate_limit.enabled = 1;                                /* calls per second */
	assert_false(bw_engine_direct(&rule, BW_OP_SEND));
	rule.rate_limit.bytes = 1;                                  /* bytes: in the attempt */
	assert_true(bw_engine_direct(&rule, BW_OP_SEND));
	rule.rate_limit = (struct bw_rate_limit){ 0 };
	rule.n_inject = 1;
	assert_false(bw_engine_direct(&rule, BW_OP_SEND));
	rule.n_inject = 0;
}

static void test_direct_path_reports_as_the_driver_does(void **s)
{
	(void)s;
	rule.has_retry = 0;
	struct bw_call c = { .rule = &rule, .op = BW_OP_RECV, .call = "recv", .dest = "127.0.0.1:1",
			     .fd = 3, .attempt = scripted };
	struct bw_rng rng = { 5 };
	script[0] = ECONNRESET;
	script_len = 1;
	assert_int_equal(bw_engine_run(&eng, &c, &rng), ECONNRESET);
	static char via_run[sizeof fake_log];
	memcpy(via_run, fake_log, fake_log_len + 1);
	fake_reset();
	bw_engine_count(&eng, &rule, BW_ST_CALLS);
	int err = scripted(NULL, 1, 0);
	bw_engine_failed(&eng, &c, err, 1, 0);
	assert_int_equal(err, ECONNRESET);
	assert_non_null(strstr(via_run, "\"event\":\"fail\""));
	assert_string_equal(fake_log, via_run);
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_CALLS), 2);
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_FAILURES), 2);
}

/* A real EINTR is never retried, even when `on` lists it; an injected one may be. */
static void test_real_eintr_is_the_programs(void **s)
{
	(void)s;
	rule.retry.on[0] = EINTR;
	rule.retry.n_on = 1;
	struct bw_call c = { .rule = &rule, .op = BW_OP_RECV };
	bw_attempt_injected = 0;
	assert_false(bw_retryable(&rule, &c, EINTR));
	bw_attempt_injected = 1;
	assert_true(bw_retryable(&rule, &c, EINTR));
	bw_attempt_injected = 0;
	/* an attempt that says EINTR ends the call at once, uncounted, with no event */
	script[0] = EINTR;
	script_len = 1;
	assert_int_equal(run(BW_OP_RECV), EINTR);
	assert_int_equal(calls, 1);
	assert_int_equal(eng.rt[0].stats[BW_ST_FAILURES], 0);
	assert_int_equal(fake_log_len, 0);
}

static int signal_result;
static int signal_where = -1;
static int end_on_signal(void *arg, int where, int *result)
{
	(void)arg;
	signal_where = where;
	if (signal_result < 0)
		return 0;
	*result = signal_result;
	return 1;
}

static int run_with_signal(int op)
{
	struct bw_call c = { .rule = &rule, .op = op, .call = "connect", .dest = "127.0.0.1:1",
			     .fd = 3, .attempt = scripted, .before_retry = count_reset,
			     .on_signal = end_on_signal };
	struct bw_rng rng = { 5 };
	return bw_engine_run(&eng, &c, &rng);
}

/* A signal handler that runs in a backoff ends the call with what the hook makes of it;
 * one the hook waits through (returns 0) only costs the sleep its remaining time. */
static void test_signal_in_backoff(void **s)
{
	(void)s;
	for (int i = 0; i < 10; i++)
		script[i] = ECONNREFUSED;
	script_len = 10;
	signal_result = EINTR;
	fake_signal_after = 30000;
	assert_int_equal(run_with_signal(BW_OP_CONNECT), EINTR);
	assert_int_equal(calls, 1);
	assert_int_equal(signal_where, BW_WAIT_BACKOFF);
	assert_int_equal(fake_slept_total, 30000);
	assert_int_equal(fake_count("\"event\":\"gave_up\""), 0);

	/* the hook waits on: the backoff still lasts its whole 100 ms */
	calls = 0;
	fake_slept_total = 0;
	signal_result = -1;
	fake_signal_after = 30000;
	script_len = 1;
	assert_int_equal(run_with_signal(BW_OP_CONNECT), 0);
	assert_int_equal(calls, 2);
	assert_int_equal(fake_slept_total, 100000);

	/* an attempt the hook finished at once is the call's outcome */
	calls = 0;
	signal_result = 0;
	fake_signal_after = 10;
	script_len = 10;
	assert_int_equal(run_with_signal(BW_OP_CONNECT), 0);
	assert_int_equal(calls, 1);
}

/* A signal in a limiter's wait ends a call whose hook says so. */
static void test_signal_in_limit_wait(void **s)
{
	(void)s;
	rule.has_retry = 0;
	rule.rate_limit = (struct bw_rate_limit){ .enabled = 1, .scope = BW_SCOPE_RULE,
						  .rate = 1, .burst = 1, .on_limit = BW_LIMIT_WAIT,
						  .max_wait = 5000000 };
	assert_int_equal(run_with_signal(BW_OP_RECV), 0);     /* the one token */
	signal_result = EINTR;
	fake_signal_after = 1000;
	assert_int_equal(run_with_signal(BW_OP_RECV), EINTR);
	assert_int_equal(signal_where, BW_WAIT_LIMIT);
	assert_int_equal(calls, 1);
}

/* A connect that succeeds with confirm_later does not reset a closed breaker's count of
 * failures in a row; the confirmation does. A server that accepts and then resets every
 * connection trips it. */
static void test_connect_success_waits_for_confirmation(void **s)
{
	(void)s;
	rule.has_retry = 0;
	rule.breaker = (struct bw_breaker){ .enabled = 1, .scope = BW_SCOPE_RULE,
					    .consecutive = 2, .open_for = 1000000,
					    .open_for_max = 1000000, .half_open_probes = 1 };
	struct bw_call c = { .rule = &rule, .op = BW_OP_CONNECT, .call = "connect", .fd = 3,
			     .attempt = scripted, .confirm_later = 1 };
	struct bw_rng rng = { 5 };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(bw_engine_run(&eng, &c, &rng), 0);
		bw_engine_confirm(&eng, &c, 1);     /* reset before the first byte */
	}
	assert_int_equal(eng.store->rules[0].whole->brk.pos, BW_BRK_OPEN);
	assert_int_equal(bw_engine_run(&eng, &c, &rng), ECONNREFUSED);   /* rejected */

	/* half open: a connection that is made closes it at once */
	fake_now += 1000001;
	assert_int_equal(bw_engine_run(&eng, &c, &rng), 0);
	assert_int_equal(eng.store->rules[0].whole->brk.pos, BW_BRK_CLOSED);
	/* and a confirmed connection clears the count */
	assert_int_equal(bw_engine_run(&eng, &c, &rng), 0);
	bw_engine_confirm(&eng, &c, 1);
	assert_int_equal(eng.store->rules[0].whole->brk.consecutive, 1);
	assert_int_equal(bw_engine_run(&eng, &c, &rng), 0);
	bw_engine_confirm(&eng, &c, 0);
	assert_int_equal(eng.store->rules[0].whole->brk.consecutive, 0);
}

/* A policy loaded anew finds its rules' breakers and buckets by name, whatever their
 * position; a rule of a new name starts afresh; the old engine keeps working. */
static void test_next_generation_keeps_state_by_name(void **s)
{
	(void)s;
	rule.has_retry = 0;
	rule.breaker = (struct bw_breaker){ .enabled = 1, .scope = BW_SCOPE_RULE,
					    .consecutive = 1, .open_for = 1000000,
					    .open_for_max = 1000000, .half_open_probes = 1 };
	script[0] = ECONNREFUSED;
	script_len = 1;
	assert_int_equal(run(BW_OP_CONNECT), ECONNREFUSED);      /* opens the breaker */

	static struct bw_rule rules2[2];
	rules2[0] = rule;
	strcpy(rules2[0].name, "new");
	rules2[1] = rule;                                         /* "r", now second */
	struct bw_config cfg2 = cfg;
	cfg2.rules = rules2;
	cfg2.n_rules = 2;
	struct bw_engine next;
	assert_int_equal(bw_engine_init_next(&next, &eng, &cfg2, 7), 0);
	assert_int_equal(next.gen, eng.gen + 1);
	assert_ptr_equal(next.store, eng.store);
	struct bw_rng rng = { 5 };
	calls = 0;
	struct bw_call c = { .rule = &rules2[1], .op = BW_OP_CONNECT, .fd = 3,
			     .attempt = scripted };
	assert_int_equal(bw_engine_run(&next, &c, &rng), ECONNREFUSED);   /* still open */
	assert_int_equal(calls, 0);
	c.rule = &rules2[0];
	script_len = 0;
	assert_int_equal(bw_engine_run(&next, &c, &rng), 0);              /* a fresh breaker */
	assert_int_equal(calls, 1);
	assert_int_equal(run(BW_OP_CONNECT), ECONNREFUSED);              /* the old one too */
	bw_engine_fini(&next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_success_first_time_is_silent),
		T(test_recovers_after_refusals),
		T(test_gives_up_after_attempts),
		T(test_not_retryable_error_returns_at_once),
		T(test_deadline_stops_before_sleeping_past_it),
		T(test_custom_on_list_replaces_default),
		T(test_default_lists_per_op),
		T(test_budget_limits_retries),
		T(test_observe_mode_logs_and_changes_nothing),
		T(test_level_filters_events),
		T(test_retry_off_single_attempt),
		T(test_prog_filter_and_ops),
		T(test_stop_gives_up_at_once_with_advice),
		T(test_refusal_is_carried_out_by_the_caller),
		T(test_unguarded_call_is_neither_admitted_nor_counted),
		T(test_start_and_exit_events),
		T(test_direct_path_only_when_nothing_to_decide),
		T(test_direct_path_reports_as_the_driver_does),
		T(test_real_eintr_is_the_programs),
		T(test_signal_in_backoff),
		T(test_signal_in_limit_wait),
		T(test_connect_success_waits_for_confirmation),
		T(test_next_generation_keeps_state_by_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
