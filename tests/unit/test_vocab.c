/* The policy's words, keys and built-in values, each kept in one place: every enumeration's
 * names round-trip through the loader, the dumper and the overrides; every key of every
 * section sets its own field and no other; the built-in values are what a policy that
 * leaves keys out gets, and what the man page says. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <cmocka.h>
#include "builtin.h"
#include "config_int.h"
#include "overrides.h"
#include "units.h"
#include "vocab.h"
#include "dump_text.h"

static struct bw_config *load(const char *yaml)
{
	struct bw_diags dg = { .n = 0 };
	struct bw_config *cfg = bw_config_load_string("policy.yaml", yaml, strlen(yaml), &dg);
	char line[600];
	for (int i = 0; i < dg.n && i < BW_MAX_DIAGS; i++) {
		bw_diag_format(&dg.d[i], line, sizeof line);
		print_error("%s\n", line);
	}
	if (!cfg)
		fail_msg("policy did not load:\n%s", yaml);
	return cfg;
}

/* The first diagnostic of a policy that must not load. */
static void load_err(const char *yaml, char *msg, size_t cap)
{
	struct bw_diags dg = { .n = 0 };
	struct bw_config *cfg = bw_config_load_string("policy.yaml", yaml, strlen(yaml), &dg);
	assert_null(cfg);
	assert_true(dg.n > 0);
	snprintf(msg, cap, "%s", dg.d[0].msg);
}

/* ---- names ---- */

struct enumeration {
	const char *what;
	const char *const *names;
	int n;
	const char *yaml;     /* a policy with %s for the name */
	const char *shown;    /* what the dump shows, %s for the name */
	size_t off;           /* where the value lands in struct bw_config (rules[0] after) */
	int in_rule;
};

#define TOP(m) offsetof(struct bw_config, m), 0
#define RULE(m) offsetof(struct bw_rule, m), 1
#define R "version: 1\nrules:\n  - name: r\n    match: { ops: [connect] }\n"

static const struct enumeration enums[] = {
	{ "mode", bw_mode_names, BW_N_MODES, "version: 1\nmode: %s\n", "\nmode: %s\n", TOP(mode) },
	{ "on_config_error", bw_onerr_names, BW_N_ONERRS, "version: 1\non_config_error: %s\n",
	  "\non_config_error: %s\n", TOP(on_config_error) },
	{ "log.level", bw_level_names, BW_N_LEVELS, "version: 1\nlog: { level: %s }\n",
	  "\n  level: %s\n", TOP(log.level) },
	/* fleet needs keys of its own: the next entry goes through it */
	{ "state.share", bw_share_names, BW_SHARE_FLEET, "version: 1\nstate: { share: %s }\n",
	  "\n  share: %s\n", TOP(state.share) },
	{ "state.on_unreachable", bw_unreachable_names, BW_N_UNREACHABLES,
	  "version: 1\nstate: { share: fleet, redis: \"redis://127.0.0.1\", hosts: 3, "
	  "on_unreachable: %s }\n", "\n  on_unreachable: %s\n",
	  TOP(state.fleet.on_unreachable) },
	{ "retry.backoff.jitter", bw_jitter_names, BW_N_JITTERS,
	  R "    retry: { backoff: { jitter: %s } }\n", " jitter: %s\n", RULE(retry.jitter) },
	{ "breaker.scope", bw_breaker_scope_names, BW_N_BREAKER_SCOPES,
	  R "    breaker: { scope: %s }\n", " scope: %s\n", RULE(breaker.scope) },
	{ "rate_limit.scope", bw_scope_names, BW_N_SCOPES,
	  R "    rate_limit: { rate: 1/s, scope: %s }\n", " scope: %s\n", RULE(rate_limit.scope) },
	{ "rate_limit.on_limit", bw_onlimit_names, BW_N_ONLIMITS,
	  R "    rate_limit: { rate: 1/s, on_limit: %s }\n", " on_limit: %s\n",
	  RULE(rate_limit.on_limit) },
	{ "nonblocking", bw_nb_names, BW_N_NBS, R "    nonblocking: %s\n", " nonblocking: %s\n",
	  RULE(nonblocking) },
};

