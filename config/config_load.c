/* Loading a policy: YAML document in, validated and defaults-merged bw_config out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "builtin.h"
#include "redis_url.h"
#include "config_int.h"
#include "units.h"
#include "vocab.h"

/* Each mapping's keys, named by id: the id, not the position, says which key is which. */
enum { T_VERSION, T_MODE, T_ONERR, T_SEED, T_LOG, T_DEFAULTS, T_RULES, T_STATE, T_COUNT };
static const char *const top_keys[T_COUNT + 1] = {
	[T_VERSION] = "version", [T_MODE] = "mode", [T_ONERR] = "on_config_error",
	[T_SEED] = "seed", [T_LOG] = "log", [T_DEFAULTS] = "defaults", [T_RULES] = "rules",
	[T_STATE] = "state",
};

enum { L_SINK, L_LEVEL, L_FACILITY, L_SUMMARY, L_COUNT };
static const char *const log_keys[L_COUNT + 1] = {
	[L_SINK] = "sink", [L_LEVEL] = "level", [L_FACILITY] = "syslog_facility",
	[L_SUMMARY] = "summary",
};

enum { ST_SHARE, ST_DIR, ST_REDIS, ST_PREFIX, ST_UNREACH, ST_HOSTS, ST_QUORUM, ST_SYNC,
       ST_COUNT };
static const char *const state_keys[ST_COUNT + 1] = {
	[ST_SHARE] = "share", [ST_DIR] = "dir", [ST_REDIS] = "redis", [ST_PREFIX] = "key_prefix",
	[ST_UNREACH] = "on_unreachable", [ST_HOSTS] = "hosts", [ST_QUORUM] = "fleet_quorum",
	[ST_SYNC] = "sync",
};

static void parse_sink(struct cf_loader *l, yaml_node_t *v)
{
	struct bw_log *lg = &l->cfg->log;
	const char *s = cf_scalar(l, v, "log.sink", BW_SINK_WHAT), *path;
	enum bw_sink_kind kind;
	char err[160], *copy = NULL;
	if (!s)
		return;
	if (bw_parse_sink(s, &kind, &path, err, sizeof err) < 0) {
		cf_error(l, cf_mark_of(v), "log.sink: %s", err);
		return;
	}
	if (path && !(copy = strdup(path))) {
		cf_error(l, cf_mark_of(v), "log.sink: out of memory");
		return;
	}
	free(lg->path);
	lg->path = copy;
	lg->sink = kind;
}

static void parse_log(struct cf_loader *l, yaml_node_t *n)
{
	yaml_node_t *k[L_COUNT], *v[L_COUNT];
	struct bw_log *lg = &l->cfg->log;
	int e;
	if (cf_map(l, n, "log", log_keys, k, v) < 0)
		return;
	if (v[L_SINK])
		parse_sink(l, v[L_SINK]);
	if (v[L_LEVEL] && cf_enum(l, v[L_LEVEL], "log.level", bw_level_names, &e) == 0) {
		lg->level = (enum bw_level)e;
		lg->level_given = 1;
	}
	if (v[L_FACILITY] &&
	    cf_enum(l, v[L_FACILITY], "log.syslog_facility", bw_facility_names, &e) == 0)
		lg->facility = bw_facility_values[e];
	if (v[L_SUMMARY])
		cf_bool(l, v[L_SUMMARY], "log.summary", &lg->summary);
}

