/* `bulwark report`: what event logs add up to. report_read.c parses lines into events,
 * report_agg.c adds them up, report_table.c, report_json.c and report_prom.c print the
 * result, report_text.c holds the small formatting helpers they share. Only
 * report_read.c and report_json.c know about jansson. */
#ifndef BW_REPORT_H
#define BW_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Plain event counts of one rule and destination, in output order. */
enum bw_rp_count {
	BW_RP_RETRIES, BW_RP_RECOVERED, BW_RP_REJECTED, BW_RP_THROTTLED, BW_RP_LIMITED,
	BW_RP_INJECTED, BW_RP_BREAKER_OPENS, BW_RP_TIMEOUTS, BW_RP_FAILOVERS, BW_RP_BULKHEAD_FULL,
	BW_RP_SHED, BW_RP_NCOUNT
};
/* Their JSON keys ("retries", ...), also the middle of the Prometheus names. */
extern const char *const bw_rp_count_keys[BW_RP_NCOUNT];

/* The per-rule counters of `exit` events, in the order the library writes them. */
enum bw_rp_stat {
	BW_RP_ST_CALLS, BW_RP_ST_FAILURES, BW_RP_ST_RETRIES, BW_RP_ST_RECOVERED,
	BW_RP_ST_GAVE_UP, BW_RP_ST_REJECTED, BW_RP_ST_THROTTLED, BW_RP_ST_LIMITED,
	BW_RP_ST_INJECTED, BW_RP_ST_BULKHEAD_FULL, BW_RP_ST_SHED, BW_RP_NSTAT
};
extern const char *const bw_rp_stat_keys[BW_RP_NSTAT];

/* How often each name (an errno, a reason) was seen. */
struct bw_rp_tally_item {
	char *name;
	long long n;
};
struct bw_rp_tally {
	struct bw_rp_tally_item *v;
	size_t n, cap;
	long long total;
};

/* Added delays, kept whole for the quantiles; microseconds so that sums are exact. */
struct bw_rp_delays {
	int64_t *us;
	size_t n, cap;
	int64_t total_us;
};

/* One set of figures: what the library did, or (observe mode) what it would have done. */
struct bw_rp_side {
	struct bw_rp_tally errs;      /* fail events by err */
	struct bw_rp_tally gave_up;   /* gave_up events by reason */
	long long count[BW_RP_NCOUNT];
	struct bw_rp_delays delays;
	long long events;             /* events that landed on this side */
};

struct bw_rp_group {
	char *rule, *dest;
	struct bw_rp_side did, observed;
};

struct bw_rp_rule {
	char *name;
	long long processes;          /* exit events that reported this rule */
	long long stat[BW_RP_NSTAT];
};

/* One event as read, fields absent when NULL (or has_* == 0). Strings belong to the
 * reader and only live for the call. */
struct bw_rp_event {
	const char *event, *ts, *lvl, *rule, *dest, *db, *host, *from, *to, *err, *reason;
	long long pid;
	int has_pid;
	double delay_ms;
	int has_delay;
	int observe;
	int no_summary;               /* a start event that says no exit event will follow */
};

/* Why figures are missing, in words: at most this many notes, each one line of text. */
#define BW_RP_MAX_NOTES 4
#define BW_RP_NOTE_MAX 400

struct bw_fx;

struct bw_report {
	int wide;                     /* set by the caller: table cells whole (--wide) */
	struct bw_fx *fx;             /* set by the caller: every event also goes into this
				       * model (fx.h), for replay, html and suggest */
	struct bw_rp_group **groups;
	size_t n_groups, cap_groups;
	size_t *slots;                /* open addressing over groups: index + 1, 0 empty */
	size_t n_slots;

	struct bw_rp_rule *rules;
	size_t n_rules, cap_rules;

	long long *pids;              /* open addressing set of pids seen */
	unsigned char *pid_used;      /* 0 empty, else BW_RP_PID_* bits */
	size_t n_pids, cap_pids;

	long long files, lines, events, skipped, config_errors, warnings;
	long long reloads, reload_errors;    /* reload events; those refusing a file */

	int have_ts;
	int64_t first_us, last_us;    /* microseconds since the epoch */
	char first_ts[64], last_ts[64];

