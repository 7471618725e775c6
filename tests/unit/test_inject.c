/* Injection decisions: after/count/probability, reproducible per seed and independent of
 * other rules, observed probabilities within statistical bounds, observe mode. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "fake_env.h"

static struct bw_rule rules[2];
static struct bw_inject inj[2];
static struct bw_config cfg;
static struct bw_engine eng;

static void setup_cfg(uint64_t seed, double p0, double p1)
{
	memset(rules, 0, sizeof rules);
	memset(&cfg, 0, sizeof cfg);
	strcpy(rules[0].name, "a");
	strcpy(rules[1].name, "b");
	inj[0] = (struct bw_inject){ .ops = BW_OPBIT(BW_OP_CONNECT), .err = ECONNREFUSED,
				     .probability = p0, .count = -1 };
	inj[1] = (struct bw_inject){ .ops = BW_OPBIT(BW_OP_CONNECT), .err = ECONNRESET,
				     .probability = p1, .count = -1 };
	for (int i = 0; i < 2; i++) {
		rules[i].match.ops = BW_OPS_ALL;
		rules[i].inject = &inj[i];
		rules[i].n_inject = 1;
	}
	cfg.rules = rules;
	cfg.n_rules = 2;
	cfg.seed = seed;
	cfg.log.level = BW_LVL_DEBUG;
	fake_reset();
	bw_engine_init(&eng, &cfg, &fake_env, 1, "p", seed ? seed : 99);
}

/* Which of the first n calls of rule r are hit, as a bit string. */
static void pattern(int r, int n, char *out)
{
	struct bw_call c = { .rule = &rules[r], .op = BW_OP_CONNECT, .fd = -1 };
	struct bw_fault f;
	for (int k = 0; k < n; k++)
		out[k] = bw_engine_inject(&eng, &c, &f) ? '1' : '0';
	out[n] = '\0';
}

static void test_same_seed_same_calls(void **s)
{
	(void)s;
	char a[201], b[201], c[201];
	setup_cfg(1234, 0.3, 0.3);
	pattern(0, 200, a);
	bw_engine_fini(&eng);
	setup_cfg(1234, 0.3, 0.3);
	pattern(0, 200, b);
	assert_string_equal(a, b);
	bw_engine_fini(&eng);
	setup_cfg(1235, 0.3, 0.3);
	pattern(0, 200, c);
	assert_string_not_equal(a, c);
	bw_engine_fini(&eng);
}

static void test_independent_of_other_rules(void **s)
{
	(void)s;
	char a[201], b[201], junk[1001];
	setup_cfg(77, 0.5, 0.5);
	pattern(0, 200, a);
	bw_engine_fini(&eng);
	setup_cfg(77, 0.5, 0.9);
	pattern(1, 1000, junk);          /* the other rule's traffic comes first */
	pattern(0, 200, b);
	assert_string_equal(a, b);
	bw_engine_fini(&eng);
}

static void test_probability_within_bounds(void **s)
{
	(void)s;
	const double ps[] = { 0.01, 0.2, 0.5, 0.9 };
	for (int i = 0; i < 4; i++) {
		setup_cfg(5, ps[i], 0);
		static char out[20001];
		pattern(0, 20000, out);
		int hits = 0;
		for (int k = 0; k < 20000; k++)
			hits += out[k] == '1';
		double mean = 20000 * ps[i], sd = sqrt(20000 * ps[i] * (1 - ps[i]));
		assert_true(fabs(hits - mean) < 5 * sd);     /* 5 sigma: never flaky */
		bw_engine_fini(&eng);
	}
}

static void test_after_and_count(void **s)
{
	(void)s;
	char out[11];
	setup_cfg(1, 1.0, 0);
	inj[0].after = 2;
	inj[0].count = 3;
	pattern(0, 10, out);
	assert_string_equal(out, "0011100000");
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_INJECTED), 3);
	assert_int_equal(fake_count("\"event\":\"injected\""), 3);
	bw_engine_fini(&eng);
}

static void test_only_its_ops(void **s)
{
	(void)s;
	setup_cfg(1, 1.0, 0);
	struct bw_call c = { .rule = &rules[0], .op = BW_OP_RECV, .fd = -1 };
	struct bw_fault f;
	assert_int_equal(bw_engine_inject(&eng, &c, &f), 0);
	c.op = BW_OP_CONNECT;
	assert_int_equal(bw_engine_inject(&eng, &c, &f), 1);
	assert_int_equal(f.err, ECONNREFUSED);
	bw_engine_fini(&eng);
}

static void test_observe_logs_but_injects_nothing(void **s)
{
	(void)s;
	setup_cfg(1, 1.0, 0);
	eng.mode = BW_MODE_OBSERVE;
	struct bw_call c = { .rule = &rules[0], .op = BW_OP_CONNECT, .fd = -1 };
	struct bw_fault f;
	assert_int_equal(bw_engine_inject(&eng, &c, &f), 0);
	assert_int_equal(f.err, 0);
	assert_non_null(strstr(fake_log, "\"event\":\"injected\""));
	assert_non_null(strstr(fake_log, "\"observe\":true"));
	bw_engine_fini(&eng);
}

