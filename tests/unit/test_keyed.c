/* Bounded per-destination table: lookups, LRU eviction within a set, the bound itself. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "keyed.h"

struct val { long hits; };

static void test_same_key_same_value(void **st)
{
	(void)st;
	struct bw_keyed k;
	assert_int_equal(bw_keyed_init(&k, 64, sizeof(struct val)), 0);
	int set;
	struct val *v = bw_keyed_lock(&k, 42, 1, &set);
	v->hits = 7;
	bw_keyed_unlock(&k, set);
	v = bw_keyed_lock(&k, 42, 2, &set);
	assert_int_equal(v->hits, 7);
	bw_keyed_unlock(&k, set);
	v = bw_keyed_lock(&k, 43, 3, &set);
	assert_int_equal(v->hits, 0);
	bw_keyed_unlock(&k, set);
	assert_int_equal(bw_keyed_count(&k), 2);
	bw_keyed_free(&k);
}

static void test_bounded_and_lru(void **st)
{
	(void)st;
	struct bw_keyed k;
	assert_int_equal(bw_keyed_init(&k, 8, sizeof(struct val)), 0);   /* one set */
	int set;
	for (uint64_t key = 1; key <= 8; key++) {
		struct val *v = bw_keyed_lock(&k, key << 20, (int64_t)key, &set);
		v->hits = (long)key;
		bw_keyed_unlock(&k, set);
	}
	/* touch key 1 so key 2 is the least recently used */
	bw_keyed_unlock(&k, (bw_keyed_lock(&k, 1 << 20, 100, &set), set));
	struct val *v = bw_keyed_lock(&k, 99ULL << 20, 101, &set);
	assert_int_equal(v->hits, 0);
	bw_keyed_unlock(&k, set);
	assert_int_equal(bw_keyed_count(&k), 8);
	v = bw_keyed_lock(&k, 1 << 20, 102, &set);
	assert_int_equal(v->hits, 1);
	bw_keyed_unlock(&k, set);
	v = bw_keyed_lock(&k, 2 << 20, 103, &set);      /* was evicted */
	assert_int_equal(v->hits, 0);
	bw_keyed_unlock(&k, set);
	bw_keyed_free(&k);
}

static void test_million_keys_stay_bounded(void **st)
{
	(void)st;
	struct bw_keyed k;
	assert_int_equal(bw_keyed_init(&k, 4096, sizeof(struct val)), 0);
	int set;
	for (uint64_t i = 0; i < 1000000; i++) {
		uint64_t key = bw_key_bytes(&i, sizeof i, 0);
		bw_keyed_unlock(&k, (bw_keyed_lock(&k, key, (int64_t)i, &set), set));
	}
	assert_int_equal(bw_keyed_count(&k), 4096);
	bw_keyed_free(&k);
}

static void test_held_lock_gives_up(void **st)
{
	(void)st;
	struct bw_keyed k;
	assert_int_equal(bw_keyed_init(&k, 8, sizeof(struct val)), 0);
	int set;
	assert_non_null(bw_keyed_lock(&k, 5, 1, &set));
	int set2;
	assert_null(bw_keyed_lock(&k, 6, 1, &set2));    /* same (only) set, still held */
	bw_keyed_after_fork(&k, 1);
	assert_non_null(bw_keyed_lock(&k, 6, 1, &set2));
	bw_keyed_free(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_key_same_value),
		cmocka_unit_test(test_bounded_and_lru),
		cmocka_unit_test(test_million_keys_stay_bounded),
		cmocka_unit_test(test_held_lock_gives_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
