/* Layout of the state file a process tree shares. Every process of the group maps the
 * same file; the first lays it out. */
#include <stdio.h>
#include <string.h>
#include "keyed.h"
#include "shared.h"

static size_t align64(size_t n)
{
	return (n + 63) & ~(size_t)63;
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
		int sets = bw_rule_keyed(r) ? bw_keyed_sets(r->max_keys) : 0;
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
}

void bw_shm_publish(void *mem)
{
	__atomic_store_n(&((struct bw_shm_header *)mem)->magic, BW_SHM_MAGIC, __ATOMIC_RELEASE);
}

size_t bw_shm_procs_offset(void)
{
	return align64(sizeof(struct bw_shm_header));
}

/* n items of `each` bytes fit between off and size (no overflow on the way). */
static int fits(uint64_t off, uint64_t n, uint64_t each, uint64_t size)
{
	return off <= size && (each == 0 || n <= (size - off) / each);
}

const char *bw_shm_verify(const void *mem, size_t size)
{
	const struct bw_shm_header *h = mem;
	if (size < sizeof *h)
		return "too small to be a state file";
	uint32_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
	if (magic != BW_SHM_MAGIC)
		return magic == 0 ? "not ready (being laid out, or not a bulwark state file)"
				  : "not a bulwark state file (bad magic)";
	if (h->version != BW_SHM_VERSION)
		return "state file version differs from this bulwark's";
	if (h->size > size)
		return "shorter than its header says";
	uint64_t end = h->size;
	uint64_t entry = bw_keyed_entry_size(sizeof(struct bw_dest_state));
	if (h->n_procs != BW_SHM_PROCS || h->procs_off != bw_shm_procs_offset() ||
	    !fits(h->procs_off, h->n_procs, sizeof(struct bw_shm_proc), end))
		return "layout differs from this bulwark's (process table)";
	if (h->entry_size != entry)
		return "layout differs from this bulwark's (entry size)";
	uint64_t off = align64(h->procs_off + BW_SHM_PROCS * sizeof(struct bw_shm_proc));
	if (h->rules_off != off || !fits(off, h->n_rules, sizeof(struct bw_shm_rule), end))
		return "layout differs from this bulwark's (rule table)";
	const struct bw_shm_rule *rules = (const void *)((const char *)mem + off);
	off = align64(off + (uint64_t)h->n_rules * sizeof(struct bw_shm_rule));
	for (uint32_t i = 0; i < h->n_rules; i++) {
		const struct bw_shm_rule *r = &rules[i];
		int32_t n = r->sets;
		uint64_t sets = n < 0 ? 0 : (uint64_t)n;
		if (n < 0 || !fits(off, sets, BW_KEYED_WAYS * entry, end))
			return "layout differs from this bulwark's (a rule's tables)";
		uint64_t dests = off;
		off = align64(off + sets * BW_KEYED_WAYS * entry);
		if (!fits(off, sets, sizeof(int), end))
			return "layout differs from this bulwark's (a rule's tables)";
		uint64_t locks = off;
		off = align64(off + sets * sizeof(int));
		if (r->dests_off != (sets ? dests : 0) || r->locks_off != (sets ? locks : 0))
			return "layout differs from this bulwark's (a rule's tables)";
	}
	if (off != end)
		return "layout differs from this bulwark's (size)";
	return NULL;
}

int bw_shm_check(const void *mem, size_t size, const struct bw_config *cfg)
{
	const struct bw_shm_header *h = mem;
	if (bw_shm_verify(mem, size) || h->n_rules != (uint32_t)cfg->n_rules ||
	    h->size != bw_shm_size(cfg))
		return -1;
	const struct bw_shm_rule *rules =
		(const struct bw_shm_rule *)((const char *)mem + h->rules_off);
	for (int i = 0; i < cfg->n_rules; i++) {
		const struct bw_rule *r = &cfg->rules[i];
		if (strncmp(rules[i].name, r->name, sizeof rules[i].name) != 0 ||
		    rules[i].sets != (bw_rule_keyed(r) ? bw_keyed_sets(r->max_keys) : 0))
			return -1;
	}
	return 0;
}