static void test_lists_are_whole(void **s)
{
	(void)s;
	const struct { const char *const *names; int n; } lists[] = {
		{ bw_mode_names, BW_N_MODES },     { bw_onerr_names, BW_N_ONERRS },
		{ bw_level_names, BW_N_LEVELS },   { bw_sink_names, BW_N_SINKS },
		{ bw_jitter_names, BW_N_JITTERS }, { bw_scope_names, BW_N_SCOPES },
		{ bw_breaker_scope_names, BW_N_BREAKER_SCOPES },
		{ bw_onlimit_names, BW_N_ONLIMITS }, { bw_nb_names, BW_N_NBS },
		{ bw_share_names, BW_N_SHARES },   { bw_preset_names, BW_N_PRESETS },
		{ bw_unreachable_names, BW_N_UNREACHABLES },
		{ bw_facility_names, BW_N_FACILITIES },
	};
	for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
		const char *const *names = lists[l].names;
		for (int i = 0; i < lists[l].n; i++) {
			assert_non_null(names[i]);   /* no hole where a value has no name */
			assert_int_equal(bw_name_index(names, names[i]), i);   /* and no twice */
			assert_string_equal(bw_name_of(names, lists[l].n, i), names[i]);
		}
		assert_null(names[lists[l].n]);
		assert_int_equal(bw_name_index(names, "nonesuch"), -1);
		assert_string_equal(bw_name_of(names, lists[l].n, lists[l].n), "unknown");
		assert_string_equal(bw_name_of(names, lists[l].n, -1), "unknown");
	}
	/* a breaker's scopes are the first of all scopes, with the same values */
	for (int i = 0; i < BW_N_BREAKER_SCOPES; i++)
		assert_string_equal(bw_breaker_scope_names[i], bw_scope_names[i]);
	assert_string_equal(bw_level_name(BW_LVL_WARN), "warn");
	assert_string_equal(bw_level_name((enum bw_level)99), "unknown");
	for (int i = 0; i < BW_N_FACILITIES; i++)
		assert_string_equal(bw_facility_name(bw_facility_values[i]), bw_facility_names[i]);
	assert_string_equal(bw_facility_name(LOG_LOCAL7), "local7");
	assert_string_equal(bw_facility_name(-5), "user");
}

/* Each name loads as its value, and the dump writes it back by the same name. */
static void test_names_round_trip_through_the_loader(void **s)
{
	(void)s;
	char yaml[512], want[80];
	for (size_t e = 0; e < sizeof enums / sizeof enums[0]; e++) {
		for (int i = 0; i < enums[e].n; i++) {
			snprintf(yaml, sizeof yaml, enums[e].yaml, enums[e].names[i]);
			struct bw_config *cfg = load(yaml);
			const char *base = enums[e].in_rule ? (const char *)&cfg->rules[0]
							    : (const char *)cfg;
			int v;
			memcpy(&v, base + enums[e].off, sizeof v);
			if (v != i)
				fail_msg("%s: %s loaded as %d, not %d", enums[e].what,
					 enums[e].names[i], v, i);
			char *text = dump_text(cfg);
			snprintf(want, sizeof want, enums[e].shown, enums[e].names[i]);
			if (!strstr(text, want))
				fail_msg("%s: the dump does not show '%s':\n%s", enums[e].what, want,
					 text);
			free(text);
			bw_config_free(cfg);
		}
	}
	for (int i = 0; i < BW_N_FACILITIES; i++) {
		snprintf(yaml, sizeof yaml, "version: 1\nlog: { syslog_facility: %s }\n",
			 bw_facility_names[i]);
		struct bw_config *cfg = load(yaml);
		assert_int_equal(cfg->log.facility, bw_facility_values[i]);
		char *text = dump_text(cfg);
		snprintf(want, sizeof want, "  syslog_facility: %s\n", bw_facility_names[i]);
		assert_non_null(strstr(text, want));
		free(text);
		bw_config_free(cfg);
	}
	for (int i = 0; i < BW_N_SINKS; i++) {
		const char *name = i == BW_SINK_FILE ? "\"file:/tmp/ev.log\"" : bw_sink_names[i];
		snprintf(yaml, sizeof yaml, "version: 1\nlog: { sink: %s }\n", name);
		struct bw_config *cfg = load(yaml);
		assert_int_equal(cfg->log.sink, i);
		char *text = dump_text(cfg);
		snprintf(want, sizeof want, "  sink: %s\n", name);
		assert_non_null(strstr(text, want));
		free(text);
		bw_config_free(cfg);
	}
}

