/* The built-in policy (SPEC section 7) and the names of the policy's enumerations. */
#include <string.h>
#include <syslog.h>
#include "config_int.h"

const char bw_default_policy_yaml[] =
	"version: 1\n"
	"log: { sink: stderr, level: warn }\n"
	"rules:\n"
	"  - name: default-connect\n"
	"    match: { ops: [connect] }\n"
	"    retry: { attempts: 6, backoff: { base: 200ms, max: 2s, jitter: equal }, deadline: 15s }\n"
	"    timeout: { connect: 10s }\n"
	"    breaker: { scope: dest, trip: { consecutive: 8 }, open_for: 5s }\n"
	"  - name: default-resolve\n"
	"    match: { ops: [resolve] }\n"
	"    retry: { attempts: 3, backoff: { base: 200ms, max: 2s, jitter: full } }\n"
	"  - name: default-sqlite\n"
	"    match: { ops: [sqlite] }\n"
	"    retry: { attempts: 10, backoff: { base: 5ms, max: 500ms, jitter: full }, deadline: 10s }\n";

struct bw_config *bw_config_parse_default(void)
{
	struct bw_diags dg = { .n = 0 };
	return bw_config_load_string("<default>", bw_default_policy_yaml,
				     sizeof bw_default_policy_yaml - 1, &dg);
}

/* Each list follows its enum's order. */
const char *const cf_mode_names[] = { "enforce", "observe", NULL };
const char *const cf_onerr_names[] = { "passthrough", "abort", NULL };
const char *const cf_level_names[] = { "error", "warn", "info", "debug", NULL };
const char *const cf_jitter_names[] = { "none", "full", "equal", "decorrelated", NULL };
const char *const cf_scope_names[] = { "dest", "rule", "process", NULL };
const char *const cf_onlimit_names[] = { "wait", "fail", NULL };
const char *const cf_nb_names[] = { "retry", "observe", NULL };
const char *const cf_share_names[] = { "process", "group", NULL };
const char *const cf_facility_names[] = {
	"user", "daemon", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
	"local7", NULL
};
const int cf_facility_values[] = {
	LOG_USER, LOG_DAEMON, LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2, LOG_LOCAL3, LOG_LOCAL4,
	LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7,
};

const char *cf_facility_name(int value)
{
	for (int i = 0; cf_facility_names[i]; i++)
		if (cf_facility_values[i] == value)
			return cf_facility_names[i];
	return "user";
}
