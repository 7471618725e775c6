/* Diagnostics, and typed access to the nodes of a YAML document. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "config_int.h"
#include "units.h"
#include "vocab.h"

void cf_error(struct cf_loader *l, struct cf_mark at, const char *fmt, ...)
{
	struct bw_diags *dg = l->dg;
	if (dg->n++ >= BW_MAX_DIAGS)   /* keep counting what is not kept */
		return;
	struct bw_diag *d = &dg->d[dg->n - 1];
	snprintf(d->file, sizeof d->file, "%s", l->file);
	d->line = at.line;
	d->col = at.col;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof d->msg, fmt, ap);
	va_end(ap);
}

void bw_diag_format(const struct bw_diag *d, char *buf, size_t cap)
{
	if (d->line > 0)
		snprintf(buf, cap, "%s:%d:%d: %s", d->file, d->line, d->col, d->msg);
	else
		snprintf(buf, cap, "%s: %s", d->file, d->msg);
}

struct cf_mark cf_mark_of(const yaml_node_t *n)
{
	struct cf_mark m = { (int)n->start_mark.line + 1, (int)n->start_mark.column + 1 };
	return m;
}

yaml_node_t *cf_node(struct cf_loader *l, int index)
{
	return yaml_document_get_node(&l->doc, index);
}

static int is_null(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

const char *cf_text(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && !is_null(n) ? (const char *)n->data.scalar.value
							  : NULL;
}

/* What a node is, for "got ...": numbers bare, other text quoted. */
static const char *describe(const yaml_node_t *n, char *buf, size_t cap)
{
	const char *s = cf_text(n);
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return s ? bw_quote_value(s, buf, cap) : "nothing";
}

void cf_expected(struct cf_loader *l, const yaml_node_t *n, const char *path, const char *what)
{
	char got[64];
	cf_error(l, cf_mark_of(n), "%s: expected %s, got %s", path, what,
		 describe(n, got, sizeof got));
}

/* A path for messages; the top level has none. */
static void prefixed(char *buf, size_t cap, const char *path)
{
	snprintf(buf, cap, "%s%s", path, *path ? ": " : "");
}

int cf_map(struct cf_loader *l, yaml_node_t *n, const char *path, const char *const *keys,
	   yaml_node_t **kn, yaml_node_t **vn)
{
	char pre[CF_PATH_MAX + 2], all[256];
	for (int i = 0; keys[i]; i++)
		kn[i] = vn[i] = NULL;
	if (n->type != YAML_MAPPING_NODE) {
		cf_expected(l, n, *path ? path : "the policy", "a mapping");
		return -1;
	}
	prefixed(pre, sizeof pre, path);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = cf_node(l, p->key), *v = cf_node(l, p->value);
		const char *name = cf_text(k);
		int i = name ? bw_name_index(keys, name) : -1;
		if (!name) {
			cf_error(l, cf_mark_of(k), "%skeys must be plain names", pre);
		} else if (strcmp(name, "<<") == 0) {
			cf_error(l, cf_mark_of(k), "%sYAML merge keys (<<) are not supported; put "
				 "shared settings under defaults", pre);
		} else if (i < 0) {
			bw_join_names(keys, all, sizeof all);
			cf_error(l, cf_mark_of(k), "%sunknown key '%s'; expected one of %s", pre, name,
				 all);
		} else if (kn[i]) {
			cf_error(l, cf_mark_of(k), "%sduplicate key '%s' (first at line %d)", pre, name,
				 cf_mark_of(kn[i]).line);
		} else {
			kn[i] = k;
			vn[i] = v;
		}
	}
	return 0;
}

const char *cf_scalar(struct cf_loader *l, yaml_node_t *n, const char *path, const char *what)
{
	const char *s = cf_text(n);
	if (!s)
		cf_expected(l, n, path, what);
	return s;
}