static void test_presets(void **s)
{
	(void)s;
	char yaml[256];
	for (int p = 0; p < BW_N_PRESETS; p++) {
		snprintf(yaml, sizeof yaml, R "    retry: %s\n", bw_preset_names[p]);
		struct bw_config *cfg = load(yaml);
		const struct bw_rule *r = &cfg->rules[0];
		if (p == BW_PRESET_OFF) {
			assert_false(r->has_retry);
		} else {
			assert_true(r->has_retry);
			assert_int_equal(r->retry.attempts, bw_presets[p].attempts);
			assert_int_equal(r->retry.base, bw_presets[p].base);
			assert_int_equal(r->retry.max, bw_presets[p].max);
			assert_true(r->retry.multiplier == bw_builtin_rule.retry.multiplier);
			assert_int_equal(r->retry.jitter, bw_builtin_rule.retry.jitter);
		}
		bw_config_free(cfg);
	}
	char msg[256];
	load_err(R "    retry:\n", msg, sizeof msg);
	assert_string_equal(msg, "rules[0].retry: expected a mapping or one of quick, "
			    "conservative, aggressive, off, got nothing");
}

/* ---- the overrides read values as the loader does ---- */

static void test_overrides_take_the_loaders_names(void **s)
{
	(void)s;
	struct bw_config cfg = bw_builtin_config;
	char err[256];
	for (int i = 0; i < BW_N_LEVELS; i++) {
		assert_int_equal(bw_override_level(&cfg, bw_level_names[i], err, sizeof err), 0);
		assert_int_equal(cfg.log.level, i);
	}
	for (int i = 0; i < BW_N_MODES; i++) {
		assert_int_equal(bw_override_mode(&cfg, bw_mode_names[i], err, sizeof err), 0);
		assert_int_equal(cfg.mode, i);
	}
	struct bw_config before = cfg;
	assert_int_equal(bw_override_level(&cfg, "loud", err, sizeof err), -1);
	assert_string_equal(err, "log.level: expected one of error, warn, info, debug, got 'loud'");
	assert_int_equal(bw_override_mode(&cfg, "dry-run", err, sizeof err), -1);
	assert_string_equal(err, "mode: expected one of enforce, observe, got 'dry-run'");
	assert_memory_equal(&cfg, &before, sizeof cfg);   /* a refused value changes nothing */

	assert_int_equal(bw_override_log(&cfg, "syslog", err, sizeof err), 0);
	assert_int_equal(cfg.log.sink, BW_SINK_SYSLOG);
	assert_int_equal(bw_override_log(&cfg, "file:/tmp/x.log", err, sizeof err), 0);
	assert_int_equal(cfg.log.sink, BW_SINK_FILE);
	assert_string_equal(cfg.log.path, "/tmp/x.log");
	assert_int_equal(bw_override_log(&cfg, "file:", err, sizeof err), -1);
	assert_string_equal(err, "log.sink: file: needs a path, e.g. file:/var/log/bulwark.jsonl");
	assert_int_equal(bw_override_log(&cfg, "kafka", err, sizeof err), -1);
	assert_string_equal(err, "log.sink: expected stderr, syslog or file:PATH, got 'kafka'");
	assert_int_equal(cfg.log.sink, BW_SINK_FILE);
	assert_int_equal(bw_override_log(&cfg, "stderr", err, sizeof err), 0);
	assert_int_equal(cfg.log.sink, BW_SINK_STDERR);
	assert_null(cfg.log.path);
}

/* BULWARK_SEED and --seed take exactly the seeds a policy file may write: strtoull read
 * " -1" as 2^64-1 and took "+5" and " 5", which the file refuses. */
