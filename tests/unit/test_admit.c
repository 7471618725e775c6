/* Admission in the engine with a fake clock: an open breaker ends a retry loop and refuses
 * without an attempt; rate limits wait, refuse, or pace bytes; state per destination. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
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

static int attempt(void *arg, int n, int64_t deadline)
{
	(void)arg, (void)n, (void)deadline;
	calls++;
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
	rule.breaker = (struct bw_breaker){ .enabled = 1, .scope = BW_SCOPE_DEST, .consecutive = 3,
					    .window = 30 * S, .min_calls = 20, .open_for = 1 * S,
					    .open_for_max = 8 * S, .half_open_probes = 1 };
	memset(&cfg, 0, sizeof cfg);
	cfg.rules = &rule;
	cfg.n_rules = 1;
	cfg.log.level = BW_LVL_DEBUG;
	cfg.ops = BW_OPS_ALL;
	result = 0;
	calls = 0;
	return bw_engine_init(&eng, &cfg, &fake_env, 1, "prog", 1);
}

static int teardown(void **s)
{
	(void)s;
	bw_engine_fini(&eng);
	return 0;
}

static int call(uint64_t key, int op)
{
	struct bw_call c = { .rule = &rule, .op = op, .call = "connect", .dest = "d", .fd = 3,
			     .key = key, .attempt = attempt };
	struct bw_rng rng = { 3 };
	return bw_engine_run(&eng, &c, &rng);
}

static void test_breaker_opens_and_rejects_without_attempt(void **s)
{
	(void)s;
	result = ECONNREFUSED;
	for (int i = 0; i < 3; i++)
		assert_int_equal(call(7, BW_OP_CONNECT), ECONNREFUSED);
	assert_int_equal(calls, 3);
	assert_int_equal(call(7, BW_OP_CONNECT), ECONNREFUSED);
	assert_int_equal(calls, 3);                        /* refused: no attempt */
	assert_int_equal(fake_count("\"event\":\"rejected\""), 1);
	assert_int_equal(fake_count("\"from\":\"closed\",\"to\":\"open\""), 1);
	assert_int_equal(eng.rt[0].stats[BW_ST_REJECTED], 1);
	/* another destination has its own breaker */
	result = 0;
	assert_int_equal(call(8, BW_OP_CONNECT), 0);
	/* after open_for, one probe; its success closes the breaker */
	fake_now += 1 * S;
	assert_int_equal(call(7, BW_OP_CONNECT), 0);
	assert_int_equal(fake_count("\"to\":\"half_open\""), 1);
	assert_int_equal(fake_count("\"from\":\"half_open\",\"to\":\"closed\""), 1);
}

static void test_breaker_ends_retry_loop_early(void **s)
{
	(void)s;
	rule.has_retry = 1;
	rule.retry = (struct bw_retry){ .attempts = 10, .base = 10 * MS, .max = 10 * MS,
					.multiplier = 1, .jitter = BW_JITTER_NONE };
	result = ECONNREFUSED;
	assert_int_equal(call(7, BW_OP_CONNECT), ECONNREFUSED);
	assert_int_equal(calls, 3);
	assert_non_null(strstr(fake_log, "\"reason\":\"breaker\""));
}

static void test_configured_errno_and_per_op_default(void **s)
{
	(void)s;
	rule.breaker.err = ENETUNREACH;
	result = ECONNREFUSED;
	for (int i = 0; i < 3; i++)
		call(7, BW_OP_CONNECT);
	assert_int_equal(call(7, BW_OP_CONNECT), ENETUNREACH);
	/* an errno does not fit resolve: its default EAI_AGAIN is used */
	result = bw_err_eai(-3);
	for (int i = 0; i < 3; i++)
		call(9, BW_OP_RESOLVE);
	assert_int_equal(call(9, BW_OP_RESOLVE), bw_err_eai(-3));
	assert_true(bw_err_is_eai(call(9, BW_OP_RESOLVE)));
}

static void test_send_recv_failures_feed_the_breaker(void **s)
{
	(void)s;
	struct bw_call c = { .rule = &rule, .op = BW_OP_RECV, .key = 7 };
	bw_engine_count_failure(&eng, &c, EAGAIN);           /* not a connection failure */
	for (int i = 0; i < 3; i++)
		bw_engine_count_failure(&eng, &c, ECONNRESET);
	assert_int_equal(call(7, BW_OP_CONNECT), ECONNREFUSED);   /* rejected */
	assert_int_equal(calls, 0);
}

static void limit(double rate, double burst, enum bw_on_limit on, bw_usec max_wait)
{
	rule.breaker.enabled = 0;
	rule.rate_limit = (struct bw_rate_limit){ .enabled = 1, .scope = BW_SCOPE_RULE,
						  .rate = rate, .burst = burst, .on_limit = on,
						  .max_wait = max_wait };
}

static void test_rate_limit_waits(void **s)
{
	(void)s;
	limit(20, 1, BW_LIMIT_WAIT, 5 * S);
	int64_t start = fake_now;
	for (int i = 0; i < 41; i++)
		assert_int_equal(call((uint64_t)i, BW_OP_CONNECT), 0);
	assert_int_equal(calls, 41);
	assert_true(fake_now - start >= 2 * S - 1000 && fake_now - start <= 2 * S + 1000);
	assert_int_equal(fake_count("\"event\":\"throttled\""), 40);
	assert_int_equal(eng.rt[0].stats[BW_ST_THROTTLED], 40);
}