/* The delay is the engine's own wait; a signal that ends it (the call's on_signal says so)
 * fails the attempt with what on_signal gave, and no other fault is carried out. */
static int end_with_eintr(void *arg, int where, int *result)
{
	(void)arg;
	assert_int_equal(where, BW_WAIT_DELAY);
	*result = EINTR;
	return 1;
}

static void test_delay_waited_and_ended_by_signal(void **s)
{
	(void)s;
	setup_cfg(5, 1.0, 0.0);
	inj[0].err = 0;
	inj[0].delay = 250000;
	inj[0].reset = 1;
	struct bw_call c = { .rule = &rules[0], .op = BW_OP_CONNECT, .fd = -1 };
	struct bw_fault f;
	int64_t t0 = fake_now;
	assert_int_equal(bw_engine_inject(&eng, &c, &f), 1);
	assert_int_equal(fake_now - t0, 250000);
	assert_int_equal(f.err, 0);
	assert_int_equal(f.reset, 1);

	c.on_signal = end_with_eintr;
	fake_signal_after = 1000;
	t0 = fake_now;
	assert_int_equal(bw_engine_inject(&eng, &c, &f), 1);
	assert_int_equal(fake_now - t0, 1000);
	assert_int_equal(f.err, EINTR);
	assert_int_equal(f.reset, 0);
	bw_engine_fini(&eng);
}

/* One entry on rule a, as given; the engine made after it. */
static void setup_entry(uint64_t seed, struct bw_inject in)
{
	setup_cfg(seed, 0, 0);
	bw_engine_fini(&eng);
	inj[0] = in;
	fake_reset();
	bw_engine_init(&eng, &cfg, &fake_env, 1, "p", seed);
}

/* n delays drawn by recv calls (microseconds), the fault each time. */
static void latencies(int n, int64_t *out)
{
	struct bw_call c = { .rule = &rules[0], .op = BW_OP_RECV, .fd = -1 };
	struct bw_fault f;
	for (int k = 0; k < n; k++) {
		int64_t t0 = fake_now;
		assert_int_equal(bw_engine_inject(&eng, &c, &f), 1);
		assert_int_equal(f.err, 0);
		assert_int_equal(fake_now - t0, f.delay);    /* waited here, as delay is */
		out[k] = f.delay;
	}
}

static void moments(const int64_t *v, int n, double *mean, double *sd, int64_t *lo,
		    int64_t *hi)
{
	double s = 0, s2 = 0;
	*lo = INT64_MAX, *hi = INT64_MIN;
	for (int i = 0; i < n; i++) {
		s += (double)v[i];
		s2 += (double)v[i] * (double)v[i];
		*lo = v[i] < *lo ? v[i] : *lo;
		*hi = v[i] > *hi ? v[i] : *hi;
	}
	*mean = s / n;
	*sd = sqrt(s2 / n - *mean * *mean);
}

/* latency with jitter is a distribution: within its bounds, about its mean, the same for
 * the same seed. 4000 draws: the bounds below are many standard errors wide. */
static void test_latency_distributions(void **s)
{
	(void)s;
	enum { N = 4000 };
	static int64_t a[N], b[N];
	double mean, sd;
	int64_t lo, hi;
	struct bw_inject in = { .ops = BW_OPBIT(BW_OP_RECV), .probability = 1, .count = -1,
				.latency = 50000, .jitter = 20000, .distribution = BW_DIST_UNIFORM };
	setup_entry(9, in);
	latencies(N, a);
	moments(a, N, &mean, &sd, &lo, &hi);
	assert_true(lo >= 30000 && hi <= 70000);
	assert_true(lo < 31000 && hi > 69000);              /* it spreads over the range */
	assert_true(fabs(mean - 50000) < 1000);
	assert_true(fabs(sd - 20000 / sqrt(3)) < 600);      /* uniform: half-width / sqrt 3 */
	bw_engine_fini(&eng);
	setup_entry(9, in);
	latencies(N, b);
	assert_memory_equal(a, b, sizeof a);                /* seeded: reproducible */
	bw_engine_fini(&eng);

	in.distribution = BW_DIST_NORMAL;
	setup_entry(9, in);
	latencies(N, a);
	moments(a, N, &mean, &sd, &lo, &hi);
	assert_true(fabs(mean - 50000) < 1000);
	assert_true(fabs(sd - 20000) < 1000);
	assert_true(lo >= 0);                               /* never below 0 */
	bw_engine_fini(&eng);

	in.distribution = BW_DIST_EXPONENTIAL;
	setup_entry(9, in);
	latencies(N, a);
	moments(a, N, &mean, &sd, &lo, &hi);
	assert_true(lo >= 50000);                           /* latency, then the tail */
	assert_true(fabs(mean - 70000) < 1500);             /* plus jitter on average */
	assert_true(fabs(sd - 20000) < 1500);               /* an exponential's sd is its mean */
	assert_true(hi > 50000 + 5 * 20000);                /* a long tail */
	bw_engine_fini(&eng);
}

