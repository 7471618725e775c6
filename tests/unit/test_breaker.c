/* Breaker state machine with a fake clock: both trips, half-open probes, doubling. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "breaker.h"

#define MS 1000LL
#define S 1000000LL

static struct bw_breaker cfg(int consecutive, double rate)
{
	struct bw_breaker c = { .enabled = 1, .consecutive = consecutive, .rate = rate,
				.window = 10 * S, .min_calls = 10, .open_for = 1 * S,
				.open_for_max = 5 * S, .half_open_probes = 1 };
	return c;
}

static void fail_n(const struct bw_breaker *c, struct bw_breaker_state *s, int64_t now, int n,
		   struct bw_brk_move *mv)
{
	for (int i = 0; i < n; i++) {
		assert_true(bw_breaker_allow(c, s, now, mv));
		bw_breaker_record(c, s, now, 1, mv);
	}
}

static void test_consecutive_trip(void **st)
{
	(void)st;
	struct bw_breaker c = cfg(3, 0);
	struct bw_breaker_state s;
	struct bw_brk_move mv;
	memset(&s, 0, sizeof s);
	fail_n(&c, &s, 0, 2, &mv);
	assert_int_equal(s.pos, BW_BRK_CLOSED);
	/* a success resets the count */
	bw_breaker_record(&c, &s, 0, 0, &mv);
	fail_n(&c, &s, 0, 2, &mv);
	assert_int_equal(s.pos, BW_BRK_CLOSED);
	fail_n(&c, &s, 0, 1, &mv);
	assert_int_equal(s.pos, BW_BRK_OPEN);
	assert_int_equal(mv.from, BW_BRK_CLOSED);
	assert_int_equal(mv.to, BW_BRK_OPEN);
	assert_false(bw_breaker_allow(&c, &s, 999 * MS, &mv));
	assert_int_equal(mv.from, mv.to);
}

static void test_rate_trip_needs_min_calls(void **st)
{
	(void)st;
	struct bw_breaker c = cfg(0, 0.5);
	struct bw_breaker_state s;
	struct bw_brk_move mv;
	memset(&s, 0, sizeof s);
	/* 9 calls, all failing: below min_calls, stays closed */
	fail_n(&c, &s, 0, 9, &mv);
	assert_int_equal(s.pos, BW_BRK_CLOSED);
	/* the 10th call: 10 of 10 failed */
	fail_n(&c, &s, 0, 1, &mv);
	assert_int_equal(s.pos, BW_BRK_OPEN);
}

static void test_rate_window_forgets(void **st)
{
	(void)st;
	struct bw_breaker c = cfg(0, 0.5);
	struct bw_breaker_state s;
	struct bw_brk_move mv;
	memset(&s, 0, sizeof s);
	for (int i = 0; i < 20; i++) {       /* 25% failures: closed */
		bw_breaker_allow(&c, &s, 0, &mv);
		bw_breaker_record(&c, &s, 0, i % 4 == 0, &mv);
	}
	assert_int_equal(s.pos, BW_BRK_CLOSED);
	/* 11 s later the window is empty: 9 failures are below min_calls */
	fail_n(&c, &s, 11 * S, 9, &mv);
	assert_int_equal(s.pos, BW_BRK_CLOSED);
	fail_n(&c, &s, 11 * S, 1, &mv);
	assert_int_equal(s.pos, BW_BRK_OPEN);
}

static void test_half_open_probe_closes(void **st)
{
	(void)st;
	struct bw_breaker c = cfg(1, 0);
	c.half_open_probes = 2;
	struct bw_breaker_state s;
	struct bw_brk_move mv;
	memset(&s, 0, sizeof s);
	fail_n(&c, &s, 0, 1, &mv);
	assert_false(bw_breaker_allow(&c, &s, 500 * MS, &mv));
	/* after open_for: half-open, two probes let through, a third waits */
	assert_true(bw_breaker_allow(&c, &s, 1 * S, &mv));
	assert_int_equal(mv.to, BW_BRK_HALF_OPEN);
	assert_true(bw_breaker_allow(&c, &s, 1 * S, &mv));
	assert_false(bw_breaker_allow(&c, &s, 1 * S, &mv));
	bw_breaker_record(&c, &s, 1 * S, 0, &mv);
	assert_int_equal(s.pos, BW_BRK_HALF_OPEN);
	bw_breaker_record(&c, &s, 1 * S, 0, &mv);
	assert_int_equal(s.pos, BW_BRK_CLOSED);
	assert_int_equal(mv.from, BW_BRK_HALF_OPEN);
	assert_true(bw_breaker_allow(&c, &s, 1 * S, &mv));
}

static void test_failed_probes_double_open_for(void **st)
{
	(void)st;
	struct bw_breaker c = cfg(1, 0);
	struct bw_breaker_state s;
	struct bw_brk_move mv;
	memset(&s, 0, sizeof s);
	int64_t t = 0;
	fail_n(&c, &s, t, 1, &mv);
	int64_t expect[] = { 1 * S, 2 * S, 4 * S, 5 * S, 5 * S };
	for (int i = 0; i < 5; i++) {
		assert_int_equal(s.open_for, expect[i]);
		assert_false(bw_breaker_allow(&c, &s, t + expect[i] - 1, &mv));
		t += expect[i];
		assert_true(bw_breaker_allow(&c, &s, t, &mv));
		bw_breaker_record(&c, &s, t, 1, &mv);
		assert_int_equal(s.pos, BW_BRK_OPEN);
	}
	/* a good probe closes and a later trip starts again from open_for */
	t += 5 * S;
	assert_true(bw_breaker_allow(&c, &s, t, &mv));
	bw_breaker_record(&c, &s, t, 0, &mv);
	assert_int_equal(s.pos, BW_BRK_CLOSED);
	fail_n(&c, &s, t, 1, &mv);
	assert_int_equal(s.open_for, 1 * S);
}

static void test_release_returns_probe(void **st)
{
	(void)st;
	struct bw_breaker c = cfg(1, 0);
	struct bw_breaker_state s;
	struct bw_brk_move mv;
	memset(&s, 0, sizeof s);
	fail_n(&c, &s, 0, 1, &mv);
	assert_true(bw_breaker_allow(&c, &s, 1 * S, &mv));
	assert_false(bw_breaker_allow(&c, &s, 1 * S, &mv));
	bw_breaker_release(&s);
	assert_true(bw_breaker_allow(&c, &s, 1 * S, &mv));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consecutive_trip),
		cmocka_unit_test(test_rate_trip_needs_min_calls),
		cmocka_unit_test(test_rate_window_forgets),
		cmocka_unit_test(test_half_open_probe_closes),
		cmocka_unit_test(test_failed_probes_double_open_for),
		cmocka_unit_test(test_release_returns_probe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
