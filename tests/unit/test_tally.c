/* What observe mode measures (engine/tally.h): attempt numbers per rule, op and
 * destination on fail events, the same numbers an inject entry counts, outage events,
 * and the calls events at exit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "fake_env.h"

static struct bw_rule rules[1];
static struct bw_inject inj[8];
static struct bw_config cfg;
static struct bw_engine eng;

/* Each attempt takes `took` microseconds and ends with the next scripted result. */
static const int *script;
static int script_at;
static int64_t took = 3000;

static int attempt(void *arg, int n, int64_t deadline)
{
	struct bw_fault f;
	(void)n, (void)deadline;
	const struct bw_call *c = arg;
	int injected = bw_engine_inject(&eng, c, &f) ? f.err : 0;
	fake_now += took;
	int err = script ? script[script_at++] : 0;
	return injected ? injected : err;
}

static void setup(enum bw_mode mode, int n_inject)
{
	memset(rules, 0, sizeof rules);
	memset(&cfg, 0, sizeof cfg);
	strcpy(rules[0].name, "r");
	rules[0].match.ops = BW_OPBIT(BW_OP_CONNECT);
	rules[0].inject = inj;
	rules[0].n_inject = n_inject;
	cfg.rules = rules;
	cfg.n_rules = 1;
	cfg.mode = mode;
	cfg.log.level = BW_LVL_DEBUG;
	cfg.log.summary = 1;
	fake_reset();
	script = NULL;
	script_at = 0;
	took = 3000;
	assert_int_equal(bw_engine_init(&eng, &cfg, &fake_env, 1, "p", 5), 0);
}

/* One call to dest (a distinct key per name); returns its error. */
static int call(const char *dest)
{
	struct bw_call c;
	bw_call_init(&c, &rules[0], BW_OP_CONNECT, "connect");
	c.dest = dest;
	c.key = (uint64_t)dest[0] * 7919 + 1;
	c.attempt = attempt;
	c.arg = &c;
	return bw_engine_run(&eng, &c, NULL);
}

/* The n of the k-th fail event in the log (from 0), -1 if it has none, -2 if none. */
static long fail_n(int k)
{
	const char *p = fake_log;
	for (int i = 0; (p = strstr(p, "\"event\":\"fail\"")); p++, i++) {
		if (i != k)
			continue;
		const char *end = strchr(p, '\n'), *n = strstr(p, "\"n\":");
		return n && n < end ? strtol(n + 4, NULL, 10) : -1;
	}
	return -2;
}

/* Attempts are numbered per destination, whatever else the rule sees in between. */
static void test_numbered_per_destination(void **s)
{
	(void)s;
	static const int results[] = { 0, 0, ECONNREFUSED, 0, ECONNREFUSED, 0 };
	setup(BW_MODE_OBSERVE, 0);
	script = results;
	assert_int_equal(call("A"), 0);             /* A #1 */
	assert_int_equal(call("B"), 0);             /* B #1 */
	assert_int_equal(call("A"), ECONNREFUSED);  /* A #2 */
	assert_int_equal(call("B"), 0);             /* B #2 */
	assert_int_equal(call("B"), ECONNREFUSED);  /* B #3 */
	assert_int_equal(call("A"), 0);             /* A #3: the outage of A ends */
	assert_int_equal(fake_count("\"event\":\"fail\""), 2);
	assert_int_equal(fail_n(0), 2);
	assert_int_equal(fail_n(1), 3);
	assert_int_equal(fake_count("\"event\":\"outage\""), 1);
	assert_non_null(strstr(fake_log, "\"event\":\"outage\",\"pid\":1,\"tid\":42,\"prog\":\"p\","
				       "\"rule\":\"r\",\"op\":\"connect\",\"call\":\"connect\",\"dest\":\"A\""));
	/* from the failed attempt's start to the end of the one that worked: 4 attempts */
	assert_non_null(strstr(fake_log, "\"elapsed_ms\":12,\"observe\":true,\"failures\":1}"));
	bw_engine_fini(&eng);
}