static void test_seed_is_read_one_way(void **s)
{
	(void)s;
	static const char *const good[] = { "0", "42", "18446744073709551615", NULL };
	static const uint64_t value[] = { 0, 42, UINT64_MAX };
	static const char *const bad[] = { "", "-1", " -1", "+5", " 5", "5 ", "0x10", "abc",
					   "18446744073709551616", NULL };
	char yaml[128], err[256], msg[256], want[256];
	for (int i = 0; good[i]; i++) {
		struct bw_config cfg = bw_builtin_config;
		assert_int_equal(bw_override_seed(&cfg, good[i], err, sizeof err), 0);
		assert_true(cfg.seed == value[i]);
		snprintf(yaml, sizeof yaml, "version: 1\nseed: %s\n", good[i]);
		struct bw_config *f = load(yaml);
		assert_true(f->seed == value[i]);
		bw_config_free(f);
	}
	for (int i = 0; bad[i]; i++) {
		struct bw_config cfg = bw_builtin_config;
		cfg.seed = 7;
		if (bw_override_seed(&cfg, bad[i], err, sizeof err) != -1)
			fail_msg("seed '%s' was taken as %llu", bad[i], (unsigned long long)cfg.seed);
		assert_true(cfg.seed == 7);
	}
	/* in the same words; the file's shows a number bare */
	snprintf(want, sizeof want, "seed: expected " BW_SEED_WHAT ", got ");
	for (int i = 0; bad[i]; i++) {
		struct bw_config cfg = bw_builtin_config;
		assert_int_equal(bw_override_seed(&cfg, bad[i], err, sizeof err), -1);
		assert_memory_equal(err, want, strlen(want));
		snprintf(yaml, sizeof yaml, "version: 1\nseed: \"%s\"\n", bad[i]);
		load_err(yaml, msg, sizeof msg);
		assert_memory_equal(msg, want, strlen(want));
	}
}

/* ---- keys and fields ---- */

/* Every key of every section with a value that changes its field, the section as a
 * baseline without the key, and the fields that follow from the key (derived values). */
struct sample {
	const char *path;       /* section path "." key */
	const char *ops;
	const char *without, *with;
	uint64_t also;
};

