/* A policy loaded anew over a running one (design.md §2.2), with a fake clock: state is
 * kept by rule name and destination (a bucket's tokens, scaled when its burst changes; a
 * breaker, unless its trip settings changed), the mode flips, and the `reload` event says
 * what changed, or why a file was refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <stdlib.h>
#include "errnames.h"
#include "shared.h"
#include "fake_env.h"

#define S 1000000LL

/* Engines of the generations of one test, oldest first; configs kept with them. */
static struct bw_engine gens[4];
static struct bw_config *cfgs[4];
static int n_gens;
static int attempt_result;       /* what every attempt returns */
static int attempts;

static int setup(void **s)
{
	(void)s;
	fake_reset();
	n_gens = 0;
	attempt_result = 0;
	attempts = 0;
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	/* the newest first: a store belongs to the first generation, and the others share it */
	for (int i = n_gens - 1; i >= 0; i--) {
		bw_engine_fini(&gens[i]);
		bw_config_free(cfgs[i]);
	}
	n_gens = 0;
	return 0;
}

static struct bw_config *policy(const char *rules, const char *mode)
{
	char yaml[4096];
	snprintf(yaml, sizeof yaml, "version: 1\nmode: %s\nlog: { level: debug }\nrules:\n%s",
		 mode, rules);
	struct bw_diags dg = { .n = 0 };
	struct bw_config *cfg = bw_config_load_string("policy.yaml", yaml, strlen(yaml), &dg);
	if (!cfg)
		fail_msg("policy does not load: %s:%d:%d: %s", dg.d[0].file, dg.d[0].line,
			 dg.d[0].col, dg.d[0].msg);
	return cfg;
}

/* The first generation, or the next one over the newest. */
static struct bw_engine *load(const char *rules, const char *mode)
{
	struct bw_config *cfg = policy(rules, mode);
	struct bw_engine *e = &gens[n_gens];
	int rc = n_gens == 0 ? bw_engine_init(e, cfg, &fake_env, 1, "prog", 1)
			     : bw_engine_init_next(e, &gens[n_gens - 1], cfg, 1);
	assert_int_equal(rc, 0);
	cfgs[n_gens++] = cfg;
	return e;
}

static const struct bw_rule *rule_named(const struct bw_engine *e, const char *name)
{
	for (int i = 0; i < e->cfg->n_rules; i++)
		if (strcmp(e->cfg->rules[i].name, name) == 0)
			return &e->cfg->rules[i];
	fail_msg("no rule %s", name);
	return NULL;
}

static int attempt(void *arg, int n, int64_t deadline)
{
	(void)arg, (void)n, (void)deadline;
	attempts++;
	return attempt_result;
}

/* One connect of rule `name` to destination key; returns its result. */
static int call(struct bw_engine *e, const char *name, uint64_t key)
{
	struct bw_call c;
	bw_call_init(&c, rule_named(e, name), BW_OP_CONNECT, "connect");
	c.dest = "d";
	c.fd = 3;
	c.key = key;
	c.attempt = attempt;
	struct bw_rng rng = { 3 };
	return bw_engine_run(e, &c, &rng);
}

static const struct bw_dest_state *whole(const struct bw_engine *e, const char *name)
{
	int slot = bw_store_bind(e->store, name);
	assert_true(slot >= 0);
	return e->store->rules[slot].whole;
}

#define LIMITED(rate, burst) \
	"  - name: api\n    match: { ops: [connect] }\n" \
	"    rate_limit: { scope: rule, rate: " rate ", burst: " burst ", on_limit: fail }\n"

/* Rebuilding a bucket on every reload would hand out a fresh burst each time: a limit a
 * policy saved every second would not limit at all. */
static void test_unchanged_bucket_keeps_its_tokens(void **s)
{
	(void)s;
	struct bw_engine *a = load(LIMITED("10/s", "10"), "enforce");
	for (int i = 0; i < 6; i++)
		assert_int_equal(call(a, "api", 1), 0);
	assert_true(whole(a, "api")->bucket.tokens < 4.001);
	struct bw_engine *b = load(LIMITED("10/s", "10"), "enforce");
	for (int i = 0; i < 4; i++)
		assert_int_equal(call(b, "api", 1), 0);
	/* the fifth would be the eleventh call of the same second */
	assert_int_not_equal(call(b, "api", 1), 0);
	assert_int_equal(fake_count("\"event\":\"limited\""), 1);
}

