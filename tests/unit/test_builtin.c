/* The built-in policy built as data equals its YAML text run through the loader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "config.h"
#include "dump_text.h"

static void same(struct bw_config *built, struct bw_config *parsed)
{
	assert_non_null(built);
	assert_non_null(parsed);
	char *a = dump_text(built), *b = dump_text(parsed);
	assert_string_equal(a, b);
	assert_string_equal(built->path, parsed->path);
	assert_int_equal(built->ops, parsed->ops);
	assert_int_equal(built->n_rules, parsed->n_rules);
	for (int i = 0; i < built->n_rules; i++) {
		const struct bw_rule *x = &built->rules[i], *y = &parsed->rules[i];
		assert_int_equal(x->line, y->line);
		assert_memory_equal(&x->retry, &y->retry, sizeof x->retry);
		assert_memory_equal(&x->timeout, &y->timeout, sizeof x->timeout);
		assert_memory_equal(&x->breaker, &y->breaker, sizeof x->breaker);
		assert_memory_equal(&x->rate_limit, &y->rate_limit, sizeof x->rate_limit);
		assert_int_equal(x->has_retry, y->has_retry);
		assert_int_equal(x->max_keys, y->max_keys);
		assert_int_equal(x->nonblocking, y->nonblocking);
		assert_int_equal(x->match.ops, y->match.ops);
		assert_int_equal(x->match.n_dest + x->match.n_host + x->match.n_db + x->match.n_prog,
				 y->match.n_dest + y->match.n_host + y->match.n_db + y->match.n_prog);
	}
	assert_memory_equal(&built->log, &parsed->log, sizeof built->log);
	assert_int_equal(built->version, parsed->version);
	assert_int_equal(built->mode, parsed->mode);
	assert_int_equal(built->on_config_error, parsed->on_config_error);
	assert_true(built->seed == parsed->seed);
	assert_int_equal(built->state.share, parsed->state.share);
	assert_ptr_equal(built->state.dir, parsed->state.dir);
	free(a);
	free(b);
	bw_config_free(built);
	bw_config_free(parsed);
}

static void test_builtin_equals_parsed(void **s)
{
	(void)s;
	same(bw_config_default(), bw_config_parse_default());
}

/* In observe mode the built-in policy gets one more rule: its text goes after the rest. */
static void test_observe_rule_equals_parsed(void **s)
{
	(void)s;
	char text[4096];
	snprintf(text, sizeof text, "%s%s", bw_default_policy_yaml, bw_default_observe_yaml);
	struct bw_diags dg = { .n = 0 };
	struct bw_config *built = bw_config_default();
	assert_non_null(built);
	assert_int_equal(bw_config_default_observe(built), 0);
	assert_int_equal(built->n_rules, 7);
	assert_string_equal(built->rules[6].name, "default-observe");
	same(built, bw_config_load_string("<default>", text, strlen(text), &dg));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_equals_parsed),
		cmocka_unit_test(test_observe_rule_equals_parsed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
