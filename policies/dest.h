/* Destinations as a policy names them: "host:port", "1.2.3.4:80", "[::1]:6379",
 * "10.0.0.0/8", "*:443", "unix:/run/app/*.sock". */
#ifndef BW_DEST_H
#define BW_DEST_H

#include <stddef.h>
#include "config.h"

/* Returns 0, or -1 with a message naming what was expected. Strings in d are malloc'ed. */
int bw_dest_parse(const char *s, struct bw_dest *d, char *err, size_t cap);
void bw_dest_free(struct bw_dest *d);

#endif
