/* Built-in values: what a policy gets for every key it leaves out, and what the retry
 * presets stand for. The one place that holds them: the loader fills rules from here
 * (config_merge.c), the built-in policy is written over them (config_default.c), and
 * tests/unit/test_vocab.c holds the man page to them. */
#ifndef BW_BUILTIN_H
#define BW_BUILTIN_H

#include "config.h"
#include "vocab.h"

/* A policy's top level and log, before the file says anything. */
extern const struct bw_config bw_builtin_config;

/* A rule's sections as filled in where a section is present and a key is not. Some are
 * derived rather than copied: retry.max is at least retry.base, breaker.open_for_max at
 * least breaker.open_for, trip.consecutive applies only when trip.rate is not given either,
 * budget values only in a budget section, and a bucket's burst is one second of its rate
 * (at least 1). Fields without a built-in value are zero: no deadline, no timeout, the op's
 * own errors. */
extern const struct bw_rule bw_builtin_rule;

/* `retry: quick` and the others: attempts, base and max; multiplier and jitter are the
 * built-in ones. `off` has no values. */
struct bw_preset_values {
	int attempts;
	bw_usec base, max;
};
extern const struct bw_preset_values bw_presets[BW_PRESET_OFF];

#endif