	/* Filled by bw_report_finish: fail events by err over every destination (did
	 * side), and, parallel to it, in how many destinations each err was seen. */
	struct bw_rp_tally top_errs;
	long long *top_errs_dests;
	/* gave_up events by reason over every destination (did side) */
	struct bw_rp_tally gave_up_reasons;

	/* What the logs say of themselves: events by level (info and debug, warn and error);
	 * with the pids' start and exit flags, bw_report_finish writes the notes on what is
	 * missing and why (a level that left events out, processes that never logged their
	 * exit). */
	long long info_events, warn_events;
	char notes[BW_RP_MAX_NOTES][BW_RP_NOTE_MAX];
	size_t n_notes;
};

/* ---- report_agg.c ---- */
void bw_report_init(struct bw_report *r);
void bw_report_free(struct bw_report *r);
/* Account one event. Out of memory is fatal for the tool (there is nothing sound to
 * report after losing events), so these never fail. */
void bw_report_add(struct bw_report *r, const struct bw_rp_event *ev);
/* One exit event's counter for one rule, and (once per rule and exit event) that the
 * event reported the rule at all. */
void bw_report_add_stat(struct bw_report *r, const char *rule, enum bw_rp_stat st,
			long long v);
void bw_report_rule_seen(struct bw_report *r, const char *rule);
/* Sort groups (flakiest first), tallies and rules; compute the totals over all
 * destinations (top errors, gave-up reasons). */
void bw_report_finish(struct bw_report *r);

/* Flags of a pid in bw_report.pid_used. */
enum { BW_RP_PID_SEEN = 1, BW_RP_PID_START = 2, BW_RP_PID_EXIT = 4, BW_RP_PID_NO_SUMMARY = 8 };

/* Failures + gave up + rejected: what makes a destination flaky. */
long long bw_rp_flakiness(const struct bw_rp_side *s);
/* Nearest-rank quantile (the smallest delay with at least q of them at or below it);
 * -1 when there are none. Sorts d->us on first use. */
int64_t bw_rp_quantile(struct bw_rp_delays *d, double q);
int bw_rp_side_empty(const struct bw_rp_side *s);

/* ---- report_read.c ---- */
/* Read one stream of JSON Lines into r; name is what messages call it. Lines that are
 * not events are counted and, the first BW_RP_MAX_SKIP_MSGS of them, reported on stderr
 * as NAME:LINE: skipped: reason. Returns 0, or -1 on a read error (reported). */
#define BW_RP_MAX_SKIP_MSGS 10
int bw_report_read(struct bw_report *r, FILE *in, const char *name);

/* ---- report_text.c ---- */
/* Milliseconds from microseconds, exact and short: "12", "0.25", "1500.125". */
void bw_rp_fmt_ms(char *buf, size_t cap, int64_t us);
/* A duration for people, at most 6 columns: "0", "2.5ms", "850ms", "12.3s", "4.0m",
 * "2.5h". */
void bw_rp_fmt_dur(char *buf, size_t cap, int64_t us);
/* A count in at most 5 columns: exact below 100000, then 123k, 45M, 6G, 7T. */
void bw_rp_fmt_count(char *buf, size_t cap, long long n);
/* RFC 3339 to microseconds since the epoch; 0 on success, -1 if malformed. */
int bw_rp_parse_ts(const char *s, int64_t *us);
/* Display columns of a UTF-8 string (code points; the names we print are not CJK). */
size_t bw_rp_width(const char *s);
/* s cut to at most width columns, marked with an ellipsis where it was cut: at the end,
 * or (middle) in the middle, which keeps the port or file name of a long destination.
 * Control characters become '?', so a name cannot break the table. */
void bw_rp_fit(char *out, size_t cap, const char *s, size_t width, int middle);

/* ---- cmd_report.c: the subcommand (declared here, beside its parts) ---- */
int bw_cmd_report(int argc, char **argv);

/* ---- the formats ---- */
int bw_report_print_table(struct bw_report *r, FILE *out);
int bw_report_print_json(struct bw_report *r, FILE *out);
int bw_report_print_prom(struct bw_report *r, FILE *out);
/* The notes as lines of at most 79 columns, each note's first line "- ". */
void bw_report_print_notes(const struct bw_report *r, FILE *out);

#endif
