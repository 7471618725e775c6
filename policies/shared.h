/* State shared by a process tree (SPEC 3.9, `state: { share: group }`): breakers and
 * buckets live in one memory-mapped file that every process of the group maps. This is
 * its layout, and the pure functions that lay it out and check it; opening, mapping and
 * removing the file is the shim's business, reading it for `bulwark status` the tool's.
 *
 * File: [header][procs: BW_SHM_PROCS x bw_shm_proc][rules: n x bw_shm_rule]
 *       then per rule with dest-scoped state: its bw_keyed entries, then its set locks.
 * All offsets are from the start of the file. Locks hold the pid of their holder, so a
 * lock left by a process that died can be taken over. */
#ifndef BW_SHARED_H
#define BW_SHARED_H

#include <stddef.h>
#include <stdint.h>
#include "engine.h"

#define BW_SHM_MAGIC 0x6277736bu       /* "bwsk"; written last, when the file is ready */
#define BW_SHM_VERSION 1
#define BW_SHM_PROCS 256

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
};

struct bw_shm_proc {
	int32_t pid;                       /* 0: free */
	int32_t pad;
	int64_t started_us;
	char prog[32];
};

struct bw_shm_rule {
	char name[BW_NAME_MAX];
	int32_t lock;                      /* guards `whole` */
	int32_t sets;                      /* keyed sets; 0: no dest-scoped state */
	uint64_t dests_off, locks_off;
	struct bw_dest_state whole;
};

/* The state directory: state.dir, else $XDG_RUNTIME_DIR/bulwark, else /tmp/bulwark-UID
 * (xdg may be NULL). */
void bw_state_dir(const struct bw_config *cfg, const char *xdg, unsigned uid, char *buf,
		  size_t cap);

/* Bytes a file for this policy needs. */
size_t bw_shm_size(const struct bw_config *cfg);
/* Lay out a zeroed region for cfg; the magic is stored last. */
void bw_shm_format(void *mem, size_t size, const struct bw_config *cfg, const char *group,
		   const char *policy, int64_t now_us);
/* 0 when mem holds a ready state file laid out for this policy (same rules, same order). */
int bw_shm_check(const void *mem, size_t size, const struct bw_config *cfg);

static inline struct bw_shm_proc *bw_shm_procs(void *mem)
{
	return (struct bw_shm_proc *)((char *)mem + ((struct bw_shm_header *)mem)->procs_off);
}

static inline struct bw_shm_rule *bw_shm_rules(void *mem)
{
	return (struct bw_shm_rule *)((char *)mem + ((struct bw_shm_header *)mem)->rules_off);
}

/* Point the engine's breakers and buckets at the shared file (its counters stay per
 * process). `self` is this process's pid, used as the lock value; alive(pid) tells
 * whether a lock's holder still exists. */
void bw_engine_share(struct bw_engine *e, void *mem, long self, int (*alive)(long pid));

/* Walk every dest-scoped entry of rule i in a mapped file (for `bulwark status`). */
void bw_shm_each_dest(void *mem, int rule,
		      void (*fn)(const struct bw_dest_state *st, void *arg), void *arg);

#endif
