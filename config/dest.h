/* Destinations as a policy names them: "host:port", "1.2.3.4:80", "[::1]:6379",
 * "10.0.0.0/8", "*:443", "unix:/run/app/NAME.sock" (globs allowed). */
#ifndef BW_DEST_H
#define BW_DEST_H

#include <stddef.h>
#include "config.h"

/* Returns 0, or -1 with a message naming what was expected. Strings in d are malloc'ed.
 * Forms: "host:port" and "host" (any port; host may be a glob), "1.2.3.4", "1.2.3.4:80",
 * "10.0.0.0/8", "10.0.0.0/8:5432", "[::1]:6379", "[fd00::/8]", "[fd00::/8]:*", bare
 * "::1" or "fd00::/8" (any port), "*:443", "*", "unix:GLOB". Ports: 1..65535 or "*". */
int bw_dest_parse(const char *s, struct bw_dest *d, char *err, size_t cap);
void bw_dest_free(struct bw_dest *d);
/* 1 if d names exactly one endpoint (no glob, no CIDR range, a port): what fallback needs. */
int bw_dest_concrete(const struct bw_dest *d);

#endif