static void test_changed_burst_scales_the_tokens(void **s)
{
	(void)s;
	struct bw_engine *a = load(LIMITED("10/s", "10"), "enforce");
	for (int i = 0; i < 6; i++)
		assert_int_equal(call(a, "api", 1), 0);
	/* 4 of 10 left: 8 of 20 under a doubled burst */
	struct bw_engine *b = load(LIMITED("20/s", "20"), "enforce");
	assert_int_equal(call(b, "api", 1), 0);
	assert_true(whole(b, "api")->bucket.tokens > 6.999 &&
		    whole(b, "api")->bucket.tokens < 7.001);
	assert_true(whole(b, "api")->bucket.burst == 20);
	/* 7 of 20: 1.75 of 5, never more than the new burst */
	struct bw_engine *c = load(LIMITED("5/s", "5"), "enforce");
	assert_int_equal(call(c, "api", 1), 0);
	assert_true(whole(c, "api")->bucket.tokens > 0.749 &&
		    whole(c, "api")->bucket.tokens < 0.751);
	assert_int_not_equal(call(c, "api", 1), 0);
	/* a call still under way under the older policy counts against the same bucket, in
	 * its own terms, without breaking it */
	fake_now += 1 * S;
	assert_int_equal(call(b, "api", 1), 0);
	assert_true(whole(b, "api")->bucket.tokens <= 20);
}

/* A rate change alone keeps the tokens (the burst is what they are counted against). */
static void test_rate_change_alone_keeps_the_tokens(void **s)
{
	(void)s;
	struct bw_engine *a = load(LIMITED("10/s", "10"), "enforce");
	for (int i = 0; i < 6; i++)
		assert_int_equal(call(a, "api", 1), 0);
	struct bw_engine *b = load(LIMITED("1/s", "10"), "enforce");
	for (int i = 0; i < 4; i++)
		assert_int_equal(call(b, "api", 1), 0);
	assert_int_not_equal(call(b, "api", 1), 0);
}

#define BREAKER(trip, open_for) \
	"  - name: api\n    match: { ops: [connect] }\n" \
	"    breaker: { scope: dest, trip: { " trip " }, open_for: " open_for " }\n"

static void open_breaker(struct bw_engine *e)
{
	attempt_result = ECONNREFUSED;
	for (int i = 0; i < 2; i++)
		assert_int_equal(call(e, "api", 7), ECONNREFUSED);
	attempts = 0;
	assert_int_equal(call(e, "api", 7), ECONNREFUSED);
	assert_int_equal(attempts, 0);                    /* refused: open */
	assert_int_equal(fake_count("\"from\":\"closed\",\"to\":\"open\""), 1);
}

static void test_breaker_keeps_its_state_when_its_trip_is_unchanged(void **s)
{
	(void)s;
	open_breaker(load(BREAKER("consecutive: 2", "30s"), "enforce"));
	/* open_for is not a trip setting: the breaker stays open */
	struct bw_engine *b = load(BREAKER("consecutive: 2", "60s"), "enforce");
	attempts = 0;
	attempt_result = 0;
	assert_int_equal(call(b, "api", 7), ECONNREFUSED);
	assert_int_equal(attempts, 0);
	/* another destination never had a breaker open */
	assert_int_equal(call(b, "api", 8), 0);
	assert_int_equal(attempts, 1);
}

static void test_breaker_starts_closed_when_its_trip_changed(void **s)
{
	(void)s;
	open_breaker(load(BREAKER("consecutive: 2", "30s"), "enforce"));
	struct bw_engine *b = load(BREAKER("consecutive: 5", "30s"), "enforce");
	attempts = 0;
	attempt_result = 0;
	assert_int_equal(call(b, "api", 7), 0);
	assert_int_equal(attempts, 1);
	assert_int_equal(fake_count("\"from\":\"open\",\"to\":\"closed\""), 1);
	/* and counts under the new trip: four failures in a row leave it closed */
	attempt_result = ECONNREFUSED;
	for (int i = 0; i < 4; i++)
		assert_int_equal(call(b, "api", 7), ECONNREFUSED);
	attempts = 0;
	call(b, "api", 7);
	assert_int_equal(attempts, 1);
}

/* observe <-> enforce: the mode is the engine's, and so is the byte path it allows. */
static void test_mode_flips_with_the_policy(void **s)
{
	(void)s;
	const char *rules = "  - name: io\n    match: { ops: [send, recv, connect] }\n"
			    "    rate_limit: { scope: rule, rate: 1MiB/s }\n"
			    "  - name: api\n    match: { ops: [connect] }\n"
			    "    rate_limit: { scope: rule, rate: 1/s, burst: 1, on_limit: fail }\n";
	struct bw_engine *a = load(rules, "enforce");
	assert_int_equal(a->mode, BW_MODE_ENFORCE);
	assert_true(a->rt[0].paced_ops & BW_OPBIT(BW_OP_SEND));
	assert_int_equal(call(a, "api", 1), 0);
	assert_int_not_equal(call(a, "api", 1), 0);          /* limited */
	struct bw_engine *b = load(rules, "observe");
	assert_int_equal(b->mode, BW_MODE_OBSERVE);
	assert_int_equal(b->rt[0].paced_ops, 0);
	assert_int_equal(call(b, "api", 1), 0);              /* logged, not limited */
	assert_non_null(strstr(fake_log, "\"observe\":true"));
	struct bw_engine *c = load(rules, "enforce");
	assert_int_equal(c->mode, BW_MODE_ENFORCE);
	assert_int_not_equal(call(c, "api", 1), 0);
}

