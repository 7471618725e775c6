/* Parsers for the values a policy file writes as text: durations, call and byte rates,
 * sizes, ratios, and the settings the environment and `bulwark run` may also give (sink,
 * enumerations, seed), so that both read them alike. */
#ifndef BW_UNITS_H
#define BW_UNITS_H

#include <stdint.h>
#include "config.h"

/* Each returns 0 on success, or -1 with a human message in err (cap bytes). */
int bw_parse_duration(const char *s, bw_usec *out, char *err, size_t cap);
/* "50/s", "600/min", "10/h" -> per second; bytes set to 0. "512KiB/s", "1MiB/s", "100KB/s",
 * "64B/s" -> bytes per second, bytes set to 1. */
int bw_parse_rate(const char *s, double *per_sec, int *bytes, char *err, size_t cap);
/* A byte count: "64KiB", "100KB", "1.5MiB", "512B" -> bytes, sized set to 1; a plain
 * number ("4096") -> that number, sized set to 0. The units are those of byte rates. */
int bw_parse_size(const char *s, double *out, int *sized, char *err, size_t cap);
/* "50%" or "0.5" -> 0.5; must be within [0, 1]. */
int bw_parse_ratio(const char *s, double *out, char *err, size_t cap);
/* A plain decimal ("2", "1.5"): no sign, no exponent, independent of the locale. */
int bw_parse_number(const char *s, double *out, char *err, size_t cap);

/* One of a NULL-terminated list of names (vocab.h) -> its index. */
int bw_parse_name(const char *s, const char *const *names, int *out, char *err, size_t cap);
/* A log sink: stderr, syslog or file:PATH; for a file, *path points at PATH inside s. */
#define BW_SINK_WHAT "stderr, syslog or file:PATH"
int bw_parse_sink(const char *s, enum bw_sink_kind *kind, const char **path, char *err,
		  size_t cap);
/* A seed: decimal digits only, 0 to 2^64-1 (0: a random one). */
#define BW_SEED_WHAT "an integer from 0 to 18446744073709551615 (0: random)"
int bw_parse_seed(const char *s, uint64_t *out, char *err, size_t cap);

/* How messages show a value after "got": a number bare, other text quoted and cut short. */
const char *bw_quote_value(const char *s, char *buf, size_t cap);
/* "a, b, c": the names of a NULL-terminated list. */
void bw_join_names(const char *const *names, char *buf, size_t cap);

/* Shortest exact rendering in a unit the value reaches ("250ms", not "0.25s"; "1.5s", "2m"). */
void bw_format_duration(bw_usec us, char *buf, size_t cap);
/* Shortest rendering that parses back to the same value ("10/s", "512KiB/s"). */
void bw_format_rate(double per_sec, int bytes, char *buf, size_t cap);
/* Shortest rendering with a unit that parses back to the same value ("64KiB", "1500B"). */
void bw_format_size(double bytes, char *buf, size_t cap);
/* As a percentage that parses back to the same value ("20%", "12.5%"). */
void bw_format_ratio(double r, char *buf, size_t cap);
/* As bw_parse_number reads it ("2", "1.5"). */
void bw_format_number(double v, char *buf, size_t cap);

/* Shared by the small parsers: format a message into err and return -1. */
int bw_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int bw_is_digit(char c) { return c >= '0' && c <= '9'; }

#endif
