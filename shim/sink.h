/* Where events go: stderr, a file, or syslog. The library's own descriptors are guarded
 * against a host that closes or reuses every descriptor: an event is never written into a
 * descriptor that is no longer ours. */
#ifndef BW_SINK_H
#define BW_SINK_H

#include <stddef.h>
#include "config.h"

/* Open the sink; path for BW_SINK_FILE, facility for syslog. 0, or -1 (events dropped). */
int bw_sink_open(enum bw_sink_kind kind, const char *path, int facility);
void bw_sink_write(enum bw_level lvl, const char *line, size_t len);
/* Where events go now: the kind opened, or stderr when that could not be opened. */
enum bw_sink_kind bw_sink_kind(void);

/* Descriptor hooks consult these before closing or replacing a descriptor. */
int bw_sink_owns(int fd);
/* Our descriptor, or -1. */
int bw_sink_fd(void);
/* `fd` is about to be replaced (dup2/dup3 target): move our descriptor out of the way. */
void bw_sink_evict(int fd);

/* In a forked child: writers counted in other threads are gone. */
void bw_sink_after_fork(void);

#endif
