/* `bulwark status` (bulwark(1), STATUS): the breakers and buckets a process tree shares, read from
 * the group state files the library maps. status_read.c finds the files, reads each
 * whole with pread (a file cut short under a mapping would raise SIGBUS) and
 * copies what it needs into the structures below (a snapshot: nothing is
 * locked, a writer may be half-way through an update, so every figure is a moment's
 * reading); status_table.c, status_json.c and status_prom.c print the snapshot, and
 * cmd_status.c is the subcommand. Only status_json.c knows about jansson. */
#ifndef BW_STATUS_MODEL_H
#define BW_STATUS_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "shared.h"

/* The health of a destination, a group, and all of them, ordered as the exit status
 * (the usual health-check convention, bulwark(1) EXIT STATUS). */
enum bw_health { BW_HEALTHY, BW_DEGRADED, BW_UNHEALTHY, BW_UNKNOWN };

const char *bw_health_name(enum bw_health h);
/* Of breakers counted by position (enum bw_brk_pos): healthy when every one is closed
 * (or there is none), unhealthy when every one is open, degraded otherwise. */
enum bw_health bw_health_of(const long breakers[3]);

struct bw_st_proc {
	long pid;
	uint32_t start_ticks;         /* as the library wrote it; 0: not known */
	int64_t started_us;           /* wall clock, as the library wrote it */
	char prog[40];                /* cleaned: valid UTF-8, no control characters */
	int alive;
};

/* One rule-and-destination line: a dest-scoped entry of the keyed table, or the rule's
 * own (`whole`) state when it was ever used. */
struct bw_st_dest {
	int rule;                     /* index in bw_st_group.rules */
	int whole;                    /* 1: the rule-scoped state, shown as "(rule)" */
	char dest[64];                /* cleaned label; "?" when the library set none */

	int has_breaker;              /* the policy gives it one, or (no policy) it was used */
	int pos;                      /* enum bw_brk_pos; -1 when not a known position */
	int consecutive;
	int window_known;             /* the policy gave the rate window's length */
	long window_fails, window_calls;  /* within the window (all slots when unknown) */
	int64_t open_for_us;          /* open: how long it stays open this time */
	int64_t open_left_us;         /* open: until a call may probe (<= 0: due now) */

	int has_bucket;
	int bucket_known;             /* rate and burst known: tokens refilled to now */
	double tokens;                /* now (bucket_known) or as stored */
	int64_t tokens_age_us;        /* since the stored figure was written; -1: never */
	double rate, burst;           /* bucket_known only */
	int bytes;                    /* bucket_known: the bucket counts bytes */

	enum bw_health health;        /* by breaker; BW_UNKNOWN when it has none */

	int has_bulk;                 /* a bulkhead: the policy's, or slots were taken */
	long in_use, bulk_max;        /* slots held now; the max they were taken under */
};

/* A rule's metrics row of one destination (engine/shared.h bw_shm_met_dest). */
struct bw_st_met {
	char dest[64];                /* cleaned; "other" for the row of the rest */
	uint64_t calls, failed, sum_us;
	uint64_t le[BW_MET_BUCKETS + 1];
};

struct bw_st_rule {
	char name[72];                /* cleaned */
	uint64_t stats[BW_ST_COUNT];  /* the group's counters (bw_shm_met.stats) */
	struct bw_st_met met[BW_MET_DESTS + 1];
	int n_met;                    /* rows used, "other" last when used */
};

struct bw_st_group {
	char *file;                   /* path of the state file */
	char group[72];               /* cleaned; the header's, else the file's name */
	char policy[264];             /* cleaned; "" when the header names none */
	int policy_loaded;            /* the policy was read and matches the file */
	int64_t created_us;           /* wall clock */

	struct bw_st_proc *procs;     /* every slot in use, by pid */
	size_t n_procs, alive;
	struct bw_st_rule *rules;
	size_t n_rules;
	struct bw_st_dest *dests;     /* rule order; within a rule "(rule)" first, then by name */
	size_t n_dests;

	int live;                     /* at least one process alive */
	long breakers[3];             /* by enum bw_brk_pos */
	enum bw_health health;        /* BW_HEALTHY when it has no breaker */
};

struct bw_status {
	char dir[4096];
	const char *want;             /* --group, or NULL */
	int dir_exists;
	int dir_error;                /* it exists but cannot be read */
	struct bw_st_group *groups;   /* sorted by group name; stale ones too */
	size_t n_groups, live, stale;
	long breakers[3];             /* of the live groups */
	enum bw_health health;        /* of the live groups; BW_UNKNOWN when none */
	int64_t now_wall_us, now_mono_us;    /* when the reading began */
};

/* ---- status_read.c ---- */
/* The state directory: dir when given, else the `auto` rule of bulwark.yaml(5) STATE:
 * $XDG_RUNTIME_DIR/bulwark when XDG_RUNTIME_DIR is set, else /tmp/bulwark-UID. */
int bw_status_dir(const char *given, char *out, size_t cap);
/* Read every *.state file of st->dir (st->dir set by the caller); with group non-NULL
 * only that group's. Files that are not ready state files are skipped with a note on
 * stderr. 0, or -1 when the directory exists but cannot be read (reported). */
int bw_status_read(struct bw_status *st, const char *group);
void bw_status_free(struct bw_status *st);
/* Wall-clock time of the boot, from /proc/stat; 0 when unknown. */
int64_t bw_st_boot_us(void);
/* Whether the process of a slot still runs (its pid not reused since, not a zombie). */
int bw_st_proc_alive(const struct bw_st_proc *p, int64_t boot_us);
/* The state file open at fd, read and checked as status reads a file: 1 when a process of
 * it is alive, 0 when all are gone, -1 (why says) when it is not a readable state file of
 * this version. */
int bw_st_fd_live(int fd, int64_t boot_us, const char **why);

/* ---- status_prune.c ---- */
/* --prune: remove the state files of st's stale groups (st read by bw_status_read), each
 * checked again under the lock the library joins a group under; one line on stdout per
 * file removed or kept. 0, or 1 when a file could not be removed or checked. */
int bw_status_prune(const struct bw_status *st);

/* ---- shared formatting helpers (status_read.c) ---- */
/* Text from a file or the command line (at most n bytes, NUL-terminated or not) as
 * valid UTF-8 without control characters: every other byte becomes '?'. Never longer
 * than the input; never cut inside a character. */
void bw_st_clean(char *dst, size_t cap, const char *src, size_t n);
/* RFC 3339, UTC, whole seconds: "2025-06-01T10:00:00Z"; "-" for 0. */
void bw_st_fmt_time(char *buf, size_t cap, int64_t wall_us);
/* A token count: "3.5", "120", "1.2M". */
void bw_st_fmt_tokens(char *buf, size_t cap, double v);

/* ---- the formats ---- */
int bw_status_print_table(const struct bw_status *st, FILE *out);
int bw_status_print_json(const struct bw_status *st, FILE *out);
int bw_status_print_prom(const struct bw_status *st, FILE *out);
/* `bulwark metrics` (bulwark(1), METRICS): the Prometheus families of status and the
 * groups' counters and call time histograms. */
int bw_metrics_print(const struct bw_status *st, FILE *out);
int bw_cmd_metrics(int argc, char **argv);
/* --fleet (status_fleet.c): the fleet syncers' views of st's live groups; returns the
 * exit status (0 every group syncing with Redis, 1 some not, 3 no group in fleet mode). */
int bw_status_print_fleet(const struct bw_status *st, int as_json, FILE *out);

int bw_cmd_status(int argc, char **argv);

#endif
