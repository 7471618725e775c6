/* The names of a policy's enumerations, each indexed by its enum's values. */
#include <syslog.h>
#include "vocab.h"

const char *const bw_mode_names[] = {
	[BW_MODE_ENFORCE] = "enforce", [BW_MODE_OBSERVE] = "observe", NULL
};
const char *const bw_onerr_names[] = {
	[BW_ONERR_PASSTHROUGH] = "passthrough", [BW_ONERR_ABORT] = "abort", NULL
};
const char *const bw_level_names[] = {
	[BW_LVL_ERROR] = "error", [BW_LVL_WARN] = "warn", [BW_LVL_INFO] = "info",
	[BW_LVL_DEBUG] = "debug", NULL
};
const char *const bw_sink_names[] = {
	[BW_SINK_STDERR] = "stderr", [BW_SINK_SYSLOG] = "syslog", [BW_SINK_FILE] = "file", NULL
};
const char *const bw_jitter_names[] = {
	[BW_JITTER_NONE] = "none", [BW_JITTER_FULL] = "full", [BW_JITTER_EQUAL] = "equal",
	[BW_JITTER_DECORRELATED] = "decorrelated", NULL
};
const char *const bw_scope_names[] = {
	[BW_SCOPE_DEST] = "dest", [BW_SCOPE_RULE] = "rule", [BW_SCOPE_PROCESS] = "process", NULL
};
const char *const bw_breaker_scope_names[] = {
	[BW_SCOPE_DEST] = "dest", [BW_SCOPE_RULE] = "rule", NULL
};
const char *const bw_onlimit_names[] = {
	[BW_LIMIT_WAIT] = "wait", [BW_LIMIT_FAIL] = "fail", NULL
};
const char *const bw_dist_names[] = {
	[BW_DIST_UNIFORM] = "uniform", [BW_DIST_NORMAL] = "normal",
	[BW_DIST_EXPONENTIAL] = "exponential", NULL
};
const char *const bw_per_names[] = {
	[BW_PER_CALL] = "call", [BW_PER_CONNECTION] = "connection", NULL
};
const char *const bw_nb_names[] = {
	[BW_NB_RETRY] = "retry", [BW_NB_OBSERVE] = "observe", NULL
};
const char *const bw_share_names[] = {
	[BW_SHARE_PROCESS] = "process", [BW_SHARE_GROUP] = "group", [BW_SHARE_FLEET] = "fleet",
	NULL
};
const char *const bw_unreachable_names[] = {
	[BW_UNREACH_LOCAL] = "local", [BW_UNREACH_OPEN] = "open", [BW_UNREACH_CLOSED] = "closed",
	NULL
};
const char *const bw_preset_names[] = {
	[BW_PRESET_QUICK] = "quick", [BW_PRESET_CONSERVATIVE] = "conservative",
	[BW_PRESET_AGGRESSIVE] = "aggressive", [BW_PRESET_OFF] = "off", NULL
};

const char *const bw_facility_names[] = {
	"user", "daemon", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
	"local7", NULL
};
const int bw_facility_values[] = {
	LOG_USER, LOG_DAEMON, LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2, LOG_LOCAL3, LOG_LOCAL4,
	LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7,
};

/* No strcmp: this file stays free of every library call. */
static int same(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

int bw_name_index(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (same(names[i], s))
			return i;
	return -1;
}

const char *bw_name_of(const char *const *names, int n, int value)
{
	return value >= 0 && value < n ? names[value] : "unknown";
}

const char *bw_level_name(enum bw_level lvl)
{
	return bw_name_of(bw_level_names, BW_N_LEVELS, (int)lvl);
}

const char *bw_facility_name(int value)
{
	for (int i = 0; i < BW_N_FACILITIES; i++)
		if (bw_facility_values[i] == value)
			return bw_facility_names[i];
	return bw_facility_names[0];
}