static const struct sample samples[] = {
	{ "retry.attempts", "connect", "retry: {}", "retry: { attempts: 7 }", 0 },
	{ "retry.on", "connect", "retry: {}", "retry: { on: [ETIMEDOUT] }", 0 },
	{ "retry.deadline", "connect", "retry: {}", "retry: { deadline: 9s }", 0 },
	{ "retry.budget", "connect", "retry: {}", "retry: { budget: {} }",
	  FBIT(F_BUDGET_RATIO) | FBIT(F_BUDGET_MIN) },
	{ "retry.backoff.base", "connect", "retry: { backoff: {} }",
	  "retry: { backoff: { base: 50ms } }", 0 },
	{ "retry.backoff.max", "connect", "retry: { backoff: {} }",
	  "retry: { backoff: { max: 3s } }", 0 },
	{ "retry.backoff.multiplier", "connect", "retry: { backoff: {} }",
	  "retry: { backoff: { multiplier: 3 } }", 0 },
	{ "retry.backoff.jitter", "connect", "retry: { backoff: {} }",
	  "retry: { backoff: { jitter: equal } }", 0 },
	{ "retry.budget.ratio", "connect", "retry: { budget: {} }",
	  "retry: { budget: { ratio: 30% } }", 0 },
	{ "retry.budget.min_per_sec", "connect", "retry: { budget: {} }",
	  "retry: { budget: { min_per_sec: 9 } }", 0 },
	{ "timeout.connect", "connect", "timeout: {}", "timeout: { connect: 3s }", 0 },
	{ "timeout.recv", "recv", "timeout: {}", "timeout: { recv: 3s }", 0 },
	{ "timeout.send", "send", "timeout: {}", "timeout: { send: 3s }", 0 },
	{ "breaker.scope", "connect", "breaker: {}", "breaker: { scope: rule }", 0 },
	{ "breaker.open_for", "connect", "breaker: {}", "breaker: { open_for: 20s }", 0 },
	{ "breaker.open_for_max", "connect", "breaker: {}", "breaker: { open_for_max: 10m }", 0 },
	{ "breaker.half_open_probes", "connect", "breaker: {}",
	  "breaker: { half_open_probes: 3 }", 0 },
	{ "breaker.errno", "connect", "breaker: {}", "breaker: { errno: ETIMEDOUT }", 0 },
	{ "breaker.trip.consecutive", "connect", "breaker: { trip: {} }",
	  "breaker: { trip: { consecutive: 9 } }", 0 },
	{ "breaker.trip.rate", "connect", "breaker: { trip: {} }",
	  "breaker: { trip: { rate: 50% } }", FBIT(F_B_CONSEC) },
	{ "breaker.trip.window", "connect", "breaker: { trip: {} }",
	  "breaker: { trip: { window: 1m } }", 0 },
	{ "breaker.trip.min_calls", "connect", "breaker: { trip: {} }",
	  "breaker: { trip: { min_calls: 7 } }", 0 },
	/* a slow threshold turns the slow trip on (its rate, 100%, with it) and leaves out
	 * the consecutive trip that breaker: {} has */
	{ "breaker.trip.slow.over", "connect", "breaker: { trip: {} }",
	  "breaker: { trip: { slow: { over: 2s } } }", FBIT(F_B_SLOW_RATE) | FBIT(F_B_CONSEC) },
	{ "breaker.trip.slow.rate", "connect", "breaker: { trip: { slow: { over: 2s } } }",
	  "breaker: { trip: { slow: { over: 2s, rate: 40% } } }", 0 },
	{ "concurrency.scope", "connect", "concurrency: { max: 5 }",
	  "concurrency: { max: 5, scope: rule }", 0 },
	{ "concurrency.max", "connect", "concurrency: { max: 5 }", "concurrency: { max: 6 }", 0 },
	{ "concurrency.max_wait", "connect", "concurrency: { max: 5 }",
	  "concurrency: { max: 5, max_wait: 3s }", 0 },
	{ "throttle.scope", "connect", "throttle: {}", "throttle: { scope: rule }", 0 },
	{ "throttle.k", "connect", "throttle: {}", "throttle: { k: 1.5 }", 0 },
	{ "throttle.window", "connect", "throttle: {}", "throttle: { window: 2m }", 0 },
	{ "throttle.max_reject", "connect", "throttle: {}", "throttle: { max_reject: 95% }", 0 },
	{ "rate_limit.scope", "connect", "rate_limit: { rate: 10/s }",
	  "rate_limit: { rate: 10/s, scope: rule }", 0 },
	{ "rate_limit.rate", "connect", "rate_limit: { rate: 10/s }", "rate_limit: { rate: 20/s }",
	  FBIT(F_L_BURST) },
	{ "rate_limit.burst", "connect", "rate_limit: { rate: 10/s }",
	  "rate_limit: { rate: 10/s, burst: 3 }", 0 },
	{ "rate_limit.on_limit", "connect", "rate_limit: { rate: 10/s }",
	  "rate_limit: { rate: 10/s, on_limit: fail }", 0 },
	{ "rate_limit.max_wait", "connect", "rate_limit: { rate: 10/s }",
	  "rate_limit: { rate: 10/s, max_wait: 2s }", 0 },
	{ "rate_limit.errno", "connect", "rate_limit: { rate: 10/s, on_limit: fail }",
	  "rate_limit: { rate: 10/s, on_limit: fail, errno: ETIMEDOUT }", 0 },
};

static const struct sample *sample_of(const char *path)
{
	for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
		if (strcmp(samples[i].path, path) == 0)
			return &samples[i];
	return NULL;
}

static struct bw_config *load_rule(const char *ops, const char *section)
{
	char yaml[512];
	snprintf(yaml, sizeof yaml,
		 "version: 1\nrules:\n  - name: r\n    match: { ops: [%s] }\n    %s\n", ops, section);
	return load(yaml);
}

/* The fields whose bytes differ between two rules. */
static uint64_t changed(const struct bw_rule *a, const struct bw_rule *b)
{
	uint64_t m = 0;
	for (int f = 0; f < F_COUNT; f++)
		if (memcmp((const char *)a + cf_slots[f].off, (const char *)b + cf_slots[f].off,
			   cf_slots[f].len) != 0)
			m |= FBIT(f);
	return m;
}

