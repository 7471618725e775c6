/* Layout of the state file a process tree shares. Every process of the group maps the
 * same file; the first lays it out. */
#include <stdio.h>
#include <string.h>
#include "shared.h"

static size_t align64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

static int keyed_rule(const struct bw_rule *r)
{
	return (r->breaker.enabled && r->breaker.scope == BW_SCOPE_DEST) ||
	       (r->rate_limit.enabled && r->rate_limit.scope == BW_SCOPE_DEST);
}

/* Offsets of everything, computed the same way by whoever lays out and whoever checks. */
static size_t layout(const struct bw_config *cfg, struct bw_shm_header *h,
		     struct bw_shm_rule *rules)
{
	size_t entry = bw_keyed_entry_size(sizeof(struct bw_dest_state));
	size_t off = align64(sizeof *h);
	size_t procs = off;
	off = align64(off + BW_SHM_PROCS * sizeof(struct bw_shm_proc));
	size_t rules_off = off;
	off = align64(off + (size_t)cfg->n_rules * sizeof(struct bw_shm_rule));
	for (int i = 0; i < cfg->n_rules; i++) {
		const struct bw_rule *r = &cfg->rules[i];
		int sets = keyed_rule(r) ? bw_keyed_sets(r->max_keys) : 0;
		size_t dests = off;
		off = align64(off + (size_t)sets * BW_KEYED_WAYS * entry);
		size_t locks = off;
		off = align64(off + (size_t)sets * sizeof(int));
		if (rules) {
			rules[i].sets = sets;
			rules[i].dests_off = sets ? dests : 0;
			rules[i].locks_off = sets ? locks : 0;
		}
	}
	if (h) {
		h->procs_off = procs;
		h->rules_off = rules_off;
		h->entry_size = (uint32_t)entry;
		h->size = off;
	}
	return off;
}

size_t bw_shm_size(const struct bw_config *cfg)
{
	return layout(cfg, NULL, NULL);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

void bw_shm_format(void *mem, size_t size, const struct bw_config *cfg, const char *group,
		   const char *policy, int64_t now_us)
{
	struct bw_shm_header *h = mem;
	(void)size;
	h->version = BW_SHM_VERSION;
	h->n_rules = (uint32_t)cfg->n_rules;
	h->n_procs = BW_SHM_PROCS;
	h->created_us = now_us;
	copy_str(h->group, sizeof h->group, group);
	copy_str(h->policy, sizeof h->policy, policy);
	layout(cfg, h, NULL);
	struct bw_shm_rule *rules = bw_shm_rules(mem);
	layout(cfg, h, rules);
	for (int i = 0; i < cfg->n_rules; i++)
		copy_str(rules[i].name, sizeof rules[i].name, cfg->rules[i].name);
	__atomic_store_n(&h->magic, BW_SHM_MAGIC, __ATOMIC_RELEASE);
}

int bw_shm_check(const void *mem, size_t size, const struct bw_config *cfg)
{
	const struct bw_shm_header *h = mem;
	if (size < sizeof *h || __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != BW_SHM_MAGIC ||
	    h->version != BW_SHM_VERSION || h->size != bw_shm_size(cfg) || h->size > size ||
	    h->n_rules != (uint32_t)cfg->n_rules)
		return -1;
	const struct bw_shm_rule *rules =
		(const struct bw_shm_rule *)((const char *)mem + h->rules_off);
	for (int i = 0; i < cfg->n_rules; i++)
		if (strncmp(rules[i].name, cfg->rules[i].name, sizeof rules[i].name) != 0)
			return -1;
	return 0;
}

void bw_engine_share(struct bw_engine *e, void *mem, long self, int (*alive)(long pid))
{
	struct bw_shm_rule *rules = bw_shm_rules(mem);
	for (int i = 0; i < e->cfg->n_rules; i++) {
		struct bw_rule_rt *rt = &e->rt[i];
		rt->lock = &rules[i].lock;
		rt->whole = &rules[i].whole;
		rt->dests.self = (int)self;
		rt->dests.alive = alive;
		if (rules[i].sets)
			bw_keyed_attach(&rt->dests, rules[i].sets, sizeof(struct bw_dest_state),
					(char *)mem + rules[i].dests_off,
					(int *)((char *)mem + rules[i].locks_off));
	}
}

struct each_ctx {
	void (*fn)(const struct bw_dest_state *, void *);
	void *arg;
};

static void each_one(const void *value, void *arg)
{
	struct each_ctx *c = arg;
	c->fn(value, c->arg);
}

void bw_shm_each_dest(void *mem, int rule,
		      void (*fn)(const struct bw_dest_state *st, void *arg), void *arg)
{
	struct bw_shm_rule *r = &bw_shm_rules(mem)[rule];
	if (!r->sets)
		return;
	struct bw_keyed k = { 0 };
	bw_keyed_attach(&k, r->sets, sizeof(struct bw_dest_state), (char *)mem + r->dests_off,
			(int *)((char *)mem + r->locks_off));
	struct each_ctx c = { fn, arg };
	bw_keyed_each(&k, each_one, &c);
}

void bw_state_dir(const struct bw_config *cfg, const char *xdg, unsigned uid, char *buf,
		  size_t cap)
{
	if (cfg && cfg->state.dir)
		snprintf(buf, cap, "%s", cfg->state.dir);
	else if (xdg && *xdg)
		snprintf(buf, cap, "%s/bulwark", xdg);
	else
		snprintf(buf, cap, "/tmp/bulwark-%u", uid);
}