/* per: connection: the connection is chosen once (after, probability, count counted in
 * connections); every call on a chosen one gets the fault, no call on another does. */
static void test_per_connection(void **s)
{
	(void)s;
	struct bw_inject in = { .ops = BW_OPBIT(BW_OP_SEND) | BW_OPBIT(BW_OP_RECV),
				.probability = 0.3, .count = -1, .after = 2, .latency = 300000,
				.per = BW_PER_CONNECTION };
	enum { N = 2000 };
	static char a[N + 1], b[N + 1];
	for (int run = 0; run < 2; run++) {
		char *out = run ? b : a;
		setup_entry(17, in);
		for (int k = 0; k < N; k++)
			out[k] = bw_engine_conn_select(&eng, &rules[0]) ? '1' : '0';
		out[N] = '\0';
		bw_engine_fini(&eng);
	}
	assert_string_equal(a, b);
	assert_true(a[0] == '0' && a[1] == '0');
	int chosen = 0;
	for (int k = 0; k < N; k++)
		chosen += a[k] == '1';
	assert_true(abs(chosen - 600) < 5 * 21);            /* 5 sigma of 2000 x 30% */

	setup_entry(17, in);
	struct bw_call c = { .rule = &rules[0], .op = BW_OP_RECV, .fd = -1 };
	struct bw_fault f;
	for (int k = 0; k < 5; k++) {
		bw_inject_conn_sel = 0;
		assert_int_equal(bw_engine_inject(&eng, &c, &f), 0);
		bw_inject_conn_sel = 1;
		int64_t t0 = fake_now;
		assert_int_equal(bw_engine_inject(&eng, &c, &f), 1);
		assert_int_equal(fake_now - t0, 300000);
	}
	bw_engine_fini(&eng);

	in.count = 3;
	in.after = 0;
	in.probability = 1;
	setup_entry(17, in);
	for (int k = 0; k < 6; k++)
		a[k] = bw_engine_conn_select(&eng, &rules[0]) ? '1' : '0';
	a[6] = '\0';
	assert_string_equal(a, "111000");
	bw_engine_fini(&eng);
}

/* A stall or a byte limit stays on its connection: hitting it again when the connection
 * keeps it already is no new fault, logged or counted. */
static void test_latched_faults_hit_once(void **s)
{
	(void)s;
	struct bw_inject in = { .ops = BW_OPBIT(BW_OP_RECV), .probability = 1, .count = -1,
				.stall = 1 };
	setup_entry(3, in);
	struct bw_call c = { .rule = &rules[0], .op = BW_OP_RECV, .fd = -1 };
	struct bw_fault f;
	assert_int_equal(bw_engine_inject(&eng, &c, &f), 1);
	assert_true(f.stall);
	for (int k = 0; k < 10; k++) {
		bw_inject_latched = BW_LATCHED_STALL;
		assert_int_equal(bw_engine_inject(&eng, &c, &f), 0);
	}
	assert_int_equal(bw_inject_latched, 0);             /* read once, for that call */
	assert_int_equal(bw_engine_stat(&eng, 0, BW_ST_INJECTED), 1);
	assert_int_equal(fake_count("\"event\":\"injected\""), 1);
	assert_non_null(strstr(fake_log, "\"reason\":\"stall\""));
	/* another kind of latch is not this one */
	bw_inject_latched = BW_LATCHED_LIMIT;
	assert_int_equal(bw_engine_inject(&eng, &c, &f), 1);
	bw_engine_fini(&eng);

	in = (struct bw_inject){ .ops = BW_OPBIT(BW_OP_RECV), .probability = 1, .count = -1,
				 .limit_data = 100 };
	setup_entry(3, in);
	assert_int_equal(bw_engine_inject(&eng, &c, &f), 1);
	assert_int_equal(f.limit_data, 100);
	assert_non_null(strstr(fake_log, "\"reason\":\"limit_data\""));
	bw_engine_fini(&eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_seed_same_calls),
		cmocka_unit_test(test_independent_of_other_rules),
		cmocka_unit_test(test_probability_within_bounds),
		cmocka_unit_test(test_after_and_count),
		cmocka_unit_test(test_only_its_ops),
		cmocka_unit_test(test_observe_logs_but_injects_nothing),
		cmocka_unit_test(test_delay_waited_and_ended_by_signal),
		cmocka_unit_test(test_latency_distributions),
		cmocka_unit_test(test_per_connection),
		cmocka_unit_test(test_latched_faults_hit_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
