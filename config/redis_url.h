/* The address of the fleet's Redis, as `state.redis` writes it. */
#ifndef BW_REDIS_URL_H
#define BW_REDIS_URL_H

#include <stddef.h>
#include "config.h"

/* "redis://HOST[:PORT][/DB]" (HOST an IPv4 address, [IPv6] or localhost; PORT 6379 and DB
 * 0 when left out) or "unix:/PATH[?db=N]". Sets f's family, addr, port, db and
 * unix_path (allocated); -1 with why in err. A host name would need a lookup in the
 * program's process, which the syncer does not make (docs/design.md §6.1). */
int bw_parse_redis_url(const char *s, struct bw_fleet *f, char *err, size_t cap);

/* The default quorum for a fleet of `hosts`: 2 hosts or 10 %, whichever is more, never
 * more than the fleet. Or the quorum the policy names. */
int bw_fleet_quorum(const struct bw_fleet *f);

#endif
