/* YAML text into a document of nodes, within bounds.
 *
 * libyaml's own loader (yaml_parser_load) has none, and every process that loads the
 * library reads the policy: an alias is one node reached from every place that names it,
 * and the loader walks and copies what it reaches at each of them, so a few hundred KB of
 * aliases cost gigabytes; libyaml's scanner spends time in proportion to the depth of
 * flow nesting on every token, so deep nesting is quadratic; and its anchors are looked up
 * one by one for each alias. This builds the same yaml_document_t from parser events,
 * stops at the first bound crossed with the position where it was crossed, and keeps the
 * anchors in a hash table. Nodes carry no tag: nothing reads one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "config_int.h"

struct anchor {
	char *name;
	int node;          /* 1-based node index */
	long size;         /* nodes it stands for, itself included; -1 while still open */
};

struct open_node {
	int node;
	long size;         /* nodes so far, itself included */
	int anchor;        /* index in anchors, or -1 */
};

struct composer {
	struct cf_loader *l;
	yaml_parser_t *p;
	struct open_node open[BW_POLICY_MAX_DEPTH];
	int depth;
	long nodes;        /* written: scalars, lists and mappings */
	long aliased;      /* nodes added by aliases, each use counted */
	struct anchor *anchors;
	int n_anchors, cap_anchors;
	int *table;        /* anchors index + 1; 0 is empty */
	unsigned table_cap;
	uint32_t seed;
};

static struct cf_mark at(yaml_mark_t m)
{
	struct cf_mark c = { (int)m.line + 1, (int)m.column + 1 };
	return c;
}

static int oom(struct composer *c)
{
	cf_error(c->l, (struct cf_mark){ 0, 0 }, "out of memory");
	return 0;
}

void cf_syntax_error(struct cf_loader *l, const yaml_parser_t *p)
{
	struct cf_mark where = at(p->problem_mark), none = { 0, 0 };
	const char *problem = p->problem ? p->problem : "unknown problem";
	if (p->error == YAML_MEMORY_ERROR)
		cf_error(l, none, "out of memory");
	else if (p->error == YAML_READER_ERROR)   /* no position, only a byte offset */
		cf_error(l, none, "cannot read as YAML: %s at byte %zu", problem, p->problem_offset);
	else if (p->context)
		cf_error(l, where, "syntax error: %s (%s at line %d)", problem, p->context,
			 (int)p->context_mark.line + 1);
	else
		cf_error(l, where, "syntax error: %s", problem);
}

/* Grows an array of n used elements of size sz to hold one more. */
static int room(void **start, size_t n, size_t *cap, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t want = *cap ? *cap * 2 : 4;
	void *p = realloc(*start, want * sz);
	if (!p)
		return -1;
	*start = p;
	*cap = want;
	return 0;
}

/* ---- anchors ---- */

