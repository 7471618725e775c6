/* `state: { share: fleet }` (docs/design.md §6.1): one process of each group, elected by a
 * lock beside the group's state file, refills the group's fleet buckets from Redis in a
 * thread of its own. The program's calls never wait for it. */
#ifndef BW_FLEET_H
#define BW_FLEET_H

#include "engine.h"

/* After the group was joined: start this process's candidate thread, which waits for the
 * leadership and then syncs. No-op unless the policy says share: fleet. */
void bw_fleet_start(struct bw_engine *e);
/* In a forked child (one thread): the parent's connection and lock are not the child's;
 * their descriptors are closed (never shut down: the parent still uses them), and the
 * child stands for election again at its next bw_fleet_tick. */
void bw_fleet_after_fork(void);
/* From the slow paths, about once a second (never in a signal handler): start a child's
 * candidate thread when due. */
void bw_fleet_tick(void);
/* A policy read again: fleet buckets only where a syncer runs (state keeps the settings
 * it started with, bulwark.yaml(5) RELOAD). */
void bw_fleet_settle(struct bw_config *cfg);
/* A child waits for its candidate thread (cheap: one load). */
int bw_fleet_wants_thread(void);

#endif