/* The fleet's keys: only with share: fleet, which needs redis and hosts. */
static void parse_fleet(struct cf_loader *l, yaml_node_t *n, yaml_node_t **v)
{
	struct bw_fleet *f = &l->cfg->state.fleet;
	const char *s;
	char err[200];
	long x;
	int e;
	if (l->cfg->state.share != BW_SHARE_FLEET) {
		for (int i = ST_REDIS; i < ST_COUNT; i++)
			if (v[i])
				cf_error(l, cf_mark_of(v[i]), "state.%s: only with share: fleet",
					 state_keys[i]);
		return;
	}
	if (!v[ST_REDIS])
		cf_error(l, cf_mark_of(n), "state: share: fleet needs redis: "
			 "\"redis://HOST:PORT/DB\" or \"unix:/PATH\"");
	else if ((s = cf_scalar(l, v[ST_REDIS], "state.redis", "redis://HOST:PORT/DB"))) {
		if (bw_parse_redis_url(s, f, err, sizeof err) < 0)
			cf_error(l, cf_mark_of(v[ST_REDIS]), "state.redis: %s", err);
		else if (!(f->redis = strdup(s)))
			cf_error(l, cf_mark_of(v[ST_REDIS]), "state.redis: out of memory");
	}
	if (v[ST_PREFIX] && (s = cf_scalar(l, v[ST_PREFIX], "state.key_prefix", "a string"))) {
		size_t len = strlen(s);
		int bad = len == 0 || len > BW_FLEET_PREFIX_MAX;
		for (size_t i = 0; i < len && !bad; i++)
			bad = (unsigned char)s[i] <= ' ' || s[i] == 0x7f;
		if (bad)
			cf_error(l, cf_mark_of(v[ST_PREFIX]), "state.key_prefix: expected 1 to %d "
				 "printable characters without spaces", BW_FLEET_PREFIX_MAX);
		else if (!(f->key_prefix = strdup(s)))
			cf_error(l, cf_mark_of(v[ST_PREFIX]), "state.key_prefix: out of memory");
	}
	if (v[ST_UNREACH] &&
	    cf_enum(l, v[ST_UNREACH], "state.on_unreachable", bw_unreachable_names, &e) == 0)
		f->on_unreachable = (enum bw_on_unreachable)e;
	if (!v[ST_HOSTS])
		cf_error(l, cf_mark_of(n), "state: share: fleet needs hosts: N, the expected "
			 "number of hosts (each gets rate / N while Redis is out of reach)");
	else if (cf_int(l, v[ST_HOSTS], "state.hosts", 1, 100000, &x) == 0)
		f->hosts = (int)x;
	if (v[ST_QUORUM] && (s = cf_scalar(l, v[ST_QUORUM], "state.fleet_quorum",
					   "a number of hosts or a percentage"))) {
		size_t len = strlen(s);
		long q = 0;
		int pct = len > 1 && s[len - 1] == '%', ok = len > 0 && len < 8;
		for (size_t i = 0; ok && i < len - (size_t)pct; i++) {
			ok = s[i] >= '0' && s[i] <= '9';
			q = q * 10 + (s[i] - '0');
		}
		if (!ok || q < 1 || (pct && q > 100) || (!pct && q > 100000))
			cf_error(l, cf_mark_of(v[ST_QUORUM]), "state.fleet_quorum: expected a "
				 "number of hosts (1 or more) or a percentage (1%% to 100%%), got "
				 "'%s'", s);
		else {
			f->quorum = (int)q;
			f->quorum_pct = pct;
		}
	}
	if (v[ST_SYNC] && cf_duration(l, v[ST_SYNC], "state.sync", &f->sync) == 0 &&
	    (f->sync < 10 * BW_MS || f->sync > 10 * BW_SEC))
		cf_error(l, cf_mark_of(v[ST_SYNC]), "state.sync: expected 10ms to 10s");
}

static void parse_state(struct cf_loader *l, yaml_node_t *n)
{
	yaml_node_t *k[ST_COUNT], *v[ST_COUNT];
	struct bw_state *st = &l->cfg->state;
	const char *s;
	int e;
	if (cf_map(l, n, "state", state_keys, k, v) < 0)
		return;
	if (v[ST_SHARE] && cf_enum(l, v[ST_SHARE], "state.share", bw_share_names, &e) == 0)
		st->share = (enum bw_share)e;
	parse_fleet(l, n, v);
	if (!v[ST_DIR] || !(s = cf_scalar(l, v[ST_DIR], "state.dir", "auto or an absolute path")))
		return;
	if (strcmp(s, "auto") == 0)
		return;
	if (s[0] != '/')   /* the same for every process of the tree, whatever its cwd */
		cf_error(l, cf_mark_of(v[ST_DIR]), "state.dir: expected auto or an absolute path, got "
			 "'%s'", s);
	else if (strlen(s) > BW_STATE_DIR_MAX)   /* cut short, it would name another directory */
		cf_error(l, cf_mark_of(v[ST_DIR]), "state.dir: longer than %d characters (%zu)",
			 BW_STATE_DIR_MAX, strlen(s));
	else if (!(st->dir = strdup(s)))
		cf_error(l, cf_mark_of(v[ST_DIR]), "state.dir: out of memory");
}

static void parse_seed(struct cf_loader *l, yaml_node_t *v)
{
	const char *s = cf_text(v);
	char err[160];
	if (!s)
		cf_expected(l, v, "seed", BW_SEED_WHAT);
	else if (bw_parse_seed(s, &l->cfg->seed, err, sizeof err) < 0)
		cf_error(l, cf_mark_of(v), "seed: %s", err);
}