/* A rule that now keeps state per destination gets a table of its own. */
static void test_rule_that_becomes_per_destination_gets_a_table(void **s)
{
	(void)s;
	struct bw_engine *a = load("  - name: api\n    match: { ops: [connect] }\n"
				   "    rate_limit: { scope: rule, rate: 1/s, burst: 1, "
				   "on_limit: fail }\n", "enforce");
	assert_int_equal(call(a, "api", 1), 0);
	assert_int_not_equal(call(a, "api", 2), 0);          /* one bucket for the rule */
	struct bw_engine *b = load("  - name: api\n    match: { ops: [connect] }\n"
				   "    rate_limit: { scope: dest, rate: 1/s, burst: 1, "
				   "on_limit: fail }\n", "enforce");
	assert_non_null(b->store->rules[bw_store_bind(b->store, "api")].dests.mem);
	assert_int_equal(call(b, "api", 1), 0);
	assert_int_equal(call(b, "api", 2), 0);
	assert_int_not_equal(call(b, "api", 2), 0);
}

static void test_reload_event_names_what_changed(void **s)
{
	(void)s;
	struct bw_engine *a = load(LIMITED("10/s", "10")
				   "  - name: gone\n    match: { ops: [resolve] }\n"
				   "  - name: same\n    match: { ops: [sqlite] }\n", "enforce");
	struct bw_engine *b = load(LIMITED("20/s", "10")
				   "  - name: same\n    match: { ops: [sqlite] }\n"
				   "  - name: new\n    match: { ops: [accept] }\n", "observe");
	fake_log_len = 0;
	fake_log[0] = '\0';
	bw_engine_reload_event(b, a->cfg, "/etc/p.yaml", 0);
	assert_int_equal(fake_count("\"event\":\"reload\""), 1);
	assert_non_null(strstr(fake_log, "\"lvl\":\"warn\""));
	assert_non_null(strstr(fake_log, "\"added\":[\"new\"]"));
	assert_non_null(strstr(fake_log, "\"removed\":[\"gone\"]"));
	assert_non_null(strstr(fake_log, "\"changed\":[\"api\"]"));
	assert_non_null(strstr(fake_log, "\"mode\":\"observe\""));
	assert_non_null(strstr(fake_log, "\"file\":\"/etc/p.yaml\""));
	assert_non_null(strstr(fake_log, "\"gen\":2"));
	assert_non_null(strstr(fake_log, "mode enforce -> observe"));
	assert_null(strstr(fake_log, "\"observe\":true"));
	assert_null(strstr(fake_log, "\"asked\""));
	/* the same policy again: info, nothing named */
	fake_log_len = 0;
	fake_log[0] = '\0';
	bw_engine_reload_event(b, b->cfg, "/etc/p.yaml", 1);
	assert_non_null(strstr(fake_log, "\"lvl\":\"info\""));
	assert_non_null(strstr(fake_log, "nothing changed"));
	assert_non_null(strstr(fake_log, "\"changed\":[]"));
	assert_non_null(strstr(fake_log, "\"asked\":true"));
}

static void test_reload_error_event_says_where(void **s)
{
	(void)s;
	struct bw_engine *a = load(LIMITED("10/s", "10"), "enforce");
	const char *bad = "version: 1\nrules:\n  - name: api\n    match: { ops: [connect] }\n"
			  "    rate_limit: { rat: 5/s }\n";
	struct bw_diags dg = { .n = 0 };
	assert_null(bw_config_load_string("/etc/p.yaml", bad, strlen(bad), &dg));
	assert_true(dg.n > 0);
	bw_engine_reload_error(a, &dg.d[0], "/etc/p.yaml", 0);
	assert_int_equal(fake_count("\"event\":\"reload\""), 1);
	assert_non_null(strstr(fake_log, "\"lvl\":\"error\""));
	char where[64];
	snprintf(where, sizeof where, "\"msg\":\"/etc/p.yaml:%d:%d: ", dg.d[0].line, dg.d[0].col);
	assert_non_null(strstr(fake_log, where));
	assert_int_equal(dg.d[0].line, 5);
	assert_non_null(strstr(fake_log, "the policy in force stays"));
	assert_non_null(strstr(fake_log, "\"line\":5"));
}

