/* Built-in values (builtin.h). The man page states each of them (bulwark.yaml.5, RETRY,
 * BREAKER, RATE LIMIT, CONCURRENCY, THROTTLE, max_keys): a change here is a change there. */
#include <syslog.h>
#include "builtin.h"

const struct bw_config bw_builtin_config = {
	.version = 1,
	.mode = BW_MODE_ENFORCE,
	.on_config_error = BW_ONERR_PASSTHROUGH,
	.seed = 0,   /* a random seed in each process */
	.log = { .sink = BW_SINK_STDERR, .level = BW_LVL_WARN, .level_given = 0,
		 .facility = LOG_USER, .summary = 1 },
	.state = { .share = BW_SHARE_PROCESS, .dir = NULL,
		   .fleet = { .on_unreachable = BW_UNREACH_LOCAL, .sync = 100 * BW_MS } },
};

const struct bw_rule bw_builtin_rule = {
	.retry = {
		.attempts = 3,
		.base = 100 * BW_MS,
		.max = 5 * BW_SEC,
		.multiplier = 2,
		.jitter = BW_JITTER_FULL,
		.budget_ratio = 0.2,
		.budget_min_per_sec = 5,
	},
	.breaker = {
		.scope = BW_SCOPE_DEST,
		.consecutive = 5,
		.window = 30 * BW_SEC,
		.min_calls = 20,
		.open_for = 10 * BW_SEC,
		.open_for_max = 5 * BW_MIN,
		.half_open_probes = 1,
		.slow_rate = 1,          /* with trip.slow given: every call in the window */
	},
	.rate_limit = {
		.scope = BW_SCOPE_DEST,
		.on_limit = BW_LIMIT_WAIT,
		.max_wait = 1 * BW_SEC,
	},
	.concurrency = {
		.scope = BW_SCOPE_DEST,
		.max_wait = 1 * BW_SEC,
	},
	.throttle = {
		.scope = BW_SCOPE_DEST,
		.k = 2,
		.window = 60 * BW_SEC,
		.max_reject = 0.8,
	},
	.nonblocking = BW_NB_RETRY,
	.max_keys = 4096,
};

const struct bw_preset_values bw_presets[] = {
	[BW_PRESET_QUICK] = { 2, 100 * BW_MS, 1 * BW_SEC },
	[BW_PRESET_CONSERVATIVE] = { 3, 1 * BW_SEC, 5 * BW_SEC },
	[BW_PRESET_AGGRESSIVE] = { 5, 200 * BW_MS, 10 * BW_SEC },
};

enum bw_level bw_level_for_sink(enum bw_sink_kind sink)
{
	return sink == BW_SINK_STDERR ? BW_LVL_WARN : BW_LVL_INFO;
}

void bw_log_settle(struct bw_log *lg)
{
	if (!lg->level_given)
		lg->level = bw_level_for_sink(lg->sink);
}