static void parse_version(struct cf_loader *l, yaml_node_t *root, yaml_node_t *v)
{
	const char *s = v ? cf_text(v) : NULL;
	if (!v)
		cf_error(l, cf_mark_of(root), "missing required key 'version'; add version: 1");
	else if (!s || strcmp(s, "1") != 0)
		cf_error(l, cf_mark_of(v), "version: unsupported version %s; expected 1",
			 s ? s : "(not a number)");
	l->cfg->version = 1;
}

/* Rule names seen so far: a hash table of draft indices + 1 (0: empty), twice as large as
 * the list of rules; comparing each name with all before it was quadratic. */
struct names {
	int *slot;
	unsigned mask;
	uint32_t seed;
};

static void check_unique(struct cf_loader *l, struct names *t, struct cf_draft *d, int n)
{
	for (unsigned i = cf_hash(d[n].r.name, t->seed) & t->mask;; i = (i + 1) & t->mask) {
		if (!t->slot[i]) {
			t->slot[i] = n + 1;
			return;
		}
		struct cf_draft *first = &d[t->slot[i] - 1];
		if (strcmp(first->r.name, d[n].r.name) == 0) {
			cf_error(l, d[n].name_at, "%s.name: duplicate rule name '%s'; %s at line %d has "
				 "it already", d[n].path, d[n].r.name, first->path, first->at.line);
			return;
		}
	}
}

static void free_drafts(struct cf_draft *d, int n)
{
	for (int i = 0; i < n; i++)
		cf_rule_free(&d[i].r);
	free(d);
}

static void parse_rules(struct cf_loader *l, yaml_node_t *v, const struct cf_draft *defs)
{
	struct bw_config *cfg = l->cfg;
	struct cf_draft *d;
	if (v->type != YAML_SEQUENCE_NODE) {
		cf_error(l, cf_mark_of(v), "rules: expected a list of rules");
		return;
	}
	int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n > BW_POLICY_MAX_RULES) {
		/* a socket's entry names its rules in 12 bits */
		cf_error(l, cf_mark_of(v), "rules: at most %d rules, got %d", BW_POLICY_MAX_RULES,
			 n);
		return;
	}
	struct names names = { .seed = cf_seed() };
	unsigned cap = 16;
	while (cap < 2 * (unsigned)n)
		cap *= 2;
	names.mask = cap - 1;
	d = calloc((size_t)n + 1, sizeof *d);
	names.slot = calloc(cap, sizeof *names.slot);
	if (!d || !names.slot) {
		cf_error(l, cf_mark_of(v), "rules: out of memory");
		free(d);
		free(names.slot);
		return;
	}
	for (int i = 0; i < n; i++) {
		snprintf(d[i].path, sizeof d[i].path, "rules[%d]", i);
		cf_parse_rule(l, cf_node(l, v->data.sequence.items.start[i]), &d[i]);
		if (d[i].name_ok)
			check_unique(l, &names, d, i);
		cf_finish_rule(l, &d[i], defs);
	}
	free(names.slot);
	if (!(cfg->rules = calloc((size_t)n + 1, sizeof *cfg->rules))) {
		cf_error(l, cf_mark_of(v), "rules: out of memory");
		free_drafts(d, n);
		return;
	}
	for (int i = 0; i < n; i++) {
		cfg->rules[i] = d[i].r;
		cfg->ops |= d[i].r.match.ops;
	}
	cfg->n_rules = n;
	free(d);
}

static void parse_top(struct cf_loader *l, yaml_node_t *root)
{
	yaml_node_t *k[T_COUNT], *v[T_COUNT];
	struct cf_draft defs = { .is_defaults = 1, .path = "defaults" };
	struct bw_config *cfg = l->cfg;
	int e;
	if (cf_map(l, root, "", top_keys, k, v) < 0)
		return;
	parse_version(l, root, v[T_VERSION]);
	if (v[T_MODE] && cf_enum(l, v[T_MODE], "mode", bw_mode_names, &e) == 0)
		cfg->mode = (enum bw_mode)e;
	if (v[T_ONERR] && cf_enum(l, v[T_ONERR], "on_config_error", bw_onerr_names, &e) == 0)
		cfg->on_config_error = (enum bw_on_error)e;
	if (v[T_SEED])
		parse_seed(l, v[T_SEED]);
	if (v[T_LOG])
		parse_log(l, v[T_LOG]);
	bw_log_settle(&cfg->log);
	if (v[T_STATE])
		parse_state(l, v[T_STATE]);
	if (v[T_DEFAULTS]) {
		cf_parse_rule(l, v[T_DEFAULTS], &defs);
		cf_check_defaults(l, &defs);
	}
	if (v[T_RULES])
		parse_rules(l, v[T_RULES], v[T_DEFAULTS] ? &defs : NULL);
	cf_rule_free(&defs.r);
	/* a bucket per destination or per rule is the fleet's; one per process stays its own */
	for (int i = 0; cfg->state.share == BW_SHARE_FLEET && i < cfg->n_rules; i++) {
		struct bw_rate_limit *rl = &cfg->rules[i].rate_limit;
		rl->fleet = rl->enabled && rl->scope != BW_SCOPE_PROCESS;
	}
}