static void test_each_key_sets_its_own_field(void **s)
{
	(void)s;
	uint64_t seen = 0;
	char path[CF_PATH_MAX];
	for (const struct cf_section_keys *sec = cf_sections; sec->path; sec++) {
		for (const struct cf_key *k = sec->keys; k->name; k++) {
			snprintf(path, sizeof path, "%s.%s", sec->path, k->name);
			assert_non_null(k->read);
			if (k->field == F_NONE) {   /* a mapping: its keys are a section of their own */
				int listed = 0;
				assert_non_null(k->keys);
				for (const struct cf_section_keys *in = cf_sections; in->path; in++)
					listed |= in->keys == k->keys && strcmp(in->path, path) == 0;
				if (!listed)
					fail_msg("%s holds keys that cf_sections does not list", path);
				continue;
			}
			if (seen & FBIT(k->field))
				fail_msg("%s sets a field another key sets already", path);
			seen |= FBIT(k->field);
			const struct sample *sm = sample_of(path);
			if (!sm)
				fail_msg("no sample for %s: add one to samples[]", path);
			struct bw_config *a = load_rule(sm->ops, sm->without);
			struct bw_config *b = load_rule(sm->ops, sm->with);
			uint64_t m = changed(&a->rules[0], &b->rules[0]);
			uint64_t want = (cf_slots[k->field].len ? FBIT(k->field) : 0) | sm->also;
			if (m != want)
				fail_msg("%s changed fields %#llx, expected %#llx", path,
					 (unsigned long long)m, (unsigned long long)want);
			bw_config_free(a);
			bw_config_free(b);
		}
	}
	/* every field of a section is some key's: the rest are the rule's own keys */
	uint64_t rule_keys = FBIT(F_FALLBACK) | FBIT(F_INJECT) | FBIT(F_NONBLOCKING) |
			     FBIT(F_MAXKEYS);
	assert_int_equal(seen | rule_keys, FBIT(F_COUNT) - 1);
}

/* The parsers write an int, a double or a bw_usec into a slot: it must be that size. */
static void test_slots_fit_their_members(void **s)
{
	(void)s;
	for (int f = 0; f < F_COUNT; f++) {
		if (f == F_BUDGET || f == F_FALLBACK || f == F_INJECT) {
			assert_int_equal(cf_slots[f].len, 0);
			continue;
		}
		assert_true(cf_slots[f].len > 0);
		assert_true(cf_slots[f].off + cf_slots[f].len <= sizeof(struct bw_rule));
		for (int g = 0; g < f; g++)   /* no two fields share a byte */
			assert_true(cf_slots[g].off + cf_slots[g].len <= cf_slots[f].off ||
				    cf_slots[f].off + cf_slots[f].len <= cf_slots[g].off);
	}
	assert_int_equal(cf_slots[F_ATTEMPTS].len, sizeof(int));
	assert_int_equal(cf_slots[F_JITTER].len, sizeof(int));
	assert_int_equal(cf_slots[F_B_SCOPE].len, sizeof(int));
	assert_int_equal(cf_slots[F_BASE].len, sizeof(bw_usec));
	assert_int_equal(cf_slots[F_MULT].len, sizeof(double));
}

/* ---- built-in values ---- */

