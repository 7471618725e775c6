/* The Prometheus text exposition format, as read by node_exporter's textfile collector. */
#ifndef BW_PROMOUT_H
#define BW_PROMOUT_H

#include <stdio.h>

/* A quoted label value: backslash, double quote and line feed escaped, nothing else. */
void bw_prom_label(FILE *out, const char *s);
/* The # HELP and # TYPE lines that must precede a family's samples. */
void bw_prom_family(FILE *out, const char *name, const char *type, const char *help);

#endif