static void test_config_differs(void **s)
{
	(void)s;
	struct bw_config *a = policy(LIMITED("10/s", "10"), "enforce");
	struct bw_config *b = policy("  - name: api\n    match:\n      ops: [connect]\n"
				     "    rate_limit:\n      scope: rule\n      rate: 10/s\n"
				     "      burst: 10\n      on_limit: fail\n", "enforce");
	assert_int_equal(bw_config_differs(a, b), 0);        /* written another way */
	struct bw_config *c = policy(LIMITED("10/s", "11"), "observe");
	assert_int_equal(bw_config_differs(a, c), BW_CFG_RULES | BW_CFG_MODE);
	struct bw_config *d = policy(LIMITED("10/s", "10")
				     "  - name: two\n    match: { ops: [resolve] }\n", "enforce");
	struct bw_config *e = policy("  - name: two\n    match: { ops: [resolve] }\n"
				     LIMITED("10/s", "10"), "enforce");
	assert_int_equal(bw_config_differs(d, e), BW_CFG_RULES);   /* order counts */
	bw_config_free(a);
	bw_config_free(b);
	bw_config_free(c);
	bw_config_free(d);
	bw_config_free(e);
}

/* The exit event counts a rule's calls over every generation it lived through. */
static void test_counts_span_generations(void **s)
{
	(void)s;
	attempt_result = 0;
	struct bw_engine *a = load(BREAKER("consecutive: 2", "30s"), "enforce");
	call(a, "api", 1);
	call(a, "api", 1);
	struct bw_engine *b = load(BREAKER("consecutive: 3", "30s"), "enforce");
	call(b, "api", 1);
	assert_int_equal(bw_engine_stat(b, 0, BW_ST_CALLS), 1);
	assert_int_equal(bw_engine_stat_all(b, 0, BW_ST_CALLS), 3);
	bw_engine_exit_event(b);
	assert_non_null(strstr(fake_log, "\"api\":{\"calls\":3,"));
}

static int always_alive(long pid)
{
	(void)pid;
	return 1;
}

/* In a group's store a rule a reload added has a cell of its own in the process: a child
 * forked while another thread held its lock must find it free (the parent's threads will
 * never release the child's copy), as it finds the file's cells shared. */
static void test_added_rule_in_a_group_is_private_and_forks_clean(void **s)
{
	(void)s;
	struct bw_engine *a = load(LIMITED("10/s", "10"), "enforce");
	size_t size = bw_shm_size(a->cfg);
	void *file = calloc(1, size);
	assert_non_null(file);
	bw_shm_format(file, size, a->cfg, "g", "/p.yaml", 1);
	bw_shm_publish(file);
	bw_store_share(a->store, file, 4242, always_alive);
	struct bw_engine *b = load(LIMITED("10/s", "10")
				   "  - name: new\n    match: { ops: [accept] }\n"
				   "    rate_limit: { scope: rule, rate: 1/s, burst: 1 }\n", "enforce");
	struct bw_rule_cells *api = &b->store->rules[bw_store_bind(b->store, "api")];
	struct bw_rule_cells *added = &b->store->rules[bw_store_bind(b->store, "new")];
	assert_true((char *)api->lock >= (char *)file && (char *)api->lock < (char *)file + size);
	assert_ptr_equal(added->lock, &added->own_lock);
	*api->lock = 4242;
	added->own_lock = 4242;
	b->store->ops->after_fork(b->store, 4343);
	assert_int_equal(added->own_lock, 0);
	assert_int_equal(*api->lock, 4242);           /* the parent's thread releases it */
	*api->lock = 0;
	/* the store's cells point into the file: it outlives the engines */
	for (int i = n_gens - 1; i >= 0; i--) {
		bw_engine_fini(&gens[i]);
		bw_config_free(cfgs[i]);
	}
	n_gens = 0;
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_unchanged_bucket_keeps_its_tokens),
		T(test_changed_burst_scales_the_tokens),
		T(test_rate_change_alone_keeps_the_tokens),
		T(test_breaker_keeps_its_state_when_its_trip_is_unchanged),
		T(test_breaker_starts_closed_when_its_trip_changed),
		T(test_mode_flips_with_the_policy),
		T(test_rule_that_becomes_per_destination_gets_a_table),
		T(test_reload_event_names_what_changed),
		T(test_reload_error_event_says_where),
		T(test_config_differs),
		T(test_counts_span_generations),
		T(test_added_rule_in_a_group_is_private_and_forks_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