static void test_left_out_keys_get_the_builtin_values(void **s)
{
	(void)s;
	struct bw_config *cfg = load(R "    retry: { budget: {} }\n    breaker: {}\n"
				     "    rate_limit: { rate: 10/s }\n    concurrency: { max: 5 }\n"
				     "    throttle: {}\n");
	const struct bw_config *b = &bw_builtin_config;
	assert_int_equal(cfg->version, b->version);
	assert_int_equal(cfg->mode, b->mode);
	assert_int_equal(cfg->on_config_error, b->on_config_error);
	assert_true(cfg->seed == b->seed);
	assert_int_equal(cfg->log.sink, b->log.sink);
	assert_null(cfg->log.path);
	assert_int_equal(cfg->log.level, b->log.level);
	assert_int_equal(cfg->log.facility, b->log.facility);
	assert_int_equal(cfg->log.summary, b->log.summary);
	assert_int_equal(cfg->state.share, b->state.share);
	assert_null(cfg->state.dir);

	const struct bw_rule *r = &cfg->rules[0], *d = &bw_builtin_rule;
	assert_memory_equal(&r->retry, &d->retry, sizeof r->retry);
	struct bw_breaker br = d->breaker;
	br.enabled = 1;
	br.slow_rate = 0;   /* no trip.slow: no slow trip, and no rate for one */
	assert_memory_equal(&r->breaker, &br, sizeof br);
	struct bw_concurrency cc = d->concurrency;
	cc.enabled = 1;
	cc.max = 5;
	assert_memory_equal(&r->concurrency, &cc, sizeof cc);
	struct bw_throttle th = d->throttle;
	th.enabled = 1;
	assert_memory_equal(&r->throttle, &th, sizeof th);
	struct bw_rate_limit rl = d->rate_limit;
	rl.enabled = 1;
	rl.rate = 10;
	rl.burst = 10;   /* one second's worth */
	assert_memory_equal(&r->rate_limit, &rl, sizeof rl);
	assert_int_equal(r->nonblocking, d->nonblocking);
	assert_int_equal(r->max_keys, d->max_keys);
	bw_config_free(cfg);

	/* derived: max and open_for_max are at least base and open_for; a rate trip alone */
	cfg = load(R "    retry: { backoff: { base: 8s } }\n"
		   "    breaker: { open_for: 10m, trip: { rate: 50% } }\n");
	r = &cfg->rules[0];
	assert_int_equal(r->retry.max, 8 * BW_SEC);
	assert_int_equal(r->breaker.open_for_max, 10 * BW_MIN);
	assert_int_equal(r->breaker.consecutive, 0);
	bw_config_free(cfg);

	/* a slow trip alone: no consecutive trip; its rate is every call */
	cfg = load(R "    breaker: { trip: { slow: { over: 1s } } }\n");
	r = &cfg->rules[0];
	assert_int_equal(r->breaker.consecutive, 0);
	assert_int_equal(r->breaker.slow_over, 1 * BW_SEC);
	assert_true(r->breaker.slow_rate == d->breaker.slow_rate);
	bw_config_free(cfg);
}

static char *read_man_page(void)
{
	/* unit tests run from the top of the tree (make unit, tests/unit/run.sh) */
	FILE *f = fopen("docs/bulwark.yaml.5", "r");
	if (!f)
		fail_msg("docs/bulwark.yaml.5: run from the top of the source tree");
	char *buf = calloc(1, 1 << 20);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	assert_true(n > 0);
	return buf;
}