/* Enforcing, nothing is measured: no tally, no n where no inject entry counts. */
static void test_enforcing_measures_nothing(void **s)
{
	(void)s;
	static const int results[] = { ECONNREFUSED };
	setup(BW_MODE_ENFORCE, 0);
	script = results;
	assert_null(eng.tally);
	assert_int_equal(call("A"), ECONNREFUSED);
	assert_int_equal(fail_n(0), -1);
	bw_engine_exit_event(&eng);
	assert_int_equal(fake_count("\"event\":\"calls\""), 0);
	bw_engine_fini(&eng);
}

/* The point of n: the attempts observe mode saw fail are the ones inject entries with
 * after: n-1, count: 1 hit, in a rule of that one destination. */
static void test_n_is_what_inject_counts(void **s)
{
	(void)s;
	static const int seen[] = { 0, ECONNREFUSED, 0, 0, ECONNREFUSED, ECONNREFUSED, 0, 0 };
	long ns[8];
	int k = 0;
	setup(BW_MODE_OBSERVE, 0);
	script = seen;
	for (int i = 0; i < 8; i++)
		call("A");
	for (; fail_n(k) >= 0; k++)
		ns[k] = fail_n(k);
	assert_int_equal(k, 3);
	bw_engine_fini(&eng);

	for (int i = 0; i < k; i++)
		inj[i] = (struct bw_inject){ .ops = BW_OPBIT(BW_OP_CONNECT), .err = ECONNREFUSED,
					     .probability = 1, .after = ns[i] - 1, .count = 1 };
	setup(BW_MODE_ENFORCE, k);
	for (int i = 0; i < 8; i++)
		assert_int_equal(call("A"), seen[i]);
	for (int i = 0; i < k; i++)
		assert_int_equal(fail_n(i), ns[i]);   /* the replayed run's fail events agree */
	bw_engine_fini(&eng);
}

/* At exit: one calls event per rule, op and destination with its histogram. */
static void test_calls_event(void **s)
{
	(void)s;
	setup(BW_MODE_OBSERVE, 0);
	took = 3000;                 /* 3 ms: the bucket up to 5 ms, the sixth */
	call("A");
	call("A");
	took = 150000;               /* 150 ms: up to 200 ms, the eleventh */
	call("A");
	call("B");
	bw_engine_exit_event(&eng);
	assert_int_equal(fake_count("\"event\":\"calls\""), 2);
	const char *a = strstr(fake_log, "\"event\":\"calls\"");
	assert_non_null(a);
	const char *line_end = strchr(a, '\n');
	const char *want = "\"calls\":3,\"failures\":0,";
	const char *h = strstr(a, want);
	assert_true(h && h < line_end);
	h = strstr(a, "\"hist\":[0,0,0,0,0,2,0,0,0,0,1,0,0,0,0,0,0]");
	assert_true(h && h < line_end);
	h = strstr(a, "\"max_ms\":150,");
	assert_true(h && h < line_end);
	h = strstr(a, "\"le_ms\":[0.1,0.2,0.5,1,2,5,10,20,50,100,200,500,1000,2000,5000,10000]");
	assert_true(h && h < line_end);
	/* the calls events come before the exit event that ends the process's log */
	assert_true(strstr(fake_log, "\"event\":\"exit\"") > strstr(fake_log, "\"dest\":\"B\""));
	bw_engine_fini(&eng);
}

/* A forked child counts its own calls, and numbers attempts on from its parent, as an
 * inject entry does. */
static void test_fork_keeps_numbers(void **s)
{
	(void)s;
	static const int results[] = { 0, 0, ECONNREFUSED };
	setup(BW_MODE_OBSERVE, 0);
	script = results;
	call("A");
	call("A");
	bw_tally_after_fork(eng.tally);
	fake_log_len = 0;
	fake_log[0] = '\0';
	call("A");
	assert_int_equal(fail_n(0), 3);
	bw_engine_exit_event(&eng);
	assert_non_null(strstr(fake_log, "\"calls\":1,\"failures\":1,"));
	bw_engine_fini(&eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numbered_per_destination),
		cmocka_unit_test(test_enforcing_measures_nothing),
		cmocka_unit_test(test_n_is_what_inject_counts),
		cmocka_unit_test(test_calls_event),
		cmocka_unit_test(test_fork_keeps_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
