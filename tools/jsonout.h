/* Building JSON documents with jansson for the tool's machine-readable formats.
 * jansson reports allocation failures through return values; a half-built document must
 * not be printed as if it were complete, so these exit instead (with `status` the exit
 * code, so a health check reads it as unknown). */
#ifndef BW_JSONOUT_H
#define BW_JSONOUT_H

#include <stdio.h>
#include <jansson.h>

void bw_js_on_oom(const char *who, int status);
void bw_js_set(json_t *obj, const char *key, json_t *v);
void bw_js_push(json_t *arr, json_t *v);
json_t *bw_js_obj(void);
json_t *bw_js_arr(void);
/* Print root indented, in insertion order, with a final newline, and free it. 0 or -1. */
int bw_js_dump(json_t *root, FILE *out);

#endif
