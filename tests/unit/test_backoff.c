/* Backoff delays: each jitter mode stays in its bounds and spreads as the formula says. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "backoff.h"

static struct bw_retry policy(enum bw_jitter j)
{
	struct bw_retry r = { .attempts = 10, .base = 100000, .max = 2000000, .multiplier = 2.0,
			      .jitter = j };
	return r;
}

static void test_none_is_exponential_and_capped(void **s)
{
	(void)s;
	struct bw_retry r = policy(BW_JITTER_NONE);
	struct bw_rng rng = { 1 };
	assert_int_equal(bw_backoff_delay(&r, 1, 0, &rng), 100000);
	assert_int_equal(bw_backoff_delay(&r, 2, 0, &rng), 200000);
	assert_int_equal(bw_backoff_delay(&r, 4, 0, &rng), 800000);
	assert_int_equal(bw_backoff_delay(&r, 5, 0, &rng), 1600000);
	assert_int_equal(bw_backoff_delay(&r, 6, 0, &rng), 2000000);
	assert_int_equal(bw_backoff_delay(&r, 100, 0, &rng), 2000000);
}

/* mean and bounds over many draws */
static void draws(enum bw_jitter j, int n, bw_usec *lo, bw_usec *hi, double *mean)
{
	struct bw_retry r = policy(j);
	struct bw_rng rng = { 12345 };
	*lo = INT64_MAX;
	*hi = 0;
	double sum = 0;
	for (int i = 0; i < 20000; i++) {
		bw_usec d = bw_backoff_delay(&r, n, 0, &rng);
		if (d < *lo)
			*lo = d;
		if (d > *hi)
			*hi = d;
		sum += (double)d;
	}
	*mean = sum / 20000;
}

static void test_full_jitter_bounds_and_spread(void **s)
{
	(void)s;
	bw_usec lo, hi;
	double mean;
	draws(BW_JITTER_FULL, 3, &lo, &hi, &mean);   /* c = 400ms */
	assert_true(lo >= 0 && lo < 10000);
	assert_true(hi <= 400000 && hi > 390000);
	assert_true(mean > 190000 && mean < 210000);
}

static void test_equal_jitter_bounds_and_spread(void **s)
{
	(void)s;
	bw_usec lo, hi;
	double mean;
	draws(BW_JITTER_EQUAL, 3, &lo, &hi, &mean);  /* in [200ms, 400ms] */
	assert_true(lo >= 200000 && lo < 205000);
	assert_true(hi <= 400000 && hi > 395000);
	assert_true(mean > 290000 && mean < 310000);
}

static void test_decorrelated_grows_from_previous(void **s)
{
	(void)s;
	struct bw_retry r = policy(BW_JITTER_DECORRELATED);
	struct bw_rng rng = { 7 };
	bw_usec prev = 0;
	for (int n = 1; n < 200; n++) {
		bw_usec d = bw_backoff_delay(&r, n, prev, &rng);
		bw_usec cap = prev ? 3 * prev : 3 * r.base;
		assert_true(d >= r.base);
		assert_true(d <= r.max);
		assert_true(d <= cap || d == r.max);
		prev = d;
	}
}

static void test_same_seed_same_delays(void **s)
{
	(void)s;
	struct bw_retry r = policy(BW_JITTER_FULL);
	struct bw_rng a = { 99 }, b = { 99 }, c = { 100 };
	int differ = 0;
	for (int n = 1; n < 20; n++) {
		bw_usec x = bw_backoff_delay(&r, n, 0, &a);
		assert_int_equal(x, bw_backoff_delay(&r, n, 0, &b));
		differ |= x != bw_backoff_delay(&r, n, 0, &c);
	}
	assert_true(differ);
}

static void test_large_multiplier_does_not_overflow(void **s)
{
	(void)s;
	struct bw_retry r = policy(BW_JITTER_NONE);
	r.multiplier = 1000.0;
	r.max = 3600000000LL;
	struct bw_rng rng = { 1 };
	assert_int_equal(bw_backoff_delay(&r, 100, 0, &rng), r.max);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none_is_exponential_and_capped),
		cmocka_unit_test(test_full_jitter_bounds_and_spread),
		cmocka_unit_test(test_equal_jitter_bounds_and_spread),
		cmocka_unit_test(test_decorrelated_grows_from_previous),
		cmocka_unit_test(test_same_seed_same_delays),
		cmocka_unit_test(test_large_multiplier_does_not_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
