/* Parsers for the units a policy file uses: durations, call and byte rates, ratios. */
#ifndef BW_UNITS_H
#define BW_UNITS_H

#include "config.h"

/* Each returns 0 on success, or -1 with a human message in err (cap bytes). */
int bw_parse_duration(const char *s, bw_usec *out, char *err, size_t cap);
/* "50/s", "600/min", "10/h" -> per second; bytes set to 0. "512KiB/s", "1MiB/s", "100KB/s",
 * "64B/s" -> bytes per second, bytes set to 1. */
int bw_parse_rate(const char *s, double *per_sec, int *bytes, char *err, size_t cap);
/* "50%" or "0.5" -> 0.5; must be within [0, 1]. */
int bw_parse_ratio(const char *s, double *out, char *err, size_t cap);

/* Shortest exact rendering of a duration with a unit ("250ms", "1.5s", "2m"). */
void bw_format_duration(bw_usec us, char *buf, size_t cap);
void bw_format_rate(double per_sec, int bytes, char *buf, size_t cap);

#endif