int bw_state_dir(const struct bw_config *cfg, const char *xdg, unsigned uid, char *buf,
		 size_t cap)
{
	int n;
	if (cfg && cfg->state.dir)
		n = snprintf(buf, cap, "%s", cfg->state.dir);
	else if (xdg && *xdg)
		n = snprintf(buf, cap, "%s/bulwark", xdg);
	else
		n = snprintf(buf, cap, "/tmp/bulwark-%u", uid);
	if (n < 0 || (size_t)n >= cap || n > BW_STATE_DIR_MAX) {
		if (cap)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}

int bw_group_name(const struct bw_config *cfg, const char *named, unsigned uid, char *buf,
		  size_t cap, int *own)
{
	int n;
	*own = !named || !*named || strchr(named, '/');
	if (!*own) {
		n = strlen(named) > BW_GROUP_MAX ? -1 : snprintf(buf, cap, "%s", named);
	} else {
		const char *p = cfg->path ? cfg->path : "";
		uint64_t h = bw_key_bytes(p, strlen(p), uid);
		n = snprintf(buf, cap, "policy-%016llx", (unsigned long long)h);
	}
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}

int bw_state_path(const char *dir, const char *group, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/%s" BW_STATE_SUFFIX, dir, group);
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}

int bw_proc_stat_parse(const char *text, char *state, unsigned long long *start_ticks)
{
	/* "pid (comm) S ppid ...": comm may hold anything, spaces and ')' included, so the
	 * fields are counted from the last ')' */
	const char *p = strrchr(text, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -1;
	*state = p[2];
	p += 2;
	/* field 3 is the state; starttime is field 22 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	unsigned long long v = 0;
	const char *d = p;
	while (*d >= '0' && *d <= '9' && v <= (~0ull - 9) / 10)
		v = v * 10 + (unsigned long long)(*d++ - '0');
	if (d == p || (*d != ' ' && *d != '\0' && *d != '\n'))
		return -1;
	*start_ticks = v;
	return 0;
}

/* Bounds of the call time histogram: from a loopback round trip to a timeout's scale. */
const int64_t bw_met_bounds_us[BW_MET_BUCKETS] = {
	1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

static struct bw_shm_met_dest *met_row(struct bw_shm_met *m, uint64_t key,
				       void (*label)(const void *arg, char *buf, size_t cap),
				       const void *arg)
{
	key = key ? key : 1;
	for (int i = 0; i < BW_MET_DESTS; i++) {
		struct bw_shm_met_dest *d = &m->dest[i];
		uint64_t k = __atomic_load_n(&d->key, __ATOMIC_ACQUIRE);
		if (k == 0) {
			uint64_t zero = 0;
			if (__atomic_compare_exchange_n(&d->key, &zero, key, 0, __ATOMIC_ACQ_REL,
							__ATOMIC_ACQUIRE)) {
				char buf[BW_LABEL_MAX] = "";
				if (label)
					label(arg, buf, sizeof buf);
				buf[sizeof buf - 1] = '\0';
				memcpy(d->label, buf, sizeof buf);
				return d;
			}
			k = zero;
		}
		if (k == key)
			return d;
	}
	return &m->dest[BW_MET_DESTS];
}

void bw_met_call(struct bw_shm_met *m, uint64_t key,
		 void (*label)(const void *arg, char *buf, size_t cap), const void *arg,
		 int64_t us, int failed)
{
	struct bw_shm_met_dest *d = met_row(m, key, label, arg);
	int b = 0;
	while (b < BW_MET_BUCKETS && us > bw_met_bounds_us[b])
		b++;
	__atomic_add_fetch(&d->le[b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&d->sum_us, (uint64_t)(us > 0 ? us : 0), __ATOMIC_RELAXED);
	if (failed)
		__atomic_add_fetch(&d->failed, 1, __ATOMIC_RELAXED);
	/* last: a reader that sees a call counted sees its bucket too */
	__atomic_add_fetch(&d->calls, 1, __ATOMIC_RELEASE);
}