/* "\0" in a quoted string is valid YAML, but every value here is used as a C string:
 * it would be cut short at the NUL without a word. */
static void check_no_nul(struct cf_loader *l)
{
	for (yaml_node_t *n = l->doc.nodes.start; n < l->doc.nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE &&
		    strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
			cf_error(l, cf_mark_of(n), "a value may not contain a NUL character (\\0)");
}

static struct bw_config *new_config(void)
{
	struct bw_config *cfg = malloc(sizeof *cfg);
	if (cfg)
		*cfg = bw_builtin_config;
	return cfg;
}

static void load_document(struct cf_loader *l, const char *yaml, size_t len)
{
	struct cf_mark top = { 1, 1 };
	if (cf_compose(l, yaml, len) == 0) {
		yaml_node_t *root = yaml_document_get_root_node(&l->doc);
		if (!root) {
			cf_error(l, top, "empty policy; expected a mapping that starts with version: 1");
		} else {
			check_no_nul(l);
			parse_top(l, root);
		}
	}
	cf_doc_free(&l->doc);
}

struct bw_config *bw_config_load_string(const char *name, const char *yaml, size_t len,
					struct bw_diags *diags)
{
	struct bw_diags local = { .n = 0 };
	struct cf_loader l = { .file = name, .dg = diags ? diags : &local };
	int before = l.dg->n;
	errno = 0;
	char *abs = realpath(name, NULL);   /* NULL for a name that is no file, as in tests */
	if ((!abs && errno == ENOMEM) || !(l.cfg = new_config()) ||
	    !(l.cfg->path = abs ? abs : strdup(name))) {
		cf_error(&l, (struct cf_mark){ 0, 0 }, "out of memory");
		free(abs);
		bw_config_free(l.cfg);
		return NULL;
	}
	if (len > BW_POLICY_MAX_BYTES)
		cf_error(&l, (struct cf_mark){ 0, 0 }, "larger than 1 MiB, the most a policy may be");
	else
		load_document(&l, yaml, len);
	if (l.dg->n != before) {
		bw_config_free(l.cfg);
		return NULL;
	}
	return l.cfg;
}

static char *read_all(const char *path, size_t *len, struct bw_diags *dg)
{
	struct cf_loader l = { .file = path, .dg = dg };
	struct cf_mark none = { 0, 0 };
	const char *why = NULL;
	FILE *f = fopen(path, "re");
	char *buf;
	if (!f) {
		cf_error(&l, none, "cannot open: %s", strerror(errno));
		return NULL;
	}
	/* one byte more than a policy may be, for the loader to tell too large */
	if (!(buf = malloc(BW_POLICY_MAX_BYTES + 1))) {
		why = "out of memory";
	} else {
		*len = fread(buf, 1, BW_POLICY_MAX_BYTES + 1, f);
		if (ferror(f))
			why = strerror(errno);
	}
	fclose(f);
	if (why) {
		cf_error(&l, none, "cannot read: %s", why);
		free(buf);
		return NULL;
	}
	return buf;
}

struct bw_config *bw_config_load_file(const char *path, struct bw_diags *diags)
{
	struct bw_diags local = { .n = 0 };
	size_t len = 0;
	char *yaml = read_all(path, &len, diags ? diags : &local);
	if (!yaml)
		return NULL;
	struct bw_config *cfg = bw_config_load_string(path, yaml, len, diags);
	free(yaml);
	return cfg;
}

void bw_config_free(struct bw_config *cfg)
{
	if (!cfg)
		return;
	for (int i = 0; i < cfg->n_rules; i++)
		cf_rule_free(&cfg->rules[i]);
	free(cfg->rules);
	free(cfg->log.path);
	free(cfg->state.dir);
	free(cfg->state.fleet.redis);
	free(cfg->state.fleet.unix_path);
	free(cfg->state.fleet.key_prefix);
	free(cfg->path);
	free(cfg);
}