static void test_rate_limit_fails_and_max_wait(void **s)
{
	(void)s;
	limit(20, 1, BW_LIMIT_FAIL, 1 * S);
	assert_int_equal(call(1, BW_OP_CONNECT), 0);
	assert_int_equal(call(1, BW_OP_CONNECT), ECONNREFUSED);
	assert_int_equal(fake_count("\"event\":\"limited\""), 1);
	/* wait mode refuses when the wait would pass max_wait */
	limit(1, 1, BW_LIMIT_WAIT, 100 * MS);
	fake_now += 10 * S;
	assert_int_equal(call(1, BW_OP_CONNECT), 0);
	assert_int_equal(call(1, BW_OP_CONNECT), ECONNREFUSED);
	assert_int_equal(fake_sleeps, 0);
	/* accept cannot be refused: it waits whatever max_wait says */
	assert_int_equal(call(1, BW_OP_ACCEPT), 0);
	assert_int_equal(fake_slept_total, 1 * S);
}

static void test_byte_limit_cuts_streams_not_datagrams(void **s)
{
	(void)s;
	limit(1000, 1000, BW_LIMIT_WAIT, 1 * S);
	rule.rate_limit.bytes = 1;
	struct bw_call c = { .rule = &rule, .op = BW_OP_SEND, .key = 1 };
	assert_int_equal(bw_engine_bytes(&eng, &c, 600, 0), 600);
	assert_int_equal(bw_engine_bytes(&eng, &c, 600, 0), 400);     /* cut */
	assert_int_equal(bw_engine_bytes(&eng, &c, 600, 1), 600);     /* waited, whole */
	assert_true(fake_slept_total >= 590 * MS);
	bw_engine_unbytes(&eng, &c, 600);
	assert_int_equal(bw_engine_bytes(&eng, &c, 600, 1), 600);     /* given back */
}

static void test_observe_never_refuses_or_waits(void **s)
{
	(void)s;
	eng.mode = BW_MODE_OBSERVE;
	result = ECONNREFUSED;
	for (int i = 0; i < 5; i++)
		call(7, BW_OP_CONNECT);
	assert_int_equal(calls, 5);
	assert_true(fake_count("\"event\":\"rejected\"") >= 1);
	limit(1, 1, BW_LIMIT_WAIT, 1 * S);
	result = 0;
	for (int i = 0; i < 5; i++)
		assert_int_equal(call(7, BW_OP_CONNECT), 0);
	assert_int_equal(fake_sleeps, 0);
}

static void test_after_fork_releases_locks(void **s)
{
	(void)s;
	*eng.store->rules[0].lock = 1;
	bw_engine_after_fork(&eng);
	assert_int_equal(*eng.store->rules[0].lock, 0);
}

static int namings, named_under_lock;
static const char *peer;

static void peer_name(const struct bw_call *c, char *buf, size_t cap)
{
	(void)c;
	namings++;
	named_under_lock += bw_spin_held != 0;
	snprintf(buf, cap, "%s", peer);
}

static void collect(const struct bw_cell_view *v, void *arg)
{
	if (v->whole)
		return;
	strcat(arg, v->st->label);
	strcat(arg, "|");
}

/* The peer's name may cost a system call: it is asked outside the lock, once per entry,
 * also when there is none (an unconnected datagram socket). */
static void test_destination_named_once_outside_the_lock(void **s)
{
	(void)s;
	limit(1000000, 1000000, BW_LIMIT_WAIT, 1 * S);
	rule.rate_limit.bytes = 1;
	rule.rate_limit.scope = BW_SCOPE_DEST;         /* the table setup made for the breaker */
	struct bw_call c = { .rule = &rule, .op = BW_OP_SEND, .key = 1, .dest_of = peer_name };
	peer = "";
	for (int i = 0; i < 5; i++)
		assert_int_equal(bw_engine_bytes(&eng, &c, 10, 0), 10);
	assert_int_equal(namings, 1);
	c.key = 2;
	peer = "127.0.0.1:80";
	for (int i = 0; i < 5; i++)
		assert_int_equal(bw_engine_bytes(&eng, &c, 10, 0), 10);
	assert_int_equal(namings, 2);
	assert_int_equal(named_under_lock, 0);
	char labels[256] = "";
	bw_store_snapshot(eng.store, collect, labels);
	assert_true(strcmp(labels, "?|127.0.0.1:80|") == 0 || strcmp(labels, "127.0.0.1:80|?|") == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_breaker_opens_and_rejects_without_attempt),
		T(test_breaker_ends_retry_loop_early),
		T(test_configured_errno_and_per_op_default),
		T(test_send_recv_failures_feed_the_breaker),
		T(test_rate_limit_waits),
		T(test_rate_limit_fails_and_max_wait),
		T(test_byte_limit_cuts_streams_not_datagrams),
		T(test_observe_never_refuses_or_waits),
		T(test_after_fork_releases_locks),
		T(test_destination_named_once_outside_the_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