static void man_says(const char *man, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void man_says(const char *man, const char *fmt, ...)
{
	char want[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(want, sizeof want, fmt, ap);
	va_end(ap);
	if (!strstr(man, want))
		fail_msg("docs/bulwark.yaml.5 does not say:\n%s", want);
}

static const char *dur(bw_usec us, char *buf)
{
	bw_format_duration(us, buf, 32);
	return buf;
}

/* The man page documents the built-in values: held here to the table, not to copies. */
static void test_man_page_states_the_builtin_values(void **s)
{
	(void)s;
	char *man = read_man_page(), a[32], b[32], c[32];
	const struct bw_retry *rt = &bw_builtin_rule.retry;
	const struct bw_breaker *br = &bw_builtin_rule.breaker;
	const struct bw_config *top = &bw_builtin_config;
	bw_format_number(rt->multiplier, c, sizeof c);
	man_says(man, "built\\-in values: %d attempts, base %s, max %s (or base, if larger),\n"
		 "multiplier %s, %s jitter, no deadline, no budget.", rt->attempts,
		 dur(rt->base, a), dur(rt->max, b), c, bw_jitter_names[rt->jitter]);
	bw_format_ratio(rt->budget_ratio, a, sizeof a);
	man_says(man, "(default %s) of the rule's calls", a);
	man_says(man, "(default %d) retries a second", rt->budget_min_per_sec);
	man_says(man, ".B \"retry: %s\"\n(%d attempts, base %s, max %s),",
		 bw_preset_names[BW_PRESET_QUICK], bw_presets[BW_PRESET_QUICK].attempts,
		 dur(bw_presets[BW_PRESET_QUICK].base, a), dur(bw_presets[BW_PRESET_QUICK].max, b));
	for (int p = BW_PRESET_CONSERVATIVE; p <= BW_PRESET_AGGRESSIVE; p++)
		man_says(man, ".B \"retry: %s\"\n(%d, %s, %s)", bw_preset_names[p],
			 bw_presets[p].attempts, dur(bw_presets[p].base, a), dur(bw_presets[p].max, b));
	man_says(man, "breaker:\n  scope: %s ", bw_scope_names[br->scope]);
	man_says(man, "\n    consecutive: %d ", br->consecutive);
	man_says(man, "\n    window: %s\n", dur(br->window, a));
	man_says(man, "\n    min_calls: %d\n", br->min_calls);
	man_says(man, "\n  open_for: %s\n", dur(br->open_for, a));
	man_says(man, "\n  open_for_max: %s\n", dur(br->open_for_max, a));
	man_says(man, "\n  half_open_probes: %d\n", br->half_open_probes);
	man_says(man, "defaults to %d only when neither it nor", br->consecutive);
	man_says(man, "longer than this; default %s.", dur(bw_builtin_rule.rate_limit.max_wait, a));
	man_says(man, "used first out; default %d.", bw_builtin_rule.max_keys);
	const struct bw_concurrency *cc = &bw_builtin_rule.concurrency;
	const struct bw_throttle *th = &bw_builtin_rule.throttle;
	man_says(man, "concurrency:\n  scope: %s ", bw_scope_names[cc->scope]);
	man_says(man, "\n  max_wait: %s ", dur(cc->max_wait, a));
	bw_format_number(th->k, b, sizeof b);
	bw_format_ratio(th->max_reject, c, sizeof c);
	man_says(man, "throttle:\n  scope: %s ", bw_scope_names[th->scope]);
	man_says(man, "\n  k: %s ", b);
	man_says(man, "\n  window: %s ", dur(th->window, a));
	man_says(man, "\n  max_reject: %s ", c);
	bw_format_ratio(br->slow_rate, c, sizeof c);
	man_says(man, "\n      rate: %s ", c);
	/* the enumerations' defaults: ".B NAME\n(default)" */
	man_says(man, ".B %s\n(default)", bw_mode_names[top->mode]);
	man_says(man, ".B %s\n(default)", bw_onerr_names[top->on_config_error]);
	man_says(man, ".B %llu\n(default)", (unsigned long long)top->seed);
	man_says(man, ".B %s\n(default)", bw_sink_names[top->log.sink]);
	man_says(man, ".B %s\non standard error", bw_level_names[bw_level_for_sink(BW_SINK_STDERR)]);
	man_says(man, ".B %s\nin a file or syslog", bw_level_names[bw_level_for_sink(BW_SINK_FILE)]);
	man_says(man, ".B %s\nin a file or syslog", bw_level_names[bw_level_for_sink(BW_SINK_SYSLOG)]);
	man_says(man, ".B %s\n(default)", bw_facility_name(top->log.facility));
	man_says(man, ".B %s\n(default)", top->log.summary ? "true" : "false");
	man_says(man, ".B %s\n(default)", bw_share_names[top->state.share]);
	man_says(man, ".B %s\n(default)", bw_nb_names[bw_builtin_rule.nonblocking]);
	man_says(man, ".B %s\n(default): one bucket", bw_scope_names[bw_builtin_rule.rate_limit.scope]);
	man_says(man, ".B %s\n(default) delays", bw_onlimit_names[bw_builtin_rule.rate_limit.on_limit]);
	free(man);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists_are_whole),
		cmocka_unit_test(test_names_round_trip_through_the_loader),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_overrides_take_the_loaders_names),
		cmocka_unit_test(test_seed_is_read_one_way),
		cmocka_unit_test(test_each_key_sets_its_own_field),
		cmocka_unit_test(test_slots_fit_their_members),
		cmocka_unit_test(test_left_out_keys_get_the_builtin_values),
		cmocka_unit_test(test_man_page_states_the_builtin_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