static int parse_long(const char *s, long *out)
{
	int neg = *s == '-';
	long v = 0;
	if (neg)
		s++;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (__LONG_MAX__ - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

int cf_int(struct cf_loader *l, yaml_node_t *n, const char *path, long lo, long hi, long *out)
{
	char what[64];
	const char *s = cf_text(n);
	long v;
	snprintf(what, sizeof what, "an integer from %ld to %ld", lo, hi);
	if (!s || parse_long(s, &v) < 0 || v < lo || v > hi) {
		cf_expected(l, n, path, what);
		return -1;
	}
	*out = v;
	return 0;
}

int cf_bool(struct cf_loader *l, yaml_node_t *n, const char *path, int *out)
{
	static const char *const t[] = { "true", "True", "TRUE", NULL };
	static const char *const f[] = { "false", "False", "FALSE", NULL };
	const char *s = cf_text(n);
	if (s && bw_name_index(t, s) >= 0)
		*out = 1;
	else if (s && bw_name_index(f, s) >= 0)
		*out = 0;
	else {
		cf_expected(l, n, path, "true or false");
		return -1;
	}
	return 0;
}

int cf_enum(struct cf_loader *l, yaml_node_t *n, const char *path, const char *const *names,
	    int *out)
{
	char all[160], what[180], err[256];
	const char *s = cf_text(n);
	if (!s) {
		bw_join_names(names, all, sizeof all);
		snprintf(what, sizeof what, "one of %s", all);
		cf_expected(l, n, path, what);
		return -1;
	}
	if (bw_parse_name(s, names, out, err, sizeof err) < 0) {
		cf_error(l, cf_mark_of(n), "%s: %s", path, err);
		return -1;
	}
	return 0;
}

int cf_duration(struct cf_loader *l, yaml_node_t *n, const char *path, bw_usec *out)
{
	char err[160];
	const char *s = cf_scalar(l, n, path, "a duration like 250ms");
	if (!s)
		return -1;
	if (bw_parse_duration(s, out, err, sizeof err) < 0) {
		cf_error(l, cf_mark_of(n), "%s: %s", path, err);
		return -1;
	}
	if (*out == 0) {   /* every duration a policy names must be positive */
		cf_error(l, cf_mark_of(n), "%s: expected a duration greater than 0, got %s", path, s);
		return -1;
	}
	return 0;
}

int cf_ratio(struct cf_loader *l, yaml_node_t *n, const char *path, int positive, double *out)
{
	char err[160];
	const char *s = cf_scalar(l, n, path, "a ratio like 50% or 0.5");
	if (!s)
		return -1;
	if (bw_parse_ratio(s, out, err, sizeof err) < 0) {
		cf_error(l, cf_mark_of(n), "%s: %s", path, err);
		return -1;
	}
	if (positive && *out == 0) {
		cf_error(l, cf_mark_of(n), "%s: expected a ratio greater than 0, up to 100%%, got %s",
			 path, s);
		return -1;
	}
	return 0;
}

int cf_list(struct cf_loader *l, yaml_node_t *n, const char *path, struct cf_list *out)
{
	if (n->type == YAML_SEQUENCE_NODE) {
		out->items = n->data.sequence.items.start;
		out->n = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
		return 0;
	}
	if (!cf_text(n)) {
		cf_expected(l, n, path, "a list or a single value");
		return -1;
	}
	out->one = (yaml_node_item_t)(n - l->doc.nodes.start) + 1;
	out->items = &out->one;
	out->n = 1;
	return 0;
}

yaml_node_t *cf_list_at(struct cf_loader *l, const struct cf_list *ls, int i)
{
	return cf_node(l, ls->items[i]);
}

void cf_sub(char *buf, const char *path, const char *key)
{
	snprintf(buf, CF_PATH_MAX, "%s.%s", path, key);
}

void cf_index(char *buf, const char *path, int i)
{
	snprintf(buf, CF_PATH_MAX, "%s[%d]", path, i);
}

/* "x.ops[2]" for an item of a real list, "x.ops" for a lone scalar. */
void cf_item_path(char *buf, const char *path, const struct cf_list *ls, int i)
{
	if (ls->items == &ls->one)
		snprintf(buf, CF_PATH_MAX, "%s", path);
	else
		cf_index(buf, path, i);
}