uint32_t cf_hash(const char *s, uint32_t seed)
{
	uint32_t h = 2166136261u ^ seed;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Collisions are only as cheap to craft as the hash is to know: the seed comes from where
 * the stack lies, which address space randomisation changes from run to run. */
uint32_t cf_seed(void)
{
	uintptr_t a = (uintptr_t)__builtin_frame_address(0);
	return (uint32_t)a ^ (uint32_t)(a >> 16 >> 16);
}

/* The table slot that holds name, or the empty one where it would go. */
static int *slot(struct composer *c, const char *name)
{
	unsigned mask = c->table_cap - 1;
	for (unsigned i = cf_hash(name, c->seed) & mask;; i = (i + 1) & mask)
		if (!c->table[i] || strcmp(c->anchors[c->table[i] - 1].name, name) == 0)
			return &c->table[i];
}

static int grow_table(struct composer *c)
{
	unsigned old_cap = c->table_cap;
	int *old = c->table;
	c->table_cap = old_cap ? old_cap * 2 : 64;
	if (!(c->table = calloc(c->table_cap, sizeof *c->table))) {
		c->table = old;
		c->table_cap = old_cap;
		return -1;
	}
	for (int i = 0; i < c->n_anchors; i++)
		*slot(c, c->anchors[i].name) = i + 1;
	free(old);
	return 0;
}

static struct anchor *find_anchor(struct composer *c, const char *name)
{
	int i = c->table_cap ? *slot(c, name) : 0;
	return i ? &c->anchors[i - 1] : NULL;
}

/* Takes name (the event's, already detached from it). Returns the anchor's index, -1 for
 * no anchor, -2 on error. */
static int add_anchor(struct composer *c, char *name, int node, long size, yaml_mark_t m)
{
	if (!name)
		return -1;
	struct anchor *dup = find_anchor(c, name);
	if (dup) {
		struct cf_mark first = cf_mark_of(cf_node(c->l, dup->node));
		cf_error(c->l, at(m), "anchor &%s is defined twice (first at line %d, column %d)",
			 name, first.line, first.col);
		free(name);
		return -2;
	}
	size_t cap = (size_t)c->cap_anchors;
	if ((((unsigned)c->n_anchors + 1) * 2 > c->table_cap && grow_table(c) < 0) ||
	    room((void **)&c->anchors, (size_t)c->n_anchors, &cap, sizeof *c->anchors) < 0) {
		free(name);
		oom(c);
		return -2;
	}
	c->cap_anchors = (int)cap;
	c->anchors[c->n_anchors] = (struct anchor){ name, node, size };
	*slot(c, name) = c->n_anchors + 1;
	return c->n_anchors++;
}

/* ---- nodes ---- */

static yaml_node_t *node_at(struct composer *c, int index)
{
	return c->l->doc.nodes.start + index - 1;
}

/* A new node of the document; its 1-based index, or 0 on error. */
static int new_node(struct composer *c, yaml_node_type_t type, const yaml_event_t *ev)
{
	yaml_document_t *doc = &c->l->doc;
	size_t n = (size_t)(doc->nodes.top - doc->nodes.start);
	size_t cap = (size_t)(doc->nodes.end - doc->nodes.start);
	if (++c->nodes > BW_POLICY_MAX_NODES) {
		cf_error(c->l, at(ev->start_mark), "more than %d values, lists and mappings in all; "
			 "a policy needs a few hundred", BW_POLICY_MAX_NODES);
		return 0;
	}
	if (room((void **)&doc->nodes.start, n, &cap, sizeof *doc->nodes.start) < 0)
		return oom(c);
	doc->nodes.top = doc->nodes.start + n + 1;
	doc->nodes.end = doc->nodes.start + cap;
	yaml_node_t *node = doc->nodes.start + n;
	memset(node, 0, sizeof *node);
	node->type = type;
	node->start_mark = ev->start_mark;
	node->end_mark = ev->end_mark;
	return (int)n + 1;
}

/* Child (a node, or the node an alias names) into the open list or mapping, if any. */
static int add_child(struct composer *c, int child, long size)
{
	if (c->depth == 0)
		return 1;   /* the root */
	struct open_node *o = &c->open[c->depth - 1];
	yaml_node_t *parent = node_at(c, o->node);
	o->size += size;
	if (parent->type == YAML_SEQUENCE_NODE) {
		yaml_node_item_t **s = &parent->data.sequence.items.start;
		size_t n = (size_t)(parent->data.sequence.items.top - *s);
		size_t cap = (size_t)(parent->data.sequence.items.end - *s);
		if (room((void **)s, n, &cap, sizeof **s) < 0)
			return oom(c);
		(*s)[n] = child;
		parent->data.sequence.items.top = *s + n + 1;
		parent->data.sequence.items.end = *s + cap;
		return 1;
	}
	yaml_node_pair_t **s = &parent->data.mapping.pairs.start;
	size_t n = (size_t)(parent->data.mapping.pairs.top - *s);
	if (n && (*s)[n - 1].value == 0) {   /* the value of the last key */
		(*s)[n - 1].value = child;
		return 1;
	}
	size_t cap = (size_t)(parent->data.mapping.pairs.end - *s);
	if (room((void **)s, n, &cap, sizeof **s) < 0)
		return oom(c);
	(*s)[n] = (yaml_node_pair_t){ child, 0 };
	parent->data.mapping.pairs.top = *s + n + 1;
	parent->data.mapping.pairs.end = *s + cap;
	return 1;
}

static int scalar(struct composer *c, yaml_event_t *ev)
{
	int i = new_node(c, YAML_SCALAR_NODE, ev);
	if (!i)
		return 0;
	yaml_node_t *n = node_at(c, i);
	n->data.scalar.value = ev->data.scalar.value;
	n->data.scalar.length = ev->data.scalar.length;
	n->data.scalar.style = ev->data.scalar.style;
	ev->data.scalar.value = NULL;   /* the document's now */
	char *name = (char *)ev->data.scalar.anchor;
	ev->data.scalar.anchor = NULL;
	return add_anchor(c, name, i, 1, ev->start_mark) != -2 && add_child(c, i, 1);
}

static int open_node(struct composer *c, yaml_event_t *ev, yaml_node_type_t type)
{
	yaml_char_t **anchor = type == YAML_SEQUENCE_NODE ? &ev->data.sequence_start.anchor
							  : &ev->data.mapping_start.anchor;
	if (c->depth == BW_POLICY_MAX_DEPTH) {
		cf_error(c->l, at(ev->start_mark), "more than %d levels of nested lists and "
			 "mappings; a policy needs a handful", BW_POLICY_MAX_DEPTH);
		return 0;
	}
	int i = new_node(c, type, ev);
	if (!i)
		return 0;
	if (type == YAML_SEQUENCE_NODE)
		node_at(c, i)->data.sequence.style = ev->data.sequence_start.style;
	else
		node_at(c, i)->data.mapping.style = ev->data.mapping_start.style;
	char *name = (char *)*anchor;
	*anchor = NULL;
	int a = add_anchor(c, name, i, -1, ev->start_mark);
	if (a == -2 || !add_child(c, i, 0))
		return 0;
	c->open[c->depth++] = (struct open_node){ i, 1, a };
	return 1;
}

static int close_node(struct composer *c, const yaml_event_t *ev)
{
	struct open_node o = c->open[--c->depth];
	node_at(c, o.node)->end_mark = ev->end_mark;
	if (o.anchor >= 0)
		c->anchors[o.anchor].size = o.size;
	if (c->depth)
		c->open[c->depth - 1].size += o.size;
	return 1;
}

static int alias(struct composer *c, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct anchor *a = find_anchor(c, name);
	if (!a) {
		cf_error(c->l, at(ev->start_mark), "syntax error: found undefined alias");
		return 0;
	}
	if (a->size < 0) {
		cf_error(c->l, at(ev->start_mark), "alias *%s is inside the node it names", name);
		return 0;
	}
	if (a->size > BW_POLICY_MAX_ALIASED - c->aliased) {
		cf_error(c->l, at(ev->start_mark), "aliases stand for more than %d values, lists and "
			 "mappings in all (each use counts all the alias names)", BW_POLICY_MAX_ALIASED);
		return 0;
	}
	c->aliased += a->size;
	return add_child(c, a->node, a->size);
}

static int node_event(struct composer *c, yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return scalar(c, ev);
	case YAML_SEQUENCE_START_EVENT:
		return open_node(c, ev, YAML_SEQUENCE_NODE);
	case YAML_MAPPING_START_EVENT:
		return open_node(c, ev, YAML_MAPPING_NODE);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return close_node(c, ev);
	case YAML_ALIAS_EVENT:
		return alias(c, ev);
	default:
		return 1;
	}
}

