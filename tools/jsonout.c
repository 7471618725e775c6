/* jansson calls that either succeed or end the command. */
#include <stdio.h>
#include <stdlib.h>
#include "jsonout.h"

static const char *who = "bulwark";
static int oom_status = 1;

void bw_js_on_oom(const char *name, int status)
{
	who = name;
	oom_status = status;
}

static void oom(void)
{
	fprintf(stderr, "%s: out of memory\n", who);
	exit(oom_status);
}

void bw_js_set(json_t *obj, const char *key, json_t *v)
{
	if (!v || json_object_set_new(obj, key, v) != 0)
		oom();
}

void bw_js_push(json_t *arr, json_t *v)
{
	if (!v || json_array_append_new(arr, v) != 0)
		oom();
}

json_t *bw_js_obj(void)
{
	json_t *o = json_object();
	if (!o)
		oom();
	return o;
}

json_t *bw_js_arr(void)
{
	json_t *a = json_array();
	if (!a)
		oom();
	return a;
}

int bw_js_dump(json_t *root, FILE *out)
{
	/* insertion order is kept (JSON_PRESERVE_ORDER); 15 digits print 0.1 as 0.1 */
	int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
			    JSON_REAL_PRECISION(15));
	fputc('\n', out);
	json_decref(root);
	return rc == 0 ? 0 : -1;
}
