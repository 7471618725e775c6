/* The words of a policy: the names of every enumeration it writes, the one place that spells
 * them. The loader reads them, the dumper writes them, the environment overrides and
 * `bulwark run` take them, and the event formatter prints level names. Pure tables and
 * lookups, no allocation or I/O: safe in a signal handler, and linking them brings in
 * nothing else. Op names are in the op table (ops.h). */
#ifndef BW_VOCAB_H
#define BW_VOCAB_H

#include "config.h"

/* How many values each enumeration has. Each list below has one name per value, indexed
 * by the value, and a NULL after the last (the loader's enum parser stops there). */
#define BW_N_MODES (BW_MODE_OBSERVE + 1)
#define BW_N_ONERRS (BW_ONERR_ABORT + 1)
#define BW_N_LEVELS (BW_LVL_DEBUG + 1)
#define BW_N_SINKS (BW_SINK_FILE + 1)
#define BW_N_JITTERS (BW_JITTER_DECORRELATED + 1)
#define BW_N_SCOPES (BW_SCOPE_PROCESS + 1)
#define BW_N_BREAKER_SCOPES (BW_SCOPE_RULE + 1)   /* a breaker is per dest or per rule */
#define BW_N_ONLIMITS (BW_LIMIT_FAIL + 1)
#define BW_N_NBS (BW_NB_OBSERVE + 1)
#define BW_N_SHARES (BW_SHARE_FLEET + 1)
#define BW_N_UNREACHABLES (BW_UNREACH_CLOSED + 1)

/* `retry: NAME`: the presets, and `off`. */
enum bw_preset { BW_PRESET_QUICK, BW_PRESET_CONSERVATIVE, BW_PRESET_AGGRESSIVE, BW_PRESET_OFF };
#define BW_N_PRESETS (BW_PRESET_OFF + 1)

extern const char *const bw_mode_names[BW_N_MODES + 1];
extern const char *const bw_onerr_names[BW_N_ONERRS + 1];
extern const char *const bw_level_names[BW_N_LEVELS + 1];
/* The file sink is written "file:PATH". */
extern const char *const bw_sink_names[BW_N_SINKS + 1];
extern const char *const bw_jitter_names[BW_N_JITTERS + 1];
extern const char *const bw_scope_names[BW_N_SCOPES + 1];
extern const char *const bw_breaker_scope_names[BW_N_BREAKER_SCOPES + 1];
extern const char *const bw_onlimit_names[BW_N_ONLIMITS + 1];
extern const char *const bw_nb_names[BW_N_NBS + 1];
extern const char *const bw_dist_names[];    /* inject latency: its distribution */
extern const char *const bw_per_names[];     /* inject per: call or connection */
extern const char *const bw_share_names[BW_N_SHARES + 1];
extern const char *const bw_unreachable_names[BW_N_UNREACHABLES + 1];
extern const char *const bw_preset_names[BW_N_PRESETS + 1];

/* syslog facilities: names, and the values openlog takes, side by side. */
#define BW_N_FACILITIES 10
extern const char *const bw_facility_names[BW_N_FACILITIES + 1];
extern const int bw_facility_values[BW_N_FACILITIES];

/* The index of s in a NULL-terminated list, or -1. */
int bw_name_index(const char *const *names, const char *s);
/* names[value] for a value of the list's enumeration (n of them), else "unknown". */
const char *bw_name_of(const char *const *names, int n, int value);
const char *bw_level_name(enum bw_level lvl);
/* The name of a facility value; "user" for one that has none. */
const char *bw_facility_name(int value);

#endif