/* One document only: a second one would be silently ignored otherwise. Said at its first
 * node; the first document stays good to check. */
static void second_document(struct composer *c)
{
	yaml_event_t ev;
	if (!yaml_parser_parse(c->p, &ev)) {
		cf_syntax_error(c->l, c->p);
		return;
	}
	cf_error(c->l, at(ev.start_mark), "a policy is a single YAML document; remove this one "
		 "or the '---' before it");
	yaml_event_delete(&ev);
}

/* 1: the first document is complete (or there is none); 0: an error was reported and the
 * document is unusable. */
static int compose_stream(struct composer *c)
{
	int docs = 0;
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(c->p, &ev)) {
			cf_syntax_error(c->l, c->p);
			return 0;
		}
		yaml_event_type_t type = ev.type;
		int ok = 1;
		if (type == YAML_DOCUMENT_START_EVENT && docs++)
			second_document(c);
		else
			ok = node_event(c, &ev);
		yaml_event_delete(&ev);
		if (!ok)
			return 0;
		if (type == YAML_STREAM_END_EVENT || (type == YAML_DOCUMENT_START_EVENT && docs > 1))
			return 1;
	}
}

int cf_compose(struct cf_loader *l, const char *yaml, size_t len)
{
	yaml_parser_t p;
	struct composer c = { .l = l, .p = &p, .seed = cf_seed() };
	memset(&l->doc, 0, sizeof l->doc);
	if (!yaml_parser_initialize(&p)) {
		oom(&c);
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	int ok = compose_stream(&c);
	yaml_parser_delete(&p);
	for (int i = 0; i < c.n_anchors; i++)
		free(c.anchors[i].name);
	free(c.anchors);
	free(c.table);
	return ok ? 0 : -1;
}

void cf_doc_free(yaml_document_t *doc)
{
	for (yaml_node_t *n = doc->nodes.start; n && n < doc->nodes.top; n++) {
		if (n->type == YAML_SCALAR_NODE)
			free(n->data.scalar.value);
		else if (n->type == YAML_SEQUENCE_NODE)
			free(n->data.sequence.items.start);
		else if (n->type == YAML_MAPPING_NODE)
			free(n->data.mapping.pairs.start);
	}
	free(doc->nodes.start);
	memset(doc, 0, sizeof *doc);
}
