/* Token bucket arithmetic with a fake clock: burst, refill, bytes, waits, datagrams. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "bucket.h"

#define S 1000000LL

static struct bw_rate_limit limit(double rate, double burst)
{
	struct bw_rate_limit c = { .enabled = 1, .rate = rate, .burst = burst };
	return c;
}

static void test_starts_full_then_waits(void **st)
{
	(void)st;
	struct bw_rate_limit c = limit(20, 5);
	struct bw_bucket b = { 0, 0, 0 };
	int64_t wait;
	for (int i = 0; i < 5; i++)
		assert_true(bw_bucket_take(&c, &b, 1 * S, 1, 1, &wait) == 1);
	assert_true(bw_bucket_take(&c, &b, 1 * S, 1, 1, &wait) == 0);
	assert_int_equal(wait, 50000);              /* 1 token at 20/s */
	assert_true(bw_bucket_take(&c, &b, 1 * S + 49999, 1, 1, &wait) == 0);
	assert_true(bw_bucket_take(&c, &b, 1 * S + 50000, 1, 1, &wait) == 1);
}

static void test_refill_capped_at_burst(void **st)
{
	(void)st;
	struct bw_rate_limit c = limit(10, 3);
	struct bw_bucket b = { 0, 0, 0 };
	int64_t wait;
	assert_true(bw_bucket_take(&c, &b, 1, 3, 3, &wait) == 3);
	/* an hour idle still banks only 3 */
	assert_true(bw_bucket_take(&c, &b, 3600 * S, 10, 1, &wait) == 3);
	assert_true(b.tokens >= 0);
}

static void test_calls_over_time(void **st)
{
	(void)st;
	/* 41 calls at 20/s with burst 1: the last passes at 2 s */
	struct bw_rate_limit c = limit(20, 1);
	struct bw_bucket b = { 0, 0, 0 };
	int64_t now = 1, wait;
	for (int i = 0; i < 41; i++) {
		while (bw_bucket_take(&c, &b, now, 1, 1, &wait) == 0)
			now += wait;
	}
	assert_true(now - 1 >= 2 * S - 10 && now - 1 <= 2 * S + 10);
}

static void test_bytes_partial_stream(void **st)
{
	(void)st;
	struct bw_rate_limit c = limit(1024, 1024);
	c.bytes = 1;
	struct bw_bucket b = { 0, 0, 0 };
	int64_t wait;
	/* a stream send of 4096 bytes gets what is there: 1024 now */
	assert_true(bw_bucket_take(&c, &b, 1, 4096, 1, &wait) == 1024);
	assert_true(bw_bucket_take(&c, &b, 1, 4096, 1, &wait) == 0);
	assert_int_equal(wait, 977);                /* one byte at 1 KiB/s */
	assert_true(bw_bucket_take(&c, &b, 1 + 500000, 4096, 1, &wait) == 512);
}

static void test_datagram_never_split(void **st)
{
	(void)st;
	struct bw_rate_limit c = limit(1000, 1000);
	c.bytes = 1;
	struct bw_bucket b = { 0, 0, 0 };
	int64_t wait;
	assert_true(bw_bucket_take(&c, &b, 1, 600, 600, &wait) == 600);
	assert_true(bw_bucket_take(&c, &b, 1, 600, 600, &wait) == 0);
	assert_int_equal(wait, 200000);
	/* larger than the bucket: passes whole once the bucket is full */
	assert_true(bw_bucket_take(&c, &b, 10 * S, 5000, 5000, &wait) == 5000);
	assert_true(b.tokens == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starts_full_then_waits),
		cmocka_unit_test(test_refill_capped_at_burst),
		cmocka_unit_test(test_calls_over_time),
		cmocka_unit_test(test_bytes_partial_stream),
		cmocka_unit_test(test_datagram_never_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
