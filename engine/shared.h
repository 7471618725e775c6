/* State shared by a process tree (`state: { share: group }`): breakers and buckets live
 * in one memory-mapped file that every process of the group maps. This is its layout, its
 * naming, and the pure functions that lay it out and check it; opening, mapping and
 * removing the file is the shim's business, reading it for `bulwark status` the tool's.
 *
 * File: [header][procs: BW_SHM_PROCS x bw_shm_proc][rules: n x bw_shm_rule]
 *       then per rule with dest-scoped state: its bw_keyed entries, then its set locks.
 * All offsets are from the start of the file, each block on a 64-byte boundary, in that
 * order and nowhere else: a reader can tell a damaged file from the offsets alone. Locks
 * hold the pid of their holder, so a lock left by a process that died can be taken over. */
#ifndef BW_SHARED_H
#define BW_SHARED_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include "engine.h"

#define BW_SHM_MAGIC 0x6277736bu       /* "bwsk"; written last, when the file is ready */
/* 2: the reload count in the header; a bucket's burst and a breaker's stamp in each cell.
 * 3: a bulkhead and a throttle in each cell, slow calls in the breaker's window, in
 *    each process's slot the ledger of the bulkhead slots it holds, and each rule's
 *    metrics. */
#define BW_SHM_VERSION 3
#define BW_SHM_PROCS 256
/* Distinct bulkhead cells one process can hold slots of; beyond, its slots go uncounted. */
#define BW_SHM_HELD 64

struct bw_shm_header {
	uint32_t magic, version;
	uint64_t size;
	uint32_t n_rules, n_procs;
	int64_t created_us;                /* wall clock */
	char group[64];
	char policy[256];
	int32_t lock;                      /* guards the process table */
	uint32_t entry_size;               /* bytes of one keyed entry: header + value */
	uint64_t procs_off, rules_off;
	/* Bumped by `bulwark reload`: every process of the group reads its policy file
	 * again when it sees the count change (atomic). */
	uint64_t reloads;
};

/* n bulkhead slots of the cell at offset `cell` of the file (0: an unused entry). Written
 * only under that cell's lock, by the process whose ledger it is, or by one that found
 * that process dead: so a cell's count can always be made again, exactly, from the
 * ledgers of the processes still alive (design.md §6). */
struct bw_shm_held {
	uint32_t cell;
	int32_t n;
};

struct bw_shm_proc {
	int32_t pid;                       /* 0: free */
	uint32_t start_ticks;              /* its start, clock ticks after boot, low 32 bits;
					    * 0: not known */
	int64_t started_us;
	char prog[32];
	struct bw_shm_held held[BW_SHM_HELD];
};

/* Metrics of a rule for `bulwark metrics` (bulwark(1), METRICS): counters that only ever
 * grow while the group lives, added to with atomic adds and no lock, so that a process
 * killed at any point leaves them whole. stats are the exit event's counters
 * (enum bw_stat), which each process adds what it counted since it last did
 * (bw_engine_flush): at exit, and about once a second while it makes calls. The
 * destination rows count the calls the retry driver carries (bw_engine_run), with their
 * time: the first BW_MET_DESTS destinations a row each, claimed by key, every other one
 * in the last row, so that a scrape stays small whatever the program connects to. */
#define BW_MET_DESTS 16
#define BW_MET_BUCKETS 12            /* finite histogram bounds (bw_met_bounds_us) */
struct bw_shm_met_dest {
	uint64_t key;                    /* 0: free; set once, then the label is written */
	char label[BW_LABEL_MAX];
	uint64_t calls, failed;          /* failed: the call returned an error */
	uint64_t le[BW_MET_BUCKETS + 1]; /* calls within bound i and above bound i - 1; the
					  * last: above every bound */
	uint64_t sum_us;
};

struct bw_shm_met {
	uint64_t stats[BW_ST_COUNT];
	struct bw_shm_met_dest dest[BW_MET_DESTS + 1];
};

extern const int64_t bw_met_bounds_us[BW_MET_BUCKETS];

/* One call of duration us (failed or not) in the row of key (label names it when the row
 * is new). */
void bw_met_call(struct bw_shm_met *m, uint64_t key,
		 void (*label)(const void *arg, char *buf, size_t cap), const void *arg,
		 int64_t us, int failed);

struct bw_shm_rule {
	char name[BW_NAME_MAX];
	int32_t lock;                      /* guards `whole` */
	int32_t sets;                      /* keyed sets; 0: no dest-scoped state */
	uint64_t dests_off, locks_off;
	struct bw_dest_state whole;
	struct bw_shm_met met;
};

/* Names: BW_STATE_SUFFIX, BW_GROUP_MAX and BW_STATE_DIR_MAX are in config.h. */

/* The state directory: state.dir, else $XDG_RUNTIME_DIR/bulwark, else /tmp/bulwark-UID
 * (xdg may be NULL). -1, with buf empty, when it is longer than BW_STATE_DIR_MAX or cap. */
int bw_state_dir(const struct bw_config *cfg, const char *xdg, unsigned uid, char *buf,
		 size_t cap);
/* The group's name: `named` (BULWARK_GROUP) when set, else one made from the policy's
 * path and uid, and then *own is set (no one named the group: its processes clean up
 * after themselves). -1 when `named` is longer than BW_GROUP_MAX; a name with a '/' is no
 * file name and falls back to the policy's. */
int bw_group_name(const struct bw_config *cfg, const char *named, unsigned uid, char *buf,
		  size_t cap, int *own);
/* <dir>/<group>.state; -1 (buf empty) when it does not fit. */
int bw_state_path(const char *dir, const char *group, char *buf, size_t cap);

/* Bytes a file for this policy needs. */
size_t bw_shm_size(const struct bw_config *cfg);
/* Lay out a zeroed region for cfg, all but the magic. */
void bw_shm_format(void *mem, size_t size, const struct bw_config *cfg, const char *group,
		   const char *policy, int64_t now_us);
/* Store the magic: the file is ready for others to map. */
void bw_shm_publish(void *mem);
/* Why the size bytes at mem cannot be read as a state file of this version, or NULL.
 * Every offset and count is checked against the file's size and against the place the
 * layout gives it, so that a reader that trusts the file after this never reads outside
 * it. Shared by the library (before it maps a file into a program) and `bulwark status`. */
const char *bw_shm_verify(const void *mem, size_t size);
/* 0 when mem holds a ready state file laid out for this policy (same rules, same order,
 * same tables), checked whole with bw_shm_verify first. */
int bw_shm_check(const void *mem, size_t size, const struct bw_config *cfg);

/* Where the process table is in every file of this version (header checks compare). */
size_t bw_shm_procs_offset(void);

/* From the text of /proc/PID/stat: the process's state letter and its start time in
 * clock ticks after boot. -1 when the text is not that. */
int bw_proc_stat_parse(const char *text, char *state, unsigned long long *start_ticks);

static inline struct bw_shm_proc *bw_shm_procs(void *mem)
{
	return (struct bw_shm_proc *)((char *)mem + ((struct bw_shm_header *)mem)->procs_off);
}

static inline struct bw_shm_rule *bw_shm_rules(void *mem)
{
	return (struct bw_shm_rule *)((char *)mem + ((struct bw_shm_header *)mem)->rules_off);
}

#endif
