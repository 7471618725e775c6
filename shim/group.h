/* `state: { share: group }`: map the group's state file and point the engine at it. */
#ifndef BW_GROUP_H
#define BW_GROUP_H

#include "engine.h"

/* Join (or create, or replace a dead group's) state file. 0 on success; -1 (with one
 * warning event saying why) when the state cannot be shared, and the process then keeps
 * its own. */
int bw_group_join(struct bw_engine *e, const struct bw_config *cfg);
/* In a forked child: take a process slot of its own. */
void bw_group_after_fork(struct bw_engine *e);
/* How many times `bulwark reload` asked the group to reload (0 outside a group). */
uint64_t bw_group_reloads(void);
/* At exit: give back the bulkhead slots the process holds and give up its slot in the
 * table; the last process of a group named after its policy removes the file. */
void bw_group_leave(struct bw_engine *e);
/* "<state dir>/<group><suffix>" (a file beside the group's state file, for fleet mode),
 * and the group's name: 0, or -1 outside a group or when it does not fit. */
int bw_group_sibling(const char *suffix, char *buf, size_t cap, char *group, size_t gcap);

#endif
