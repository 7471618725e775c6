/* Forensics over event logs: the events themselves in order, with the processes that
 * logged them, where `bulwark report`'s tables only keep sums. `report --replay` turns a
 * run's failures into an inject policy (fx_replay.c), `report --format html` draws them
 * on a timeline (report_html.c), `bulwark suggest` sizes a policy from what observe mode
 * measured (cmd_suggest.c). fx_read.c fills the model from decoded lines (the reader of
 * report_read.c hands each one over), fx.c holds the rest. */
#ifndef BW_FX_H
#define BW_FX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "config.h"

struct bw_report;

#define BW_FX_BUCKETS 17          /* the library's calls histogram (engine/tally.h) */

enum bw_fx_kind {
	BW_FX_FAIL, BW_FX_RETRY, BW_FX_RECOVERED, BW_FX_GAVE_UP, BW_FX_TIMEOUT,
	BW_FX_BREAKER, BW_FX_REJECTED, BW_FX_THROTTLED, BW_FX_LIMITED, BW_FX_FAILOVER,
	BW_FX_INJECTED, BW_FX_OUTAGE, BW_FX_OTHER
};

/* One process as its start event (or, without one, its first event) tells it. A pid
 * that starts again (exec, or reused) is a new process. */
struct bw_fx_proc {
	long long pid, ppid;          /* ppid 0: unknown */
	const char *prog;
	const char *cmd_hash;         /* NULL: unknown */
	int64_t start_us, end_us;     /* first and last event seen of it */
	int started, exited;          /* a start event, an exit event */
	int parent;                   /* index of the process that started it, -1 none */
	int run;                      /* index of the root of its tree (its run) */
};

/* One event about a call. Strings belong to the model. */
struct bw_fx_ev {
	enum bw_fx_kind kind;
	int proc;
	int file;                     /* index in files */
	long long line;
	int64_t us;
	const char *ts, *rule, *op, *call, *dest, *err, *reason, *from, *to;
	long long n;                  /* the attempt's number, 0 none */
	long long attempt, failures;  /* -1 none */
	double delay_ms, elapsed_ms;  /* < 0 none */
	int observe, injected;
};

/* A `calls` event: what observe mode measured of one rule, op and destination. */
struct bw_fx_calls {
	int proc;
	const char *rule, *op, *dest;
	long long calls, failures, peak_1s, active_s;
	int64_t first_us, last_us;
	double max_ms;
	long long hist[BW_FX_BUCKETS];
	double le_ms[BW_FX_BUCKETS - 1];
	int n_le;
};

struct bw_fx {
	const char **files;
	size_t n_files;
	struct bw_fx_proc *procs;
	size_t n_procs, cap_procs;
	struct bw_fx_ev *evs;
	size_t n_evs, cap_evs;
	struct bw_fx_calls *calls;
	size_t n_calls, cap_calls;
	/* pid -> its latest process, open addressing */
	long long *pid_keys;
	int *pid_vals;
	size_t cap_pids, n_pids;
	char **strs;                  /* every string the model owns */
	size_t n_strs, cap_strs;
	int linked;                   /* fx_link ran */
};

void bw_fx_init(struct bw_fx *m);
void bw_fx_free(struct bw_fx *m);
/* A copy the model frees (NULL stays NULL). */
const char *bw_fx_str(struct bw_fx *m, const char *s);
/* A new file: later lines are its. */
void bw_fx_file(struct bw_fx *m, const char *name);
/* Work out each process's parent and run (processes linked by their start events' ppid:
 * a tree started by one command is one run). Idempotent. */
void bw_fx_link(struct bw_fx *m);
int bw_fx_kind_of(const char *event);
const char *bw_fx_kind_name(enum bw_fx_kind k);

/* ---- fx_read.c: one decoded line (a jansson object, as void * so that only the readers
 * know jansson) ---- */
void bw_fx_add_json(struct bw_fx *m, const void *json, long long line);

/* ---- fx_replay.c ---- */
struct bw_replay_opts {
	const struct bw_config *base;  /* -c FILE: the policy the replay rules join, or NULL */
	const char *base_path;
	long long pid;                 /* --pid: the run with this process; 0: the last run
					* with failures */
};
/* The replay policy on out; messages on stderr. 0, or 1 when there is nothing to replay
 * (the policy then says so, and loads, with no rule). */
int bw_fx_replay(struct bw_fx *m, const struct bw_replay_opts *o, FILE *out);

/* ---- report_html.c ---- */
int bw_report_print_html(struct bw_report *r, struct bw_fx *m, FILE *out);

/* ---- shared text helpers (fx.c) ---- */
/* A YAML double-quoted scalar, quotes included. */
void bw_fx_yaml_str(FILE *out, const char *s);
/* s for a one-line comment: control characters become '?'. */
void bw_fx_comment_text(FILE *out, const char *s);
/* A duration in the policy's units, rounded up to 1, 2 or 5 times a power of ten
 * milliseconds ("250ms", "2s", "500ms"); us > 0. */
void bw_fx_nice_dur(char *buf, size_t cap, int64_t us);
int64_t bw_fx_nice_up_us(int64_t us);
/* The library's op name as its number, -1 if unknown. */
int bw_fx_op(const char *name);

#endif
